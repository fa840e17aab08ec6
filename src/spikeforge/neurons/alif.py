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

__all__ = ["ALIFParams", "ALIFState", "alif_init", "alif_step", "ALIF"]


class ALIFParams(NamedTuple):
    tau_mem: float | Tensor = 20.0
    tau_adapt: float | Tensor = 200.0
    adapt: float | Tensor = 1.8  # threshold increment per unit adaptation (Bellec et al. 2018: beta = 1.8)
    v_rest: float | Tensor = 0.0
    v_th: float | Tensor = 1.0  # baseline threshold; the threshold of step t is v_th + adapt a[t]
    v_reset: float | Tensor = 0.0
    r: float | Tensor = 1.0
    reset: str = "subtract"  # "subtract" removes the adaptive threshold minus v_reset
    input_scaling: str = "exact"


class ALIFState(NamedTuple):
    v: Tensor  # membrane
    a: Tensor  # adaptation variable (>= 0)


def alif_init(x_t: Tensor, p: ALIFParams) -> ALIFState:
    return ALIFState(v=torch.zeros_like(x_t) + p.v_rest, a=torch.zeros_like(x_t))


def alif_step(
    x_t: Tensor, state: ALIFState, p: ALIFParams, *, dt: float, surrogate: SurrogateLike, detach_reset: bool = True
) -> tuple[Tensor, ALIFState]:
    beta, gain = leak(p.tau_mem, p.r, p.input_scaling, dt)
    rho = decay(p.tau_adapt, dt)
    threshold = p.v_th + p.adapt * state.a
    z, v = fire(integrate(state.v, x_t, beta, p.v_rest, gain), threshold, p.v_reset, p.reset, surrogate, detach_reset)
    a = rho * state.a + (1 - rho) * z
    return z, ALIFState(v, a)


@register_neuron("alif")
class ALIF(LIFFamily):
    """Adaptive-threshold LIF layer: :class:`~spikeforge.neurons.LIF` plus ``tau_adapt`` (trainable with
    ``learn_tau``) and ``adapt`` (threshold increment). Options as :class:`~spikeforge.neurons.LIFFamily`."""

    State = ALIFState
    Params = ALIFParams
    init_fn = staticmethod(alif_init)
    step_fn = staticmethod(alif_step)

    def __init__(
        self,
        tau_mem: float | Tensor = 20.0,
        tau_adapt: float | Tensor = 200.0,
        adapt: float | Tensor = 1.8,
        *,
        learn_tau: bool = False,
        size: int | None = None,
        **options: Unpack[LeakyOptions],
    ) -> None:
        why = "threshold increment per unit adaptation; < 0 would lower the threshold after each spike"
        self._check("adapt", adapt, example=1.8, nonnegative=True, why=why)
        taus = {"tau_mem": tau_mem, "tau_adapt": tau_adapt}
        super().__init__(taus, fixed={"adapt": adapt}, learn_tau=learn_tau, size=size, **options)

    def _spec_fields(self, value: Callable[[str], Any]) -> dict[str, Any]:
        return {"has_adapt": True, "adapt": value("adapt"), "rho": decay(value("tau_adapt"), self.dt)}
