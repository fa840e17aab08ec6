"""Spike-sparse Linear / Conv2d against the dense path: forward, gradients, dispatch and edge cases."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikeforge.events import SparseConv2d, SparseLinear, sparse_conv2d, sparse_linear, spike_density
from spikeforge.events import sparse as sp
from spikeforge.layers import SNNSequential
from spikeforge.neurons import LIF

D = torch.float64


def _spikes(shape: tuple[int, ...], p: float, gen: torch.Generator) -> torch.Tensor:
    return (torch.rand(*shape, generator=gen, dtype=D) < p).to(D)


def test_sparse_linear_takes_the_sparse_path(gen: torch.Generator, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    orig = sp._SparseLinearFn.apply
    monkeypatch.setattr(sp._SparseLinearFn, "apply", lambda *a: calls.append(1) or orig(*a))
    x = _spikes((6, 40), 0.05, gen)
    sparse_linear(x, torch.randn(8, 40, dtype=D, generator=gen), crossover=0.5)
    assert calls == [1]
    sparse_linear(x * 0.5, torch.randn(8, 40, dtype=D, generator=gen), crossover=0.5)  # not binary: dense
    sparse_linear(_spikes((6, 40), 0.9, gen), torch.randn(8, 40, dtype=D, generator=gen), crossover=0.5)  # dense
    assert calls == [1]


@pytest.mark.parametrize("p", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("bias", [True, False])
def test_sparse_linear_forward_and_grads_equal_dense(gen: torch.Generator, p: float, bias: bool) -> None:
    x = _spikes((3, 5, 30), p, gen).requires_grad_()  # batch > 1 with extra leading dim
    w = torch.randn(20, 30, dtype=D, generator=gen, requires_grad=True)
    b = torch.randn(20, dtype=D, generator=gen, requires_grad=True) if bias else None
    y = sparse_linear(x, w, b, crossover=1.0)
    y_ref = F.linear(x, w, b)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    g = torch.randn(y.shape, dtype=D, generator=gen)
    params = [x, w] + ([b] if bias else [])
    for a, r in zip(torch.autograd.grad(y, params, g), torch.autograd.grad(y_ref, params, g)):
        torch.testing.assert_close(a, r, rtol=1e-12, atol=1e-12)


def test_sparse_linear_weight_gradcheck(gen: torch.Generator) -> None:
    x = _spikes((4, 9), 0.3, gen)
    w = torch.randn(5, 9, dtype=D, generator=gen, requires_grad=True)
    b = torch.randn(5, dtype=D, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda w_, b_: sp._SparseLinearFn.apply(x, w_, b_, None), (w, b))


def test_weight_gradient_touches_only_active_inputs(gen: torch.Generator) -> None:
    x = torch.zeros(4, 10, dtype=D)
    x[0, 2] = x[3, 7] = 1.0
    w = torch.randn(6, 10, dtype=D, generator=gen, requires_grad=True)
    sparse_linear(x, w, crossover=1.0).sum().backward()
    assert w.grad is not None
    inactive = [j for j in range(10) if j not in (2, 7)]
    assert torch.all(w.grad[:, inactive] == 0) and torch.all(w.grad[:, [2, 7]] == 1)


@pytest.mark.parametrize("geom", [(1, 0, 1), (2, 1, 1), ((2, 1), (1, 2), (2, 1))])
@pytest.mark.parametrize("p", [0.0, 0.15, 1.0])
def test_sparse_conv2d_equals_dense(gen: torch.Generator, geom: tuple, p: float) -> None:
    s, pad, d = geom
    x = _spikes((2, 3, 9, 8), p, gen).requires_grad_()
    w = torch.randn(4, 3, 3, 2, dtype=D, generator=gen, requires_grad=True)
    b = torch.randn(4, dtype=D, generator=gen, requires_grad=True)
    y = sparse_conv2d(x, w, b, s, pad, d, crossover=1.0)
    y_ref = F.conv2d(x, w, b, s, pad, d)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    g = torch.randn(y.shape, dtype=D, generator=gen)
    for a, r in zip(torch.autograd.grad(y, (x, w, b), g), torch.autograd.grad(y_ref, (x, w, b), g)):
        torch.testing.assert_close(a, r, rtol=1e-12, atol=1e-12)


def test_sparse_conv2d_weight_gradcheck(gen: torch.Generator) -> None:
    x = _spikes((1, 2, 5, 5), 0.3, gen)
    w = torch.randn(3, 2, 3, 3, dtype=D, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda w_: sp._SparseConv2dFn.apply(x, w_, None, ((2, 2), (1, 1), (1, 1))), (w,))


def test_modules_share_weights_and_give_identical_spikes(gen: torch.Generator) -> None:
    lin, conv = nn.Linear(48, 16, dtype=D), nn.Conv2d(3, 3, 3, padding=1, dtype=D)
    slin, sconv = SparseLinear.from_dense(lin, crossover=1.0), SparseConv2d.from_dense(conv, crossover=1.0)
    assert slin.weight is lin.weight and sconv.bias is conv.bias
    assert set(slin.state_dict()) == set(lin.state_dict())
    with torch.no_grad():
        lin.weight.mul_(3)
        conv.weight.mul_(3)
    dense = SNNSequential(conv, LIF(3.0, input_scaling="none"), nn.Flatten(), lin, LIF(3.0, input_scaling="none"))
    sparse = SNNSequential(sconv, LIF(3.0, input_scaling="none"), nn.Flatten(), slin, LIF(3.0, input_scaling="none"))
    x = _spikes((12, 2, 3, 4, 4), 0.2, gen)
    out_d, _ = dense(x)
    out_s, _ = sparse(x)
    assert 0 < int(out_d.sum()) < out_d.numel()
    assert torch.equal(out_s, out_d)


def test_density_and_bad_arguments() -> None:
    assert spike_density(torch.tensor([0.0, 1.0, 1.0, 0.0])) == 0.5
    assert spike_density(torch.tensor([0.0, 2.0])) is None
    assert spike_density(torch.zeros(0)) == 0.0
    with pytest.raises(ValueError, match="crossover"):
        sparse_linear(torch.zeros(2, 3), torch.zeros(4, 3), crossover=1.5)
    with pytest.raises(ValueError, match=r"\[\.\.\., 3\]"):
        sparse_linear(torch.zeros(2, 5), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="groups"):
        SparseConv2d.from_dense(nn.Conv2d(4, 4, 3, groups=2))
    with pytest.raises(ValueError, match="padding"):
        sparse_conv2d(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 3, 3), padding="same")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="nn.Linear"):
        SparseLinear.from_dense(nn.Conv2d(1, 1, 1))  # type: ignore[arg-type]
    assert SparseLinear(3, 2)(torch.zeros(0, 3)).shape == (0, 2)


def test_sparse_linear_transpose_cache_follows_weight_updates(gen: torch.Generator) -> None:
    lin = SparseLinear(12, 5, crossover=1.0).to(D)
    x = _spikes((4, 12), 0.3, gen)
    y0 = lin(x)
    with torch.no_grad():
        lin.weight.add_(1.0)  # an optimiser step: in place
    torch.testing.assert_close(lin(x), torch.nn.functional.linear(x, lin.weight, lin.bias), rtol=1e-12, atol=1e-12)
    assert not torch.allclose(lin(x), y0)
    lin.weight = nn.Parameter(torch.randn(5, 12, dtype=D, generator=gen))  # a new tensor
    torch.testing.assert_close(lin(x), torch.nn.functional.linear(x, lin.weight, lin.bias), rtol=1e-12, atol=1e-12)
