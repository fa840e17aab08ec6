"""The autograd Functions behind :mod:`spikeforge.events.sparse`: the sums of active weight columns
(``embedding_bag``, or the Numba kernels of :mod:`spikeforge.events._sparse_kernel` on CPU) forward, and
the dense input gradient plus the sparse weight gradient backward. The math is in that module's docstring.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable
from torch.nn.grad import conv2d_input

from spikeforge.events._sparse_kernel import kernels as _kernels

__all__ = ["conv2d_pairs"]


def _compiled() -> tuple[Any, Any, Any]:
    """The Numba kernels, on the kernel path (which :func:`_kernel_csr` takes only when they are built)."""
    k = _kernels()
    assert k is not None, "the Numba kernel path runs only when the kernels are built"
    return k


def _bags(keys: Tensor, num_bags: int) -> Tensor:
    """Offsets of ``num_bags`` consecutive bags for sorted bag ids ``keys``."""
    counts = torch.bincount(keys, minlength=num_bags)
    offsets = torch.zeros(num_bags, dtype=torch.int64, device=keys.device)
    if num_bags > 1:
        offsets[1:] = torch.cumsum(counts[:-1], 0)
    return offsets


class _SparseLinearFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None, wt: Tensor | None) -> Tensor:
        m, n_in = x.shape  # [M, in]
        active = torch.nonzero(x.reshape(-1)).reshape(-1)  # flat indices, row-major: rows sorted
        rows, cols = active // n_in, active % n_in
        if wt is None:
            wt = weight.detach().t().contiguous()  # [in, out]: column j of W is row j here
        out = F.embedding_bag(cols, wt, _bags(rows, m), mode="sum")  # [M, out]
        if bias is not None:
            out = out + bias
        ctx.save_for_backward(rows, cols, weight)
        ctx.shape = (m, n_in)
        ctx.has_bias = bias is not None
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None, None]:
        rows, cols, weight = ctx.saved_tensors
        m, n_in = ctx.shape
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = grad_out @ weight  # [M, in], dense (surrogate gradients reach every input)
        if ctx.needs_input_grad[1]:
            key, _ = torch.sort(cols * m + rows)  # group the active entries by input feature
            cols_by_col, rows_by_col = key // m, key % m
            grad_wt = F.embedding_bag(rows_by_col, grad_out.contiguous(), _bags(cols_by_col, n_in), mode="sum")
            grad_w = grad_wt.t()  # [out, in]
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_out.sum(0)
        return grad_x, grad_w, grad_b, None


class _SparseLinearKernelFn(torch.autograd.Function):
    """The same layer on the Numba kernels (CPU): the row CSR of ``x`` is built once by the caller,
    used by the forward gather and, transposed, by the weight-gradient gather."""

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        wt: Tensor | None,
        ptr: np.ndarray,
        idx: np.ndarray,
    ) -> Tensor:
        _, _, gather = _compiled()
        m, n_in = x.shape
        n_out = weight.shape[0]
        if bias is not None:
            out = bias.detach().expand(m, n_out).contiguous()
        else:
            out = torch.zeros(m, n_out, dtype=weight.dtype)
        if wt is None:
            wt = weight.detach().t().contiguous()  # [in, out]: column j of W is row j here
        gather(ptr, idx, wt.numpy(), out.numpy())
        ctx.save_for_backward(weight)
        ctx.csr, ctx.n_in, ctx.has_bias = (ptr, idx), n_in, bias is not None
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        (weight,) = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = grad_out @ weight  # [M, in], dense (surrogate gradients reach every input)
        if ctx.needs_input_grad[1]:
            _, transpose, gather = _compiled()
            ptr, idx = ctx.csr
            cptr = np.empty(ctx.n_in + 1, dtype=np.int64)
            cidx = np.empty(max(int(ptr[-1]), 1), dtype=np.int32)
            transpose(ptr, idx, ctx.n_in, cptr, cidx)  # rows grouped by input feature, once
            grad_wt = torch.zeros(ctx.n_in, weight.shape[0], dtype=weight.dtype)
            gather(cptr, cidx, grad_out.detach().contiguous().numpy(), grad_wt.numpy())
            grad_w = grad_wt.t()  # [out, in]
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_out.sum(0)
        return grad_x, grad_w, grad_b, None, None, None


def _kernel_csr(x2: Tensor, weight: Tensor) -> tuple[np.ndarray, np.ndarray, int] | None:
    """Row CSR of binary ``x2 [M, K]`` when the Numba kernels apply (CPU, same float dtype), else None.

    Returns ``(ptr, idx, nnz)``; ``nnz = -1`` marks a non-binary input."""
    k = _kernels()
    if (
        k is None
        or x2.device.type != "cpu"
        or weight.device.type != "cpu"
        or x2.dtype != weight.dtype
        or x2.dtype not in (torch.float32, torch.float64)
    ):
        return None
    xn = x2.detach().contiguous().numpy()
    ptr = np.empty(xn.shape[0] + 1, dtype=np.int64)
    idx = np.empty(max(xn.size, 1), dtype=np.int32)
    nnz = int(k[0](xn, ptr, idx))
    return ptr, idx, nnz


def conv2d_pairs(
    x: Tensor,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    out_hw: tuple[int, int],
) -> tuple[Tensor, Tensor]:
    """Synapses reached by the active inputs of binary ``x [B, C, H, W]``.

    Returns ``(bag, tap)``: for every (active input, kernel tap) that lands on a real output position,
    ``bag = (b * OH + oy) * OW + ox`` and ``tap = (c * KH + ky) * KW + kx`` (row of ``W`` reshaped to
    ``[C*KH*KW, O]``). Each pair is ``O`` synaptic additions.
    """
    kh, kw = kernel
    oh, ow = out_hw
    b, c, iy, ix = torch.nonzero(x).unbind(1)  # [nnz] each
    ky = torch.arange(kh, device=x.device).repeat_interleave(kw)  # [K]
    kx = torch.arange(kw, device=x.device).repeat(kh)
    ny = iy[:, None] + padding[0] - ky[None, :] * dilation[0]  # [nnz, K]: stride * oy
    nx = ix[:, None] + padding[1] - kx[None, :] * dilation[1]
    oy, ox = torch.div(ny, stride[0], rounding_mode="floor"), torch.div(nx, stride[1], rounding_mode="floor")
    ok = (ny % stride[0] == 0) & (nx % stride[1] == 0) & (oy >= 0) & (oy < oh) & (ox >= 0) & (ox < ow)
    bag = ((b[:, None] * oh + oy) * ow + ox)[ok]
    tap = ((c[:, None] * kh + ky[None, :]) * kw + kx[None, :])[ok]
    return bag, tap


class _SparseConv2dFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None, geom: tuple[Any, ...]) -> Tensor:
        stride, padding, dilation = geom
        n_b, _, h, w = x.shape
        o, c, kh, kw = weight.shape
        oh = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
        ow = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
        bag, tap = conv2d_pairs(x, (kh, kw), stride, padding, dilation, (oh, ow))
        order = torch.argsort(bag, stable=True)
        bag, tap = bag[order], tap[order]
        table = weight.permute(1, 2, 3, 0).reshape(c * kh * kw, o)  # [C*KH*KW, O]
        out = F.embedding_bag(tap, table, _bags(bag, n_b * oh * ow), mode="sum")  # [B*OH*OW, O]
        out = out.reshape(n_b, oh, ow, o).permute(0, 3, 1, 2)  # [B, O, OH, OW] (channels-last strides)
        if bias is not None:
            out = out + bias.reshape(1, o, 1, 1)
        ctx.save_for_backward(bag, tap, weight)
        ctx.geom, ctx.x_shape, ctx.has_bias = geom, x.shape, bias is not None
        return out.contiguous()

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None, None]:
        bag, tap, weight = ctx.saved_tensors
        stride, padding, dilation = ctx.geom
        o, c, kh, kw = weight.shape
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = conv2d_input(ctx.x_shape, weight, grad_out, stride, padding, dilation)
        if ctx.needs_input_grad[1]:
            table = grad_out.permute(0, 2, 3, 1).reshape(-1, o)  # [B*OH*OW, O]
            order = torch.argsort(tap, stable=True)
            gw = F.embedding_bag(bag[order], table.contiguous(), _bags(tap[order], c * kh * kw), mode="sum")
            grad_w = gw.reshape(c, kh, kw, o).permute(3, 0, 1, 2)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_out.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None
