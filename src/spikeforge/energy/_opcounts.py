"""The result types of :func:`spikeforge.energy.count`: :class:`LayerCounts` per module, :class:`OpCounts` per run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["LayerCounts", "OpCounts", "INT_FIELDS"]


@dataclass(frozen=True)
class LayerCounts:
    """Counts of one module over the whole run (all ``T`` steps, all ``B`` samples).

    ``kind`` is one of ``"linear"``, ``"conv"``, ``"pool"``, ``"batchnorm"``, ``"neuron"``,
    ``"passthrough"``. ``input_binary`` is True/False for synaptic layers (False if any call saw a
    non-binary input), None otherwise. ``weights`` is the number of synaptic weights of the layer;
    ``delay_buffer`` the values a delayed layer's delay line stores per sample (both storage, not run counts).
    """

    name: str
    kind: str
    module_type: str
    calls: int = 0  # forward calls of the module
    synops: int = 0  # accumulates triggered by nonzero binary inputs (one per real fan-out target)
    macs: int = 0  # multiply-accumulates done on non-binary input (and BatchNorm)
    dense_macs: int = 0  # MACs if run densely at every step (a GPU on spike tensors)
    adds: int = 0  # pooling compares/adds (and divisions)
    neuron_updates: int = 0  # one per neuron per step
    active_updates: int = 0  # neuron updates whose input current is nonzero
    spikes: int = 0  # nonzero outputs of a spiking neuron layer
    weight_reads: int = 0  # one per synaptic op or MAC (elements)
    state_reads: int = 0  # neuron state elements read
    state_writes: int = 0  # neuron state elements written
    weights: int = 0  # synaptic weights of the layer
    delay_buffer: int = 0  # values a DelayedLinear's delay line holds per sample ((max_delay + 1) * in_features)
    spiking: bool = False
    input_binary: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: The integer counters of :class:`LayerCounts` (every ``int`` field but the storage sizes ``weights`` and
#: ``delay_buffer``), in declaration order.
INT_FIELDS: tuple[str, ...] = tuple(
    f.name
    for f in dataclasses.fields(LayerCounts)
    if f.type in ("int", int) and f.name not in ("weights", "delay_buffer")
)


@dataclass(frozen=True)
class OpCounts:
    """Per-layer counts of one run on ``x_seq [T, B, ...]``; totals are over the batch.

    Attributes:
        layers: one :class:`LayerCounts` per counted module, in first-call order.
        time_steps: ``T``. batch_size: ``B``.
        bytes_per_element: element size of the run's dtype (4 for float32).
        input_spikes: nonzero elements of ``x_seq`` if it is binary, else None (analog input).
        uncounted: qualified names of parameter-free modules of unknown type that ran (not counted).
    """

    layers: tuple[LayerCounts, ...]
    time_steps: int
    batch_size: int
    bytes_per_element: int
    input_spikes: int | None = None
    uncounted: tuple[str, ...] = ()

    def total(self, name: str) -> int:
        """Sum of one integer field (e.g. ``"synops"``) over all layers, whole batch."""
        if name not in INT_FIELDS:
            raise ValueError(f"unknown count {name!r}; valid: {', '.join(INT_FIELDS)}")
        return sum(int(getattr(layer, name)) for layer in self.layers)

    def per_inference(self, name: str) -> float:
        """:meth:`total` divided by the batch size ``B``."""
        return self.total(name) / self.batch_size

    def layer(self, name: str) -> LayerCounts:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no counted layer {name!r}; counted: {', '.join(x.name for x in self.layers)}")

    @property
    def recurrent(self) -> bool:
        """True if a recurrent neuron layer (recurrent synaptic ops) is present."""
        return any(layer.kind == "neuron" and layer.synops + layer.dense_macs > 0 for layer in self.layers)

    def firing_rates(self) -> dict[str, float]:
        """Spikes per neuron per step of every spiking layer that ran."""
        return {x.name: x.spikes / x.neuron_updates for x in self.layers if x.spiking and x.neuron_updates}

    def bytes_per_step(self) -> dict[str, float]:
        """Weight and state bytes read/written per time step per inference, at ``bytes_per_element``."""
        scale = self.bytes_per_element / (self.time_steps * self.batch_size)
        return {
            "weight_read": self.total("weight_reads") * scale,
            "state_read": self.total("state_reads") * scale,
            "state_write": self.total("state_writes") * scale,
        }

    def to_dict(self) -> dict[str, Any]:
        totals = {k: self.total(k) for k in INT_FIELDS if k != "calls"}
        return {
            "time_steps": self.time_steps,
            "batch_size": self.batch_size,
            "bytes_per_element": self.bytes_per_element,
            "input_spikes": self.input_spikes,
            "uncounted": list(self.uncounted),
            "totals": totals,
            "per_inference": {k: v / self.batch_size for k, v in totals.items()},
            "bytes_per_step": self.bytes_per_step(),
            "firing_rates": self.firing_rates(),
            "layers": [layer.to_dict() for layer in self.layers],
        }
