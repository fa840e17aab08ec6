"""Flat access to the pure functions: ``import spikeforge.functional as F; F.lif_step(...)``."""

from spikeforge._core.discretize import decay, tau_from_decay
from spikeforge._core.reset import apply_reset
from spikeforge._core.scan import scan, scan_record
from spikeforge._core.spike import heaviside, spike
from spikeforge.neurons.alif import alif_init, alif_step
from spikeforge.neurons.cuba import cuba_lif_init, cuba_lif_step
from spikeforge.neurons.if_ import if_init, if_step
from spikeforge.neurons.li import li_init, li_step
from spikeforge.neurons.lif import lif_init, lif_step
from spikeforge.neurons.rlif import rlif_init, rlif_step

__all__ = [
    "decay", "tau_from_decay", "apply_reset", "scan", "scan_record", "heaviside", "spike",
    "alif_init", "alif_step", "cuba_lif_init", "cuba_lif_step", "if_init", "if_step",
    "li_init", "li_step", "lif_init", "lif_step", "rlif_init", "rlif_step",
]
