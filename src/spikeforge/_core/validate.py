"""Input and carried-state validation shared by all neurons. Messages name the fix."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["check_input", "check_state"]


def check_input(x: Tensor, *, name: str = "input", min_dim: int = 1) -> None:
    """Type, dtype, rank and finiteness checks for a neuron input."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}; convert with x.float()")
    if x.dim() < min_dim:
        raise ValueError(f"{name} must have at least {min_dim} dims ([B, ...] per step), got shape {tuple(x.shape)}")
    if not torch.compiler.is_compiling() and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or inf; clean the input (e.g. torch.nan_to_num) before the neuron")


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
