"""Neuron models: one file per model, each with ``Params``/``State`` NamedTuples, ``init``, a pure
``step`` and a thin :class:`Neuron` module. Importing this package registers the built-in models.

The LIF family (IF, LIF, CubaLIF, ALIF, RecurrentLIF) shares :class:`LIFFamily` (``_family.py``): the
membrane update, its constants, the constructor options and the fused-kernel dispatch. A new model is one
file (a ``@register_neuron`` class declaring its ``capabilities``) plus its import line here.

Every parameter is validated at construction by one layer, ``_validate.py`` (finite values, positive time
constants and ``dt``, each family's consistency rules), through :meth:`Neuron._add_param` /
``_add_constant``; the scalar constants stored that way travel in the ``state_dict`` and are compared on load.
"""

from spikeforge.neurons._family import LIFFamily
from spikeforge.neurons.alif import ALIF
from spikeforge.neurons.alif import ALIFParams
from spikeforge.neurons.alif import ALIFState
from spikeforge.neurons.alif import alif_init
from spikeforge.neurons.alif import alif_step
from spikeforge.neurons.base import NEURON_REGISTRY
from spikeforge.neurons.base import Capabilities
from spikeforge.neurons.base import Neuron
from spikeforge.neurons.base import Stateful
from spikeforge.neurons.base import detach_states
from spikeforge.neurons.base import get_neuron
from spikeforge.neurons.base import list_neurons
from spikeforge.neurons.base import register_neuron
from spikeforge.neurons.base import reset_states
from spikeforge.neurons.cuba import CubaLIF
from spikeforge.neurons.cuba import CubaLIFParams
from spikeforge.neurons.cuba import CubaLIFState
from spikeforge.neurons.cuba import cuba_lif_init
from spikeforge.neurons.cuba import cuba_lif_step
from spikeforge.neurons.hh import HHParams
from spikeforge.neurons.hh import HHRates
from spikeforge.neurons.hh import HHState
from spikeforge.neurons.hh import HodgkinHuxley
from spikeforge.neurons.hh import hh_init
from spikeforge.neurons.hh import hh_rates
from spikeforge.neurons.hh import hh_step
from spikeforge.neurons.if_ import IF
from spikeforge.neurons.if_ import IFParams
from spikeforge.neurons.if_ import IFState
from spikeforge.neurons.if_ import if_init
from spikeforge.neurons.if_ import if_step
from spikeforge.neurons.izhikevich import IZHIKEVICH_PRESETS
from spikeforge.neurons.izhikevich import Izhikevich
from spikeforge.neurons.izhikevich import IzhikevichParams
from spikeforge.neurons.izhikevich import IzhikevichState
from spikeforge.neurons.izhikevich import izhikevich_init
from spikeforge.neurons.izhikevich import izhikevich_preset
from spikeforge.neurons.izhikevich import izhikevich_step
from spikeforge.neurons.li import LI
from spikeforge.neurons.li import LIParams
from spikeforge.neurons.li import LIState
from spikeforge.neurons.li import li_init
from spikeforge.neurons.li import li_step
from spikeforge.neurons.lif import LIF
from spikeforge.neurons.lif import LIFParams
from spikeforge.neurons.lif import LIFState
from spikeforge.neurons.lif import lif_init
from spikeforge.neurons.lif import lif_step
from spikeforge.neurons.rlif import RecurrentLIF
from spikeforge.neurons.rlif import RLIFParams
from spikeforge.neurons.rlif import RLIFState
from spikeforge.neurons.rlif import rlif_init
from spikeforge.neurons.rlif import rlif_step

__all__ = [
    "Neuron", "Stateful", "reset_states", "detach_states", "register_neuron", "get_neuron", "list_neurons",
    "NEURON_REGISTRY", "Capabilities", "LIFFamily", "LIF", "LIFParams", "LIFState", "lif_init", "lif_step", "IF",
    "IFParams", "IFState", "if_init", "if_step", "CubaLIF", "CubaLIFParams", "CubaLIFState", "cuba_lif_init",
    "cuba_lif_step", "ALIF", "ALIFParams", "ALIFState", "alif_init", "alif_step", "LI", "LIParams", "LIState",
    "li_init", "li_step", "RecurrentLIF", "RLIFParams", "RLIFState", "rlif_init", "rlif_step", "HodgkinHuxley",
    "HHParams", "HHState", "HHRates", "hh_init", "hh_step", "hh_rates", "Izhikevich", "IzhikevichParams",
    "IzhikevichState", "izhikevich_init", "izhikevich_step", "izhikevich_preset", "IZHIKEVICH_PRESETS",
]  # fmt: skip
