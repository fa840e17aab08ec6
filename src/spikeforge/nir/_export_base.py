"""spikeforge -> NIR: the per-layer export context and the array/metadata helpers every exporter uses."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from typing import cast

import numpy as np
from torch import Tensor

from spikeforge.neurons import Neuron
from spikeforge.nir import _mapping as m

__all__ = ["HINT_KEY", "ExportCtx", "Nodes", "to_numpy", "full", "hint", "w_rec"]

HINT_KEY = "spikeforge"  # node metadata: JSON of our scalar parameters, used on import only if consistent

Nodes = list[tuple[str, Any]]  # (name suffix, NIR node)


@dataclass
class ExportCtx:
    nir: Any
    dt: float
    disc: str
    allowed: frozenset[str]
    shape: tuple[int, ...]  # one sample's shape entering the layer (no time, no batch)
    binary: bool  # the input is known to be 0/1 spikes
    where: str


def to_numpy(t: Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def full(value: float | Tensor, shape: tuple[int, ...], where: str, name: str) -> np.ndarray:
    arr = (
        to_numpy(value).astype(np.float64) if isinstance(value, Tensor) else np.asarray(float(value), dtype=np.float64)
    )
    try:
        return np.broadcast_to(arr, shape).copy()
    except ValueError:
        raise m.NIRExportError(
            f"{where}: {name} of shape {arr.shape} does not broadcast to the layer shape {shape}"
        ) from None


def hint(**kwargs: Any) -> dict[str, str]:
    return {HINT_KEY: json.dumps(kwargs, sort_keys=True)}


def w_rec(neuron: Neuron) -> Tensor:
    """The ``[N, N]`` recurrent weights of a neuron declaring ``capabilities.recurrent``."""
    return cast(Tensor, neuron.w_rec)
