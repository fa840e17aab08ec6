r"""Adaptive LIF with threshold adaptation (Bellec et al. 2018, "Long short-term memory and
learning-to-learn in networks of spiking neurons", LSNN).

Discrete time (``beta = exp(-dt / tau_mem)``, ``rho = exp(-dt / tau_adapt)``)::

    A[t]   = v_th + b a[t]                      adaptive threshold (b = ``adapt``, Bellec's beta)
    V'     = v_rest + beta (V[t] - v_rest) + g I[t]
    z[t]   = H(V' - A[t])
    V[t+1] = reset(V', z[t]) with threshold A[t]   ("subtract" removes A[t] - v_reset)
    a[t+1] = rho a[t] + (1 - rho) z[t]          Bellec et al. 2018, Methods
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

__all__ = ["ALIFParams", "ALIFState", "alif_init", "alif_step", "ALIF"]


class ALIFParams(NamedTuple):
    tau_mem: float | Tensor = 20.0
    tau_adapt: float | Tensor = 200.0
    adapt: float | Tensor = 1.8  # threshold increment per unit adaptation (Bellec et al. 2018: beta = 1.8)
    v_rest: float | Tensor = 0.0
    v_th: float | Tensor = 1.0
    v_reset: float | Tensor = 0.0
    r: float | Tensor = 1.0
    reset: str = "subtract"
    input_scaling: str = "exact"


class ALIFState(NamedTuple):
    v: Tensor  # membrane
    a: Tensor  # adaptation variable (>= 0)


def alif_init(x_t: Tensor, p: ALIFParams) -> ALIFState:
    return ALIFState(v=torch.zeros_like(x_t) + p.v_rest, a=torch.zeros_like(x_t))


def alif_step(
    x_t: Tensor,
    state: ALIFState,
    p: ALIFParams,
    *,
    dt: float,
    surrogate: SurrogateLike,
    detach_reset: bool = True,
) -> tuple[Tensor, ALIFState]:
    beta = decay(p.tau_mem, dt)
    rho = decay(p.tau_adapt, dt)
    threshold = p.v_th + p.adapt * state.a
    v = p.v_rest + beta * (state.v - p.v_rest) + input_gain(beta, p.r, p.input_scaling) * x_t
    z = spike(v - threshold, surrogate)
    v = apply_reset(v, z.detach() if detach_reset else z, threshold, p.v_reset, p.reset)
    a = rho * state.a + (1 - rho) * z
    return z, ALIFState(v, a)


@register_neuron("alif")
class ALIF(Neuron):
    """Adaptive-threshold LIF layer. Args as LIF plus ``tau_adapt`` and ``adapt`` (threshold increment)."""

    State = ALIFState
    init_fn = staticmethod(alif_init)
    step_fn = staticmethod(alif_step)
    capabilities = Capabilities(lif_family=True, fused=True)

    def __init__(
        self,
        tau_mem: float | Tensor = 20.0,
        tau_adapt: float | Tensor = 200.0,
        adapt: float | Tensor = 1.8,
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
        check_positive("tau_adapt", tau_adapt)
        self._add_param("tau_mem", tau_mem, learnable=learn_tau, size=size, positive=True)
        self._add_param("tau_adapt", tau_adapt, learnable=learn_tau, size=size, positive=True)
        self._add_param("adapt", adapt, size=size)
        self._add_param("v_th", v_th, learnable=learn_threshold, size=size)
        setup_membrane(
            self, v_rest=v_rest, v_reset=v_reset, r=r, reset=reset, input_scaling=input_scaling, detach_reset=detach_reset
        )

    def params(self, like: Tensor) -> ALIFParams:
        return ALIFParams(
            self._get("tau_mem", like),
            self._get("tau_adapt", like),
            self._get("adapt", like),
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
        if not self._all_float("tau_mem", "tau_adapt", "adapt", "v_th"):
            return None
        return membrane_spec(
            self, float(self.tau_mem), has_adapt=True, adapt=float(self.adapt), rho=decay(float(self.tau_adapt), self.dt)
        )
