r"""Temporal codes: time-to-first-spike (latency), weighted phase and burst coding.

All encoders are deterministic maps from ``x`` ``[B, ...]`` to binary spikes ``[T, B, ...]`` in ``x``'s
dtype and device. Step indices are integers ``0 .. T-1``; time constants are in units of steps.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from spikeforge._core.checks import check_float_tensor
from spikeforge._core.checks import check_int
from spikeforge._core.checks import check_num_steps
from spikeforge._core.checks import check_number
from spikeforge._core.checks import check_range
from spikeforge._core.checks import check_seq

__all__ = ["latency", "phase", "phase_decode", "burst", "LatencyMode"]

LatencyMode = Literal["linear", "log"]
_LATENCY_MODES = ("linear", "log")
_MAX_PHASE_BITS = 52


def _time_index(num_steps: int, x: Tensor) -> Tensor:
    """``[T, 1, ..., 1]`` int64 step indices broadcastable against ``x``."""
    return torch.arange(num_steps, device=x.device).view(num_steps, *([1] * x.dim()))


def latency(
    x: Tensor,
    num_steps: int,
    *,
    mode: LatencyMode = "linear",
    tau: float = 5.0,
    threshold: float | None = None,
    normalize: bool = False,
    clip: bool = False,
) -> Tensor:
    r"""Time-to-first-spike code: at most one spike per element, larger ``x`` spikes earlier.

    Elements with ``x <= threshold`` never spike. For the others the spike step is

    * ``mode="linear"`` (``threshold`` defaults to ``0``, so ``x = 0`` is silent):

      .. math:: t = \operatorname{round}\big((1 - x)(T - 1)\big) \in [0, T-1]

      so ``x = 1`` spikes at step 0 and ``x -> 0+`` at step ``T - 1``.

    * ``mode="log"`` (``threshold`` :math:`\theta` defaults to ``0.2``): the time at which an RC membrane
      :math:`\tau \dot v = -v + x`, starting at ``v = 0``, reaches :math:`\theta`:

      .. math:: s(x) = \tau \ln\frac{x}{x - \theta}, \qquad x > \theta,

      with ``tau`` in steps. ``normalize=True`` subtracts :math:`s(1) = \tau \ln\frac{1}{1-\theta}` so that
      ``x = 1`` spikes at step 0. The step is :math:`t = \operatorname{round}(s)`. A latency beyond the window
      (``t > T - 1``) is dropped (no spike) with ``clip=False`` (default) or put at step ``T - 1`` with
      ``clip=True``. To make every ``x >= x_min`` fit the window, choose
      :math:`\tau \le (T-1) / \ln\frac{x_{min}}{x_{min}-\theta}` (with ``normalize=False``).

    ``round`` is ``torch.round`` (halves go to the even integer).

    Args:
        x: intensities ``[B, ...]`` in ``[0, 1]``.
        num_steps: ``T >= 1``.
        mode: ``"linear"`` or ``"log"``.
        tau: RC time constant in steps (``> 0``), used by ``mode="log"`` only.
        threshold: silence threshold; linear: in ``[0, 1)``, default 0; log: in ``(0, 1)``, default 0.2.
        normalize: log mode: shift latencies so that ``x = 1`` spikes at step 0.
        clip: log mode: put latencies beyond the window at ``T - 1`` instead of dropping them.
    Returns:
        Binary spikes ``[T, B, ...]`` with at most one spike per element.
    """
    x = check_float_tensor(x, "x")
    num_steps = check_num_steps(num_steps)
    check_range(x, "x", 0.0, 1.0)
    if mode == "linear":
        theta = 0.0 if threshold is None else check_number(threshold, "threshold")
        if not 0.0 <= theta < 1.0:
            raise ValueError(f"threshold must lie in [0, 1) for mode='linear', got {threshold}")
        fires = x > theta
        steps = torch.round((1 - x) * (num_steps - 1))
    elif mode == "log":
        tau = check_number(tau, "tau", positive=True)
        theta = 0.2 if threshold is None else check_number(threshold, "threshold")
        if not 0.0 < theta < 1.0:
            raise ValueError(f"threshold must lie in (0, 1) for mode='log' (the RC target level), got {threshold}")
        fires = x > theta
        x_safe = torch.where(fires, x, torch.ones_like(x))
        s = -tau * torch.log1p(-theta / x_safe)  # tau ln(x / (x - theta))
        if normalize:
            s = s + tau * math.log1p(-theta)  # minus s(1) = tau ln(1 / (1 - theta))
        steps = torch.round(s)
        late = steps > num_steps - 1
        if clip:
            steps = torch.where(late, torch.full_like(steps, num_steps - 1), steps)
        else:
            fires = fires & ~late
    else:
        raise ValueError(f"unknown latency mode {mode!r}; choose one of {_LATENCY_MODES}")
    idx = torch.where(fires, steps, torch.full_like(steps, -1)).to(torch.int64)
    return (_time_index(num_steps, x) == idx).to(x.dtype)


def phase(x: Tensor, num_steps: int, *, bits: int = 8) -> Tensor:
    r"""Weighted phase code (Kim, Park, Na & Yoon 2018, "Deep neural networks with weighted spikes").

    ``x`` is quantised by truncation to ``bits`` bits,

    .. math:: q = \min(\lfloor x\, 2^{K} \rfloor, 2^K - 1), \qquad x \approx \sum_{k=0}^{K-1} b_k 2^{-(k+1)},

    where :math:`b_0` is the most significant bit of ``q``. Step ``t`` has phase :math:`k = t \bmod K` and
    spikes iff :math:`b_k = 1`; the pattern repeats with period ``K = bits``. A spike at phase ``k``
    carries weight :math:`2^{-(k+1)}` (see :func:`phase_decode`), so ``x = 0.5`` is one spike at phase 0.
    Quantisation error: :math:`0 \le x - \hat x < 2^{-K}` (``x = 1`` decodes to :math:`1 - 2^{-K}`).

    Args:
        x: values ``[B, ...]`` in ``[0, 1]``.
        num_steps: ``T >= 1`` (use ``T >= bits`` to send every bit once).
        bits: ``K``, 1 to 52.
    Returns:
        Binary spikes ``[T, B, ...]``.
    """
    x = check_float_tensor(x, "x")
    num_steps = check_num_steps(num_steps)
    bits = check_int(bits, "bits", minimum=1, maximum=_MAX_PHASE_BITS)
    check_range(x, "x", 0.0, 1.0)
    q = torch.floor(x.detach().to(torch.float64) * 2.0**bits).to(torch.int64).clamp(max=2**bits - 1)
    shift = (bits - 1) - _time_index(num_steps, x) % bits  # phase k -> bit position K-1-k of q
    return ((q >> shift) & 1).to(x.dtype)


def phase_decode(z_seq: Tensor, *, bits: int = 8) -> Tensor:
    r"""Inverse of :func:`phase` on one period: :math:`\hat x = \sum_{k=0}^{K-1} z_k\, 2^{-(k+1)}`.

    Uses the first ``bits`` steps of ``z_seq`` (one full period); it is linear in ``z`` and hence
    differentiable (a weighted spike count).

    Args:
        z_seq: spikes ``[T, B, ...]`` with ``T >= bits``.
        bits: ``K``, 1 to 52.
    Returns:
        ``[B, ...]`` in ``z_seq``'s dtype.
    """
    z_seq = check_seq(z_seq, "z_seq")
    bits = check_int(bits, "bits", minimum=1, maximum=_MAX_PHASE_BITS)
    if z_seq.shape[0] < bits:
        raise ValueError(
            f"phase_decode needs one full period: T = {z_seq.shape[0]} < bits = {bits}; "
            "encode with num_steps >= bits or pass the matching bits"
        )
    w = torch.pow(2.0, -torch.arange(1, bits + 1, dtype=torch.float64)).to(z_seq.dtype).to(z_seq.device)
    return torch.tensordot(w, z_seq[:bits], dims=1)


def burst(
    x: Tensor,
    num_steps: int,
    *,
    max_spikes: int = 5,
    isi_min: int = 2,
    isi_max: int = 10,
    period: int | None = None,
) -> Tensor:
    r"""Burst code (Park, Kim, Choe & Yoon 2019, "Fast and efficient information transmission with burst
    spikes in deep spiking neural networks").

    Stronger inputs fire more spikes at shorter inter-spike intervals (the paper's form, restated here
    as the exact contract of this function):

    .. math::
        n(x) = \lceil N_{max}\, x \rceil, \qquad
        \mathrm{ISI}(x) = \lceil -(T_{max} - T_{min})\, x + T_{max} \rceil

    with :math:`N_{max}` = ``max_spikes``, :math:`T_{min}` = ``isi_min``, :math:`T_{max}` = ``isi_max``
    (in steps). The burst starts at step 0: spikes at :math:`t_i = i \cdot \mathrm{ISI}(x)`,
    :math:`i = 0 .. n(x)-1`; spikes at :math:`t_i > T - 1` are dropped. ``x = 0`` is silent, ``x = 1`` fires
    ``max_spikes`` spikes ``isi_min`` apart. With ``period=P`` the burst restarts every ``P`` steps
    (step ``t`` behaves like step ``t mod P``). The defaults are ours, not the paper's.

    Args:
        x: intensities ``[B, ...]`` in ``[0, 1]``.
        num_steps: ``T >= 1``; a full burst of ``x`` needs ``T > (n(x) - 1) ISI(x)``.
        max_spikes: :math:`N_{max} \ge 1`.
        isi_min: :math:`T_{min} \ge 1` steps.
        isi_max: :math:`T_{max} \ge T_{min}` steps.
        period: optional burst repetition period in steps (``>= 1``).
    Returns:
        Binary spikes ``[T, B, ...]``.
    """
    x = check_float_tensor(x, "x")
    num_steps = check_num_steps(num_steps)
    max_spikes = check_int(max_spikes, "max_spikes", minimum=1)
    isi_min = check_int(isi_min, "isi_min", minimum=1)
    isi_max = check_int(isi_max, "isi_max", minimum=isi_min)
    if period is not None:
        period = check_int(period, "period", minimum=1)
    check_range(x, "x", 0.0, 1.0)
    x = x.detach()
    n = torch.ceil(max_spikes * x).to(torch.int64)
    isi = torch.ceil(-(isi_max - isi_min) * x + isi_max).to(torch.int64).clamp(isi_min, isi_max)
    t = _time_index(num_steps, x)
    if period is not None:
        t = t % period
    on_grid = (t % isi) == 0
    return (on_grid & (t // isi < n)).to(x.dtype)
