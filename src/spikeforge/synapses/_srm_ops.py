"""Pure helpers of :mod:`spikeforge.synapses.srm`: the alpha kernel ``k a^k``, its causal temporal convolution
(direct Toeplitz product or FFT) and SLAYER's probability-density surrogate."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from spikeforge.surrogate import Surrogate

__all__ = ["alpha_taps", "alpha_filter", "SlayerPDF", "FFT_FROM", "METHODS"]

#: ``method="auto"`` filters by FFT from this many time steps on. The direct product costs ``T^2`` per channel
#: but runs as one GEMM; measured on one CPU thread at ``T = 300``, ``B x N = 32 x 512`` the direct forward +
#: backward took 0.28 s and torch's FFT 2.0-3.4 s (``benchmarks/delays.py speed``), hence the high crossover.
FFT_FROM = 1024
METHODS = ("auto", "direct", "fft")


def alpha_taps(t: int, a: float, like: Tensor) -> Tensor:
    """``h[k] = k a^k`` for ``k = 0 .. t-1`` in ``like``'s dtype and device (``h[0] = 0``: one step of latency)."""
    k = torch.arange(t, dtype=like.dtype, device=like.device)
    return k * torch.exp(k * math.log(a))


def alpha_filter(x: Tensor, a: float, method: str) -> Tensor:
    """``y[t] = sum_{k=0}^{t} k a^k x[t - k]`` along the time axis of ``x [T, ...]`` (causal, zero history).

    ``direct``: one matrix product with the lower-triangular Toeplitz matrix ``H[t, s] = h[t - s]``; ``fft``:
    zero-padded real FFT of length ``>= 2T - 1`` (no wrap-around). Autograd's backward of either is the product
    with ``H^T``, i.e. the correlation with the time-reversed kernel: SLAYER's error reassignment."""
    t = x.shape[0]
    h = alpha_taps(t, a, x)
    if method == "auto":
        method = "fft" if t >= FFT_FROM else "direct"
    if method == "direct":
        idx = torch.arange(t, device=x.device)
        lag = idx.unsqueeze(1) - idx.unsqueeze(0)  # [T, T]: t - s
        mat = torch.where(lag >= 0, h[lag.clamp(min=0)], torch.zeros((), dtype=x.dtype, device=x.device))
        return (mat @ x.reshape(t, -1)).reshape(x.shape)
    n = 1 << (2 * t - 1).bit_length()
    spec = torch.fft.rfft(x, n=n, dim=0) * torch.fft.rfft(h, n=n).reshape(-1, *([1] * (x.dim() - 1)))
    return torch.fft.irfft(spec, n=n, dim=0)[:t]


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
