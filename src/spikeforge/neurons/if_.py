r"""Integrate-and-fire neuron (no leak).

Continuous time: ``C dV/dt = I(t)``. Discrete time: ``V' = V[t] + (dt / C) I[t]``, ``z = H(V' - v_th)``,
``V[t+1] = reset(V', z)``. With the defaults ``dt = C = 1`` the input is added as is (ANN-to-SNN
conversion uses IF with reset by subtraction). The membrane starts at 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from typing import NamedTuple

import torch
from torch import Tensor

from spikeforge._core.compat import Unpack
from spikeforge._core.spike import SurrogateLike
from spikeforge.neurons._family import LIFFamily
from spikeforge.neurons._family import SpikeOptions
from spikeforge.neurons._family import fire
from spikeforge.neurons._family import integrate
from spikeforge.neurons.base import register_neuron

__all__ = ["IFParams", "IFState", "if_init", "if_step", "IF"]


class IFParams(NamedTuple):
    v_th: float | Tensor = 1.0
    v_reset: float | Tensor = 0.0
    c_mem: float | Tensor = 1.0  # capacitance; per-step gain is dt / c_mem
    reset: str = "subtract"


class IFState(NamedTuple):
    v: Tensor


def if_init(x_t: Tensor, p: IFParams) -> IFState:
    return IFState(v=torch.zeros_like(x_t))  # starts at 0, not v_reset


def if_step(
    x_t: Tensor, state: IFState, p: IFParams, *, dt: float, surrogate: SurrogateLike, detach_reset: bool = True
) -> tuple[Tensor, IFState]:
    v = integrate(state.v, x_t, None, 0.0, dt / p.c_mem)
    z, v = fire(v, p.v_th, p.v_reset, p.reset, surrogate, detach_reset)
    return z, IFState(v)


@register_neuron("if")
class IF(LIFFamily):
    """Integrate-and-fire layer: :class:`~spikeforge.neurons.LIF` without the leak (so without ``v_rest``,
    ``r``, ``input_scaling``); ``c_mem`` is the capacitance. Other options as
    :class:`~spikeforge.neurons.LIFFamily` (:class:`~spikeforge.neurons._family.SpikeOptions`)."""

    State = IFState
    Params = IFParams
    init_fn = staticmethod(if_init)
    step_fn = staticmethod(if_step)
    leaky = False
    c_mem: float

    def __init__(self, *, c_mem: float = 1.0, size: int | None = None, **options: Unpack[SpikeOptions]) -> None:
        super().__init__({}, size=size, **options)
        self._add_constant(
            "c_mem", c_mem, example=1.0, positive=True, why="the capacitance; the input gain is dt / c_mem"
        )

    def _spec_fields(self, value: Callable[[str], Any]) -> dict[str, Any]:
        return {"beta": 1.0, "v_rest": 0.0, "gain": self.dt / value("c_mem"), "is_if": True}
