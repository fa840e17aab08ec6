"""The fastest available GEMM for the stateless Linear layers that run on ``[T*B, ...]``.

On this project's CPUs PyTorch's default float32 GEMM (MKL) reaches about 200 GFLOP/s while oneDNN
reaches 400-480 GFLOP/s on the same shapes (``benchmarks/peers.py`` measures both in every run and
records them in ``benchmarks/RESULTS.md``). :func:`linear` uses oneDNN (``torch.ops.mkldnn._linear_pointwise``)
for float32 CPU tensors, forward and backward (input and weight gradients), and ``torch.nn.functional.linear``
everywhere else. Results equal ``F.linear`` up to float32 rounding of the reduction order.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["linear", "onednn_available"]


def onednn_available() -> bool:
    return bool(torch.backends.mkldnn.is_available()) and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def _mm(a: Tensor, b: Tensor, bias: Tensor | None = None) -> Tensor:
    """``a @ b.T (+ bias)`` through oneDNN; stride-0 (expanded) operands are materialised first."""
    if 0 in a.stride():
        a = a.contiguous()
    if 0 in b.stride():
        b = b.contiguous()
    return torch.ops.mkldnn._linear_pointwise(a, b, bias, "none", [], "")


class _OneDNNLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _mm(x, weight, bias.detach() if bias is not None else None)

    @staticmethod
    def backward(ctx: Any, gy: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        x, weight = ctx.saved_tensors
        gx = _mm(gy, weight.t()) if ctx.needs_input_grad[0] else None  # [M, out] @ [out, in]
        gw = _mm(gy.t(), x.t()) if ctx.needs_input_grad[1] else None  # [out, M] @ [M, in]
        gb = gy.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return gx, gw, gb


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.linear(x, weight, bias)`` for 2-D ``x [M, in]``, through oneDNN where that is faster."""
    if (
        x.dim() == 2
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and weight.dtype == torch.float32
        and (bias is None or bias.dtype == torch.float32)
        and not torch.compiler.is_compiling()
        and onednn_available()
    ):
        return _OneDNNLinear.apply(x, weight, bias)
    return F.linear(x, weight, bias)
