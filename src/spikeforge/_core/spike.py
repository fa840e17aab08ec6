"""The one spike function: Heaviside forward (spike iff ``x > 0``), surrogate derivative backward.

``x`` is the distance to threshold, ``v - v_th``. The forward output keeps the input's dtype.
"""

from __future__ import annotations

from typing import Any
from typing import Protocol
from typing import runtime_checkable

import torch
from torch import Tensor

__all__ = ["SurrogateLike", "spike", "heaviside"]


@runtime_checkable
class SurrogateLike(Protocol):
    """Anything with ``grad(x) -> Tensor``: the derivative used in place of the Dirac delta."""

    def grad(self, x: Tensor) -> Tensor: ...


def heaviside(x: Tensor) -> Tensor:
    """Strict Heaviside step in ``x``'s dtype: 1 where ``x > 0``, else 0 (also at ``x == 0``)."""
    return (x > 0).to(x.dtype)


class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(x: Tensor, surrogate: Any) -> Tensor:
        return heaviside(x)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
        x, surrogate = inputs
        ctx.surrogate = surrogate
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(x)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, None]:
        if not ctx.needs_input_grad[0]:
            return None, None
        (x,) = ctx.saved_tensors
        return grad_out * ctx.surrogate.grad(x), None


def spike(x: Tensor, surrogate: SurrogateLike) -> Tensor:
    """Binary spikes ``heaviside(x)`` whose gradient w.r.t. ``x`` is ``surrogate.grad(x)``.

    Args:
        x: distance to threshold ``v - v_th``, any shape, floating dtype.
        surrogate: an object with ``grad(x)`` (see :mod:`spikeforge.surrogate`).
    """
    if not x.requires_grad or not torch.is_grad_enabled():
        return heaviside(x)
    return _Spike.apply(x, surrogate)
