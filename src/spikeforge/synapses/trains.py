"""Distances between spike trains for training precise spike times (SLAYER's spike-pattern association)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from spikeforge._core.checks import check_number
from spikeforge._core.checks import check_seq

__all__ = ["exp_filter", "van_rossum_distance"]


def exp_filter(z_seq: Tensor, tau: float) -> Tensor:
    """Causal exponential trace ``f[t] = sum_{k=0}^{t} exp(-k / tau) z[t - k]`` of ``z_seq [T, ...]`` (from zero),
    by the recurrence ``f[t] = a f[t-1] + z[t]``, ``a = exp(-1 / tau)``, in time steps."""
    a = math.exp(-1.0 / check_number(tau, "tau", positive=True))
    out = []
    f = torch.zeros_like(z_seq[0])
    for z_t in z_seq.unbind(0):
        f = a * f + z_t
        out.append(f)
    return torch.stack(out)


def van_rossum_distance(out_seq: Tensor, target_seq: Tensor, *, tau: float = 5.0) -> Tensor:
    """van Rossum distance (van Rossum 2001) between spike trains, time-major ``[T, ...]``:
    ``D^2 = (1 / tau) sum_t (f_out[t] - f_target[t])^2`` with ``f`` the exponential trace of :func:`exp_filter`.
    Returns the mean of ``D^2`` over all other dims (a scalar loss; differentiable in ``out_seq``)."""
    check_seq(out_seq, "out_seq")
    check_seq(target_seq, "target_seq")
    if out_seq.shape != target_seq.shape:
        raise ValueError(f"out_seq {tuple(out_seq.shape)} and target_seq {tuple(target_seq.shape)} must match")
    diff = exp_filter(out_seq - target_seq.to(out_seq.dtype), tau)  # the filter is linear
    return (diff**2).sum(0).mean() / tau
