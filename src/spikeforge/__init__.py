"""spikeforge: spiking neural networks on PyTorch with explicit state and one time loop."""

from importlib.metadata import PackageNotFoundError, version

from spikeforge import encoding, losses, surrogate
from spikeforge._core.discretize import decay, tau_from_decay
from spikeforge._core.scan import scan, scan_record
from spikeforge._core.spike import heaviside, spike
from spikeforge.layers import SeqToBatch, SNNSequential, record
from spikeforge.neurons import (
    ALIF,
    IF,
    LI,
    LIF,
    CubaLIF,
    HodgkinHuxley,
    Izhikevich,
    Neuron,
    RecurrentLIF,
    Stateful,
    detach_states,
    get_neuron,
    list_neurons,
    reset_states,
)

try:
    __version__ = version("spikeforge")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = [
    "__version__",
    "encoding",
    "losses",
    "surrogate",
    "decay",
    "tau_from_decay",
    "scan",
    "scan_record",
    "heaviside",
    "spike",
    "SeqToBatch",
    "SNNSequential",
    "record",
    "Neuron",
    "Stateful",
    "reset_states",
    "detach_states",
    "get_neuron",
    "list_neurons",
    "LIF",
    "IF",
    "LI",
    "CubaLIF",
    "ALIF",
    "RecurrentLIF",
    "HodgkinHuxley",
    "Izhikevich",
]
