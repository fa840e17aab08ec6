"""Every fused backend against the reference time loop: neuron x surrogate x reset x detach x dtype.

Spikes must be identical; gradients (w.r.t. the input and the initial state) within tolerance,
tight in float64.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
import torch

import spikeforge as sf
from spikeforge.backends import available_backends, select_kernel
from spikeforge.surrogate import FastSigmoid, Surrogate, get_surrogate, list_surrogates

from _fused_cases import NEURONS, SCALE

FUSED = [b for b in available_backends() if b not in ("reference", "triton")]  # triton: CUDA tensors, tested in test_triton_kernel.py


def _run(model, x, v_state):
    out, st = model(x, v_state)
    return out, st


def _case(name, reset, detach, sg_name, dtype, backend, T=30):
    g = torch.Generator().manual_seed(hash((name, reset, detach, sg_name)) % 2**31)
    x = (torch.rand(T, 3, 8, generator=g, dtype=torch.float64) * SCALE[name]).to(dtype)
    sg = get_surrogate(sg_name)
    ref = NEURONS[name](reset=reset, detach_reset=detach, surrogate=sg, backend="reference").to(dtype)
    fused = NEURONS[name](reset=reset, detach_reset=detach, surrogate=sg, backend=backend).to(dtype)
    # a non-trivial initial state that requires grad (truncated BPTT carries it)
    s0 = ref.init_state(x[0])
    s0 = type(s0)(*(t + 0.1 * torch.rand(t.shape, generator=g, dtype=torch.float64).to(dtype) for t in s0))
    w = torch.randn(x.shape, generator=g, dtype=torch.float64).to(dtype)
    results = []
    for m in (ref, fused):
        xx = x.clone().requires_grad_()
        ss = type(s0)(*(t.clone().requires_grad_() for t in s0))
        z, st = m(xx, ss)
        loss = (z * w).sum() + sum((t * (k + 1)).sum() for k, t in enumerate(st))
        grads = torch.autograd.grad(loss, [xx, *ss])
        results.append((z.detach(), [t.detach() for t in st], grads))
    return results


@pytest.mark.parametrize("backend", FUSED)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", sorted(NEURONS))
@pytest.mark.parametrize("reset", ["to_value", "subtract", "none"])
def test_fused_equals_reference(backend, dtype, name, reset):
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-4)
    for detach, sg_name in itertools.product((True, False), list_surrogates()):
        (z_r, s_r, g_r), (z_f, s_f, g_f) = _case(name, reset, detach, sg_name, dtype, backend)
        assert z_r.sum() > 0, "the case should spike"
        assert torch.equal(z_r, z_f), (detach, sg_name)
        for a, b in zip(s_r, s_f):
            assert torch.equal(a, b)
        for a, b in zip(g_r, g_f):
            torch.testing.assert_close(b, a, **tol, msg=lambda m: f"{name} {reset} detach={detach} {sg_name}: {m}")


@pytest.mark.parametrize("backend", FUSED)
def test_threshold_equality_edge(backend):
    # 0.5 + 0.5 == 1.0 exactly: v == v_th must not spike in any backend
    x = torch.full((4, 1, 2), 0.5, dtype=torch.float32)
    for b in ("reference", backend):
        z, st = sf.IF(v_th=1.0, backend=b)(x)
        assert z[:, 0, 0].tolist() == [0.0, 0.0, 1.0, 0.0]


@pytest.mark.parametrize("backend", FUSED)
def test_long_sequence(backend):
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(3000, 2, 5, generator=g, dtype=torch.float64) * 3).requires_grad_()
    outs = []
    for b in ("reference", backend):
        z, _ = sf.LIF(20.0, backend=b, surrogate="atan")(x)
        (gx,) = torch.autograd.grad(z.sum(), x)
        outs.append((z, gx))
    assert torch.equal(outs[0][0], outs[1][0])
    torch.testing.assert_close(outs[1][1], outs[0][1], rtol=1e-9, atol=1e-9)


def test_auto_dispatch_rules():
    x = torch.zeros(2, 1, 1)
    assert select_kernel("reference", x) is None
    assert select_kernel("auto", x) is not None
    # trainable or per-neuron tensors use the reference loop
    assert sf.LIF(learn_tau=True).fused_spec() is None
    assert sf.LIF(v_th=torch.tensor([1.0, 2.0])).fused_spec() is None
    assert sf.LIF().fused_spec() is not None
    with pytest.raises(ValueError, match="unknown backend"):
        sf.LIF(backend="cuda")


def test_fused_forward_equals_streaming_steps():
    m = sf.CubaLIF(5.0, 2.0)
    x = torch.rand(20, 2, 4) * 2
    z, st = m(x)
    s = None
    for t in range(20):
        zt, s = m.step(x[t], s)
        assert torch.equal(zt, z[t])
    for a, b in zip(s, st):
        assert torch.equal(a, b)


def test_torch_compile_uses_reference_and_matches():
    m = sf.LIF(4.0)
    x = torch.rand(10, 2, 3) * 3
    ref, _ = m(x)
    out, _ = torch.compile(m, backend="aot_eager")(x)
    assert torch.equal(out, ref)


@pytest.mark.parametrize("backend", FUSED)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_input_raises_in_every_backend(backend, bad):
    # the numba kernel checks finiteness inside its forward pass instead of a separate pass over x:
    # the error must be the same wherever the bad value sits (first/last chunk, chunk edges, first/last step)
    from spikeforge.backends.numba_kernel import _width

    T, M = 300, 2000
    w = _width(T, torch.float32)
    assert w < M  # several chunks
    for t, m in ((0, 0), (5, w - 1), (150, w), (T - 1, M - 1)):
        x = torch.rand(T, 2, M // 2)
        x.view(T, -1)[t, m] = bad
        with pytest.raises(ValueError, match="NaN or inf"):
            sf.LIF(backend=backend)(x)


@pytest.mark.skipif("numba" not in FUSED, reason="needs numba")
@pytest.mark.parametrize("name", sorted(NEURONS))
def test_numba_equal_under_any_torch_thread_count(name):
    # several chunks, long enough for narrower chunks (T > 128): the result must not depend on torch's
    # thread count (the kernel is serial; torch ops around it are not)
    g = torch.Generator().manual_seed(3)
    x = (torch.rand(300, 4, 1100, generator=g) * SCALE[name]).requires_grad_()
    old = torch.get_num_threads()
    outs = []
    try:
        for threads in (1, 3):
            torch.set_num_threads(threads)
            z, st = NEURONS[name](reset="subtract", backend="numba")(x)
            (gx,) = torch.autograd.grad((z * torch.linspace(0, 1, 1100)).sum() + st.v.sum(), x)
            outs.append((z, st, gx))
    finally:
        torch.set_num_threads(old)
    assert outs[0][0].sum() > 0
    assert torch.equal(outs[0][0], outs[1][0])
    for a, b in zip(outs[0][1], outs[1][1]):
        assert torch.equal(a, b)
    assert torch.equal(outs[0][2], outs[1][2])


@pytest.mark.parametrize("backend", FUSED)
@pytest.mark.parametrize("name", sorted(NEURONS))
def test_expanded_output_gradient(backend, name):
    # a loss on per-step spike totals sends back dL/dz that is constant along each row (stride 0 over
    # the neurons, varying over time): the numba kernel takes it as one value per step
    g = torch.Generator().manual_seed(5)
    x = (torch.rand(40, 3, 7, generator=g, dtype=torch.float64) * SCALE[name]).requires_grad_()
    grads = []
    for b in ("reference", backend):
        z, _ = NEURONS[name](reset="to_value", backend=b)(x)
        loss = (z.sum(dim=(1, 2)) * torch.arange(40, dtype=torch.float64)).sum()
        grads.append(torch.autograd.grad(loss, x)[0])
    assert grads[0].abs().sum() > 0
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-10, atol=1e-10)


@dataclasses.dataclass(frozen=True)
class _Gaussian(Surrogate):
    """A surrogate the kernels do not know: the numba backend must save h and call grad() itself."""

    sigma: float = 0.3

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(-0.5 * (x / self.sigma) ** 2) / (self.sigma * math.sqrt(2 * math.pi))

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (1 + torch.erf(x / (self.sigma * math.sqrt(2))))


@pytest.mark.parametrize("backend", FUSED)
@pytest.mark.parametrize("name", sorted(NEURONS))
def test_user_surrogate_matches_reference(backend, name):
    g = torch.Generator().manual_seed(11)
    x = (torch.rand(25, 2, 6, generator=g, dtype=torch.float64) * SCALE[name]).requires_grad_()
    w = torch.randn(25, 2, 6, generator=g, dtype=torch.float64)
    outs = []
    for b in ("reference", backend):
        z, st = NEURONS[name](reset="subtract", surrogate=_Gaussian(), backend=b)(x)
        outs.append((z, torch.autograd.grad((z * w).sum() + st.v.sum(), x)[0]))
    assert torch.equal(outs[0][0], outs[1][0])
    assert outs[0][1].abs().sum() > 0
    torch.testing.assert_close(outs[1][1], outs[0][1], rtol=1e-10, atol=1e-10)


@pytest.mark.skipif("numba" not in FUSED, reason="needs numba")
def test_numba_saves_input_not_h_for_builtin_surrogates():
    # built-in surrogate: the graph keeps the input (already alive) and the [M] initial states, no new
    # [T, M] tensor; a user surrogate: h is saved as well. Checked through autograd's saved-tensor hooks.
    x = (torch.rand(30, 2, 5) * 2).requires_grad_()
    for sg, expect_h in ((FastSigmoid(5.0), False), (_Gaussian(), True)):
        packed = []

        def pack(t, packed=packed):
            packed.append(t)
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            z, _ = sf.LIF(backend="numba", surrogate=sg)(x)
        big = [t for t in packed if t.dim() == 2 and t.shape[0] == 30]
        # the input itself is always kept (for a create_graph backward); h only for a user surrogate
        assert [t.data_ptr() == x.data_ptr() for t in big] == ([True, False] if expect_h else [True])
        z.sum().backward()


@pytest.mark.parametrize("backend", FUSED)
def test_backward_twice_with_retain_graph(backend):
    # the numba backward rebuilds h from the saved input: a second backward through the same graph must
    # see the same input and give the same gradient
    x = (torch.rand(20, 2, 9) * 2).requires_grad_()
    z, _ = sf.LIF(4.0, backend=backend)(x)
    loss = (z * torch.linspace(-1, 1, 9)).sum()
    (g1,) = torch.autograd.grad(loss, x, retain_graph=True)
    (g2,) = torch.autograd.grad(loss, x)
    assert g1.abs().sum() > 0 and torch.equal(g1, g2)


@pytest.mark.parametrize("backend", FUSED)
def test_input_modified_after_forward_is_caught(backend):
    # the numba backward recomputes from the saved input, and every fused node keeps its input for a
    # create_graph backward: an in-place change after the forward must raise (autograd's version counter)
    # instead of giving silently wrong gradients
    x = (torch.rand(20, 2, 9) * 2).requires_grad_()
    u = x * 1.0
    z, _ = sf.LIF(4.0, backend=backend, surrogate="atan")(u)
    u.mul_(2.0)
    with pytest.raises(RuntimeError, match="inplace"):
        z.sum().backward()


def test_backend_table_drives_selection(monkeypatch):
    from spikeforge.backends import AUTO_PREFERENCE, BACKEND_TABLE, BACKENDS, Backend, TorchKernel

    assert BACKENDS == ("auto", "reference", *BACKEND_TABLE)
    assert set(AUTO_PREFERENCE) <= set(BACKEND_TABLE)
    x = torch.zeros(2, 3)
    # a new backend is one row: every neuron that takes backend= can then name it
    row = Backend(make=TorchKernel, installed=lambda: True, install="", problem=lambda t: None,
                  auto=lambda t: False, listed=lambda: False)
    monkeypatch.setitem(BACKEND_TABLE, "mine", row)
    assert isinstance(select_kernel("mine", x), TorchKernel)
    xs = torch.rand(20, 2, 3, generator=torch.Generator().manual_seed(0)) * 5
    z_ref, _ = sf.LIF(backend="reference")(xs)
    z_mine, _ = sf.LIF(backend="mine")(xs)
    assert z_ref.sum() > 0 and torch.equal(z_mine, z_ref)
    assert not isinstance(select_kernel("auto", x.cuda() if torch.cuda.is_available() else x), type(None))


@pytest.mark.skipif("numba" not in FUSED, reason="needs numba")
def test_numba_exp_matches_libm():
    # the sigmoid surrogate's exp is written without a libm call (so its loop vectorises): it must agree with
    # math.exp to ~1e-13 relative over the range it covers, and clamp beyond it
    from spikeforge.backends._numba_loops import _exp

    xs = [-100.0, -88.7, -30.0, -1.0, -1e-8, 0.0, 1e-12, 0.3, 1.0, 2.5, 17.0, 50.0, 99.99, 100.0]
    g = torch.Generator().manual_seed(0)
    xs += (torch.rand(2000, generator=g, dtype=torch.float64) * 200 - 100).tolist()
    worst = max(abs(_exp(x) - math.exp(x)) / math.exp(x) for x in xs)
    assert worst < 1e-13, worst
    assert _exp(0.0) == 1.0
    assert _exp(150.0) == _exp(100.0) and _exp(-150.0) == _exp(-100.0)


@pytest.mark.skipif("numba" not in FUSED, reason="needs numba")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_numba_sigmoid_surrogate_over_wide_inputs(dtype):
    # membrane gaps from deep below to far above threshold (slope 5: a h up to +-500), against the reference
    # loop in float64 (the surrogate's own torch grad(); in float32 torch's 1 - sigmoid cancels to 0 early)
    x = torch.linspace(-60.0, 100.0, 4001, dtype=torch.float64).reshape(1, -1).repeat(3, 1)
    weights = torch.arange(1, 4, dtype=torch.float64).reshape(3, 1)
    grads = []
    for b, dt in (("reference", torch.float64), ("numba", dtype)):
        xx = x.to(dt).requires_grad_()
        z, _ = sf.LIF(2.0, backend=b, surrogate="sigmoid", reset="subtract").to(dt)(xx)
        (gx,) = torch.autograd.grad((z * weights.to(dt)).sum(), [xx])
        grads.append(gx.double())
    assert torch.isfinite(grads[1]).all() and grads[0].abs().max() > 0.1
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grads[1], grads[0], **tol)
