"""Units and discretisation: the only place where ``dt`` meets a time constant.

All time constants and ``dt`` share one (arbitrary) time unit, e.g. milliseconds.

The leaky integrator ODE ``tau dV/dt = -(V - V_rest) + R I(t)`` with ``I`` held constant over a
step of length ``dt`` has the exact solution

    V[t+1] = V_rest + beta * (V[t] - V_rest) + (1 - beta) * R * I[t],   beta = exp(-dt / tau).

``decay`` gives ``beta``; ``tau_from_decay`` inverts it, so a user may give ``beta`` instead of
``tau`` (the "decay-factor form"). The same two functions are what an exporter must use.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["decay", "tau_from_decay", "check_positive"]


def check_positive(name: str, value: float | Tensor) -> None:
    """Raise ``ValueError`` unless ``value`` (a float or tensor) is finite and > 0 everywhere."""
    if isinstance(value, Tensor):
        if value.numel() == 0:
            raise ValueError(f"{name} is an empty tensor; give a positive scalar or per-neuron tensor")
        bad = not bool(torch.isfinite(value.detach()).all()) or bool((value.detach() <= 0).any())
    else:
        try:
            fval = float(value)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be a positive number or tensor, got {type(value).__name__}") from err
        bad = not math.isfinite(fval) or fval <= 0
    if bad:
        raise ValueError(f"{name} must be finite and > 0 (same time unit as dt), got {value!r}")


def decay(tau: float | Tensor, dt: float) -> float | Tensor:
    """Exact per-step decay factor ``beta = exp(-dt / tau)``.

    Args:
        tau: time constant (> 0), a float or a tensor broadcastable to the neuron shape.
        dt: time step (> 0), same unit as ``tau``.
    Returns:
        ``beta`` with the type of ``tau`` (float for float, tensor for tensor).
    """
    if isinstance(tau, Tensor):
        return torch.exp(-dt / tau)
    return math.exp(-dt / tau)


def tau_from_decay(beta: float | Tensor, dt: float) -> float | Tensor:
    """Inverse of :func:`decay`: ``tau = -dt / ln(beta)`` for ``0 < beta < 1``."""
    if isinstance(beta, Tensor):
        if bool(((beta <= 0) | (beta >= 1)).any()):
            raise ValueError(f"beta must lie in (0, 1) to define a finite tau, got {beta}")
        return -dt / torch.log(beta)
    if not 0.0 < float(beta) < 1.0:
        raise ValueError(f"beta must lie in (0, 1) to define a finite tau, got {beta}")
    return -dt / math.log(beta)
