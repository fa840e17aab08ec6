"""The one time loop. Every multi-step computation in spikeforge is ``scan(step, x_seq, state)``.

Fast backends (fused kernels, event engines) are optional and are tested against this loop.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import torch
from torch import Tensor

__all__ = ["scan", "scan_record", "stack_states"]

S = TypeVar("S", bound=tuple)

StepFn = Callable[[Tensor, Any], tuple[Tensor, Any]]


def _check_seq(x_seq: Tensor) -> None:
    if not isinstance(x_seq, Tensor):
        raise TypeError(f"x_seq must be a torch.Tensor of shape [T, B, ...], got {type(x_seq).__name__}")
    if x_seq.dim() < 2:
        raise ValueError(
            f"x_seq must be time-major [T, B, ...] with at least 2 dims, got shape {tuple(x_seq.shape)}; "
            "add a batch dimension with x_seq.unsqueeze(1)"
        )
    if x_seq.shape[0] == 0:
        raise ValueError("x_seq has T = 0 time steps; give at least one time step")


def scan(step: StepFn, x_seq: Tensor, state: Any) -> tuple[Tensor, Any]:
    """Run ``step`` over the leading (time) dimension.

    Args:
        step: ``step(x_t, state) -> (y_t, new_state)``.
        x_seq: input, ``[T, B, ...]``.
        state: initial state (a NamedTuple of tensors).
    Returns:
        ``(y_seq [T, B, ...], final_state)``.
    """
    _check_seq(x_seq)
    ys = []
    for x_t in x_seq.unbind(0):
        y, state = step(x_t, state)
        ys.append(y)
    return torch.stack(ys), state


def stack_states(states: list[S]) -> S:
    """Stack a list of NamedTuple states field by field into one NamedTuple of ``[T, ...]`` tensors."""
    first = states[0]
    return type(first)(*(torch.stack(list(fields)) for fields in zip(*states)))  # type: ignore[return-value]


def scan_record(step: StepFn, x_seq: Tensor, state: Any) -> tuple[Tensor, Any]:
    """Like :func:`scan` but returns every intermediate state: ``(y_seq, state_seq)``.

    ``state_seq`` is a NamedTuple of the state's type whose fields are ``[T, B, ...]``; entry ``t``
    is the state *after* step ``t``.
    """
    _check_seq(x_seq)
    ys = []
    states = []
    for x_t in x_seq.unbind(0):
        y, state = step(x_t, state)
        ys.append(y)
        states.append(state)
    return torch.stack(ys), stack_states(states)


