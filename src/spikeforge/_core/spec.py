"""The per-step constants of one LIF-family layer, as compiled kernels, the events engine, NIR export and
energy counting read them (one description of the membrane update; see spikeforge.backends.spec for the
recurrence it parameterises)."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["FusedSpec"]


class FusedSpec(NamedTuple):
    """Scalar constants of one LIF-family layer (python floats; cast to the input dtype by kernels)."""

    beta: float
    v_rest: float
    gain: float
    v_th: float
    v_reset: float
    reset: int  # a reset code of spikeforge._core.codes: TO_VALUE | SUBTRACT | NONE
    detach_reset: bool
    has_syn: bool = False
    alpha: float = 0.0
    has_adapt: bool = False
    adapt: float = 0.0
    rho: float = 0.0
    is_if: bool = False  # IF: v' = v + gain x (no leak term at all), mirrors if_step exactly
