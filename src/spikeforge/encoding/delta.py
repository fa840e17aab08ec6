r"""Delta (send-on-delta, threshold-crossing) modulation of streaming signals, and its inverse.

A reference level :math:`r` follows the signal in steps of :math:`\theta`. At every step ``t``
(with :math:`d_t = x_t - r_{t-1}`):

.. math::
    z^{on}_t = [d_t > \theta], \qquad z^{off}_t = [-d_t > \theta], \qquad
    r_t = r_{t-1} + \theta\,(z^{on}_t - z^{off}_t),

starting from :math:`r_{-1}` = ``initial`` (default: the first sample ``x_0``, so a constant signal is
silent). At most one spike per channel and step, so the reference moves by at most :math:`\theta` per
step (a slew-rate limit). If the signal changes by at most :math:`\theta` per step and
:math:`|x_0 - r_{-1}| \le \theta`, then :math:`|x_t - r_t| \le \theta` for all ``t``: the reconstruction
:math:`\hat x_t = r_{-1} + \theta \sum_{s \le t} (z^{on}_s - z^{off}_s)` (:func:`delta_reconstruct`) stays
within one threshold of the signal. Faster changes are tracked with a lag.

The loop is :func:`spikeforge.scan` over :func:`delta_step`, a pure step on :class:`DeltaState`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from spikeforge._core.checks import check_float_tensor
from spikeforge._core.checks import check_number
from spikeforge._core.checks import check_seq
from spikeforge._core.scan import scan

__all__ = ["DeltaState", "delta_step", "delta", "delta_reconstruct"]


class DeltaState(NamedTuple):
    ref: Tensor  # reference level r [B, ...]


def delta_step(x_t: Tensor, state: DeltaState, threshold: float | Tensor) -> tuple[Tensor, DeltaState]:
    """One send-on-delta step. Returns ``([B, 2, ...] ON/OFF spikes, new_state)``."""
    d = x_t - state.ref
    on = (d > threshold).to(x_t.dtype)
    off = (-d > threshold).to(x_t.dtype)
    return torch.stack([on, off], dim=1), DeltaState(state.ref + threshold * (on - off))


def _check_threshold(threshold: object, like: Tensor) -> float | Tensor:
    if isinstance(threshold, Tensor):
        threshold = check_float_tensor(threshold, "threshold")
        if threshold.numel() == 0 or bool((threshold <= 0).any()):
            raise ValueError("threshold must be > 0 everywhere; give a positive scalar or per-channel tensor")
        try:
            torch.broadcast_shapes(threshold.shape, like.shape)
        except RuntimeError as err:
            raise ValueError(
                f"threshold of shape {tuple(threshold.shape)} does not broadcast to one step {tuple(like.shape)}"
            ) from err
        return threshold.to(like.dtype)
    return check_number(threshold, "threshold", positive=True)


def _initial_ref(initial: float | Tensor | None, x0: Tensor) -> Tensor:
    if initial is None:
        return x0.detach().clone()
    if isinstance(initial, Tensor):
        initial = check_float_tensor(initial, "initial")
        return torch.zeros_like(x0) + initial.to(x0.dtype)
    return torch.full_like(x0, check_number(initial, "initial"))


def delta(
    x_seq: Tensor,
    threshold: float | Tensor,
    *,
    off_spikes: bool = True,
    initial: float | Tensor | None = None,
) -> Tensor:
    """Send-on-delta spikes of a streaming signal (see the module docstring for the equations).

    Args:
        x_seq: signal ``[T, B, ...]``, floating, finite.
        threshold: :math:`\\theta > 0`, a float or a tensor broadcastable to one step ``[B, ...]``.
        off_spikes: if True return ON and OFF channels stacked in dim 2, else the ON channel only
            (the reference still moves down on OFF events; reconstruction needs both channels).
        initial: starting reference level :math:`r_{-1}` (float or tensor); default ``x_seq[0]``.
    Returns:
        ``[T, B, 2, ...]`` (channel 0 = ON, 1 = OFF), or ``[T, B, ...]`` with ``off_spikes=False``.
    """
    x_seq = check_seq(x_seq, "x_seq").detach()
    theta = _check_threshold(threshold, x_seq[0])
    state = DeltaState(_initial_ref(initial, x_seq[0]))
    z, _ = scan(lambda x_t, s: delta_step(x_t, s, theta), x_seq, state)
    return z if off_spikes else z[:, :, 0]


def delta_reconstruct(z_seq: Tensor, threshold: float | Tensor, *, initial: float | Tensor = 0.0) -> Tensor:
    r"""Reference levels :math:`r_t = r_{-1} + \theta \sum_{s \le t}(z^{on}_s - z^{off}_s)` from ON/OFF spikes.

    Args:
        z_seq: ``[T, B, 2, ...]`` as returned by :func:`delta` with ``off_spikes=True``.
        threshold: the ``threshold`` used for encoding.
        initial: the starting reference level used for encoding (pass ``x_seq[0]`` for the default).
    Returns:
        ``[T, B, ...]`` in ``z_seq``'s dtype; within ``threshold`` of the signal under the slew condition.
    """
    z_seq = check_seq(z_seq, "z_seq")
    if z_seq.dim() < 3 or z_seq.shape[2] != 2:
        raise ValueError(
            f"z_seq must be [T, B, 2, ...] with ON/OFF channels in dim 2, got shape {tuple(z_seq.shape)}; "
            "encode with delta(..., off_spikes=True)"
        )
    step0 = z_seq[0, :, 0]
    theta = _check_threshold(threshold, step0)
    return _initial_ref(initial, step0) + theta * torch.cumsum(z_seq[:, :, 0] - z_seq[:, :, 1], dim=0)
