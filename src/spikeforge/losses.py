r"""Losses on spiking read-outs and activity regularisers.

Shapes: spike or membrane sequences are time-major ``[T, B, C]`` (``C`` classes) for the classification
losses, ``[T, B, ...]`` for the regularisers; ``target`` is ``[B]`` int64 class indices. Every function
returns a scalar tensor in the input's dtype (mean over the batch unless stated otherwise), and
gradients reach the spikes so that surrogate gradients flow to the membranes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from spikeforge._core.checks import check_number
from spikeforge._core.checks import check_seq
from spikeforge.encoding.decode import soft_first_spike_time

__all__ = [
    "rate_cross_entropy", "spike_count_mse", "max_membrane_cross_entropy", "first_spike_time_loss", "spike_l1",
    "rate_l2_per_neuron",
]  # fmt: skip

RateSide = Literal["both", "upper", "lower"]
_SIDES = ("both", "upper", "lower")


def _check_classification(seq: Tensor, target: object, name: str) -> Tensor:
    seq = check_seq(seq, name)
    if seq.dim() != 3:
        raise ValueError(
            f"{name} must be [T, B, C] (time, batch, classes), got shape {tuple(seq.shape)}; "
            "flatten extra dims into C or read out a [T, B, C] layer"
        )
    if seq.shape[1] == 0 or seq.shape[2] == 0:
        raise ValueError(f"{name} has an empty batch or class dim (shape {tuple(seq.shape)}); give B >= 1 and C >= 1")
    if not isinstance(target, Tensor):
        raise TypeError(f"target must be a torch.Tensor of class indices, got {type(target).__name__}")
    if target.dtype != torch.int64:
        raise TypeError(f"target must hold int64 class indices, got {target.dtype}; convert with target.long()")
    if target.shape != seq.shape[1:2]:
        raise ValueError(f"target must have shape [B] = [{seq.shape[1]}] to match {name}, got {tuple(target.shape)}")
    num_classes = seq.shape[2]
    if target.numel() and (bool((target < 0).any()) or bool((target >= num_classes).any())):
        raise ValueError(f"target class indices must lie in [0, {num_classes - 1}] (C = {num_classes})")
    return target


def rate_cross_entropy(z_seq: Tensor, target: Tensor) -> Tensor:
    r"""Cross-entropy with spike counts as logits.

    .. math:: L = \frac{1}{B} \sum_b -\log \operatorname{softmax}(n_b)_{y_b}, \qquad n_{b,c} = \sum_t z_{t,b,c}

    Args:
        z_seq: output spikes ``[T, B, C]``.
        target: class indices ``[B]``, int64.
    """
    target = _check_classification(z_seq, target, "z_seq")
    return F.cross_entropy(z_seq.sum(dim=0), target)


def spike_count_mse(z_seq: Tensor, target: Tensor, *, correct_rate: float = 0.8, incorrect_rate: float = 0.2) -> Tensor:
    r"""Mean squared error between spike counts and target counts.

    .. math::
        L = \frac{1}{BC} \sum_{b,c} (n_{b,c} - \hat n_{b,c})^2, \qquad
        \hat n_{b,c} = T \cdot (\text{correct\_rate if } c = y_b \text{ else incorrect\_rate})

    Rates are spikes per step, in ``[0, 1]``.

    Args:
        z_seq: output spikes ``[T, B, C]``.
        target: class indices ``[B]``, int64.
        correct_rate: target firing probability per step of the correct class.
        incorrect_rate: target firing probability per step of the other classes.
    """
    target = _check_classification(z_seq, target, "z_seq")
    for name, value in (("correct_rate", correct_rate), ("incorrect_rate", incorrect_rate)):
        if not 0.0 <= check_number(value, name) <= 1.0:
            raise ValueError(f"{name} is a firing probability per step and must lie in [0, 1], got {value}")
    num_steps, _, num_classes = z_seq.shape
    one_hot = F.one_hot(target, num_classes).to(z_seq.dtype)
    goal = num_steps * (incorrect_rate + (correct_rate - incorrect_rate) * one_hot)
    return F.mse_loss(z_seq.sum(dim=0), goal)


def max_membrane_cross_entropy(v_seq: Tensor, target: Tensor) -> Tensor:
    r"""Cross-entropy on the maximum over time of a non-spiking read-out's membrane.

    .. math:: L = \frac{1}{B} \sum_b -\log \operatorname{softmax}(m_b)_{y_b}, \qquad m_{b,c} = \max_t v_{t,b,c}

    Args:
        v_seq: read-out membrane potentials ``[T, B, C]`` (e.g. an ``LI`` layer's output).
        target: class indices ``[B]``, int64.
    """
    target = _check_classification(v_seq, target, "v_seq")
    return F.cross_entropy(v_seq.max(dim=0).values, target)


def first_spike_time_loss(
    z_seq: Tensor,
    target: Tensor,
    *,
    tau: float = 1.0,
    reg_weight: float = 0.0,
    reg_tau: float | None = None,
) -> Tensor:
    r"""Time-to-first-spike classification loss (the correct output neuron should fire first).

    With :math:`\hat t_{b,c}` = :func:`~spikeforge.encoding.soft_first_spike_time` (in steps; ``T`` if the
    neuron is silent), the loss is a cross-entropy on the logits :math:`-\hat t / \tau`, as in Mostafa 2017
    and Göltz et al. 2021 ("Fast and energy-efficient neuromorphic deep learning with first-spike times";
    their :math:`\xi\tau_s` is ``tau`` here), plus Göltz et al.'s optional term that pushes the correct
    neuron's spike earlier (:math:`\alpha` = ``reg_weight``, :math:`\beta\tau_s` = ``reg_tau``):

    .. math::
        L = \frac{1}{B}\sum_b \Big[ -\log \frac{e^{-\hat t_{b,y_b}/\tau}}{\sum_c e^{-\hat t_{b,c}/\tau}}
            + \alpha \big(e^{\hat t_{b,y_b}/\tau_r} - 1\big) \Big]

    Gradients reach the spikes through :func:`soft_first_spike_time` (hence, via the surrogate, the
    membranes). The loss is finite for every input, including outputs that never fire (:math:`\hat t = T`):
    the cross-entropy is computed on :math:`-(\hat t - \min_c \hat t)/\tau` (the same value: it is
    shift-invariant), and since :math:`e^{\hat t/\tau_r}` would overflow (float32 beyond
    :math:`\hat t/\tau_r \approx 88`, float16 beyond 11) the exponential is continued linearly, with the
    same value and slope, above a cap at which ``reg_weight`` times it is still finite in the input's dtype
    (about :math:`\ln(\max/8) - \ln(2 + T/\tau_r) - \ln\max(\alpha, 1)`, at least 0; below the cap the
    term is exact). A ``reg_weight`` so large that :math:`8\alpha(2 + T/\tau_r)` exceeds the dtype's range
    raises ``ValueError``.

    Args:
        z_seq: output spikes ``[T, B, C]``.
        target: class indices ``[B]``, int64.
        tau: softmax temperature in steps (``> 0``).
        reg_weight: :math:`\alpha \ge 0` (0 disables the second term).
        reg_tau: :math:`\tau_r > 0` in steps; defaults to ``tau``.
    """
    target = _check_classification(z_seq, target, "z_seq")
    tau = check_number(tau, "tau", positive=True)
    reg_weight = check_number(reg_weight, "reg_weight", nonnegative=True)
    reg_tau = tau if reg_tau is None else check_number(reg_tau, "reg_tau", positive=True)
    t_first = soft_first_spike_time(z_seq)  # [B, C]
    # cross-entropy is shift-invariant: subtracting the earliest time keeps silent outputs (t = T) and tiny
    # tau finite; the clamp keeps the remaining logits (and so the loss) within half the dtype's range
    shifted = t_first - t_first.detach().min(dim=1, keepdim=True).values
    loss = F.cross_entropy((-shifted / tau).clamp(min=torch.finfo(t_first.dtype).min / 2), target)
    if reg_weight > 0:
        t_true = t_first.gather(1, target.unsqueeze(1)).squeeze(1)
        bound = z_seq.shape[0] / reg_tau  # the largest t_true / reg_tau (t_first <= T)
        loss = loss + reg_weight * _expm1_capped(t_true / reg_tau, bound, reg_weight).mean()
    return loss


def _expm1_capped(u: Tensor, bound: float, weight: float) -> Tensor:
    """``expm1(u)`` up to a cap chosen so that ``weight * value`` stays finite for every ``u <= bound`` in
    ``u``'s dtype, continued linearly beyond it (same value and slope at the cap: still increasing, so the
    gradient still pulls the spike earlier)."""
    finfo = torch.finfo(u.dtype)
    if weight * 8.0 * (2.0 + bound) > finfo.max:
        raise ValueError(
            f"reg_weight = {weight} times T / reg_tau = {bound:g} overflows {u.dtype}; lower reg_weight, raise "
            "reg_tau or compute the loss in float32 (z_seq.float())"
        )
    cap = max(0.0, math.log(finfo.max) - math.log(8.0) - math.log(2.0 + bound) - math.log(max(weight, 1.0)))
    over = u > cap
    safe = torch.where(over, torch.full_like(u, cap), u)  # no inf in the unused branch (its gradient is 0)
    return torch.where(over, math.exp(cap) * (1 + (u - cap)) - 1, torch.expm1(safe))


def spike_l1(z_seqs: Tensor | Iterable[Tensor], *, weight: float = 1.0) -> Tensor:
    r"""L1 activity regulariser: total spikes per sample, summed over layers.

    .. math:: L = w \cdot \frac{1}{B} \sum_{\ell} \sum_{t, b, i} z^{(\ell)}_{t,b,i}

    Spikes are non-negative, so the L1 norm is the plain sum; using the sum (not ``abs``) keeps a
    non-zero gradient at silent neurons (``d|z|/dz = 0`` at ``z = 0`` in torch).

    Args:
        z_seqs: one spike tensor ``[T, B, ...]`` or an iterable of per-layer tensors (same ``B``).
        weight: :math:`w \ge 0`.
    """
    weight = check_number(weight, "weight", nonnegative=True)
    seqs = [z_seqs] if isinstance(z_seqs, Tensor) else list(z_seqs)
    if not seqs:
        raise ValueError("spike_l1 got no tensors; pass a [T, B, ...] tensor or a non-empty list of them")
    checked = [check_seq(z, f"z_seqs[{i}]") for i, z in enumerate(seqs)]
    batch = checked[0].shape[1]
    for i, z in enumerate(checked):
        if z.shape[1] != batch:
            raise ValueError(f"all layers must share the batch size B = {batch}; z_seqs[{i}] has B = {z.shape[1]}")
        if z.numel() and bool((z < 0).any()):
            raise ValueError(f"z_seqs[{i}] has negative values; spike_l1 expects non-negative spikes")
    total = torch.stack([z.sum().to(checked[0].dtype) for z in checked]).sum()
    return weight * total / max(batch, 1)


def rate_l2_per_neuron(
    z_seq: Tensor, *, target_rate: float = 0.0, weight: float = 1.0, side: RateSide = "both"
) -> Tensor:
    r"""L2 penalty on each neuron's firing rate (per step, averaged over time and batch).

    .. math::
        r_i = \frac{1}{TB} \sum_{t,b} z_{t,b,i}, \qquad L = w \cdot \frac{1}{N} \sum_i d(r_i)^2

    with :math:`d(r) = r - \nu` (``side="both"``: pull every neuron to ``target_rate`` :math:`\nu`),
    :math:`[r - \nu]_+` (``"upper"``: only neurons firing above the bound, the per-neuron upper bound of
    in the spirit of Zenke & Vogels 2021) or :math:`[\nu - r]_+` (``"lower"``: only neurons below it, against silent
    neurons). ``i`` runs over all ``N`` neurons (every dim after ``B``).

    Args:
        z_seq: spikes ``[T, B, ...]``.
        target_rate: :math:`\nu` in spikes per step, ``[0, 1]``.
        weight: :math:`w \ge 0`.
        side: ``"both"``, ``"upper"`` or ``"lower"``.
    Returns:
        The penalty; 0 for an empty batch or no neurons (like :func:`spike_l1`).
    """
    z_seq = check_seq(z_seq, "z_seq")
    nu = check_number(target_rate, "target_rate")
    if not 0.0 <= nu <= 1.0:
        raise ValueError(f"target_rate is spikes per step and must lie in [0, 1], got {target_rate}")
    weight = check_number(weight, "weight", nonnegative=True)
    if side not in _SIDES:
        raise ValueError(f"unknown side {side!r}; choose one of {_SIDES}")
    if z_seq.numel() == 0:  # an empty batch (or no neurons): nothing to penalise, not NaN (a mean over nothing)
        return weight * z_seq.sum()
    rates = z_seq.mean(dim=(0, 1))
    if side == "both":
        d = rates - nu
    elif side == "upper":
        d = torch.relu(rates - nu)
    elif side == "lower":
        d = torch.relu(nu - rates)
    else:
        raise ValueError(f"unknown side {side!r}; choose one of {_SIDES}")
    return weight * d.pow(2).mean()
