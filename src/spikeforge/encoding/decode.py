r"""Decoders: reduce a time-major sequence ``[T, B, ...]`` to ``[B, ...]``.

``spike_count``, ``spike_rate``, ``max_membrane`` and ``soft_first_spike_time`` are differentiable
(gradients reach the spikes, and through the surrogate the membranes); ``first_spike_time`` is an
integer-valued read-out without gradient.
"""

from __future__ import annotations

import torch
from torch import Tensor

from spikeforge._core.checks import check_seq

__all__ = ["spike_count", "spike_rate", "first_spike_time", "soft_first_spike_time", "max_membrane"]


def spike_count(z_seq: Tensor) -> Tensor:
    r"""Spikes summed over time, :math:`n = \sum_t z_t`. ``[T, B, ...] -> [B, ...]``."""
    return check_seq(z_seq, "z_seq").sum(dim=0)


def spike_rate(z_seq: Tensor) -> Tensor:
    r"""Spikes per step, :math:`\frac{1}{T}\sum_t z_t` (divide by ``dt`` for a rate per unit time)."""
    return check_seq(z_seq, "z_seq").mean(dim=0)


def max_membrane(v_seq: Tensor) -> Tensor:
    r"""Maximum over time, :math:`\max_t v_t` (e.g. of a non-spiking LI read-out). ``[T, B, ...] -> [B, ...]``.

    The gradient flows to the (first) arg-max step only.
    """
    return check_seq(v_seq, "v_seq").max(dim=0).values


def _check_exact_steps(z_seq: Tensor, name: str) -> None:
    """Raise unless ``z_seq``'s dtype holds every step index ``0 .. T`` exactly (float16: ``T <= 2048``,
    bfloat16: ``T <= 256``, float32: ``T <= 2**24``); beyond that, indices would round to their neighbours."""
    num_steps = z_seq.shape[0]
    exact = round(2 / torch.finfo(z_seq.dtype).eps)  # 2**(mantissa bits + 1): the last of the exact integers
    if num_steps > exact:
        wider = "z_seq.double()" if z_seq.dtype == torch.float32 else "z_seq.float()"
        raise ValueError(
            f"{name}: z_seq is {z_seq.dtype}, which holds step indices exactly only up to {exact}, but T = "
            f"{num_steps}; later spike times would be rounded: pass {wider}"
        )


def first_spike_time(z_seq: Tensor, *, no_spike: float | None = None) -> Tensor:
    """Index of the first step with ``z > 0``, as ``z_seq``'s dtype (no gradient).

    Args:
        z_seq: spikes ``[T, B, ...]``.
        no_spike: value for elements that never spike; default ``T`` (one past the last step), which is
            also what :func:`soft_first_spike_time` returns. ``float("inf")`` is allowed.
    Returns:
        ``[B, ...]`` step indices in ``0 .. T-1``, or ``no_spike``.
    Raises:
        ValueError: when ``z_seq``'s dtype cannot hold every index ``0 .. T`` exactly (float16 beyond 2048
            steps, bfloat16 beyond 256): cast ``z_seq`` to float32 first.
    """
    z_seq = check_seq(z_seq, "z_seq")
    _check_exact_steps(z_seq, "first_spike_time")
    num_steps = z_seq.shape[0]
    if no_spike is None:
        no_spike = float(num_steps)
    elif isinstance(no_spike, bool) or not isinstance(no_spike, (int, float)):
        raise TypeError(f"no_spike must be a number or None (meaning T), got {type(no_spike).__name__}")
    fired = z_seq.detach() > 0
    first = fired.to(torch.uint8).argmax(dim=0)  # argmax returns the first maximal index
    out = first.to(z_seq.dtype)
    return torch.where(fired.any(dim=0), out, torch.full_like(out, float(no_spike)))


def soft_first_spike_time(z_seq: Tensor) -> Tensor:
    r"""Differentiable first-spike time whose forward value equals :func:`first_spike_time` on binary spikes.

    .. math::
        \hat t = \sum_{t=0}^{T-1} t\, z_t \prod_{s<t} (1 - z_s) \;+\; T \prod_{t=0}^{T-1} (1 - z_t)

    For binary ``z`` this is the first spike index (``T`` if none). Its derivative at binary ``z`` with
    first spike at ``k`` and next spike at ``k'`` (``T`` if absent) is

    .. math:: \partial \hat t / \partial z_u = u - k \;(u < k), \qquad k - k' \;(u = k), \qquad 0 \;(u > k),

    so a surrogate gradient on an earlier step pulls the spike time earlier and one on the first spike
    pushes it towards the next one. For ``z`` relaxed to ``[0, 1]`` it is the expected first-spike time of
    independent Bernoulli spikes with probabilities ``z``.

    Args:
        z_seq: spikes ``[T, B, ...]`` (binary, or probabilities in ``[0, 1]``).
    Returns:
        ``[B, ...]`` in ``z_seq``'s dtype.
    Raises:
        ValueError: as :func:`first_spike_time`, when the dtype cannot hold every step index exactly.
    """
    z_seq = check_seq(z_seq, "z_seq")
    _check_exact_steps(z_seq, "soft_first_spike_time")
    num_steps = z_seq.shape[0]
    survive = torch.cumprod(1 - z_seq, dim=0)  # prod_{s<=t} (1 - z_s)
    before = torch.cat([torch.ones_like(survive[:1]), survive[:-1]], dim=0)  # prod_{s<t} (1 - z_s)
    t = torch.arange(num_steps, device=z_seq.device).to(z_seq.dtype).view(num_steps, *([1] * (z_seq.dim() - 1)))
    return (t * z_seq * before).sum(dim=0) + num_steps * survive[-1]
