"""Flat access to the pure functions: ``import spikeforge.functional as F; F.lif_step(...)``.

Every neuron model's ``init``/``step`` functions and its ``Params``/``State`` types, plus the core
(decay, reset, spike, the time loop).
"""

from spikeforge._core.discretize import decay
from spikeforge._core.discretize import tau_from_decay
from spikeforge._core.reset import apply_reset
from spikeforge._core.scan import scan
from spikeforge._core.scan import scan_record
from spikeforge._core.spike import heaviside
from spikeforge._core.spike import spike
from spikeforge.neurons.alif import ALIFParams
from spikeforge.neurons.alif import ALIFState
from spikeforge.neurons.alif import alif_init
from spikeforge.neurons.alif import alif_step
from spikeforge.neurons.cuba import CubaLIFParams
from spikeforge.neurons.cuba import CubaLIFState
from spikeforge.neurons.cuba import cuba_lif_init
from spikeforge.neurons.cuba import cuba_lif_step
from spikeforge.neurons.hh import HHParams
from spikeforge.neurons.hh import HHRates
from spikeforge.neurons.hh import HHState
from spikeforge.neurons.hh import hh_init
from spikeforge.neurons.hh import hh_rates
from spikeforge.neurons.hh import hh_step
from spikeforge.neurons.if_ import IFParams
from spikeforge.neurons.if_ import IFState
from spikeforge.neurons.if_ import if_init
from spikeforge.neurons.if_ import if_step
from spikeforge.neurons.izhikevich import IzhikevichParams
from spikeforge.neurons.izhikevich import IzhikevichState
from spikeforge.neurons.izhikevich import izhikevich_init
from spikeforge.neurons.izhikevich import izhikevich_preset
from spikeforge.neurons.izhikevich import izhikevich_step
from spikeforge.neurons.li import LIParams
from spikeforge.neurons.li import LIState
from spikeforge.neurons.li import li_init
from spikeforge.neurons.li import li_step
from spikeforge.neurons.lif import LIFParams
from spikeforge.neurons.lif import LIFState
from spikeforge.neurons.lif import lif_init
from spikeforge.neurons.lif import lif_step
from spikeforge.neurons.rlif import RLIFParams
from spikeforge.neurons.rlif import RLIFState
from spikeforge.neurons.rlif import rlif_init
from spikeforge.neurons.rlif import rlif_step

__all__ = [
    "decay", "tau_from_decay", "apply_reset", "scan", "scan_record", "heaviside", "spike", "alif_init", "alif_step",
    "ALIFParams", "ALIFState", "cuba_lif_init", "cuba_lif_step", "CubaLIFParams", "CubaLIFState", "hh_init",
    "hh_step", "hh_rates", "HHParams", "HHState", "HHRates", "if_init", "if_step", "IFParams", "IFState",
    "izhikevich_init", "izhikevich_step", "izhikevich_preset", "IzhikevichParams", "IzhikevichState", "li_init",
    "li_step", "LIParams", "LIState", "lif_init", "lif_step", "LIFParams", "LIFState", "rlif_init", "rlif_step",
    "RLIFParams", "RLIFState",
]  # fmt: skip
