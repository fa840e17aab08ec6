r"""Current-based LIF: an exponentially decaying synaptic current drives a LIF membrane.

Continuous time::

    tau_syn dI/dt = -I + sum_k w_k s_k(t)          (input spikes add charge to I)
    tau_mem dV/dt = -(V - v_rest) + R I

Discrete time (``alpha = exp(-dt / tau_syn)``, ``beta = exp(-dt / tau_mem)``)::

    I[t+1] = alpha I[t] + x[t]
    V'     = v_rest + beta (V[t] - v_rest) + g I[t+1]       g as in LIF ("exact": (1 - beta) R)
    z[t]   = H(V' - v_th);   V[t+1] = reset(V', z[t])

The membrane integrates the *updated* current, so an input affects the membrane in the same step
(the convention of snnTorch's ``Synaptic``; NIR's CubaLIF also feeds the current into the voltage).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from typing import NamedTuple

import torch
from torch import Tensor

from spikeforge._core.compat import Unpack
from spikeforge._core.discretize import decay
from spikeforge._core.spike import SurrogateLike
from spikeforge.neurons._family import LeakyOptions
from spikeforge.neurons._family import LIFFamily
from spikeforge.neurons._family import fire
from spikeforge.neurons._family import integrate
from spikeforge.neurons._family import leak
from spikeforge.neurons.base import register_neuron

__all__ = ["CubaLIFParams", "CubaLIFState", "cuba_lif_init", "cuba_lif_step", "CubaLIF"]


class CubaLIFParams(NamedTuple):
    tau_mem: float | Tensor = 10.0
    tau_syn: float | Tensor = 5.0
    v_rest: float | Tensor = 0.0
    v_th: float | Tensor = 1.0
    v_reset: float | Tensor = 0.0
    r: float | Tensor = 1.0
    reset: str = "subtract"
    input_scaling: str = "exact"


class CubaLIFState(NamedTuple):
    v: Tensor  # membrane [B, ...]
    i: Tensor  # synaptic current [B, ...]


def cuba_lif_init(x_t: Tensor, p: CubaLIFParams) -> CubaLIFState:
    return CubaLIFState(v=torch.zeros_like(x_t) + p.v_rest, i=torch.zeros_like(x_t))


def cuba_lif_step(
    x_t: Tensor,
    state: CubaLIFState,
    p: CubaLIFParams,
    *,
    dt: float,
    surrogate: SurrogateLike,
    detach_reset: bool = True,
) -> tuple[Tensor, CubaLIFState]:
    i = decay(p.tau_syn, dt) * state.i + x_t
    beta, gain = leak(p.tau_mem, p.r, p.input_scaling, dt)
    z, v = fire(integrate(state.v, i, beta, p.v_rest, gain), p.v_th, p.v_reset, p.reset, surrogate, detach_reset)
    return z, CubaLIFState(v, i)


@register_neuron("cuba_lif")
class CubaLIF(LIFFamily):
    """Current-based LIF layer: :class:`~spikeforge.neurons.LIF` plus the synaptic time constant ``tau_syn``
    (trainable with ``learn_tau`` as ``tau_mem``). Options as :class:`~spikeforge.neurons.LIFFamily`."""

    State = CubaLIFState
    Params = CubaLIFParams
    init_fn = staticmethod(cuba_lif_init)
    step_fn = staticmethod(cuba_lif_step)

    def __init__(
        self,
        tau_mem: float | Tensor = 10.0,
        tau_syn: float | Tensor = 5.0,
        *,
        learn_tau: bool = False,
        size: int | None = None,
        **options: Unpack[LeakyOptions],
    ) -> None:
        super().__init__({"tau_mem": tau_mem, "tau_syn": tau_syn}, learn_tau=learn_tau, size=size, **options)

    def _spec_fields(self, value: Callable[[str], Any]) -> dict[str, Any]:
        return {"has_syn": True, "alpha": decay(value("tau_syn"), self.dt)}
