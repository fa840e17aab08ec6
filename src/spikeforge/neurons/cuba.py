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

from typing import NamedTuple

import torch
from torch import Tensor

from spikeforge._core.discretize import check_positive, decay
from spikeforge._core.reset import apply_reset
from spikeforge._core.spike import SurrogateLike, spike
from spikeforge.backends import FusedSpec
from spikeforge.neurons.base import Capabilities, Neuron, register_neuron
from spikeforge.neurons.lif import input_gain, membrane_spec, setup_membrane
from spikeforge.surrogate import Surrogate

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
    beta = decay(p.tau_mem, dt)
    v = p.v_rest + beta * (state.v - p.v_rest) + input_gain(beta, p.r, p.input_scaling) * i
    z = spike(v - p.v_th, surrogate)
    v = apply_reset(v, z.detach() if detach_reset else z, p.v_th, p.v_reset, p.reset)
    return z, CubaLIFState(v, i)


@register_neuron("cuba_lif")
class CubaLIF(Neuron):
    """Current-based LIF layer. Args as :class:`~spikeforge.neurons.LIF` plus ``tau_syn``."""

    State = CubaLIFState
    init_fn = staticmethod(cuba_lif_init)
    step_fn = staticmethod(cuba_lif_step)
    capabilities = Capabilities(lif_family=True, fused=True)

    def __init__(
        self,
        tau_mem: float | Tensor = 10.0,
        tau_syn: float | Tensor = 5.0,
        *,
        dt: float = 1.0,
        v_rest: float = 0.0,
        v_th: float | Tensor = 1.0,
        v_reset: float = 0.0,
        r: float = 1.0,
        reset: str = "subtract",
        input_scaling: str = "exact",
        surrogate: Surrogate | str | None = None,
        detach_reset: bool = True,
        backend: str = "auto",
        learn_tau: bool = False,
        learn_threshold: bool = False,
        size: int | None = None,
    ) -> None:
        super().__init__(dt=dt, surrogate=surrogate, backend=backend)
        check_positive("tau_mem", tau_mem)
        check_positive("tau_syn", tau_syn)
        self._add_param("tau_mem", tau_mem, learnable=learn_tau, size=size, positive=True)
        self._add_param("tau_syn", tau_syn, learnable=learn_tau, size=size, positive=True)
        self._add_param("v_th", v_th, learnable=learn_threshold, size=size)
        setup_membrane(
            self, v_rest=v_rest, v_reset=v_reset, r=r, reset=reset, input_scaling=input_scaling, detach_reset=detach_reset
        )

    def params(self, like: Tensor) -> CubaLIFParams:
        return CubaLIFParams(
            self._get("tau_mem", like),
            self._get("tau_syn", like),
            self.v_rest,
            self._get("v_th", like),
            self.v_reset,
            self.r,
            self.reset,
            self.input_scaling,
        )

    def step_options(self) -> dict[str, bool]:
        return {"detach_reset": self.detach_reset}

    def membrane_spec(self) -> FusedSpec | None:
        if not self._all_float("tau_mem", "tau_syn", "v_th"):
            return None
        return membrane_spec(
            self, float(self.tau_mem), has_syn=True, alpha=decay(float(self.tau_syn), self.dt)
        )
