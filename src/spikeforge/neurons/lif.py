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

from typing import Literal, NamedTuple

import torch
from torch import Tensor

from spikeforge._core.discretize import check_positive, decay, tau_from_decay
from spikeforge._core.reset import apply_reset, check_reset_mode
from spikeforge._core.spike import SurrogateLike, spike
from spikeforge.backends import RESET_CODES, FusedSpec
from spikeforge.neurons.base import Capabilities, Neuron, register_neuron
from spikeforge.surrogate import Surrogate

__all__ = ["LIFParams", "LIFState", "lif_init", "lif_step", "LIF", "input_gain", "INPUT_SCALINGS"]

InputScaling = Literal["exact", "none"]
INPUT_SCALINGS = ("exact", "none")


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


def input_gain(beta: float | Tensor, r: float | Tensor, input_scaling: str) -> float | Tensor:
    """Gain applied to the input current per step: ``(1 - beta) R`` (exact) or ``R`` (none)."""
    if input_scaling == "exact":
        return (1 - beta) * r
    if input_scaling == "none":
        return r
    check_input_scaling(input_scaling)
    raise AssertionError("unreachable")


def check_input_scaling(input_scaling: str) -> None:
    if input_scaling not in INPUT_SCALINGS:
        raise ValueError(f"unknown input_scaling {input_scaling!r}; choose one of {INPUT_SCALINGS}")


def setup_membrane(
    m: Neuron, *, v_rest: float, v_reset: float, r: float, reset: str, input_scaling: str, detach_reset: bool
) -> None:
    """Validate and store the membrane options shared by the LIF family (LIF, CubaLIF, ALIF, RecurrentLIF)."""
    check_reset_mode(reset)
    check_input_scaling(input_scaling)
    m.v_rest, m.v_reset, m.r = float(v_rest), float(v_reset), float(r)
    m.reset, m.input_scaling, m.detach_reset = reset, input_scaling, detach_reset


def membrane_spec(m: Neuron, tau_mem: float, **extra: float | bool) -> FusedSpec:
    """The fused-kernel constants of a LIF-family module with a scalar ``tau_mem`` and ``v_th``."""
    beta = decay(tau_mem, m.dt)
    return FusedSpec(
        beta=beta, v_rest=m.v_rest, gain=float(input_gain(beta, m.r, m.input_scaling)), v_th=float(m.v_th),
        v_reset=m.v_reset, reset=RESET_CODES[m.reset], detach_reset=m.detach_reset, **extra,  # type: ignore[arg-type]
    )


def lif_init(x_t: Tensor, p: LIFParams) -> LIFState:
    return LIFState(v=torch.zeros_like(x_t) + p.v_rest)


def lif_step(
    x_t: Tensor,
    state: LIFState,
    p: LIFParams,
    *,
    dt: float,
    surrogate: SurrogateLike,
    detach_reset: bool = True,
) -> tuple[Tensor, LIFState]:
    """One LIF step. ``x_t``: input current ``[B, ...]``. Returns ``(spikes, new_state)``."""
    beta = decay(p.tau_mem, dt)
    v = p.v_rest + beta * (state.v - p.v_rest) + input_gain(beta, p.r, p.input_scaling) * x_t
    z = spike(v - p.v_th, surrogate)
    v = apply_reset(v, z.detach() if detach_reset else z, p.v_th, p.v_reset, p.reset)
    return z, LIFState(v)


@register_neuron("lif")
class LIF(Neuron):
    """LIF layer over ``[T, B, ...]`` inputs. See the module docstring for the equations.

    Args:
        tau_mem: membrane time constant (> 0, unit of ``dt``). Give either this or ``beta``.
        beta: decay factor per step in (0, 1); converted to ``tau_mem = -dt / ln(beta)``.
        dt: time step. v_rest, v_th, v_reset, r: see the equations.
        reset: ``"subtract"`` (default), ``"to_value"`` or ``"none"``.
        input_scaling: ``"exact"`` (default) or ``"none"``.
        surrogate: a :class:`~spikeforge.surrogate.Surrogate`, a registered name, or None (fast sigmoid).
        detach_reset: keep the reset out of the gradient (default True).
        learn_tau / learn_threshold: make ``tau_mem`` (kept positive through a log) / ``v_th`` trainable.
        size: per-neuron parameters of this size (last input dim) instead of scalars.
    """

    State = LIFState
    init_fn = staticmethod(lif_init)
    step_fn = staticmethod(lif_step)
    capabilities = Capabilities(lif_family=True, fused=True)

    def __init__(
        self,
        tau_mem: float | Tensor | None = 10.0,
        *,
        beta: float | None = None,
        dt: float = 1.0,
        v_rest: float = 0.0,
        v_th: float | Tensor = 1.0,
        v_reset: float = 0.0,
        r: float = 1.0,
        reset: str = "subtract",
        input_scaling: InputScaling = "exact",
        surrogate: Surrogate | str | None = None,
        detach_reset: bool = True,
        backend: str = "auto",
        learn_tau: bool = False,
        learn_threshold: bool = False,
        size: int | None = None,
    ) -> None:
        super().__init__(dt=dt, surrogate=surrogate, backend=backend)
        if beta is not None:
            tau_mem = tau_from_decay(beta, self.dt)
        if tau_mem is None:
            raise ValueError("give tau_mem or beta")
        check_positive("tau_mem", tau_mem)
        self._add_param("tau_mem", tau_mem, learnable=learn_tau, size=size, positive=True)
        self._add_param("v_th", v_th, learnable=learn_threshold, size=size)
        setup_membrane(
            self, v_rest=v_rest, v_reset=v_reset, r=r, reset=reset, input_scaling=input_scaling, detach_reset=detach_reset
        )

    def params(self, like: Tensor) -> LIFParams:
        return LIFParams(
            tau_mem=self._get("tau_mem", like),
            v_rest=self.v_rest,
            v_th=self._get("v_th", like),
            v_reset=self.v_reset,
            r=self.r,
            reset=self.reset,
            input_scaling=self.input_scaling,
        )

    def step_options(self) -> dict[str, bool]:
        return {"detach_reset": self.detach_reset}

    def membrane_spec(self) -> FusedSpec | None:
        if not self._all_float("tau_mem", "v_th"):
            return None
        return membrane_spec(self, float(self.tau_mem))
