r"""Non-spiking leaky integrator (readout).

``tau_mem dV/dt = -(V - v_rest) + R I(t)``, discretised exactly as the LIF
(``V[t+1] = v_rest + beta (V[t] - v_rest) + g I[t]``); the output is the membrane ``V[t+1]``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from spikeforge._core.spike import SurrogateLike
from spikeforge.neurons._family import INPUT_SCALINGS
from spikeforge.neurons._family import InputScaling
from spikeforge.neurons._family import check_input_scaling
from spikeforge.neurons._family import integrate
from spikeforge.neurons._family import leak
from spikeforge.neurons._family import tau_or_beta
from spikeforge.neurons.base import Capabilities
from spikeforge.neurons.base import Neuron
from spikeforge.neurons.base import register_neuron

__all__ = ["LIParams", "LIState", "li_init", "li_step", "LI"]


class LIParams(NamedTuple):
    tau_mem: float | Tensor = 10.0
    v_rest: float | Tensor = 0.0
    r: float | Tensor = 1.0
    input_scaling: str = "exact"


class LIState(NamedTuple):
    v: Tensor


def li_init(x_t: Tensor, p: LIParams) -> LIState:
    return LIState(v=torch.zeros_like(x_t) + p.v_rest)


def li_step(
    x_t: Tensor, state: LIState, p: LIParams, *, dt: float, surrogate: SurrogateLike | None = None
) -> tuple[Tensor, LIState]:
    """One step; returns ``(membrane, new_state)``. ``surrogate`` is accepted for a uniform signature."""
    del surrogate
    beta, gain = leak(p.tau_mem, p.r, p.input_scaling, dt)
    v = integrate(state.v, x_t, beta, p.v_rest, gain)
    return v, LIState(v)


@register_neuron("li")
class LI(Neuron):
    """Leaky-integrator readout layer; its output sequence is the membrane potential.

    Args as :class:`~spikeforge.neurons.LIF` without the spike: ``tau_mem`` or ``beta``, ``dt``, ``v_rest``,
    ``r``, ``input_scaling``, ``learn_tau``, ``size``.
    """

    State = LIState
    Params = LIParams
    init_fn = staticmethod(li_init)
    step_fn = staticmethod(li_step)
    capabilities = Capabilities(spiking=False)
    v_rest: float
    r: float
    input_scaling: str

    def __init__(
        self,
        tau_mem: float | Tensor | None = 10.0,
        *,
        beta: float | None = None,
        dt: float = 1.0,
        v_rest: float = 0.0,
        r: float = 1.0,
        input_scaling: InputScaling = "exact",
        learn_tau: bool = False,
        size: int | None = None,
    ) -> None:
        super().__init__(dt=dt, surrogate=None)
        check_input_scaling(input_scaling)
        tau_mem = tau_or_beta(tau_mem, beta, self.dt)
        self._add_param("tau_mem", tau_mem, learnable=learn_tau, size=size, positive=True, example=10.0)
        self._add_constant("v_rest", v_rest, example=0.0)
        self._add_constant("r", r, example=1.0, positive=True, why="the membrane resistance sets the input gain")
        self._set_constant("input_scaling", input_scaling, choices=INPUT_SCALINGS)
