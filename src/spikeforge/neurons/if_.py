r"""Integrate-and-fire neuron (no leak).

Continuous time: ``C dV/dt = I(t)``. Discrete time: ``V' = V[t] + (dt / C) I[t]``, ``z = H(V' - v_th)``,
``V[t+1] = reset(V', z)``. With the defaults ``dt = C = 1`` the input is added as is (ANN-to-SNN
conversion uses IF with reset by subtraction). The membrane starts at 0.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from spikeforge._core.discretize import check_positive
from spikeforge._core.reset import apply_reset, check_reset_mode
from spikeforge._core.spike import SurrogateLike, spike
from spikeforge.backends import RESET_CODES, FusedSpec
from spikeforge.neurons.base import Capabilities, Neuron, register_neuron
from spikeforge.surrogate import Surrogate

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
    v = state.v + (dt / p.c_mem) * x_t
    z = spike(v - p.v_th, surrogate)
    v = apply_reset(v, z.detach() if detach_reset else z, p.v_th, p.v_reset, p.reset)
    return z, IFState(v)


@register_neuron("if")
class IF(Neuron):
    """Integrate-and-fire layer. Args as :class:`~spikeforge.neurons.LIF` without the leak; ``c_mem`` is the capacitance."""

    State = IFState
    init_fn = staticmethod(if_init)
    step_fn = staticmethod(if_step)
    capabilities = Capabilities(lif_family=True, fused=True)

    def __init__(
        self,
        *,
        v_th: float | Tensor = 1.0,
        v_reset: float = 0.0,
        c_mem: float = 1.0,
        dt: float = 1.0,
        reset: str = "subtract",
        surrogate: Surrogate | str | None = None,
        detach_reset: bool = True,
        backend: str = "auto",
        learn_threshold: bool = False,
        size: int | None = None,
    ) -> None:
        super().__init__(dt=dt, surrogate=surrogate, backend=backend)
        check_reset_mode(reset)
        check_positive("c_mem", c_mem)
        self._add_param("v_th", v_th, learnable=learn_threshold, size=size)
        self.v_reset, self.c_mem, self.reset, self.detach_reset = float(v_reset), float(c_mem), reset, detach_reset

    def params(self, like: Tensor) -> IFParams:
        return IFParams(v_th=self._get("v_th", like), v_reset=self.v_reset, c_mem=self.c_mem, reset=self.reset)

    def step_options(self) -> dict[str, bool]:
        return {"detach_reset": self.detach_reset}

    def membrane_spec(self) -> FusedSpec | None:
        if not self._all_float("v_th"):
            return None
        return FusedSpec(
            beta=1.0, v_rest=0.0, gain=self.dt / self.c_mem, v_th=float(self.v_th), v_reset=self.v_reset,
            reset=RESET_CODES[self.reset], detach_reset=self.detach_reset, is_if=True,
        )
