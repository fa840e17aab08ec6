r"""Recurrent LIF: a LIF population that also receives its own previous spikes through ``w_rec``.

``I_total[t] = x[t] + z[t-1] @ w_rec^T``, then one LIF step (see :mod:`spikeforge.neurons.lif`).
``w_rec`` has shape ``[N, N]`` (``w_rec[i, j]``: from neuron ``j`` to neuron ``i``); the input is
``[B, N]``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor
from torch import nn

from spikeforge._core.compat import Unpack
from spikeforge._core.spike import SurrogateLike
from spikeforge.neurons._family import LeakyOptions
from spikeforge.neurons._family import LIFFamily
from spikeforge.neurons.base import Capabilities
from spikeforge.neurons.base import register_neuron
from spikeforge.neurons.lif import LIFParams
from spikeforge.neurons.lif import LIFState
from spikeforge.neurons.lif import lif_step

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
    x_t: Tensor, state: RLIFState, p: RLIFParams, *, dt: float, surrogate: SurrogateLike, detach_reset: bool = True
) -> tuple[Tensor, RLIFState]:
    current = x_t + state.z @ p.w_rec.t()
    z, lif_state = lif_step(current, LIFState(state.v), p.lif, dt=dt, surrogate=surrogate, detach_reset=detach_reset)
    return z, RLIFState(lif_state.v, z)


def _initial_w_rec(size: int, w_rec: Tensor | None, generator: torch.Generator | None) -> Tensor:
    """``w_rec`` as given (checked ``[size, size]``), or uniform in ``+-1/sqrt(size)`` with a zero diagonal."""
    if not isinstance(size, int) or size <= 0:
        raise ValueError(f"size must be a positive int (number of neurons), got {size!r}")
    if w_rec is not None:
        if tuple(w_rec.shape) != (size, size):
            raise ValueError(f"w_rec must have shape ({size}, {size}), got {tuple(w_rec.shape)}")
        return w_rec.detach().clone().to(torch.get_default_dtype())
    bound = 1.0 / math.sqrt(size)
    w = (torch.rand(size, size, generator=generator) * 2 - 1) * bound
    return w.fill_diagonal_(0.0)


@register_neuron("rlif")
class RecurrentLIF(LIFFamily):
    """Recurrent LIF layer of ``size`` neurons with a trainable recurrent weight ``w_rec`` ``[size, size]``.

    ``w_rec`` is initialised uniformly in ``±1/sqrt(size)`` with a zero diagonal (no autapses); pass
    ``w_rec=`` to set it. ``tau_mem`` / ``v_th`` become per-neuron only when trained (``learn_tau`` /
    ``learn_threshold``). Other options as :class:`~spikeforge.neurons.LIFFamily`, without ``backend``
    (no fused kernel: the recurrence runs in the reference loop).
    """

    State = RLIFState
    Params = RLIFParams
    init_fn = staticmethod(rlif_init)
    step_fn = staticmethod(rlif_step)
    capabilities = Capabilities(lif_family=True, recurrent=True)

    def __init__(
        self,
        size: int,
        tau_mem: float | Tensor = 10.0,
        *,
        w_rec: Tensor | None = None,
        learn_tau: bool = False,
        generator: torch.Generator | None = None,
        **options: Unpack[LeakyOptions],
    ) -> None:
        w = _initial_w_rec(size, w_rec, generator)
        super().__init__({"tau_mem": tau_mem}, learn_tau=learn_tau, size=size, **options)
        self.size = size
        self.w_rec = nn.Parameter(w)

    def _size(self, learnable: bool, size: int | None) -> int | None:
        return size if learnable else None

    def params(self, like: Tensor) -> RLIFParams:
        if like.shape[-1] != self.size:
            raise ValueError(
                f"RecurrentLIF(size={self.size}) got input with last dim {like.shape[-1]}; "
                f"input must be [..., B, {self.size}]"
            )
        return RLIFParams(self._read_params(LIFParams, like), self.w_rec.to(like.dtype))
