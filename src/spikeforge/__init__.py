"""spikeforge: spiking neural networks on PyTorch with explicit state and one time loop."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version

from spikeforge import encoding
from spikeforge import losses
from spikeforge import surrogate
from spikeforge._core.discretize import decay
from spikeforge._core.discretize import tau_from_decay
from spikeforge._core.scan import scan
from spikeforge._core.scan import scan_record
from spikeforge._core.spike import heaviside
from spikeforge._core.spike import spike
from spikeforge.layers import SeqToBatch
from spikeforge.layers import SNNSequential
from spikeforge.layers import record
from spikeforge.neurons import ALIF
from spikeforge.neurons import IF
from spikeforge.neurons import LI
from spikeforge.neurons import LIF
from spikeforge.neurons import CubaLIF
from spikeforge.neurons import HodgkinHuxley
from spikeforge.neurons import Izhikevich
from spikeforge.neurons import Neuron
from spikeforge.neurons import RecurrentLIF
from spikeforge.neurons import Stateful
from spikeforge.neurons import detach_states
from spikeforge.neurons import get_neuron
from spikeforge.neurons import list_neurons
from spikeforge.neurons import reset_states

try:
    __version__ = version("spikeforge")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = [
    "__version__", "encoding", "losses", "surrogate", "decay", "tau_from_decay", "scan", "scan_record", "heaviside",
    "spike", "SeqToBatch", "SNNSequential", "record", "Neuron", "Stateful", "reset_states", "detach_states",
    "get_neuron", "list_neurons", "LIF", "IF", "LI", "CubaLIF", "ALIF", "RecurrentLIF", "HodgkinHuxley",
    "Izhikevich",
]  # fmt: skip
