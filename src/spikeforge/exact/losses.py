r"""Losses for exact-gradient training on spike times and membrane maxima (Göltz et al. 2021; Cramer et al.
2020; Zenke & Vogels 2021), with equations.

Shapes: output spike times ``t`` are ``[B, C]`` (``+inf`` = the neuron never fired), membrane maxima ``[B, C]``,
``target`` is ``[B]`` int64 class indices. Every loss is the **mean over the batch** and returns a scalar in the
input dtype.

**Silent neurons.** A neuron that never fires has ``t = +inf``. The time losses replace ``+inf`` by the finite
constant ``t_max`` *before* anything else (so ``exp(-inf)`` and ``inf - inf`` never occur): the loss stays finite
even when nothing fires, and its gradient with respect to a silent neuron's time is 0 (the replacement is a
constant). Bringing silent neurons back is the job of the trainer (e.g. weight bumping in
:func:`spikeforge.exact.ttfs_train.fit_ttfs`, as in Göltz et al.). Finite times larger than ``t_max`` are kept.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "first_spike_cross_entropy", "time_regulariser", "max_voltage_cross_entropy", "spike_count_regulariser",
    "silent_to_t_max",
]  # fmt: skip


def _positive(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _check_target(scores: Tensor, target: object, name: str) -> Tensor:
    if not isinstance(scores, Tensor) or not scores.is_floating_point():
        raise TypeError(f"{name} must be a floating-point torch.Tensor [B, C]")
    if scores.dim() != 2 or scores.shape[0] == 0 or scores.shape[1] == 0:
        raise ValueError(f"{name} must be [B, C] with B, C >= 1, got shape {tuple(scores.shape)}")
    if not isinstance(target, Tensor) or target.dtype != torch.int64:
        raise TypeError("target must be an int64 tensor of class indices; convert it with target.long()")
    if target.shape != scores.shape[:1]:
        raise ValueError(f"target must be [B] = [{scores.shape[0]}], got {tuple(target.shape)}")
    if bool((target < 0).any()) or bool((target >= scores.shape[1]).any()):
        raise ValueError(f"target class indices must lie in [0, {scores.shape[1] - 1}]")
    return target


def silent_to_t_max(t: Tensor, t_max: float) -> Tensor:
    """Replace ``+inf`` (never fired) by the finite ``t_max``; reject NaN and ``-inf`` (see the module docstring)."""
    t_max = _positive(t_max, "t_max")
    if bool(torch.isnan(t).any()) or bool((t == -math.inf).any()):
        raise ValueError("spike times contain NaN or -inf; a neuron that never fires must be +inf")
    return torch.where(torch.isinf(t), torch.full_like(t, t_max), t)


def time_regulariser(t: Tensor, target: Tensor, *, t_max: float, alpha: float = 0.005, tau1: float = 1.0) -> Tensor:
    r"""Göltz et al. 2021 regulariser pushing the correct neuron to fire early:

    .. math:: R = \frac{1}{B} \sum_b \alpha \left[\exp\!\left(\frac{t_{b, y_b}}{\tau_1}\right) - 1\right]

    with :math:`\tau_1 = \beta \tau_s` (Göltz: :math:`\alpha = 0.005`, :math:`\beta = 1`). ``+inf`` times count as
    ``t_max``.

    Args:
        t: output spike times ``[B, C]``.
        target: ``[B]`` int64 labels.
        t_max: finite stand-in for ``+inf``.
        alpha: strength (``>= 0``).
        tau1: time scale (``> 0``).
    """
    target = _check_target(t, target, "t")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
    tau1 = _positive(tau1, "tau1")
    t_y = silent_to_t_max(t, t_max).gather(1, target[:, None]).squeeze(1)
    return alpha * torch.expm1(t_y / tau1).mean()


def first_spike_cross_entropy(
    t: Tensor, target: Tensor, *, tau0: float = 0.2, t_max: float, alpha: float = 0.0, tau1: float = 1.0
) -> Tensor:
    r"""First-spike-time cross-entropy of Göltz et al. 2021 (Methods, loss function), with its regulariser:

    .. math::
        L = \frac{1}{B} \sum_b \left[ -\log \frac{\exp(-t_{b, y_b} / \tau_0)}{\sum_c \exp(-t_{b,c} / \tau_0)}
            + \alpha \left(\exp\!\left(\frac{t_{b, y_b}}{\tau_1}\right) - 1\right) \right]

    i.e. a softmax over :math:`-t / \tau_0`: the correct neuron should fire first, by a margin of order
    :math:`\tau_0`. Göltz et al. (Yin-Yang): :math:`\tau_0 = \xi \tau_s` with :math:`\xi = 0.2`,
    :math:`\alpha = 0.005`, :math:`\tau_1 = \beta\tau_s`, :math:`\beta = 1`. Wunderlich & Pehle 2021 train EventProp on
    Yin-Yang with a first-spike loss of this kind. Gradient with respect to a firing neuron:
    :math:`\partial L / \partial t_{b,c} = [\delta_{c y_b} - p_{b,c}] / (B\tau_0) + \delta_{c y_b}\,\alpha
    e^{t_{b,c}/\tau_1} / (B\tau_1)`, :math:`p = \mathrm{softmax}(-t_b/\tau_0)`. ``+inf`` times count as ``t_max``
    (finite loss, zero gradient for them; if nothing fires the loss is :math:`\log C + \alpha(e^{t_{max}/\tau_1}-1)`).

    Args:
        t: output spike times ``[B, C]`` (``+inf`` = silent).
        target: ``[B]`` int64 labels.
        tau0: softmax temperature (time units, ``> 0``).
        t_max: finite stand-in for ``+inf`` (keyword, required: e.g. the simulated time window).
        alpha: regulariser strength (0 disables it).
        tau1: regulariser time scale.
    """
    target = _check_target(t, target, "t")
    tau0 = _positive(tau0, "tau0")
    tt = silent_to_t_max(t, t_max)
    ce = F.cross_entropy(-tt / tau0, target)
    if alpha == 0.0:
        return ce
    return ce + time_regulariser(tt, target, t_max=t_max, alpha=alpha, tau1=tau1)


def max_voltage_cross_entropy(v_max: Tensor, target: Tensor) -> Tensor:
    r"""Max-membrane (voltage) read-out cross-entropy (the "max-over-time" read-out of non-spiking output
    neurons, Cramer et al. 2020, IEEE TNNLS, "The Heidelberg spiking data sets ..."; used with EventProp by Nowotny,
    Turner & Knight 2022, arXiv:2212.01232):

    .. math:: L = \frac{1}{B} \sum_b -\log \frac{\exp(\hat v_{b, y_b})}{\sum_c \exp(\hat v_{b, c})}, \qquad
        \hat v_{b,c} = \max_t v_{b,c}(t)

    The maxima come from the caller (a continuous-time simulation, or ``v_seq.amax(0)`` of a ``[T, B, C]``
    trace); the gradient flows to the maximum of each trace. For a time-major trace see also
    :func:`spikeforge.losses.max_membrane_cross_entropy`.

    Args:
        v_max: ``[B, C]`` membrane maxima (finite).
        target: ``[B]`` int64 labels.
    """
    target = _check_target(v_max, target, "v_max")
    if not bool(torch.isfinite(v_max).all()):
        raise ValueError("v_max contains NaN or inf; membrane maxima of a finite simulation are finite")
    return F.cross_entropy(v_max, target)


def spike_count_regulariser(
    counts: Tensor, *, lower: float = 0.0, upper: float = math.inf, s_lower: float = 1.0, s_upper: float = 1.0
) -> Tensor:
    r"""Spike-count regulariser with a lower and an upper bound per neuron (after Zenke & Vogels 2021, Neural
    Comput. 33(4), "The remarkable robustness of surrogate gradient learning ...", bounds
    :math:`L_{lower}`, :math:`L_{upper}`, here both per neuron):

    .. math:: R = \frac{1}{B} \sum_b \sum_i \left[ s_{l}\, \max(0, \nu_l - n_{b,i})^2
        + s_{u}\, \max(0, n_{b,i} - \nu_u)^2 \right]

    Zero while every count lies in :math:`[\nu_l, \nu_u]`; finite for any finite counts (no spikes at all gives
    :math:`s_l \nu_l^2` per neuron).

    Args:
        counts: ``[B, ...]`` spike counts per sample and neuron (differentiable counts, e.g. summed spikes).
        lower, upper: :math:`\nu_l \le \nu_u` (``upper = inf`` disables the upper bound).
        s_lower, s_upper: strengths (``>= 0``).
    """
    if not isinstance(counts, Tensor) or not counts.is_floating_point() or counts.dim() < 1 or counts.shape[0] == 0:
        raise ValueError("counts must be a floating-point tensor [B, ...] with B >= 1; convert with counts.float()")
    if not bool(torch.isfinite(counts).all()):
        raise ValueError("counts contains NaN or inf")
    if not (math.isfinite(lower) and lower >= 0 and upper >= lower and not math.isnan(upper)):
        raise ValueError(f"need 0 <= lower <= upper, lower finite, got lower={lower}, upper={upper}")
    if s_lower < 0 or s_upper < 0 or not (math.isfinite(s_lower) and math.isfinite(s_upper)):
        raise ValueError(f"s_lower and s_upper must be finite and >= 0, got {s_lower}, {s_upper}")
    flat = counts.reshape(counts.shape[0], -1)
    reg = s_lower * torch.relu(lower - flat).square()
    if math.isfinite(upper):
        reg = reg + s_upper * torch.relu(flat - upper).square()
    return reg.sum(dim=1).mean()
