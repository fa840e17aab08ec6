"""The per-step constants of one LIF-family layer, as compiled kernels, the events engine, NIR export and
energy counting read them (one description of the membrane update; see spikeforge.backends.spec for the
recurrence it parameterises)."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["FusedSpec"]


class FusedSpec(NamedTuple):
    """Constants of one LIF-family layer: python floats for the kernels (cast to the input dtype by them); tensors
    where :meth:`~spikeforge.neurons.LIFFamily.membrane_spec` is given ``like`` and a parameter is per-neuron."""

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

    def constants(self) -> tuple[float, ...]:
        """The recurrence's constants in the order the compiled kernels read them:
        ``beta, v_rest, gain, v_th, v_reset, alpha, adapt, rho, 1 - rho, v_th - v_reset``."""
        rho = self.rho
        return (self.beta, self.v_rest, self.gain, self.v_th, self.v_reset, self.alpha, self.adapt, rho, 1 - rho,
                self.v_th - self.v_reset)  # fmt: skip
