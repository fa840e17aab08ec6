"""Second-order gradients through the fused backends (issue 13): ``create_graph=True`` then a gradient penalty
must give the reference loop's weight gradient, not one with the second-order terms silently dropped."""

from __future__ import annotations

import pytest
import torch
from _fused_cases import NEURONS
from _fused_cases import SCALE

import spikeforge as sf
from spikeforge.backends import available_backends
from spikeforge.backends import triton_installed

FUSED = [b for b in available_backends() if b not in ("reference", "triton")]
CPU_BACKENDS = FUSED + (["triton_interpret"] if triton_installed() else [])


def _penalty_grads(make, backend, inp, W0, reset, detach):
    """Input layer -> neuron; loss = weighted spikes + final states; penalty = |dloss/dinp|^2.
    Returns (penalty, dpenalty/dW, dloss/dinp)."""
    W = W0.clone().requires_grad_()
    x = inp.clone().requires_grad_()
    cur = x @ W
    neuron = make(reset=reset, detach_reset=detach, backend=backend).to(inp.dtype)
    z, st = neuron(cur)
    w = torch.linspace(-1.0, 2.0, z.shape[-1], dtype=inp.dtype)
    loss = (z * w).sum() + sum((t * (k + 1)).sum() for k, t in enumerate(st))
    (g,) = torch.autograd.grad(loss, x, create_graph=True)
    pen = g.pow(2).sum()
    (dW,) = torch.autograd.grad(pen, W)
    return pen.detach(), dW, g.detach()


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("name", sorted(NEURONS))
@pytest.mark.parametrize("reset,detach", [("subtract", False), ("to_value", True), ("to_value", False)])
def test_gradient_penalty_equals_reference(backend, name, reset, detach):
    g = torch.Generator().manual_seed(7)
    T = 8 if backend == "triton_interpret" else 16
    inp = torch.rand(T, 3, 4, generator=g, dtype=torch.float64)
    W0 = torch.rand(4, 5, generator=g, dtype=torch.float64) * SCALE[name] / 2
    ref = _penalty_grads(NEURONS[name], "reference", inp, W0, reset, detach)
    got = _penalty_grads(NEURONS[name], backend, inp, W0, reset, detach)
    assert ref[1].abs().sum() > 0, "the penalty should depend on W"
    for a, b in zip(ref, got):
        torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("backend", FUSED)
def test_issue_probe_lif_penalty(backend):
    # the original probe: LIF after a linear map; the fused backends gave a different dW with no error
    torch.manual_seed(0)
    inp = torch.rand(20, 4, 6, dtype=torch.float64)
    W0 = torch.randn(6, 5, dtype=torch.float64)
    out = []
    for b in ("reference", backend):
        W = W0.clone().requires_grad_()
        x = inp.clone().requires_grad_()
        z, _ = sf.LIF(backend=b)((x @ W) * 2)
        loss = (z * torch.arange(5.0, dtype=torch.float64)).sum()
        (gx,) = torch.autograd.grad(loss, x, create_graph=True)
        (dW,) = torch.autograd.grad(gx.pow(2).sum(), W)
        out.append(dW)
    assert out[0].abs().sum() > 0
    torch.testing.assert_close(out[1], out[0], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("backend", FUSED)
@pytest.mark.parametrize("name", sorted(NEURONS))
def test_hessian_vector_product_through_initial_state(backend, name):
    # second derivatives w.r.t. the input and the carried state (truncated BPTT) equal the reference's
    g = torch.Generator().manual_seed(3)
    x0 = torch.rand(12, 2, 3, generator=g, dtype=torch.float64) * SCALE[name]
    vec = torch.randn(12, 2, 3, generator=g, dtype=torch.float64)
    out = []
    for b in ("reference", backend):
        neuron = NEURONS[name](reset="subtract", detach_reset=False, surrogate="sigmoid", backend=b).to(torch.float64)
        s0 = neuron.init_state(x0[0])
        s0 = type(s0)(*(t + 0.3 for t in s0))
        x = x0.clone().requires_grad_()
        ss = type(s0)(*(t.clone().requires_grad_() for t in s0))
        z, st = neuron(x, ss)
        loss = (z * z.new_tensor([1.0, -2.0, 3.0])).sum() + st.v.pow(2).sum()
        gx = torch.autograd.grad(loss, x, create_graph=True)[0]
        out.append(torch.autograd.grad((gx * vec).sum(), [x, *ss], allow_unused=True, materialize_grads=True))
    assert any(t.abs().sum() > 0 for t in out[0])
    for a, b in zip(*out):
        torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("backend", FUSED)
def test_first_order_backward_keeps_the_fast_path(backend, monkeypatch):
    # without create_graph the hand-written kernel backward runs: the differentiable rerun is not used
    import spikeforge.backends._differentiable as diff

    def boom(*args, **kwargs):
        raise AssertionError("the differentiable rerun must only run under create_graph=True")

    monkeypatch.setattr(diff, "differentiable_run", boom)
    x = (torch.rand(10, 2, 3) * 3).requires_grad_()
    z, _ = sf.LIF(backend=backend)(x)
    (gx,) = torch.autograd.grad(z.sum(), x)
    assert gx.abs().sum() > 0
    with pytest.raises(AssertionError, match="create_graph"):
        z, _ = sf.LIF(backend=backend)(x)
        torch.autograd.grad(z.sum(), x, create_graph=True)
