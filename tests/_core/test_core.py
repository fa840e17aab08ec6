from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
import torch

from spikeforge._core.checks import check_finite
from spikeforge._core.discretize import check_positive
from spikeforge._core.discretize import decay
from spikeforge._core.discretize import tau_from_decay
from spikeforge._core.reset import apply_reset
from spikeforge._core.scan import scan
from spikeforge._core.scan import scan_record
from spikeforge._core.spike import heaviside
from spikeforge._core.spike import spike
from spikeforge.surrogate import ATan
from spikeforge.surrogate import FastSigmoid


def test_decay_is_exact_exponential_and_inverts():
    assert decay(10.0, 1.0) == pytest.approx(math.exp(-0.1), rel=1e-15)
    tau = torch.tensor([1.0, 5.0, 50.0], dtype=torch.float64)
    torch.testing.assert_close(decay(tau, 0.5), torch.exp(-0.5 / tau))
    torch.testing.assert_close(tau_from_decay(decay(tau, 0.5), 0.5), tau)
    assert tau_from_decay(decay(7.0, 0.25), 0.25) == pytest.approx(7.0, rel=1e-12)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_check_positive_rejects(bad):
    with pytest.raises(ValueError, match="must be finite and > 0"):
        check_positive("tau_mem", bad)
    with pytest.raises(ValueError, match="must be finite and > 0"):
        check_positive("tau_mem", torch.tensor([1.0, bad]))


@pytest.mark.parametrize("beta", [0.0, 1.0, 1.5, -0.1])
def test_tau_from_decay_rejects_out_of_range(beta):
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        tau_from_decay(beta, 1.0)


def test_heaviside_strict_and_keeps_dtype():
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        x = torch.tensor([-1.0, 0.0, 1e-6, 2.0], dtype=dtype)
        z = heaviside(x)
        assert z.dtype == dtype
        assert z.tolist() == [0.0, 0.0, 1.0, 1.0]


def test_spike_forward_and_surrogate_backward():
    x = torch.linspace(-2, 2, 41, dtype=torch.float64, requires_grad=True)
    sg = ATan(alpha=3.0)
    z = spike(x, sg)
    assert torch.equal(z.detach(), (x.detach() > 0).double())
    (g,) = torch.autograd.grad(z, x, torch.ones_like(z))
    expected = 1.5 / (1 + (math.pi / 2 * 3.0 * x.detach()) ** 2)  # independent formula
    torch.testing.assert_close(g, expected)


def test_spike_without_grad_is_plain_heaviside():
    x = torch.randn(5)
    assert spike(x, FastSigmoid()).grad_fn is None


def test_reset_modes_only_touch_spiking_neurons():
    v = torch.tensor([0.5, 1.2, 2.5])
    z = torch.tensor([0.0, 1.0, 1.0])
    torch.testing.assert_close(apply_reset(v, z, 1.0, -0.1, "to_value"), torch.tensor([0.5, -0.1, -0.1]))
    torch.testing.assert_close(apply_reset(v, z, 1.0, -0.1, "subtract"), torch.tensor([0.5, 0.1, 1.4]))
    torch.testing.assert_close(apply_reset(v, z, 1.0, 0.0, "none"), v)
    with pytest.raises(ValueError, match="unknown reset mode"):
        apply_reset(v, z, 1.0, 0.0, "zero")


def _cumsum_step(x_t, s):
    s = s + x_t
    return 2 * s, s


def test_scan_matches_hand_loop_and_records():
    x = torch.randn(6, 3, 2)
    y, s = scan(_cumsum_step, x, torch.zeros(3, 2))
    torch.testing.assert_close(y, 2 * x.cumsum(0))
    torch.testing.assert_close(s, x.sum(0))


def test_scan_record_stacks_namedtuple_states():
    from typing import NamedTuple

    class St(NamedTuple):
        a: torch.Tensor
        b: torch.Tensor

    def step(x_t, st):
        a = st.a + x_t
        return a, St(a, st.b + 1)

    x = torch.randn(4, 2)
    y, states = scan_record(step, x, St(torch.zeros(2), torch.zeros(2)))
    assert isinstance(states, St)
    torch.testing.assert_close(states.a, x.cumsum(0))
    torch.testing.assert_close(states.b[:, 0], torch.arange(1.0, 5.0))


@pytest.mark.parametrize("shape", [(0, 2), (3,)])
def test_scan_rejects_bad_sequences(shape):
    with pytest.raises(ValueError, match="T = 0|time-major"):
        scan(_cumsum_step, torch.zeros(shape), torch.zeros(2))
    with pytest.raises(TypeError, match="torch.Tensor"):
        scan(_cumsum_step, [1, 2], torch.zeros(2))  # type: ignore[arg-type]


