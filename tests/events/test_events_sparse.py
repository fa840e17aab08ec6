"""Spike-sparse Linear / Conv2d against the dense path: forward, gradients, dispatch and edge cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikeforge.events import SparseConv2d, SparseLinear, sparse_conv2d, sparse_linear, spike_density
from spikeforge.events import _sparse_kernel as ske
from spikeforge.events import sparse as sp
from spikeforge.layers import SNNSequential
from spikeforge.neurons import LIF

D = torch.float64


def _spikes(shape: tuple[int, ...], p: float, gen: torch.Generator) -> torch.Tensor:
    return (torch.rand(*shape, generator=gen, dtype=D) < p).to(D)


def test_sparse_linear_takes_the_sparse_path(gen: torch.Generator, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    for fn in (sp._SparseLinearFn, sp._SparseLinearKernelFn):
        monkeypatch.setattr(fn, "apply", (lambda orig: lambda *a: calls.append(1) or orig(*a))(fn.apply))
    x = _spikes((6, 40), 0.05, gen)
    sparse_linear(x, torch.randn(8, 40, dtype=D, generator=gen), crossover=0.5)
    assert calls == [1]
    sparse_linear(x * 0.5, torch.randn(8, 40, dtype=D, generator=gen), crossover=0.5)  # not binary: dense
    sparse_linear(_spikes((6, 40), 0.9, gen), torch.randn(8, 40, dtype=D, generator=gen), crossover=0.5)  # dense
    bad = x.clone()
    bad[0, 0] = float("nan")  # NaN is not a spike: dense path, NaN propagates as in F.linear
    assert torch.isnan(sparse_linear(bad, torch.randn(8, 40, dtype=D, generator=gen), crossover=0.5)).any()
    assert calls == [1]


def test_kernel_path_is_used_on_cpu_and_equals_embedding_bag_path(gen: torch.Generator,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    if ske.kernels() is None:
        pytest.skip("numba not installed: only the embedding_bag path exists")
    x = _spikes((50, 64), 0.1, gen)
    w = torch.randn(24, 64, dtype=D, generator=gen, requires_grad=True)
    g = torch.randn(50, 24, dtype=D, generator=gen)
    used = []
    orig = sp._SparseLinearKernelFn.apply
    monkeypatch.setattr(sp._SparseLinearKernelFn, "apply", lambda *a: used.append(1) or orig(*a))
    y = sparse_linear(x, w, crossover=1.0)
    (gw,) = torch.autograd.grad(y, (w,), g)
    assert used == [1]
    y_ref = sp._SparseLinearFn.apply(x, w, None, None)
    (gw_ref,) = torch.autograd.grad(y_ref, (w,), g)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gw, gw_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kernels_against_hand_loops(dtype: torch.dtype) -> None:
    """CSR, transposed CSR and the row gather against plain Python loops (uncompiled and compiled)."""
    rng = np.random.default_rng(0)
    x = (rng.random((7, 13)) < 0.3).astype(torch.empty(0, dtype=dtype).numpy().dtype)
    x[2] = 0.0  # an empty row
    table = rng.standard_normal((13, 9)).astype(x.dtype)
    fns = [(ske.rows_csr, ske.transpose_csr, ske.gather_rows)] + ([ske.kernels()] if ske.kernels() else [])
    for rows_csr, transpose_csr, gather_rows in fns:
        ptr, idx = np.empty(8, np.int64), np.empty(x.size, np.int32)
        nnz = rows_csr(x, ptr, idx)
        assert nnz == int((x != 0).sum())
        for m in range(7):
            assert list(idx[ptr[m]:ptr[m + 1]]) == list(np.nonzero(x[m])[0])
        out = np.zeros((7, 9), dtype=x.dtype)
        gather_rows(ptr, idx, table, out)
        ref = np.zeros((7, 9))
        for m in range(7):
            for j in range(13):
                if x[m, j]:
                    ref[m] += table[j]
        np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
        cptr, cidx = np.empty(14, np.int64), np.empty(max(nnz, 1), np.int32)
        transpose_csr(ptr, idx, 13, cptr, cidx)
        for j in range(13):
            assert list(cidx[cptr[j]:cptr[j + 1]]) == list(np.nonzero(x[:, j])[0])
        bad = x.copy()
        bad[1, 1] = 2.0
        assert rows_csr(bad, ptr, idx) == -1
        bad[1, 1] = np.nan
        assert rows_csr(bad, ptr, idx) == -1


def test_kernel_path_float32_model_and_bias(gen: torch.Generator) -> None:
    x = (torch.rand(40, 96, generator=gen) < 0.1).float().requires_grad_()
    lin = SparseLinear(96, 33, crossover=1.0)
    y = lin(x)
    y_ref = F.linear(x, lin.weight, lin.bias)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    g = torch.randn(y.shape, generator=gen)
    got = torch.autograd.grad(y, (x, lin.weight, lin.bias), g)
    ref = torch.autograd.grad(y_ref, (x, lin.weight, lin.bias), g)
    for a, r in zip(got, ref):
        torch.testing.assert_close(a, r, rtol=1e-4, atol=1e-4)


def test_kernel_path_weight_gradcheck(gen: torch.Generator) -> None:
    if ske.kernels() is None:
        pytest.skip("numba not installed")
    x = _spikes((6, 9), 0.3, gen)
    w = torch.randn(5, 9, dtype=D, generator=gen, requires_grad=True)
    b = torch.randn(5, dtype=D, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda w_, b_: sparse_linear(x, w_, b_, crossover=1.0), (w, b))


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
