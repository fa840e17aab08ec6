"""The one time loop. Every multi-step computation in spikeforge is ``scan(step, x_seq, state)``.

Fast backends (fused kernels, event engines) are optional and are tested against this loop.
:func:`scan` and :func:`scan_record` check ``x_seq`` (public entry points); :func:`loop` is the same loop
for callers that have checked their input already (a neuron module's ``forward``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from typing import TypeVar

import torch
from torch import Tensor

from spikeforge._core.checks import check_seq

__all__ = ["scan", "scan_record", "stack_states", "loop"]

S = TypeVar("S", bound=tuple)

StepFn = Callable[[Tensor, Any], tuple[Tensor, Any]]


def stack_states(states: list[S]) -> S:
    """Stack a list of NamedTuple states field by field into one NamedTuple of ``[T, ...]`` tensors."""
    first = states[0]
    return type(first)(*(torch.stack(list(fields)) for fields in zip(*states)))


def loop(step: StepFn, x_seq: Tensor, state: Any, *, record: bool = False) -> tuple[Tensor, Any]:
    """:func:`scan` (``record=False``) or :func:`scan_record` (``record=True``) without checking ``x_seq``."""
    ys = []
    states = []
    for x_t in x_seq.unbind(0):
        y, state = step(x_t, state)
        ys.append(y)
        if record:
            states.append(state)
    return torch.stack(ys), (stack_states(states) if record else state)


def scan(step: StepFn, x_seq: Tensor, state: Any) -> tuple[Tensor, Any]:
    """Run ``step`` over the leading (time) dimension.

    Args:
        step: ``step(x_t, state) -> (y_t, new_state)``.
        x_seq: input, ``[T, B, ...]``.
        state: initial state (a NamedTuple of tensors).
    Returns:
        ``(y_seq [T, B, ...], final_state)``.
    """
    check_seq(x_seq, "x_seq", floating=False, finite=False)
    return loop(step, x_seq, state)


def scan_record(step: StepFn, x_seq: Tensor, state: Any) -> tuple[Tensor, Any]:
    """Like :func:`scan` but returns every intermediate state: ``(y_seq, state_seq)``.

    ``state_seq`` is a NamedTuple of the state's type whose fields are ``[T, B, ...]``; entry ``t``
    is the state *after* step ``t``.
    """
    check_seq(x_seq, "x_seq", floating=False, finite=False)
    return loop(step, x_seq, state, record=True)
