"""Stateless layers that NIR has and ``torch.nn`` lacks: ``Threshold``, ``Scale`` and ``SumPool2d``.

They run on ``[N, ...]`` (``SNNSequential`` folds time into the batch) and follow the input's dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch import nn

from spikeforge._core.spike import spike
from spikeforge.surrogate import Surrogate
from spikeforge.surrogate import resolve_surrogate

__all__ = ["Threshold", "Scale", "SumPool2d"]


def _as_buffer(value: Tensor | float, name: str) -> Tensor:
    t = torch.as_tensor(value, dtype=torch.get_default_dtype()).detach().clone()
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite, got {value}")
    return t


class Threshold(nn.Module):
    """Heaviside spikes ``z = H(x - threshold)`` (strict: no spike at equality), surrogate gradient backward.

    Args:
        threshold: scalar or tensor broadcastable to one sample's shape (e.g. ``[C, H, W]``).
        surrogate: surrogate for the backward pass (default: fast sigmoid).
    """

    threshold: Tensor  # registered buffer

    def __init__(self, threshold: Tensor | float, *, surrogate: Surrogate | str | None = None) -> None:
        super().__init__()
        self.register_buffer("threshold", _as_buffer(threshold, "threshold"))
        self.surrogate = resolve_surrogate(surrogate)

    def forward(self, x: Tensor) -> Tensor:
        return spike(x - self.threshold.to(x.dtype), self.surrogate)

    def extra_repr(self) -> str:
        return f"threshold={tuple(self.threshold.shape) or float(self.threshold)}"


class Scale(nn.Module):
    """Element-wise ``y = x * scale`` with a fixed ``scale`` broadcastable to one sample's shape."""

    scale: Tensor  # registered buffer

    def __init__(self, scale: Tensor | float) -> None:
        super().__init__()
        self.register_buffer("scale", _as_buffer(scale, "scale"))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale.to(x.dtype)

    def extra_repr(self) -> str:
        return f"scale={tuple(self.scale.shape) or float(self.scale)}"


class SumPool2d(nn.Module):
    """Sum over ``kernel_size`` windows (zero padding): ``avg_pool2d`` with divisor 1. Input ``[N, C, H, W]``."""

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        self.kernel_size = _pair(kernel_size, "kernel_size", minimum=1)
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride", minimum=1)
        self.padding = _pair(padding, "padding", minimum=0)

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, divisor_override=1)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


def _pair(v: int | tuple[int, int], name: str, *, minimum: int) -> tuple[int, int]:
    vals = (v, v) if isinstance(v, int) else tuple(v)
    if len(vals) != 2 or any(isinstance(a, bool) or not isinstance(a, int) or a < minimum for a in vals):
        raise ValueError(f"{name} must be an int or a pair of ints >= {minimum}, got {v!r}")
    return (int(vals[0]), int(vals[1]))
