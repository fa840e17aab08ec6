"""Python recipes for the two temporal tasks of issue 16 that are not classification tasks (so not
``spikeforge train`` datasets, whose loss is a cross-entropy over labels):

* :func:`fit_planted_delays` -- a student :class:`~spikeforge.synapses.DelayedLinear` regresses the output
  current of a teacher with planted integer delays (:func:`~spikeforge.data.temporal_tasks.make_planted_delays`)
  and recovers them: DCLS's Gaussian interpolation with a width annealed per epoch, delays clamped after each
  step, then rounded (exact integer shifts)::

      from spikeforge.data.temporal_tasks import make_planted_delays
      from spikeforge.training.delay_recipes import fit_planted_delays

      data = make_planted_delays(256, in_channels=16, out_channels=8, max_delay=10, time_steps=60)
      fit = fit_planted_delays(data, max_delay=10, epochs=150)
      fit.within_half_step                       # share of synapses whose delay is within 0.5 steps of the plant
      fast = fit.student.rounded()               # integer delays for inference

* :func:`fit_spike_pattern` -- SLAYER's demonstration: an SRM network maps one input spike pattern to target
  output spike times (:func:`~spikeforge.data.temporal_tasks.make_spike_pattern`), trained on the van Rossum
  distance (:func:`~spikeforge.synapses.van_rossum_distance`) and scored by
  :func:`~spikeforge.data.temporal_tasks.match_spike_times` (output spikes within 1 step of the targets)::

      from spikeforge.data.temporal_tasks import make_spike_pattern
      from spikeforge.training.delay_recipes import fit_spike_pattern

      x, target = make_spike_pattern(time_steps=100, in_channels=50, out_channels=8)
      fit = fit_spike_pattern(x, target, epochs=600)
      fit.matched / fit.targets                  # share of target spikes hit within 1 step

Both take the generators' sample-major tensors (``[N, T, C]``) and run time-major inside. ``benchmarks/delays.py``
records what they reach at full size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor
from torch import nn

from spikeforge._core.checks import check_int
from spikeforge._core.checks import check_number
from spikeforge.data.temporal_tasks import PlantedDelays
from spikeforge.data.temporal_tasks import match_spike_times
from spikeforge.layers import SNNSequential
from spikeforge.synapses import SRM
from spikeforge.synapses import DelayedLinear
from spikeforge.synapses import sigma_schedule
from spikeforge.synapses import van_rossum_distance

__all__ = ["PlantedFit", "PatternFit", "fit_planted_delays", "fit_spike_pattern"]


class PlantedFit(NamedTuple):
    """Result of :func:`fit_planted_delays`."""

    student: DelayedLinear  # the trained student (interpolated delays; .rounded() for inference)
    within_half_step: float  # share of synapses with |learned - planted| <= 0.5 steps
    max_abs_error: float  # largest |learned - planted| in steps
    rounded_mse: float  # mean squared error of the rounded student on the training inputs


class PatternFit(NamedTuple):
    """Result of :func:`fit_spike_pattern` (scores of the final network)."""

    network: SNNSequential  # Linear -> SRM -> Linear -> SRM
    matched: int  # target spikes with an output spike within 1 step
    targets: int  # target spikes
    extra: int  # output spikes that match no target
    losses: list[float]  # van Rossum distance per epoch


def fit_planted_delays(
    data: PlantedDelays,
    *,
    max_delay: int,
    epochs: int = 150,
    lr: float = 0.05,
    batch_size: int = 64,
    sigma_start: float = 5.0,
    sigma_end: float = 0.3,
    seed: int = 0,
) -> PlantedFit:
    """Fit a bias-free per-synapse ``DelayedLinear`` (delays ``0 .. max_delay``, the range the teacher's delays were
    drawn from) to ``(data.x, data.y)`` by mean squared error (Adam), the
    Gaussian width annealed linearly from ``sigma_start`` to ``sigma_end`` over the epochs; compare its delays
    with ``data.delays``. Deterministic for a given ``seed`` (initial weights and delays)."""
    if not isinstance(data, PlantedDelays):
        raise TypeError(f"data must come from make_planted_delays (a PlantedDelays), got {type(data).__name__}")
    epochs = check_int(epochs, "epochs", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    lr = check_number(lr, "lr", positive=True)
    x, y = data.x.transpose(0, 1), data.y.transpose(0, 1)  # [T, N, C]
    n_out, n_in = data.delays.shape
    max_delay = check_int(max_delay, "max_delay", minimum=0)
    if data.delays.numel() and int(data.delays.max()) > max_delay:
        raise ValueError(f"the planted delays reach {int(data.delays.max())} steps; give max_delay >= that")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(check_int(seed, "seed", minimum=0))
        student = DelayedLinear(
            n_in, n_out, max_delay, per="synapse", bias=False, generator=torch.Generator().manual_seed(seed)
        )
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    for epoch in range(epochs):
        student.set_sigma(sigma_schedule(epoch, epochs, sigma_start, sigma_end))
        for xb, yb in zip(x.split(batch_size, 1), y.split(batch_size, 1)):
            loss = ((student(xb) - yb) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            student.clamp_delays_()
    err = (student.delay_values() - data.delays.to(student.delays.dtype)).abs()
    with torch.no_grad():
        rounded_mse = float(((student.rounded()(x) - y) ** 2).mean())
    return PlantedFit(student, float((err <= 0.5).float().mean()), float(err.max()), rounded_mse)


def fit_spike_pattern(
    x: Tensor,
    target: Tensor,
    *,
    hidden: int = 64,
    epochs: int = 600,
    lr: float = 0.01,
    tau: float = 2.0,
    weight_gain: float = 3.0,
    seed: int = 0,
    on_epoch: Callable[[Tensor], None] | None = None,
) -> PatternFit:
    """Train ``Linear -> SRM(tau, tau) -> Linear -> SRM(tau, tau)`` (``hidden`` wide, initial weights times
    ``weight_gain``) to fire at the spike times of ``target [1, T, out]`` given ``x [1, T, in]``: Adam with a
    cosine schedule, loss the van Rossum distance (kernel time constant ``tau``).

    ``on_epoch(out)``, if given, is called after each epoch's step with that epoch's output spikes (computed before
    the step), detached, sample-major like ``target`` (e.g. to score every epoch with ``match_spike_times``)."""
    for name, t in (("x", x), ("target", target)):
        if not isinstance(t, Tensor) or t.dim() != 3:
            raise ValueError(f"{name} must be [N, T, C] as make_spike_pattern returns, got {getattr(t, 'shape', t)}")
    if x.shape[:2] != target.shape[:2]:
        raise ValueError(f"x {tuple(x.shape)} and target {tuple(target.shape)} need the same N and T")
    epochs = check_int(epochs, "epochs", minimum=1)
    hidden = check_int(hidden, "hidden", minimum=1)
    xs, ts = x.transpose(0, 1), target.transpose(0, 1)  # [T, N, C]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(check_int(seed, "seed", minimum=0))
        l1, l2 = nn.Linear(x.shape[-1], hidden), nn.Linear(hidden, target.shape[-1])
    with torch.no_grad():
        for layer in (l1, l2):
            layer.weight.mul_(check_number(weight_gain, "weight_gain", positive=True))
    net = SNNSequential(l1, SRM(tau_s=tau, tau_r=tau), l2, SRM(tau_s=tau, tau_r=tau))
    opt = torch.optim.Adam(net.parameters(), lr=check_number(lr, "lr", positive=True))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs, eta_min=lr / 100)
    losses: list[float] = []
    for _ in range(epochs):
        out, _ = net(xs)
        loss = van_rossum_distance(out, ts, tau=tau)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if on_epoch is not None:
            on_epoch(out.detach().transpose(0, 1))
    with torch.no_grad():
        out, _ = net(xs)
    matched, total, extra = match_spike_times(out.transpose(0, 1), target, tolerance=1)
    return PatternFit(net, matched, total, extra, losses)
