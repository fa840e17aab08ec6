"""Reset rules, pure functions of the pre-reset membrane ``v`` and the spikes ``z``."""

from __future__ import annotations

from typing import Literal
from typing import get_args

from torch import Tensor

__all__ = ["ResetMode", "RESET_MODES", "apply_reset", "check_reset_mode"]

ResetMode = Literal["to_value", "subtract", "none"]
RESET_MODES: tuple[str, ...] = get_args(ResetMode)


def check_reset_mode(reset: str) -> None:
    if reset not in RESET_MODES:
        raise ValueError(f"unknown reset mode {reset!r}; choose one of {RESET_MODES}")


def apply_reset(v: Tensor, z: Tensor, v_th: Tensor | float, v_reset: Tensor | float, reset: str) -> Tensor:
    """Apply a reset where ``z == 1``.

    * ``"to_value"``: ``v <- v_reset`` (the classic LIF reset to rest when ``v_reset = v_rest``).
    * ``"subtract"``: ``v <- v - (v_th - v_reset)``; with ``v_reset = 0`` this is ``v - v_th``.
    * ``"none"``: no reset.
    ``z`` may carry a surrogate gradient; pass ``z.detach()`` to keep the reset out of the graph.
    """
    if reset == "to_value":
        return v * (1 - z) + z * v_reset
    if reset == "subtract":
        return v - z * (v_th - v_reset)
    if reset == "none":
        return v
    check_reset_mode(reset)
    raise AssertionError("unreachable")
