"""Geometry of convolution and pooling layers: exact fan-out maps and pooling window sizes."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch import nn

__all__ = ["conv_fanout", "pool_adds", "POOL_DIMS"]

POOL_DIMS: dict[type[nn.Module], int] = {
    nn.MaxPool1d: 1,
    nn.MaxPool2d: 2,
    nn.MaxPool3d: 3,
    nn.AvgPool1d: 1,
    nn.AvgPool2d: 2,
    nn.AvgPool3d: 3,
    nn.AdaptiveAvgPool1d: 1,
    nn.AdaptiveAvgPool2d: 2,
    nn.AdaptiveAvgPool3d: 3,
    nn.AdaptiveMaxPool1d: 1,
    nn.AdaptiveMaxPool2d: 2,
    nn.AdaptiveMaxPool3d: 3,
}


def conv_fanout(module: nn.Module, in_shape: tuple[int, ...]) -> Tensor:
    """Exact fan-out map ``F [C_in, *spatial]`` of a ``Conv{1,2,3}d`` for one input sample of ``in_shape``.

    ``F[c, p]`` is the number of (output position, output channel, kernel tap) triples that read input
    ``(c, p)``: the gradient of ``sum(conv(x, W = 1))`` with respect to ``x``, computed in float64 with
    the module's own stride, padding (and padding mode), dilation and groups. Its sum is the dense MAC
    count minus the taps that land on padding.
    """
    if not isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        raise TypeError(f"conv_fanout needs an nn.Conv1d/2d/3d, got {type(module).__name__}")
    w = torch.ones(module.weight.shape, dtype=torch.float64, device=module.weight.device)
    x = torch.ones((1, *in_shape), dtype=torch.float64, device=module.weight.device, requires_grad=True)
    with torch.enable_grad():
        y = module._conv_forward(x, w, None)  # same padding/stride/dilation/groups as the module
        (grad,) = torch.autograd.grad(y.sum(), x)
    return grad[0].round()


def _window_counts(n: int, m: int, k: int, s: int, p: int, d: int) -> list[int]:
    """Real (non-padding) inputs in each of the ``m`` pooling windows along one axis of length ``n``."""
    return [sum(1 for j in range(k) if 0 <= i * s - p + j * d < n) for i in range(m)]


def _adaptive_counts(n: int, m: int) -> list[int]:
    return [-(-((i + 1) * n) // m) - (i * n) // m for i in range(m)]


def _tuple(v: Any, nd: int) -> tuple[int, ...]:
    return tuple(int(a) for a in v) if isinstance(v, (tuple, list)) else (int(v),) * nd


def pool_adds(module: nn.Module, x: Tensor, y: Tensor) -> int:
    """Compares (max) or adds + 1 division (average) of every pooling window, exact at the edges."""
    nd = POOL_DIMS[type(module)]
    n_in, m_out = x.shape[-nd:], y.shape[-nd:]
    if "Adaptive" in type(module).__name__:
        per_axis = [_adaptive_counts(int(n), int(m)) for n, m in zip(n_in, m_out)]
    else:
        k = _tuple(module.kernel_size, nd)
        s = _tuple(module.stride if module.stride is not None else module.kernel_size, nd)
        p = _tuple(module.padding, nd)
        d = _tuple(getattr(module, "dilation", 1), nd)
        per_axis = [_window_counts(int(n_in[a]), int(m_out[a]), k[a], s[a], p[a], d[a]) for a in range(nd)]
    windows, reads = 1, 1
    for counts in per_axis:
        windows *= len(counts)
        reads *= sum(counts)
    lead = y.numel() // windows if windows else 0  # rows * channels
    is_avg = "Avg" in type(module).__name__
    return lead * (reads - windows + (windows if is_avg else 0))
