"""The one table of integer codes that compiled kernels (Numba, Triton, the eager torch kernel and the
events engine) use for reset modes and built-in surrogate derivatives.

Kernels compare against these names, never against bare integers. Python code maps names to codes
with :data:`RESET_CODES` and gets a surrogate's code from its ``kernel_code()`` method
(:mod:`spikeforge.surrogate`).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "TO_VALUE", "SUBTRACT", "NONE", "RESET_CODES", "RESET_NAMES", "SG_CUSTOM", "SG_FAST_SIGMOID", "SG_TRIANGLE",
    "SG_ATAN", "SG_SIGMOID", "SG_STRAIGHT_THROUGH",
]  # fmt: skip

# ---- reset modes (see spikeforge._core.reset) -------------------------------------------------
TO_VALUE: Final = 0  # V = v_reset where a spike was emitted
SUBTRACT: Final = 1  # V -= threshold - v_reset where a spike was emitted
NONE: Final = 2  # no reset

RESET_CODES: Final[dict[str, int]] = {"to_value": TO_VALUE, "subtract": SUBTRACT, "none": NONE}
RESET_NAMES: Final[dict[int, str]] = {code: name for name, code in RESET_CODES.items()}

# ---- surrogate derivatives evaluated inside compiled kernels ------------------------------------
# A surrogate's kernel_code() returns (code, a, b); SG_CUSTOM means "call surrogate.grad(h) in torch".
SG_CUSTOM: Final = 0
SG_FAST_SIGMOID: Final = 1  # 1 / (1 + a |h|)^2
SG_TRIANGLE: Final = 2  # max(0, 1 - |h| / a) / a
SG_ATAN: Final = 3  # b / (1 + (a h)^2), a = pi/2 alpha, b = alpha / 2
SG_SIGMOID: Final = 4  # a s (1 - s), s = 1 / (1 + exp(-a h))
SG_STRAIGHT_THROUGH: Final = 5  # b where |h| < a, else 0
