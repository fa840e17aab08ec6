"""Flat access to the pure functions: ``import spikeforge.functional as F; F.lif_step(...)``.

Every neuron model's ``init``/``step`` functions and its ``Params``/``State`` types, plus the core
(decay, reset, spike, the time loop).
"""

from spikeforge._core.discretize import decay, tau_from_decay
from spikeforge._core.reset import apply_reset
from spikeforge._core.scan import scan, scan_record
from spikeforge._core.spike import heaviside, spike
from spikeforge.neurons.alif import ALIFParams, ALIFState, alif_init, alif_step
from spikeforge.neurons.cuba import CubaLIFParams, CubaLIFState, cuba_lif_init, cuba_lif_step
from spikeforge.neurons.hh import HHParams, HHRates, HHState, hh_init, hh_rates, hh_step
from spikeforge.neurons.if_ import IFParams, IFState, if_init, if_step
from spikeforge.neurons.izhikevich import (
    IzhikevichParams,
    IzhikevichState,
    izhikevich_init,
    izhikevich_preset,
    izhikevich_step,
)
from spikeforge.neurons.li import LIParams, LIState, li_init, li_step
from spikeforge.neurons.lif import LIFParams, LIFState, lif_init, lif_step
from spikeforge.neurons.rlif import RLIFParams, RLIFState, rlif_init, rlif_step

__all__ = [
    "decay",
    "tau_from_decay",
    "apply_reset",
    "scan",
    "scan_record",
    "heaviside",
    "spike",
    "alif_init",
    "alif_step",
    "ALIFParams",
    "ALIFState",
    "cuba_lif_init",
    "cuba_lif_step",
    "CubaLIFParams",
    "CubaLIFState",
    "hh_init",
    "hh_step",
    "hh_rates",
    "HHParams",
    "HHState",
    "HHRates",
    "if_init",
    "if_step",
    "IFParams",
    "IFState",
    "izhikevich_init",
    "izhikevich_step",
    "izhikevich_preset",
    "IzhikevichParams",
    "IzhikevichState",
    "li_init",
    "li_step",
    "LIParams",
    "LIState",
    "lif_init",
    "lif_step",
    "LIFParams",
    "LIFState",
    "rlif_init",
    "rlif_step",
    "RLIFParams",
    "RLIFState",
]
