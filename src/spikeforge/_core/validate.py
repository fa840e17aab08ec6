"""Input and carried-state validation shared by all neurons. Messages name the fix."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from spikeforge._core.checks import check_float_tensor

__all__ = ["check_input", "check_state"]


def check_input(x: Tensor, *, name: str = "input", min_dim: int = 1, finite: bool = True) -> None:
    """Type, dtype, rank and (unless ``finite=False``: the caller checks it elsewhere) finiteness checks."""
    check_float_tensor(x, name, min_dim=min_dim, finite=finite)


def check_state(state: Any, x_t: Tensor, state_type: type) -> None:
    """Raise if a carried state does not match the input step ``x_t`` (shape, dtype, device)."""
    if not isinstance(state, state_type):
        raise TypeError(
            f"state must be a {state_type.__name__}, got {type(state).__name__}; pass state=None to start fresh"
        )
    for field, t in zip(state._fields, state):
        if not isinstance(t, Tensor):
            raise TypeError(f"state.{field} must be a tensor, got {type(t).__name__}")
        if t.shape != x_t.shape or t.dtype != x_t.dtype or t.device != x_t.device:
            raise ValueError(
                f"carried state.{field} has shape {tuple(t.shape)}, {t.dtype} on {t.device} but the input step is "
                f"{tuple(x_t.shape)}, {x_t.dtype} on {x_t.device} (e.g. a smaller last batch); call "
                "spikeforge.reset_states(model) or pass state=None before feeding a new batch"
            )
