"""Tasks that need time, generated offline and deterministically from a seed (issue 16).

All spike trains here are **sample-major** ``[N, T, C]`` float32 (0/1), as the registry's ``x [N, ...]``; a model
takes time-major sequences, so feed ``x.transpose(0, 1)`` (``[T, N, C]``). The classification task is also a
registered sequence dataset, ``delayed_coincidence`` (:mod:`spikeforge.data.temporal_registry`, for
``spikeforge train``); the two others have regression or spike-train targets, not class labels, and are trained
with the recipes of :mod:`spikeforge.training.delay_recipes`.

* :func:`make_delayed_coincidence` -- classification by the relative timing of spikes across channels only.
* :func:`make_spike_pattern` -- associate one input spike pattern with precise target output spike times
  (SLAYER's demonstration); score with :func:`match_spike_times`, train with
  :func:`spikeforge.synapses.van_rossum_distance`.
* :func:`make_planted_delays` -- a teacher with known integer per-synapse delays produces the targets; a student
  :class:`~spikeforge.synapses.DelayedLinear` should recover the delays.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import torch
from torch import Tensor

from spikeforge._core.checks import check_int
from spikeforge._core.checks import check_number

__all__ = [
    "make_delayed_coincidence", "make_spike_pattern", "make_planted_delays", "PlantedDelays", "match_spike_times",
    "coincidence_patterns",
]  # fmt: skip


def _gen(seed: object) -> torch.Generator:
    return torch.Generator().manual_seed(check_int(seed, "seed", minimum=0))


def coincidence_patterns(num_classes: int, channels: int, gap: int) -> Tensor:
    """``[num_classes, channels]`` spike offsets of each class: class ``k`` is the ``k``-th permutation (in a
    fixed spread-out order) of the offsets ``0, gap, 2 gap, ...``. Every class uses the same offsets, so only
    *which channel fires when* tells the classes apart."""
    perms = list(itertools.permutations(range(channels)))
    if num_classes > len(perms):
        raise ValueError(f"{channels} channels give {len(perms)} orders; ask for num_classes <= {len(perms)}")
    step = len(perms) // num_classes  # spread the chosen orders over the whole list
    chosen = [perms[k * step] for k in range(num_classes)]
    return torch.tensor(chosen, dtype=torch.long) * gap


def make_delayed_coincidence(
    n: int,
    *,
    seed: int = 0,
    num_classes: int = 4,
    channels: int = 4,
    gap: int = 6,
    time_steps: int = 64,
) -> tuple[Tensor, Tensor]:
    """Delayed-coincidence classification: ``(x [n, T, channels], y [n])``.

    Each channel fires exactly one spike; in class ``k`` channel ``i`` fires at ``t0 + offsets[k, i]``
    (:func:`coincidence_patterns`: a permutation of ``0, gap, ..., (channels-1) gap``) with ``t0`` uniform in
    ``[0, T - 2 span - 1]``, ``span = (channels - 1) gap`` (room for delays up to ``span`` after the last
    spike). Labels are balanced (``n // num_classes`` per class, the rest from the first classes) and shuffled.

    Why delays are needed: the classes have the same spike count per channel and the same set of inter-spike
    intervals; they differ only in the order of the channels. A network whose every time constant is well
    below ``gap`` sees isolated, identical single-spike responses whose multiset does not depend on the class
    (absolute time carries no information because ``t0`` is random), so its spike counts cannot separate the
    classes: **chance level = 1 / num_classes** (25 % by default). With per-synapse delays
    ``d_i = span - offsets[k, i]`` the class-``k`` spikes arrive together at ``t0 + span``: one coincidence
    detector per class solves it.
    """
    n = check_int(n, "n", minimum=1)
    num_classes = check_int(num_classes, "num_classes", minimum=2)
    channels = check_int(channels, "channels", minimum=2)
    gap = check_int(gap, "gap", minimum=1)
    offsets = coincidence_patterns(num_classes, channels, gap)
    span = (channels - 1) * gap
    time_steps = check_int(time_steps, "time_steps", minimum=2 * span + 1)
    g = _gen(seed)
    y = torch.arange(n) % num_classes
    y = y[torch.randperm(n, generator=g)]
    t0 = torch.randint(0, time_steps - 2 * span, (n,), generator=g)
    x = torch.zeros(n, time_steps, channels)
    times = t0.unsqueeze(1) + offsets[y]  # [n, channels]
    x[torch.arange(n).unsqueeze(1), times, torch.arange(channels).unsqueeze(0)] = 1.0
    return x, y


def make_spike_pattern(
    *,
    seed: int = 0,
    time_steps: int = 100,
    in_channels: int = 40,
    out_channels: int = 4,
    in_rate: float = 0.05,
    spikes_per_output: int = 3,
    min_interval: int = 10,
) -> tuple[Tensor, Tensor]:
    """Spike-pattern association: ``(x [1, T, in_channels], target [1, T, out_channels])``.

    ``x``: independent Bernoulli spike trains of probability ``in_rate`` per step (at least one input spike in
    the first fifth of the sequence, so early targets are reachable). ``target``: each output channel fires
    ``spikes_per_output`` spikes at random times in ``[T // 5, T)``, at least ``min_interval`` steps apart (SRM
    and LIF neurons cannot fire bursts on demand). Score with :func:`match_spike_times` (within 1 step)."""
    time_steps = check_int(time_steps, "time_steps", minimum=10)
    in_channels = check_int(in_channels, "in_channels", minimum=1)
    out_channels = check_int(out_channels, "out_channels", minimum=1)
    in_rate = check_number(in_rate, "in_rate", positive=True)
    spikes_per_output = check_int(spikes_per_output, "spikes_per_output", minimum=1)
    min_interval = check_int(min_interval, "min_interval", minimum=1)
    lo = time_steps // 5
    if lo + (spikes_per_output - 1) * min_interval >= time_steps:
        raise ValueError(
            f"{spikes_per_output} target spikes {min_interval} steps apart do not fit in [{lo}, {time_steps}); "
            "lower spikes_per_output or min_interval, or raise time_steps"
        )
    g = _gen(seed)
    x = (torch.rand(1, time_steps, in_channels, generator=g) < in_rate).float()
    x[0, torch.randint(0, lo, (1,), generator=g), torch.randint(0, in_channels, (1,), generator=g)] = 1.0
    target = torch.zeros(1, time_steps, out_channels)
    free = time_steps - lo - (spikes_per_output - 1) * min_interval  # sample gaps "stars and bars" style
    for c in range(out_channels):
        base = torch.sort(torch.randint(0, free, (spikes_per_output,), generator=g)).values
        times = lo + base + torch.arange(spikes_per_output) * min_interval
        target[0, times, c] = 1.0
    return x, target


class PlantedDelays(NamedTuple):
    """Data of :func:`make_planted_delays`."""

    x: Tensor  # [n, T, in] input spike trains
    y: Tensor  # [n, T, out] the teacher's output current
    delays: Tensor  # [out, in] int64 planted delays
    weight: Tensor  # [out, in] the teacher's weights


def make_planted_delays(
    n: int,
    *,
    seed: int = 0,
    in_channels: int = 8,
    out_channels: int = 4,
    max_delay: int = 10,
    time_steps: int = 60,
    rate: float = 0.1,
) -> PlantedDelays:
    """Planted-delay recovery: a teacher ``y[t, o] = sum_i W[o, i] x[t - D[o, i], i]`` with integer delays
    ``D`` uniform in ``0 .. max_delay`` and weights ``W`` of magnitude in ``[0.5, 1.5]`` with random sign
    (no synapse is too weak to identify) turns Bernoulli(``rate``) input spike trains into target currents.
    A student ``DelayedLinear(in, out, max_delay, per="synapse")`` fitted to ``(x, y)`` should recover ``D``."""
    n = check_int(n, "n", minimum=1)
    in_channels = check_int(in_channels, "in_channels", minimum=1)
    out_channels = check_int(out_channels, "out_channels", minimum=1)
    max_delay = check_int(max_delay, "max_delay", minimum=0)
    time_steps = check_int(time_steps, "time_steps", minimum=max_delay + 1)
    rate = check_number(rate, "rate", positive=True)
    g = _gen(seed)
    delays = torch.randint(0, max_delay + 1, (out_channels, in_channels), generator=g)
    sign = torch.where(torch.rand(out_channels, in_channels, generator=g) < 0.5, -1.0, 1.0)
    weight = sign * (0.5 + torch.rand(out_channels, in_channels, generator=g))
    x = (torch.rand(n, time_steps, in_channels, generator=g) < rate).float()
    y = torch.zeros(n, time_steps, out_channels)
    for o in range(out_channels):
        for i in range(in_channels):
            d = int(delays[o, i])
            y[:, d:, o] += weight[o, i] * x[:, : time_steps - d, i]
    return PlantedDelays(x, y, delays, weight)


def match_spike_times(out: Tensor, target: Tensor, *, tolerance: int = 1) -> tuple[int, int, int]:
    """``(matched, targets, extra)``: how many target spikes have an output spike within ``tolerance`` steps
    (one-to-one, greedy in time per channel), how many target spikes there are, and how many output spikes are
    left unmatched. ``out`` and ``target``: 0/1 spike trains of the same shape, time on dim ``-2``
    (``[T, C]`` or ``[N, T, C]``)."""
    if out.shape != target.shape or out.dim() < 2:
        raise ValueError(f"out {tuple(out.shape)} and target {tuple(target.shape)} must match, [..., T, C]")
    tolerance = check_int(tolerance, "tolerance", minimum=0)
    o2 = out.detach().transpose(-1, -2).reshape(-1, out.shape[-2])
    t2 = target.detach().transpose(-1, -2).reshape(-1, target.shape[-2])
    matched = total = extra = 0
    for o_row, t_row in zip(o2, t2):
        outs = (o_row > 0).nonzero().flatten().tolist()
        used = [False] * len(outs)
        tgts = (t_row > 0).nonzero().flatten().tolist()
        total += len(tgts)
        for tt in tgts:
            best = None
            for j, ot in enumerate(outs):
                if not used[j] and abs(ot - tt) <= tolerance and (best is None or abs(ot - tt) < abs(outs[best] - tt)):
                    best = j
            if best is not None:
                used[best] = True
                matched += 1
        extra += used.count(False)
    return matched, total, extra