def test_check_seq_is_the_one_sequence_check():
    from spikeforge._core.checks import check_seq

    x = torch.zeros(3, 2)
    assert check_seq(x, "x_seq") is x
    with pytest.raises(ValueError, match=r"x_seq must be time-major \[T, B, \.\.\.\]"):
        check_seq(torch.zeros(3), "x_seq")
    with pytest.raises(ValueError, match="T = 0"):
        check_seq(torch.zeros(0, 2), "x_seq")
    with pytest.raises(TypeError, match="floating-point"):
        check_seq(torch.zeros(3, 2, dtype=torch.int64), "x_seq")
    assert check_seq(torch.zeros(3, 2, dtype=torch.int64), "x_seq", floating=False) is not None
    with pytest.raises(ValueError, match="NaN"):
        check_seq(torch.full((3, 2), float("nan")), "x_seq")
    assert check_seq(torch.full((3, 2), float("nan")), "x_seq", finite=False) is not None


# ---- the NaN/inf check: no copy of the input, same answer as torch.isfinite(x).all() (issue 13) ----------
def _largest_temporary(fn, x):
    """Bytes of the largest new storage any aten op creates while ``fn(x)`` runs (views of ``x`` share its
    storage and are not counted)."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    largest = [0]
    base = x.untyped_storage().data_ptr()

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in tree_leaves(out):
                if isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() != base:
                    largest[0] = max(largest[0], t.untyped_storage().nbytes())
            return out

    with Record():
        result = fn(x)
    return result, largest[0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64])
@pytest.mark.parametrize("bad", [None, float("nan"), float("inf")])
def test_finite_check_makes_no_copy(dtype, bad):
    # the old check summed in float64: a temporary twice the size of a float32 input
    from spikeforge._core.checks import _all_finite

    x = torch.rand(64, 8, 8192, dtype=dtype)  # 4M elements
    if dtype == torch.float16:
        x.fill_(60000.0)  # finite, but its float16 sum overflows: the exact pass must run and say True
    if bad is not None:
        x[-1, -1, -1] = bad
    ok, largest = _largest_temporary(_all_finite, x)
    assert ok is (bad is None)
    # isfinite's temporaries of one 2**20-element slice, a quarter of the input here (was: the whole input)
    assert largest <= 2**20 * x.element_size(), (
        f"a {largest}-byte temporary for a {x.numel() * x.element_size()}-byte input"
    )
    # and the public check raises exactly when it should
    if bad is None:
        check_finite(x, "x")
    else:
        with pytest.raises(ValueError, match="x contains NaN or inf; clean it first"):
            check_finite(x, "x")


def test_finite_check_equals_isfinite_all(monkeypatch):
    # small slices force every branch (1-D split, rows per slice, recursion into over-large rows)
    import spikeforge._core.checks as checks

    monkeypatch.setattr(checks, "_FINITE_CHUNK", 7)
    g = torch.Generator().manual_seed(0)
    shapes = [(), (1,), (50,), (3, 4), (2, 30), (5, 2, 9), (3, 1, 2, 11)]
    seen = set()
    for shape in shapes:
        for bad in (None, float("nan"), float("inf"), -float("inf"), "pair"):
            for transpose in (False, True):
                x = torch.rand(shape, generator=g)
                if transpose and x.dim() >= 2:
                    x = x.transpose(0, -1)  # non-contiguous: checked through views, never copied
                if bad == "pair" and x.numel() >= 2:
                    x[(0,) * x.dim()] = float("inf")
                    x[tuple(s - 1 for s in x.shape)] = -float("inf")  # the sum is NaN, not inf
                elif isinstance(bad, float) and x.numel():
                    idx = int(torch.randint(x.numel(), (1,), generator=g))
                    pos = torch.unravel_index(torch.tensor(idx), x.shape)  # works for non-contiguous x too
                    x[tuple(int(p) for p in pos)] = bad
                want = bool(torch.isfinite(x).all())
                assert checks._all_finite(x) is want, (shape, bad, transpose)
                seen.add(want)
    assert seen == {True, False}
    big = torch.full((4, 3), 3e38)  # finite, but the sum overflows float32
    assert checks._all_finite(big) is True


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the peak resident memory from /proc (Linux)")
def test_finite_check_peak_memory_stays_small():
    # the probe, measured as the process's peak resident memory: the old check cast a float32 input
    # to float64 inside the sum (+800 MB for this 400 MB input); the reduction and the sliced exact pass
    # must stay within a few MB (inside a fresh process so the peak is this check's own)
    code = (
        "import torch\n"
        "from spikeforge._core.checks import _all_finite\n"
        "def hwm():\n"
        "    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')) // 1024\n"
        "x = torch.rand(100_000_000)\n"
        "base = hwm(); ok = _all_finite(x); grew = hwm() - base\n"
        "x[-1] = float('nan'); base = hwm(); bad = _all_finite(x); grew_bad = hwm() - base\n"
        "print(ok, bad, grew, grew_bad)\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    ok, bad, grew, grew_bad = out.split()
    assert (ok, bad) == ("True", "False")
    assert int(grew) < 32 and int(grew_bad) < 32, f"peak grew by {grew} MB / {grew_bad} MB for a 400 MB input"
