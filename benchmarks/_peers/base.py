"""What the harness asks of one library (``PeerAdapter``), and the time loops the adapters share."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
from torch import nn

from .nets import Config, make_seq

Run = Callable[[torch.Tensor], torch.Tensor]  # input [T, B, ...] -> output spikes [T, B, ...]
INSTALL = "pip install -c constraints.txt --no-deps -r benchmarks/requirements-peers.txt"


class Net(NamedTuple):
    """One library's build of a benchmark net: ``run`` and the weights whose gradients it computes."""

    run: Run
    params: list[torch.Tensor]


class PeerAdapter(ABC):
    """One library in the benchmark. A subclass names itself and its module and writes ``network``.

    The timed phases and the spike extraction are the same for every library (so the measured work is);
    a subclass overrides them only if its output is not a time-major spike train.
    """

    name: ClassVar[str]  # the --libs name
    module: ClassVar[str]  # the top-level import (and distribution) name

    def installed(self) -> bool:
        return importlib.util.find_spec(self.module) is not None

    def version(self) -> str | None:
        try:
            return importlib.metadata.version(self.module)
        except importlib.metadata.PackageNotFoundError:
            return None

    def skip_reason(self) -> str | None:
        """Why this library cannot run here (None: it can)."""
        return None if self.installed() else f"{self.module} is not installed ({INSTALL})"

    @abstractmethod
    def network(self, cfg: Config, seq: list[nn.Module | None]) -> Run:
        """``run(x) -> spikes``: the net ``seq`` (stateless torch layers; ``None`` = LIF) in this library."""

    def build(self, cfg: Config, ws: list[np.ndarray]) -> Net:
        seq, params = make_seq(cfg, ws)
        return Net(self.network(cfg, seq), params)

    def infer(self, net: Net, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return net.run(x)

    def forward(self, net: Net, x: torch.Tensor) -> torch.Tensor:
        return net.run(x)

    def forward_backward(self, net: Net, x: torch.Tensor) -> None:
        for p in net.params:
            p.grad = None
        if x.requires_grad:
            x.grad = None
        net.run(x).sum().backward()

    def spike_train(self, out: torch.Tensor) -> torch.Tensor:
        """The output spikes ``[T, B, ...]`` of ``run``'s output, for the agreement check."""
        return out


def n_lif(seq: list[nn.Module | None]) -> int:
    """How many LIF layers the net ``seq`` has."""
    return sum(m is None for m in seq)


def layerwise(
    seq: list[nn.Module | None],
    x: torch.Tensor,
    stateless: Callable[[nn.Module, torch.Tensor], torch.Tensor],
    lif: Callable[[int, torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """The net layer by layer over the whole sequence: ``stateless(m, h)``; ``lif(k, h)`` for the k-th LIF."""
    h, k = x, 0
    for m in seq:
        if m is not None:
            h = stateless(m, h)
            continue
        h, k = lif(k, h), k + 1
    return h


def scan(step: Callable[[torch.Tensor, Any], tuple[torch.Tensor, Any]], h: torch.Tensor, state: Any) -> torch.Tensor:
    """A per-step neuron over time-major ``h``: ``z, state = step(h_t, state)``; the stacked ``z``."""
    outs = []
    for h_t in h.unbind(0):  # unbind, not h[t]: T select-backwards would each zero-fill [T, B, N]
        z, state = step(h_t, state)
        outs.append(z)
    return torch.stack(outs)
