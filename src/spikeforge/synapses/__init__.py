"""Synapses with temporal structure: learnable transmission delays (:mod:`~spikeforge.synapses.delays`) and
SLAYER's spike-response-model layer (:mod:`~spikeforge.synapses.srm`).

Both take and return time-major ``[T, B, features]`` sequences and work inside
:class:`~spikeforge.layers.SNNSequential` beside the LIF-family neurons.
"""

from __future__ import annotations

from spikeforge.synapses.delays import DelayedLinear
from spikeforge.synapses.delays import DelayLine
from spikeforge.synapses.delays import check_delays
from spikeforge.synapses.delays import sigma_schedule
from spikeforge.synapses.srm import SRM
from spikeforge.synapses.srm import SlayerPDF
from spikeforge.synapses.srm import SRMParams
from spikeforge.synapses.srm import SRMState
from spikeforge.synapses.srm import epsilon_filter
from spikeforge.synapses.srm import srm_init
from spikeforge.synapses.srm import srm_membrane
from spikeforge.synapses.srm import srm_step
from spikeforge.synapses.trains import exp_filter
from spikeforge.synapses.trains import van_rossum_distance

__all__ = [
    "DelayedLinear", "DelayLine", "sigma_schedule", "check_delays", "SRM", "SlayerPDF", "SRMParams", "SRMState",
    "epsilon_filter", "srm_init", "srm_membrane", "srm_step", "exp_filter", "van_rossum_distance",
]  # fmt: skip
