r"""Rate codes: analog current injection, Bernoulli rate code and a discretised Poisson process.

Every function maps a static input ``x`` of shape ``[B, ...]`` to a time-major sequence
``[T, B, ...]`` in ``x``'s dtype and device. Random encoders draw from ``generator`` (keyword-only)
when one is given and never touch the global RNG in that case; with ``generator=None`` they use
torch's default generator, exactly like ``torch.rand``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from spikeforge._core.checks import check_float_tensor
from spikeforge._core.checks import check_generator
from spikeforge._core.checks import check_num_steps
from spikeforge._core.checks import check_number
from spikeforge._core.checks import check_range

__all__ = ["constant", "rate", "poisson", "bernoulli_spikes"]


def constant(x: Tensor, num_steps: int) -> Tensor:
    """Analog current injection: ``x`` repeated at every step (not spikes).

    ``out[t] = x`` for ``t = 0 .. T-1``. The result is a fresh tensor (not an expanded view), so it can
    be modified in place, and it is differentiable with respect to ``x``.

    Args:
        x: input current ``[B, ...]``, floating, finite, any range.
        num_steps: ``T >= 1``.
    Returns:
        ``[T, B, ...]``, same dtype and device as ``x``.
    """
    x = check_float_tensor(x, "x")
    num_steps = check_num_steps(num_steps)
    return x.unsqueeze(0).repeat(num_steps, *([1] * x.dim()))


def bernoulli_spikes(p: Tensor, num_steps: int, *, generator: torch.Generator | None = None) -> Tensor:
    """Independent Bernoulli spikes ``out[t] = [u_t < p]`` with ``u_t ~ U[0, 1)``, ``p`` in ``[0, 1]``.

    Uniforms are drawn in at least float32 precision (so half-precision ``p`` is not quantised to the
    half grid), then the spikes are cast to ``p``'s dtype. ``p = 0`` never spikes, ``p = 1`` always does.
    """
    work = torch.promote_types(p.dtype, torch.float32)
    u = torch.rand((num_steps, *p.shape), generator=generator, dtype=work, device=p.device)
    return (u < p.to(work)).to(p.dtype)


def _checked(
    values: object, name: str, hi: float, num_steps: object, generator: object
) -> tuple[Tensor, int, torch.Generator | None]:
    """The checks shared by the Bernoulli encoders: a float tensor in ``[0, hi]``, ``T >= 1``, a generator."""
    values = check_float_tensor(values, name)
    check_range(values, name, 0.0, hi)
    return values, check_num_steps(num_steps), check_generator(generator, values)


def rate(x: Tensor, num_steps: int, *, gain: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
    r"""Bernoulli rate code: each step spikes independently with probability ``p = gain * x``.

    .. math:: z_t \sim \mathrm{Bernoulli}(g x), \qquad \mathbb{E}[z_t] = g x

    The expected spike count over ``T`` steps is ``T g x`` (binomial variance ``T p (1 - p)``).

    Args:
        x: intensities ``[B, ...]`` in ``[0, 1]``.
        num_steps: ``T >= 1``.
        gain: ``g >= 0``; ``g x`` must stay within ``[0, 1]`` (a ValueError tells you to lower ``gain``
            or clamp ``x`` otherwise; probabilities are never clipped silently).
        generator: optional ``torch.Generator`` on ``x``'s device type.
    Returns:
        Binary spikes ``[T, B, ...]`` in ``x``'s dtype and device.
    """
    gain = check_number(gain, "gain", nonnegative=True)
    x, num_steps, generator = _checked(x, "x", 1.0, num_steps, generator)
    p = x * gain
    if x.numel() and bool((p > 1).any()):
        raise ValueError(
            f"gain * x reaches {float(p.max())} > 1, which is not a probability; lower gain "
            f"(at most {1.0 / float(x.max())} for this input) or clamp x"
        )
    return bernoulli_spikes(p.detach(), num_steps, generator=generator)


def poisson(rate_hz: Tensor, num_steps: int, *, dt: float, generator: torch.Generator | None = None) -> Tensor:
    r"""Discretised homogeneous Poisson process: one Bernoulli trial per bin of length ``dt``.

    A Poisson process of rate :math:`r` has at least one event in a bin of length :math:`\Delta t` with
    probability

    .. math:: p = 1 - e^{-r \Delta t},

    so each step spikes with that probability (at most one spike per bin; for :math:`r \Delta t \ll 1`,
    :math:`p \approx r \Delta t`).

    Units: ``rate_hz`` is in events per unit of time and ``dt`` in that same unit of time, so
    ``rate_hz * dt`` is dimensionless; e.g. rates in Hz (1/s) with ``dt = 1e-3`` for 1 ms bins.

    Args:
        rate_hz: firing rates ``[B, ...]``, finite and ``>= 0`` (``inf`` is rejected).
        num_steps: ``T >= 1``.
        dt: bin length ``> 0`` (keyword-only so the unit is always stated at the call site).
        generator: optional ``torch.Generator`` on ``rate_hz``'s device type.
    Returns:
        Binary spikes ``[T, B, ...]`` in ``rate_hz``'s dtype and device.
    """
    dt = check_number(dt, "dt", positive=True)
    rate_hz, num_steps, generator = _checked(rate_hz, "rate_hz", math.inf, num_steps, generator)
    p = -torch.expm1(-rate_hz.detach() * dt)  # 1 - exp(-r dt), accurate for small r dt
    return bernoulli_spikes(p, num_steps, generator=generator)
