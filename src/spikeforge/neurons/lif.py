r"""Leaky integrate-and-fire neuron.

Continuous time: ``tau_mem dV/dt = -(V - v_rest) + R I(t)``; spike when ``V > v_th``, then reset.

Discrete time (exact for ``I`` constant over a step, ``beta = exp(-dt / tau_mem)``)::

    V'     = v_rest + beta (V[t] - v_rest) + g I[t]     g = (1 - beta) R   ("exact", default)
                                                        g = R              ("none": raw input, snnTorch-style)
    z[t]   = H(V' - v_th)                               strict: no spike at V' == v_th
    V[t+1] = reset(V', z[t])                            "to_value" | "subtract" | "none"

Reset to value sets ``V = v_reset`` (use ``v_reset = v_rest`` for the classic LIF); reset by subtraction
removes ``v_th - v_reset``. ``detach_reset=True`` (default) keeps the reset out of the autograd graph.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from spikeforge._core.compat import Unpack
from spikeforge._core.spike import SurrogateLike
from spikeforge.neurons._family import INPUT_SCALINGS
from spikeforge.neurons._family import OPTION_DEFAULTS
from spikeforge.neurons._family import LeakyOptions
from spikeforge.neurons._family import LIFFamily
from spikeforge.neurons._family import fire
from spikeforge.neurons._family import input_gain
from spikeforge.neurons._family import integrate
from spikeforge.neurons._family import leak
from spikeforge.neurons._family import tau_or_beta
from spikeforge.neurons.base import register_neuron

__all__ = ["LIFParams", "LIFState", "lif_init", "lif_step", "LIF", "input_gain", "INPUT_SCALINGS"]


class LIFParams(NamedTuple):
    tau_mem: float | Tensor = 10.0  # membrane time constant, unit of dt
    v_rest: float | Tensor = 0.0
    v_th: float | Tensor = 1.0
    v_reset: float | Tensor = 0.0
    r: float | Tensor = 1.0  # membrane resistance
    reset: str = "subtract"  # "to_value" | "subtract" | "none"
    input_scaling: str = "exact"  # "exact": (1 - beta) R I ; "none": R I


class LIFState(NamedTuple):
    v: Tensor  # membrane potential [B, ...]


def lif_init(x_t: Tensor, p: LIFParams) -> LIFState:
    return LIFState(v=torch.zeros_like(x_t) + p.v_rest)


def lif_step(
    x_t: Tensor, state: LIFState, p: LIFParams, *, dt: float, surrogate: SurrogateLike, detach_reset: bool = True
) -> tuple[Tensor, LIFState]:
    """One LIF step. ``x_t``: input current ``[B, ...]``. Returns ``(spikes, new_state)``."""
    beta, gain = leak(p.tau_mem, p.r, p.input_scaling, dt)
    v = integrate(state.v, x_t, beta, p.v_rest, gain)
    z, v = fire(v, p.v_th, p.v_reset, p.reset, surrogate, detach_reset)
    return z, LIFState(v)


@register_neuron("lif")
class LIF(LIFFamily):
    """LIF layer over ``[T, B, ...]`` inputs. See the module docstring for the equations.

    Args:
        tau_mem: membrane time constant (> 0, unit of ``dt``). Give either this or ``beta``.
        beta: decay factor per step in (0, 1); converted to ``tau_mem = -dt / ln(beta)``.
        learn_tau: make ``tau_mem`` trainable (kept positive through a log).
        size: per-neuron parameters of this size (last input dim) instead of scalars.
        **options: ``dt, v_rest, v_th, v_reset, r, reset, input_scaling, surrogate, detach_reset,
            learn_threshold, backend``, see :class:`~spikeforge.neurons.LIFFamily` (defaults: ``dt=1``,
            ``v_rest=0``, ``v_th=1``, ``v_reset=0``, ``r=1``, ``reset="subtract"``, ``input_scaling="exact"``,
            fast-sigmoid surrogate, ``detach_reset=True``, ``backend="auto"``).
    """

    State = LIFState
    Params = LIFParams
    init_fn = staticmethod(lif_init)
    step_fn = staticmethod(lif_step)

    def __init__(
        self,
        tau_mem: float | Tensor | None = 10.0,
        *,
        beta: float | None = None,
        learn_tau: bool = False,
        size: int | None = None,
        **options: Unpack[LeakyOptions],
    ) -> None:
        tau_mem = tau_or_beta(tau_mem, beta, options.get("dt", OPTION_DEFAULTS["dt"]))
        super().__init__({"tau_mem": tau_mem}, learn_tau=learn_tau, size=size, **options)
