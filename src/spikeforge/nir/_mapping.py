r"""The one contract between spikeforge's discrete-time neurons and NIR's continuous-time nodes.

Every ``dt`` / ``tau`` / ``R`` conversion of the exporter and the importer goes through this file.

Our neurons (see :mod:`spikeforge.neurons`) advance one step of length ``dt_model`` as::

    V'   = v_rest + beta (V - v_rest) + g I          beta = exp(-dt_model / tau_mem)
    g    = (1 - beta) R   (input_scaling="exact")    g = R   (input_scaling="none")
    z    = H(V' - v_th);  V <- v_reset if z (reset="to_value")

NIR's LIF is ``tau dv/dt = (v_leak - v) + r I``, ``z = v > v_threshold``, ``v <- v_reset``. A NIR
graph carries no time step, so a simulator picks ``dt`` and a *discretization*, the rule that turns
``tau d x/dt = -x + u`` into ``x' = d x + (1 - d) u`` for input ``u`` held over the step:

* ``"exact"`` (default): ``d = exp(-dt / tau)``, the zero-order-hold solution (our neurons);
* ``"euler"``: ``d = 1 - dt / tau`` (forward Euler; what snnTorch, SpikingJelly and Norse use).

Both give the same per-step form, so one table maps every field (``d`` = ``beta`` or ``alpha``):

=================  ====================================  ======================================
NIR field          from spikeforge (export)              to spikeforge (import)
=================  ====================================  ======================================
``tau``            ``tau_of_decay(beta, dt)``            ``beta = decay_of_tau(tau, dt)``
``r``              ``g / (1 - beta)``                    ``g = (1 - beta) r``
``v_leak``         ``v_rest``                            ``v_rest``
``v_threshold``    ``v_th``                              ``v_th``
``v_reset``        ``v_reset`` (reset="to_value")        ``reset="to_value"``
``tau_syn``        ``tau_of_decay(alpha, dt)``           ``alpha = decay_of_tau(tau_syn, dt)``
``w_in``           ``1 / (1 - alpha)`` (input adds 1:1)  must equal ``1 / (1 - alpha)``
IF ``r``           ``(dt_model / c_mem) / dt``           ``c_mem = dt_model / (r dt)``
=================  ====================================  ======================================

What NIR cannot express raises :class:`NIRExportError`, unless the caller opts into a named entry
of :data:`APPROXIMATIONS`, which then emits :class:`NIRApproximationWarning`:

* ``"subtract_as_reset"``: reset by subtraction (``V -= v_th - v_reset``) is written as reset to
  ``v_reset``; spikes change whenever ``V'`` overshoots the threshold.

Reset ``"none"`` *is* expressible: an LIF/IF without reset is exported as ``LI``/``I`` followed by
a ``Threshold`` node, and such pairs are fused back on import.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import cast

import numpy as np
import torch
from torch import Tensor

from spikeforge._core.discretize import decay
from spikeforge._core.discretize import tau_from_decay

__all__ = [
    "DISCRETIZATIONS", "APPROXIMATIONS", "NIRApproximationWarning", "NIRExportError", "NIRImportError",
    "check_discretization", "check_approximations", "approximate", "decay_of_tau", "tau_of_decay", "tau_to_nir",
    "tau_from_nir", "r_from_gain", "gain_from_nir", "synapse_w_in", "if_r_to_nir", "if_c_mem_from_nir",
]  # fmt: skip

DISCRETIZATIONS: tuple[str, ...] = ("exact", "euler")
APPROXIMATIONS: dict[str, str] = {
    "subtract_as_reset": "reset by subtraction is written as reset to v_reset (NIR has no subtractive reset)",
}


class NIRApproximationWarning(RuntimeWarning):
    """A NIR export used an approximation the caller opted into; spikes may differ from the model."""


class NIRExportError(ValueError):
    """The model holds something NIR cannot express (and no approximation was allowed for it)."""


class NIRImportError(ValueError):
    """The NIR graph holds a node or a parameter spikeforge cannot represent; nothing was built."""


def check_discretization(discretization: str) -> str:
    if discretization not in DISCRETIZATIONS:
        raise ValueError(f"unknown discretization {discretization!r}; choose one of {DISCRETIZATIONS}")
    return discretization


def check_approximations(names: Iterable[str]) -> frozenset[str]:
    if isinstance(names, str):
        raise TypeError(f"approximate must be a tuple of names, e.g. ({names!r},), not a bare string")
    out = frozenset(names)
    unknown = sorted(out - set(APPROXIMATIONS))
    if unknown:
        raise ValueError(f"unknown approximation(s) {unknown}; known: {sorted(APPROXIMATIONS)}")
    return out


def approximate(name: str, allowed: frozenset[str], where: str, what: str) -> None:
    """Raise :class:`NIRExportError` unless ``name`` is allowed; if it is, warn."""
    if name not in allowed:
        raise NIRExportError(
            f"{where}: {what} cannot be expressed in NIR; change the model, or pass "
            f"approximate=({name!r},) to accept: {APPROXIMATIONS[name]}"
        )
    warnings.warn(f"{where}: {APPROXIMATIONS[name]}", NIRApproximationWarning, stacklevel=4)


def _f64(x: np.ndarray | float) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def decay_of_tau(tau: np.ndarray, dt: float, discretization: str) -> np.ndarray:
    """Per-step decay ``d`` of ``tau dx/dt = -x + u`` under ``discretization``."""
    tau = _f64(tau)
    if discretization == "exact":
        return cast(Tensor, decay(torch.from_numpy(tau), dt)).numpy()  # a tensor tau gives a tensor decay
    return 1.0 - dt / tau


def tau_of_decay(d: np.ndarray, dt: float, discretization: str) -> np.ndarray:
    """Inverse of :func:`decay_of_tau`; ``d`` must lie in (0, 1)."""
    d = _f64(d)
    if discretization == "exact":
        return cast(Tensor, tau_from_decay(torch.from_numpy(d), dt)).numpy()  # tensor in, tensor out
    if bool(((d <= 0) | (d >= 1)).any()):
        raise ValueError(f"decay must lie in (0, 1) to define a finite tau, got {d}")
    return dt / (1.0 - d)


def tau_to_nir(tau_mem: np.ndarray, dt_model: float, dt: float, discretization: str) -> np.ndarray:
    """NIR ``tau`` of a neuron with time constant ``tau_mem`` stepped at ``dt_model``, for a NIR step ``dt``."""
    tau_mem = _f64(tau_mem)
    if discretization == "exact":
        return tau_mem * (dt / dt_model)  # = tau_of_decay(decay(tau_mem, dt_model), dt), without round-off
    return tau_of_decay(decay_of_tau(tau_mem, dt_model, "exact"), dt, discretization)


def tau_from_nir(tau: np.ndarray, dt: float, discretization: str) -> np.ndarray:
    """Our ``tau_mem`` (for a neuron stepped at ``dt``) that reproduces NIR ``tau`` under ``discretization``."""
    tau = _f64(tau)
    if not bool((np.isfinite(tau) & (tau > 0)).all()):
        raise ValueError(f"time constants must be finite and > 0, got {tau}")
    if discretization == "exact":
        return tau
    d = decay_of_tau(tau, dt, discretization)
    if bool((d <= 0).any()):
        raise ValueError(f"euler needs tau > dt = {dt} (decay 1 - dt/tau in (0, 1)), got tau {tau.min()}")
    return tau_of_decay(d, dt, "exact")


def r_from_gain(beta: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """NIR ``r`` of a leaky membrane with decay ``beta`` and per-step input gain ``g`` (inverse of
    :func:`gain_from_nir`); the gain itself comes from the neuron family (``spikeforge.neurons.lif.input_gain``)."""
    beta = _f64(beta)
    return np.broadcast_to(_f64(gain) / (1.0 - beta), beta.shape).copy()


def gain_from_nir(beta: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Per-step input gain ``g = (1 - beta) r`` a NIR leaky node implies."""
    return (1.0 - _f64(beta)) * _f64(r)


def synapse_w_in(alpha: np.ndarray) -> np.ndarray:
    """NIR ``w_in`` for which ``I' = alpha I + (1 - alpha) w_in x`` adds the input 1:1 (our CubaLIF)."""
    return 1.0 / (1.0 - _f64(alpha))


def if_r_to_nir(c_mem: float, dt_model: float, dt: float) -> float:
    """NIR IF ``r`` (``dv/dt = r I``, so ``v' = v + dt r I``) of our IF with gain ``dt_model / c_mem``."""
    return (dt_model / c_mem) / dt


def if_c_mem_from_nir(r: float, dt: float) -> float:
    """Our IF ``c_mem`` (with the neuron stepped at ``dt``) for NIR IF resistance ``r``."""
    if not (np.isfinite(r) and r > 0):
        raise ValueError(f"IF r must be finite and > 0, got {r}")
    return 1.0 / r
