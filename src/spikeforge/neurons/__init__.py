"""Neuron models: one file per model, each with ``Params``/``State`` NamedTuples, ``init``, a pure
``step`` and a thin :class:`Neuron` module. Importing this package registers the built-in models.

The LIF family (IF, LIF, CubaLIF, ALIF, RecurrentLIF) shares :class:`LIFFamily` (``_family.py``): the
membrane update, its constants, the constructor options and the fused-kernel dispatch. A new model is one
file (a ``@register_neuron`` class declaring its ``capabilities``) plus its import line here.
"""

from spikeforge.neurons._family import LIFFamily
from spikeforge.neurons.alif import ALIF, ALIFParams, ALIFState, alif_init, alif_step
from spikeforge.neurons.base import (
    NEURON_REGISTRY,
    Capabilities,
    Neuron,
    Stateful,
    detach_states,
    get_neuron,
    list_neurons,
    register_neuron,
    reset_states,
)
from spikeforge.neurons.cuba import CubaLIF, CubaLIFParams, CubaLIFState, cuba_lif_init, cuba_lif_step
from spikeforge.neurons.hh import HHParams, HHRates, HHState, HodgkinHuxley, hh_init, hh_rates, hh_step
from spikeforge.neurons.if_ import IF, IFParams, IFState, if_init, if_step
from spikeforge.neurons.izhikevich import (
    IZHIKEVICH_PRESETS,
    Izhikevich,
    IzhikevichParams,
    IzhikevichState,
    izhikevich_init,
    izhikevich_preset,
    izhikevich_step,
)
from spikeforge.neurons.li import LI, LIParams, LIState, li_init, li_step
from spikeforge.neurons.lif import LIF, LIFParams, LIFState, lif_init, lif_step
from spikeforge.neurons.rlif import RecurrentLIF, RLIFParams, RLIFState, rlif_init, rlif_step

__all__ = [
    "Neuron",
    "Stateful",
    "reset_states",
    "detach_states",
    "register_neuron",
    "get_neuron",
    "list_neurons",
    "NEURON_REGISTRY",
    "Capabilities",
    "LIFFamily",
    "LIF",
    "LIFParams",
    "LIFState",
    "lif_init",
    "lif_step",
    "IF",
    "IFParams",
    "IFState",
    "if_init",
    "if_step",
    "CubaLIF",
    "CubaLIFParams",
    "CubaLIFState",
    "cuba_lif_init",
    "cuba_lif_step",
    "ALIF",
    "ALIFParams",
    "ALIFState",
    "alif_init",
    "alif_step",
    "LI",
    "LIParams",
    "LIState",
    "li_init",
    "li_step",
    "RecurrentLIF",
    "RLIFParams",
    "RLIFState",
    "rlif_init",
    "rlif_step",
    "HodgkinHuxley",
    "HHParams",
    "HHState",
    "HHRates",
    "hh_init",
    "hh_step",
    "hh_rates",
    "Izhikevich",
    "IzhikevichParams",
    "IzhikevichState",
    "izhikevich_init",
    "izhikevich_step",
    "izhikevich_preset",
    "IZHIKEVICH_PRESETS",
]
