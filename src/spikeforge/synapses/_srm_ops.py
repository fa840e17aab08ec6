"""Pure helpers of :mod:`spikeforge.synapses.srm`: the alpha kernel ``k a^k``, its causal temporal convolution
(direct Toeplitz product or FFT) and SLAYER's probability-density surrogate."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from spikeforge.surrogate import Surrogate

__all__ = ["alpha_taps", "alpha_filter", "alpha_scan", "SlayerPDF", "SCAN_FROM", "METHODS"]

#: ``method="auto"``: the direct product (one GEMM, ``T^2`` per channel) below this many steps, the recurrence
#: (``O(T)``, a loop of ``T`` small ops) from here on. Measured on one CPU thread, forward + backward of the SRM
#: layer at ``T = 300``, ``B x N = 32 x 512``: scan 0.17 s, direct 0.24 s; torch's FFT filter alone took 2-3 s
#: (its transforms along time are slow on CPU), so ``"fft"`` is never chosen automatically.
SCAN_FROM = 128
METHODS = ("auto", "direct", "fft", "scan")


def alpha_taps(t: int, a: float, like: Tensor) -> Tensor:
    """``h[k] = k a^k`` for ``k = 0 .. t-1`` in ``like``'s dtype and device (``h[0] = 0``: one step of latency)."""
    k = torch.arange(t, dtype=like.dtype, device=like.device)
    return k * torch.exp(k * math.log(a))


def alpha_filter(x: Tensor, a: float, method: str) -> Tensor:
    """``y[t] = sum_{k=0}^{t} k a^k x[t - k]`` along the time axis of ``x [T, ...]`` (causal, zero history).

    ``direct``: one matrix product with the lower-triangular Toeplitz matrix ``H[t, s] = h[t - s]``; ``fft``:
    zero-padded real FFT of length ``>= 2T - 1`` (no wrap-around); ``scan``: the exact recurrence of ``k a^k``
    (:func:`alpha_scan`). The backward of each is the product with ``H^T``, i.e. the correlation with the
    time-reversed kernel: SLAYER's error reassignment."""
    t = x.shape[0]
    h = alpha_taps(t, a, x)
    if method == "auto":
        method = "scan" if t >= SCAN_FROM else "direct"
    if method == "scan":
        return alpha_scan(x, a)
    if method == "direct":
        idx = torch.arange(t, device=x.device)
        lag = idx.unsqueeze(1) - idx.unsqueeze(0)  # [T, T]: t - s
        mat = torch.where(lag >= 0, h[lag.clamp(min=0)], torch.zeros((), dtype=x.dtype, device=x.device))
        return (mat @ x.reshape(t, -1)).reshape(x.shape)
    n = 1 << (2 * t - 1).bit_length()
    spec = torch.fft.rfft(x, n=n, dim=0) * torch.fft.rfft(h, n=n).reshape(-1, *([1] * (x.dim() - 1)))
    return torch.fft.irfft(spec, n=n, dim=0)[:t]


def _scan(x: Tensor, a: float, *, reverse: bool = False) -> Tensor:
    """``y[t] = q[t]`` with ``q[t+1] = a (q[t] + p[t] + x[t])``, ``p[t+1] = a (p[t] + x[t])``, ``p[0] = q[0] = 0``;
    ``reverse`` runs the same recurrence from ``t = T-1`` down to 0 (the correlation: the transposed filter)."""
    y = torch.empty_like(x)
    p = torch.zeros_like(x[0])
    q = torch.zeros_like(x[0])
    tmp = torch.empty_like(p)
    steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
    for t in steps:
        y[t] = q
        torch.add(p, x[t], out=tmp)  # p + x
        q.add_(tmp).mul_(a)
        torch.mul(tmp, a, out=p)
    return y


class _AlphaScan(torch.autograd.Function):
    """The alpha-kernel convolution by its exact two-variable recurrence; the backward is the same recurrence
    run backwards in time (the correlation with the kernel: the transposed, time-reversed convolution)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, a: float) -> Tensor:
        ctx.a = a
        return _scan(x, a)

    @staticmethod
    def backward(ctx: Any, gy: Tensor) -> tuple[Tensor, None]:
        return _scan(gy, ctx.a, reverse=True), None


def alpha_scan(x: Tensor, a: float) -> Tensor:
    """:func:`alpha_filter` by the recurrence (``O(T)`` per channel, any ``T``); equal up to rounding."""
    if x.requires_grad and torch.is_grad_enabled():
        return _AlphaScan.apply(x, a)
    return _scan(x, a)


@dataclass(frozen=True)
class SlayerPDF(Surrogate):
    """SLAYER's spike-function derivative (Shrestha & Orchard, NeurIPS 2018, Sec. 3.2): the probability density
    of a change of spike state, ``rho(u) = alpha exp(-beta |u - theta|)``; here ``x = u - theta``, so
    ``grad(x) = alpha exp(-beta |x|)``. SLAYER's code parameterises it as ``alpha = scale_rho / (tau_rho theta)``,
    ``beta = 1 / (tau_rho theta)``. Primitive: ``(alpha / beta) sign(x) (1 - exp(-beta |x|))``."""

    alpha: float = 1.0
    beta: float = 1.0

    def grad(self, x: Tensor) -> Tensor:
        return self.alpha * torch.exp(-self.beta * x.abs())

    def primitive(self, x: Tensor) -> Tensor:
        return (self.alpha / self.beta) * torch.sign(x) * (1.0 - torch.exp(-self.beta * x.abs()))
