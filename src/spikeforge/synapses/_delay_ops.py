"""Pure tensor operations behind :mod:`spikeforge.synapses.delays`: tap weights of a real-valued delay,
causal temporal convolution over ``[T, B, C]``, and exact integer shifts.

Conventions: a delay ``d`` (in steps) moves a signal later in time, ``y[t] = x[t - d]``, with zeros before the
sequence starts. A temporal kernel ``k[..., j]`` over taps ``j = 0 .. D`` acts as ``y[t] = sum_j k[j] x[t - j]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["gaussian_taps", "linear_taps", "causal_conv", "shift_per_channel", "shift_per_synapse"]


def gaussian_taps(d: Tensor, taps: int, sigma: float) -> Tensor:
    """DCLS-style Gaussian interpolation (Hammouamri, Khalfaoui-Hassani & Masquelier, ICLR 2024): the weight of
    tap ``j`` is ``exp(-(j - d)^2 / (2 sigma^2))`` normalised over ``j = 0 .. taps-1`` (a softmax, so it never
    divides by zero). ``d [...]`` -> ``[..., taps]``; as ``sigma -> 0`` it tends to the nearest tap."""
    j = torch.arange(taps, dtype=d.dtype, device=d.device)
    return torch.softmax(-((j - d.unsqueeze(-1)) ** 2) / (2.0 * sigma * sigma), dim=-1)


def linear_taps(d: Tensor, taps: int) -> Tensor:
    """Linear interpolation between the two taps around ``d`` (SLAYER's fractional delay): weight
    ``max(0, 1 - |j - d|)``, with ``d`` clamped to ``[0, taps-1]``. ``d [...]`` -> ``[..., taps]``."""
    j = torch.arange(taps, dtype=d.dtype, device=d.device)
    return (1.0 - (j - d.clamp(0.0, taps - 1).unsqueeze(-1)).abs()).clamp(min=0.0)


def causal_conv(x: Tensor, kernel: Tensor, *, depthwise: bool) -> Tensor:
    """``y[t, b, o] = sum_{i, j} kernel[o, i, j] x[t - j, b, i]`` (zeros before ``t = 0``).

    ``x [T, B, I]``; ``kernel [O, I, D+1]``, or ``[I, D+1]`` with ``depthwise`` (each channel filtered by its own
    kernel, ``O = I``). Runs as one ``conv1d`` on the left-padded sequence (conv1d correlates, so the kernel is
    flipped); autograd's backward is the transposed, time-reversed convolution."""
    d = kernel.shape[-1] - 1
    xb = F.pad(x.permute(1, 2, 0), (d, 0))  # [B, I, D + T]
    if depthwise:
        y = F.conv1d(xb, kernel.flip(-1).unsqueeze(1), groups=kernel.shape[0])
    else:
        y = F.conv1d(xb, kernel.flip(-1))
    return y.permute(2, 0, 1)  # [T, B, O]


def _padded(x: Tensor, d: int) -> Tensor:
    """``x [T, B, I]`` with ``d`` zero steps in front: ``[d + T, B, I]``."""
    return torch.cat([x.new_zeros((d, *x.shape[1:])), x]) if d else x


def shift_per_channel(x: Tensor, delays: Tensor) -> Tensor:
    """Exact integer shifts, one per channel: ``y[t, b, i] = x[t - delays[i], b, i]`` (0 where ``t < delays[i]``).

    ``x [T, B, I]``, ``delays [I]`` integer-valued (any dtype), each in ``0 .. T-1``. A gather: no arithmetic."""
    t, b, i = x.shape
    dmax = int(delays.max()) if delays.numel() else 0
    xp = _padded(x, dmax)
    idx = torch.arange(t, device=x.device).unsqueeze(1) + dmax - delays.to(torch.long).unsqueeze(0)  # [T, I]
    return xp.gather(0, idx.unsqueeze(1).expand(t, b, i))


def shift_per_synapse(x: Tensor, weight: Tensor, delays: Tensor, bias: Tensor | None) -> Tensor:
    """``y[t, b, o] = bias[o] + sum_i weight[o, i] x[t - delays[o, i], b, i]`` with exact integer shifts.

    Synapses are grouped by their delay value: one matrix product per distinct delay (at most ``D + 1``), each
    on the input shifted by that many steps, with the weights of the other synapses masked to zero."""
    t = x.shape[0]
    steps = delays.to(torch.long)
    dmax = int(steps.max()) if steps.numel() else 0
    xp = _padded(x, dmax)
    y = x.new_zeros((t, x.shape[1], weight.shape[0]))
    for value in torch.unique(steps).tolist():
        w = torch.where(steps == value, weight, torch.zeros_like(weight))
        y = y + F.linear(xp[dmax - value : dmax - value + t], w)
    return y if bias is None else y + bias
