r"""Recurrent LIF: a LIF population that also receives its own previous spikes through ``w_rec``.

``I_total[t] = x[t] + z[t-1] @ w_rec^T``, then one LIF step (see :mod:`spikeforge.neurons.lif`).
``w_rec`` has shape ``[N, N]`` (``w_rec[i, j]``: from neuron ``j`` to neuron ``i``); the input is
``[B, N]``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from spikeforge._core.discretize import check_positive
from spikeforge._core.spike import SurrogateLike
from spikeforge.neurons.base import Capabilities, Neuron, register_neuron
from spikeforge._core.spec import FusedSpec
from spikeforge.neurons.lif import LIFParams, LIFState, lif_step, membrane_spec, setup_membrane
from spikeforge.surrogate import Surrogate

__all__ = ["RLIFParams", "RLIFState", "rlif_init", "rlif_step", "RecurrentLIF"]


class RLIFParams(NamedTuple):
    lif: LIFParams
    w_rec: Tensor  # [N, N]


class RLIFState(NamedTuple):
    v: Tensor  # membrane [B, N]
    z: Tensor  # spikes of the previous step [B, N]


def rlif_init(x_t: Tensor, p: RLIFParams) -> RLIFState:
    return RLIFState(v=torch.zeros_like(x_t) + p.lif.v_rest, z=torch.zeros_like(x_t))


def rlif_step(
    x_t: Tensor,
    state: RLIFState,
    p: RLIFParams,
    *,
    dt: float,
    surrogate: SurrogateLike,
    detach_reset: bool = True,
) -> tuple[Tensor, RLIFState]:
    current = x_t + state.z @ p.w_rec.t()
    z, lif_state = lif_step(current, LIFState(state.v), p.lif, dt=dt, surrogate=surrogate, detach_reset=detach_reset)
    return z, RLIFState(lif_state.v, z)


@register_neuron("rlif")
class RecurrentLIF(Neuron):
    """Recurrent LIF layer of ``size`` neurons with a trainable recurrent weight ``w_rec`` ``[size, size]``.

    ``w_rec`` is initialised uniformly in ``±1/sqrt(size)`` with a zero diagonal (no autapses); pass
    ``w_rec=`` to set it. Other args as :class:`~spikeforge.neurons.LIF`.
    """

    State = RLIFState
    init_fn = staticmethod(rlif_init)
    step_fn = staticmethod(rlif_step)
    capabilities = Capabilities(lif_family=True, recurrent=True)

    def __init__(
        self,
        size: int,
        tau_mem: float | Tensor = 10.0,
        *,
        w_rec: Tensor | None = None,
        dt: float = 1.0,
        v_rest: float = 0.0,
        v_th: float | Tensor = 1.0,
        v_reset: float = 0.0,
        r: float = 1.0,
        reset: str = "subtract",
        input_scaling: str = "exact",
        surrogate: Surrogate | str | None = None,
        detach_reset: bool = True,
        learn_tau: bool = False,
        learn_threshold: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(dt=dt, surrogate=surrogate)
        if not isinstance(size, int) or size <= 0:
            raise ValueError(f"size must be a positive int (number of neurons), got {size!r}")
        check_positive("tau_mem", tau_mem)
        self.size = size
        if w_rec is None:
            bound = 1.0 / math.sqrt(size)
            w = (torch.rand(size, size, generator=generator) * 2 - 1) * bound
            w.fill_diagonal_(0.0)
        else:
            if tuple(w_rec.shape) != (size, size):
                raise ValueError(f"w_rec must have shape ({size}, {size}), got {tuple(w_rec.shape)}")
            w = w_rec.detach().clone().to(torch.get_default_dtype())
        self.w_rec = nn.Parameter(w)
        self._add_param("tau_mem", tau_mem, learnable=learn_tau, size=size if learn_tau else None, positive=True)
        self._add_param("v_th", v_th, learnable=learn_threshold, size=size if learn_threshold else None)
        setup_membrane(
            self, v_rest=v_rest, v_reset=v_reset, r=r, reset=reset, input_scaling=input_scaling, detach_reset=detach_reset
        )

    def params(self, like: Tensor) -> RLIFParams:
        if like.shape[-1] != self.size:
            raise ValueError(f"RecurrentLIF(size={self.size}) got input with last dim {like.shape[-1]}; input must be [..., B, {self.size}]")
        lif = LIFParams(
            self._get("tau_mem", like),
            self.v_rest,
            self._get("v_th", like),
            self.v_reset,
            self.r,
            self.reset,
            self.input_scaling,
        )
        return RLIFParams(lif, self.w_rec.to(like.dtype))

    def step_options(self) -> dict[str, bool]:
        return {"detach_reset": self.detach_reset}

    def membrane_spec(self) -> FusedSpec | None:
        """The LIF membrane constants (the recurrent current ``z[t-1] @ w_rec^T`` is added to the input)."""
        if not self._all_float("tau_mem", "v_th"):
            return None
        return membrane_spec(self, float(self.tau_mem))
