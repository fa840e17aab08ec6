"""Property-based tests (hypothesis) over neuron x parameters x shapes x dtypes x backends (issue 13).

* every fused backend equals the reference loop (identical spikes and final states, gradients within
  tolerance) for any drawn neuron, parameters, reset mode, surrogate, shape and dtype;
* every registered neuron gives finite outputs (binary spikes) for finite inputs;
* bad input gives a clear error (NaN/inf anywhere, wrong rank, integer dtype), never a NaN or a crash;
* the event-engine entry point never crashes on arbitrary index pointers / indices / values: it runs or
  raises ValueError/TypeError; event binning conserves events for any time stamps;
* decoders and losses: spike times equal a plain loop; losses are finite for any binary spikes.

Examples are drawn deterministically (``derandomize=True``, no example database written) so CI is
reproducible; ``max_examples`` is kept small so the file runs in well under a minute on two cores.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from torch import Tensor
from torch import nn

from spikeforge.backends import available_backends
from spikeforge.encoding import first_spike_time
from spikeforge.encoding import soft_first_spike_time
from spikeforge.events import StreamingEngine
from spikeforge.events import make_events
from spikeforge.events import to_frames
from spikeforge.events._kernel import numba_available
from spikeforge.layers import SNNSequential
from spikeforge.losses import first_spike_time_loss
from spikeforge.losses import rate_cross_entropy
from spikeforge.losses import rate_l2_per_neuron
from spikeforge.losses import spike_count_mse
from spikeforge.neurons import LIF
from spikeforge.neurons import NEURON_REGISTRY
from spikeforge.neurons import get_neuron
from spikeforge.surrogate import list_surrogates

FAST = settings(
    max_examples=40, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)
FUSED_BACKENDS = [b for b in available_backends() if b not in ("reference", "triton")]
FUSED_NEURONS = sorted(name for name, cls in NEURON_REGISTRY.items() if cls.capabilities.fused)
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _params(draw: Any, name: str) -> dict[str, Any]:
    """Constructor arguments of a fused neuron, drawn from their valid ranges."""
    p: dict[str, Any] = {
        "v_th": draw(st.floats(0.2, 2.0)),
        "v_reset": draw(st.floats(-0.5, 0.1)),
        "reset": draw(st.sampled_from(["subtract", "to_value", "none"])),
        "detach_reset": draw(st.booleans()),
        "surrogate": draw(st.sampled_from(list_surrogates())),
    }
    if name == "if":
        p["c_mem"] = draw(st.floats(0.5, 3.0))
        return p
    p["tau_mem"] = draw(st.floats(1.5, 50.0))
    p["dt"] = draw(st.sampled_from([0.5, 1.0]))
    if name == "lif":
        p["v_rest"] = draw(st.floats(-0.2, 0.2))
        p["r"] = draw(st.floats(0.5, 2.0))
    if name == "cuba_lif":
        p["tau_syn"] = draw(st.floats(1.0, 20.0))
    if name == "alif":
        p["tau_adapt"] = draw(st.floats(5.0, 300.0))
        p["adapt"] = draw(st.floats(0.0, 2.0))
    return p


@st.composite
def fused_cases(draw: Any) -> dict[str, Any]:
    name = draw(st.sampled_from(FUSED_NEURONS))
    return {
        "name": name,
        "params": _params(draw, name),
        "backend": draw(st.sampled_from(FUSED_BACKENDS)),
        "dtype": draw(st.sampled_from(sorted(DTYPES))),
        "shape": (draw(st.integers(1, 12)), draw(st.integers(1, 3)), draw(st.integers(1, 5))),
        "scale": draw(st.floats(0.1, 5.0)),
        "seed": draw(st.integers(0, 2**31 - 1)),
    }


def _run(name: str, params: dict[str, Any], backend: str, x: Tensor, s0: Any, w: Tensor) -> tuple[Any, ...]:
    neuron = get_neuron(name, backend=backend, **params).to(x.dtype)
    xx = x.clone().requires_grad_()
    ss = type(s0)(*(t.clone().requires_grad_() for t in s0))
    z, state = neuron(xx, ss)
    loss = (z * w).sum() + sum((t * (k + 1)).sum() for k, t in enumerate(state))
    grads = torch.autograd.grad(loss, [xx, *ss], allow_unused=True, materialize_grads=True)
    return z.detach(), [t.detach() for t in state], grads


@pytest.mark.skipif(not FUSED_BACKENDS, reason="no fused CPU backend")
@FAST
@given(case=fused_cases())
def test_fused_equals_reference(case: dict[str, Any]) -> None:
    dtype = DTYPES[case["dtype"]]
    g = torch.Generator().manual_seed(case["seed"])
    x = (torch.rand(case["shape"], generator=g, dtype=torch.float64) * case["scale"]).to(dtype)
    w = torch.randn(case["shape"], generator=g, dtype=torch.float64).to(dtype)
    ref_neuron = get_neuron(case["name"], backend="reference", **case["params"]).to(dtype)
    s0 = ref_neuron.init_state(x[0])
    s0 = type(s0)(*(t + 0.2 * torch.rand(t.shape, generator=g, dtype=torch.float64).to(dtype) for t in s0))
    z_r, s_r, g_r = _run(case["name"], case["params"], "reference", x, s0, w)
    z_f, s_f, g_f = _run(case["name"], case["params"], case["backend"], x, s0, w)
    assert torch.equal(z_r, z_f)
    for a, b in zip(s_r, s_f):
        assert torch.equal(a, b)
    tol = dict(rtol=1e-9, atol=1e-9) if dtype == torch.float64 else dict(rtol=1e-3, atol=1e-3)
    for a, b in zip(g_r, g_f):
        assert torch.isfinite(b).all()
        torch.testing.assert_close(b, a, **tol)


def _any_neuron(name: str, n: int, params: dict[str, Any]) -> nn.Module:
    if name == "rlif":
        return get_neuron(name, size=n, generator=torch.Generator().manual_seed(0), **params)
    return get_neuron(name, **params)


@FAST
@given(
    name=st.sampled_from(sorted(NEURON_REGISTRY)),
    dtype=st.sampled_from(sorted(DTYPES)),
    shape=st.tuples(st.integers(1, 30), st.integers(1, 3), st.integers(1, 4)),
    scale=st.floats(0.0, 50.0),
    signed=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_finite_inputs_give_finite_outputs(name: str, dtype: str, shape: tuple[int, ...], scale: float,
                                           signed: bool, seed: int) -> None:  # fmt: skip
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    x = ((2 * x - 1) if signed else x) * scale
    neuron = _any_neuron(name, shape[-1], {}).to(DTYPES[dtype])
    xx = x.to(DTYPES[dtype]).requires_grad_()
    out, state = neuron(xx)
    assert out.shape == shape and out.dtype == DTYPES[dtype]
    assert torch.isfinite(out).all()
    for t in state:
        assert torch.isfinite(t).all()
    if NEURON_REGISTRY[name].capabilities.spiking:
        assert set(out.unique().tolist()) <= {0.0, 1.0}
    (gx,) = torch.autograd.grad(out.sum() + sum(t.sum() for t in state), xx)
    assert torch.isfinite(gx).all()


@FAST
@given(
    name=st.sampled_from(FUSED_NEURONS),
    backend=st.sampled_from(["reference", *FUSED_BACKENDS]),
    bad=st.sampled_from([math.nan, math.inf, -math.inf]),
    where=st.tuples(st.integers(0, 9), st.integers(0, 1), st.integers(0, 2)),
)
def test_non_finite_input_raises_everywhere(name: str, backend: str, bad: float, where: tuple[int, ...]) -> None:
    x = torch.rand(10, 2, 3)
    x[where] = bad
    with pytest.raises(ValueError, match="NaN or inf; clean it first"):
        get_neuron(name, backend=backend)(x)


@FAST
@given(
    name=st.sampled_from(FUSED_NEURONS),
    backend=st.sampled_from(["reference", *FUSED_BACKENDS]),
    rank=st.integers(0, 1),
    int_dtype=st.sampled_from([torch.int64, torch.int32, torch.bool]),
)
def test_bad_rank_and_dtype_raise(name: str, backend: str, rank: int, int_dtype: torch.dtype) -> None:
    neuron = get_neuron(name, backend=backend)
    with pytest.raises(ValueError, match="unsqueeze"):
        neuron(torch.rand((4,) * rank))
    with pytest.raises(TypeError, match=r"\.float\(\)"):
        neuron(torch.zeros(4, 2, 3, dtype=int_dtype))


# ---- the event engine's lowest-level entry point: never a crash -----------------------------------------
_ENGINE_MODES = [False] + ([True] if numba_available() else [])
_ENGINES: dict[bool, StreamingEngine] = {}


def _engine(use_numba: bool) -> StreamingEngine:
    if use_numba not in _ENGINES:
        net = SNNSequential(nn.Linear(5, 4), LIF(3.0), nn.Linear(4, 2), LIF(2.0)).double()
        with torch.no_grad():
            for p in net.parameters():
                p.mul_(3.0)
        _ENGINES[use_numba] = StreamingEngine(net, (5,), use_numba=use_numba)
    return _ENGINES[use_numba]


@st.composite
def csr_inputs(draw: Any) -> tuple[list[int], list[int], list[float]]:
    """A valid index pointer / indices / values triple, then (for most examples) one defect of a drawn kind:
    a decreasing, negative, past-the-end or huge pointer entry, an index out of range, NaN/inf, a length
    mismatch."""
    n = draw(st.integers(0, 6))
    idx = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    val = draw(st.lists(st.floats(-5.0, 5.0), min_size=n, max_size=n))
    ptr = sorted(draw(st.lists(st.integers(0, n), min_size=1, max_size=6)))
    defect = draw(st.sampled_from(["none", "ptr_order", "ptr_value", "index", "value", "length"]))
    if defect == "ptr_order" and len(ptr) > 1:
        ptr = draw(st.permutations(ptr))
    elif defect == "ptr_value":
        ptr[draw(st.integers(0, len(ptr) - 1))] = draw(st.sampled_from([-1, n + 1, 2**62, -(2**63)]))
    elif defect == "index" and n:
        idx[draw(st.integers(0, n - 1))] = draw(st.sampled_from([-1, 5, 2**63 - 1]))
    elif defect == "value" and n:
        val[draw(st.integers(0, n - 1))] = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    elif defect == "length":
        val = val[:-1] if n else [1.0]
    return ptr, idx, val


@settings(FAST, max_examples=100)
@given(use_numba=st.sampled_from(_ENGINE_MODES), csr=csr_inputs())
def test_run_csr_never_crashes(use_numba: bool, csr: tuple[list[int], list[int], list[float]]) -> None:
    ptr, idx, val = csr
    eng = _engine(use_numba)
    try:
        res = eng.run_csr(np.array(ptr, dtype=np.int64), np.array(idx, dtype=np.int64), np.array(val))
    except (ValueError, TypeError) as err:
        assert str(err)  # a message, not a bare exception
        return
    # accepted: then it was a valid pointer/index/value triple, and the output is binary spikes
    p = np.array(ptr)
    assert len(p) >= 1 and p[0] >= 0 and np.all(np.diff(p) >= 0) and p[-1] <= len(idx)
    assert len(val) == len(idx) and all(0 <= i < 5 for i in idx) and all(math.isfinite(v) for v in val)
    assert res.spikes.shape == (len(p) - 1, 1, 2)
    assert set(res.spikes.unique().tolist()) <= {0.0, 1.0}


@FAST
@given(
    ts=st.lists(st.integers(0, 2**62 + 2**40), min_size=1, max_size=30),
    n_bins=st.integers(1, 9),
    start_back=st.integers(0, 2**40),
)
def test_frames_conserve_events_for_any_time_stamps(ts: list[int], n_bins: int, start_back: int) -> None:
    ts = sorted(ts)
    n = len(ts)
    ev = make_events(np.arange(n) % 3, np.zeros(n, int), np.array(ts, dtype=np.int64), np.arange(n) % 2,
                     sensor_size=(3, 1, 2))  # fmt: skip
    start = max(0, ts[0] - start_back)
    frames = to_frames(ev, (3, 1, 2), n_bins=n_bins, start=start)
    assert frames.shape == (n_bins, 2, 1, 3) and frames.sum().item() == n
    span = ts[-1] - start + 1
    for k, t in enumerate(ts):  # each event in its bin, computed in exact Python ints
        assert frames[((t - start) * n_bins) // span, k % 2, 0, k % 3] >= 1


# ---- decoders and losses ---------------------------------------------------------------------------------
@FAST
@given(
    dtype=st.sampled_from([torch.float16, torch.bfloat16, torch.float32, torch.float64]),
    T=st.integers(1, 300),
    B=st.integers(1, 3),
    density=st.floats(0.0, 0.2),
    seed=st.integers(0, 2**31 - 1),
)
def test_first_spike_time_equals_loop(dtype: torch.dtype, T: int, B: int, density: float, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    z = (torch.rand(T, B, 2, generator=g) < density).to(dtype)
    exact = round(2 / torch.finfo(dtype).eps)
    if exact < T:
        with pytest.raises(ValueError, match="exactly only up to"):
            first_spike_time(z)
        return
    want = torch.full((B, 2), float(T), dtype=torch.float64)
    for t in reversed(range(T)):
        want[z[t].double() > 0] = t
    assert torch.equal(first_spike_time(z).double(), want)
    assert torch.equal(soft_first_spike_time(z).double(), want)


@FAST
@given(
    dtype=st.sampled_from([torch.float16, torch.bfloat16, torch.float32, torch.float64]),
    T=st.integers(1, 200),
    B=st.integers(0, 3),
    C=st.integers(1, 4),
    density=st.floats(0.0, 1.0),
    tau=st.floats(1e-3, 100.0),
    reg_weight=st.floats(0.0, 10.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_losses_finite_for_any_binary_spikes(dtype: torch.dtype, T: int, B: int, C: int, density: float, tau: float,
                                             reg_weight: float, seed: int) -> None:  # fmt: skip
    g = torch.Generator().manual_seed(seed)
    z = (torch.rand(T, B, C, generator=g) < density).to(dtype).requires_grad_()
    target = torch.randint(C, (B,), generator=g)
    assert torch.isfinite(rate_l2_per_neuron(z, target_rate=0.1))
    if B == 0:
        return  # the classification losses reject an empty batch with a message (tested in test_losses.py)
    if round(2 / torch.finfo(dtype).eps) < T:
        return  # spike times not representable: a clear error (test_first_spike_time_equals_loop)
    for loss in (
        rate_cross_entropy(z, target),
        spike_count_mse(z, target),
        first_spike_time_loss(z, target, tau=tau, reg_weight=reg_weight),
    ):
        assert loss.dtype == dtype and torch.isfinite(loss)
