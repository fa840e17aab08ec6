"""Synapses with temporal structure: learnable transmission delays (:mod:`~spikeforge.synapses.delays`) and
SLAYER's spike-response-model layer (:mod:`~spikeforge.synapses.srm`).

Both take and return time-major ``[T, B, features]`` sequences and work inside
:class:`~spikeforge.layers.SNNSequential` beside the LIF-family neurons.
"""

from __future__ import annotations

from spikeforge.synapses.delays import DelayedLinear
from spikeforge.synapses.delays import check_delays
from spikeforge.synapses.delays import sigma_schedule

__all__ = ["DelayedLinear", "sigma_schedule", "check_delays"]
