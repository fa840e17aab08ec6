"""What :class:`~spikeforge.events.StreamingEngine` returns and carries: the stream's state
(:class:`EngineState`), the operation counts (:class:`EngineOps`, :class:`LayerOps`) and a call's result
(:class:`EngineResult`). Re-exported by :mod:`spikeforge.events.engine` and :mod:`spikeforge.events`."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import NamedTuple

import numpy as np
from torch import Tensor

__all__ = ["EngineState", "EngineOps", "LayerOps", "EngineResult", "LazyOps"]


@dataclass(frozen=True)
class LayerOps:
    """Operations one (synapse, neuron) layer executed. Names are qualified module names in the model."""

    synapse: str
    neuron: str
    synops: int  # feed-forward synaptic accumulations (one per input spike per fan-out target)
    recurrent_synops: int  # accumulations of recurrent weights (RecurrentLIF)
    neuron_updates: int  # neuron evaluations (touched or due), not N * T
    spikes: int


@dataclass(frozen=True)
class EngineOps:
    layers: tuple[LayerOps, ...]

    def total(self, name: str) -> int:
        if name not in ("synops", "recurrent_synops", "neuron_updates", "spikes"):
            raise ValueError(f"unknown count {name!r}; valid: synops, recurrent_synops, neuron_updates, spikes")
        return sum(int(getattr(x, name)) for x in self.layers)


@dataclass
class EngineState:
    """Mutable per-neuron state of one stream (numpy float64/int64 arrays); ``t`` is the next step index.

    The engine updates it in place and returns it; :meth:`StreamingEngine.init_state` gives a fresh one.
    """

    t: int
    v: np.ndarray
    i: np.ndarray
    last: np.ndarray
    due: np.ndarray
    min_due: np.ndarray
    prev_sp: np.ndarray
    prev_cnt: np.ndarray
    ops: np.ndarray = field(repr=False)
    hval: np.ndarray = field(repr=False)  # the delay lines of DelayedLinear layers (empty without)
    hidx: np.ndarray = field(repr=False)
    hflag: np.ndarray = field(repr=False)
    hcnt: np.ndarray = field(repr=False)


class LazyOps(NamedTuple):
    """The operation counts of a call, turned into an :class:`EngineOps` only when asked for (building the
    dataclasses costs more than a short call's loop)."""

    names: tuple[tuple[str, str], ...]
    counts: np.ndarray  # int64 [L, 4]

    def build(self) -> EngineOps:
        return EngineOps(tuple(LayerOps(syn, nrn, *r) for (syn, nrn), r in zip(self.names, self.counts.tolist())))


class EngineResult:
    """``spikes [T, 1, *out_shape]`` of the last layer; ``layer_spikes``: every neuron layer's (if recorded);
    ``ops``: what the call executed (:class:`EngineOps`); ``state``: the stream's state after the call."""

    __slots__ = ("_ops", "layer_spikes", "spikes", "state")

    def __init__(
        self, spikes: Tensor, state: EngineState, ops: EngineOps | LazyOps, layer_spikes: tuple[Tensor, ...] = ()
    ) -> None:
        self.spikes, self.state, self.layer_spikes, self._ops = spikes, state, layer_spikes, ops

    @property
    def ops(self) -> EngineOps:
        if isinstance(self._ops, LazyOps):
            self._ops = self._ops.build()
        return self._ops

    def __repr__(self) -> str:
        return f"EngineResult(spikes={tuple(self.spikes.shape)}, t={self.state.t}, ops={self.ops})"
