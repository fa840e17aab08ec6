r"""Latency (time-to-first-spike) coding of Yin-Yang inputs, as in Göltz et al. 2021 and Kriener et al. 2022.

Each feature :math:`x \in [0, 1]` of a Yin-Yang sample :math:`(x, y, 1-x, 1-y)` becomes one input spike at

.. math:: t = s \left[t_{early} + x\,(t_{late} - t_{early})\right]

(small values spike early), with the constants of the reference implementation of Göltz et al. 2021
(github.com/JulianGoeltz/fastAndDeep, ``src/datasets.py`` ``YinYangDataset`` and
``experiment_configs/yin_yang.yaml``), in units of :math:`\tau_s` (``s = time_scale`` converts to other units,
e.g. ``time_scale=5.0`` for :math:`\tau_s = 5` ms):

* :data:`T_EARLY` ``= 0.15``, :data:`T_LATE` ``= 2.0``;
* one **bias spike** at :data:`T_BIAS` ``= 0.9`` appended to the input of *every* layer (``bias_times: [0.9]``,
  ``n_biases: [1, 1]``), which :class:`spikeforge.exact.ttfs.TTFSNetwork` does itself (``bias_times=(0.9,)``).

Dataset: L. Kriener, J. Göltz, M. A. Petrovici, "The Yin-Yang dataset", NICE 2022, arXiv:2102.08211 (generator:
:mod:`spikeforge.data.yinyang`). For a network that takes its bias spikes from the input instead (e.g. an EventProp
network), pass ``bias_times`` here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["T_EARLY", "T_LATE", "T_BIAS", "latency_times", "yinyang_spike_times", "append_bias_spikes"]

#: Spike time of a feature equal to 0 (units of ``tau_syn``; Göltz et al. 2021).
T_EARLY = 0.15
#: Spike time of a feature equal to 1.
T_LATE = 2.0
#: Bias-spike time of every layer.
T_BIAS = 0.9


def _as_tensor(x: object, name: str) -> Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be floating point, got {x.dtype}; convert it with .double()")
    return x


def latency_times(x: Tensor, *, t_early: float = T_EARLY, t_late: float = T_LATE, time_scale: float = 1.0) -> Tensor:
    """Map values in ``[0, 1]`` linearly to spike times ``time_scale * (t_early + x (t_late - t_early))``.

    Raises:
        ValueError: a value outside ``[0, 1]`` or NaN, or not ``0 <= t_early < t_late`` finite, or
            ``time_scale <= 0``.
    """
    x = _as_tensor(x, "x")
    if not (math.isfinite(t_early) and math.isfinite(t_late) and 0.0 <= t_early < t_late):
        raise ValueError(f"need finite 0 <= t_early < t_late, got t_early={t_early}, t_late={t_late}")
    if not (math.isfinite(time_scale) and time_scale > 0):
        raise ValueError(f"time_scale must be finite and > 0, got {time_scale}")
    if x.numel() and not bool(((x >= 0) & (x <= 1)).all()):
        raise ValueError("values to latency-code must lie in [0, 1] (NaN is rejected too); rescale them first")
    return time_scale * (t_early + x * (t_late - t_early))


def append_bias_spikes(times: Tensor, bias_times: Sequence[float]) -> Tensor:
    """``[B, N]`` -> ``[B, N + len(bias_times)]``: the same bias spikes appended to every sample."""
    times = _as_tensor(times, "times")
    if times.dim() != 2:
        raise ValueError(f"times must be [B, N], got shape {tuple(times.shape)}")
    bias = torch.tensor([float(b) for b in bias_times], dtype=times.dtype, device=times.device)
    if not bool(torch.isfinite(bias).all()):
        raise ValueError(f"bias_times must be finite, got {tuple(bias_times)}")
    return torch.cat([times, bias.expand(times.shape[0], -1)], dim=1)


def yinyang_spike_times(
    features: Tensor | np.ndarray,
    *,
    t_early: float = T_EARLY,
    t_late: float = T_LATE,
    time_scale: float = 1.0,
    bias_times: Sequence[float] = (),
) -> Tensor:
    """Latency-code Yin-Yang features ``[N, 4]`` (``x, y, 1-x, 1-y`` in ``[0, 1]``) into input spike times.

    Args:
        features: ``[N, 4]`` from :func:`spikeforge.data.yinyang.make_yinyang` (numpy or torch).
        t_early, t_late: times of the values 0 and 1 (defaults: Göltz et al. 2021, units of ``tau_syn``).
        time_scale: multiplies every time (including ``bias_times``): the length of ``tau_syn`` in your units.
        bias_times: bias spikes to append (in units of ``tau_syn``); default none, since
            :class:`~spikeforge.exact.ttfs.TTFSNetwork` adds :data:`T_BIAS` per layer itself.

    Returns:
        ``[N, 4 + len(bias_times)]`` spike times in the dtype of ``features``.
    """
    feats = _as_tensor(features, "features")
    if feats.dim() != 2 or feats.shape[1] != 4:
        raise ValueError(f"features must be [N, 4] (x, y, 1-x, 1-y), got shape {tuple(feats.shape)}")
    times = latency_times(feats, t_early=t_early, t_late=t_late, time_scale=time_scale)
    return append_bias_spikes(times, [time_scale * float(b) for b in bias_times])
