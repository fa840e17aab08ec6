"""What :mod:`spikeforge.cli.plots` draws, gathered from a trained classifier: spikes, membranes, thresholds."""

from __future__ import annotations

from typing import Any
from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["Activity", "collect_activity"]


class Activity(NamedTuple):
    """Recorded activity of a classifier on one batch (see :func:`collect_activity`).

    Attributes:
        spikes: spiking layer name -> spikes ``[T, B, ...]``.
        membrane: neuron layer name -> membrane ``v`` ``[T, B, ...]`` (after reset; every neuron layer).
        thresholds: neuron layer name -> scalar ``v_th`` or None (readouts, per-neuron thresholds).
    """

    spikes: dict[str, Tensor]
    membrane: dict[str, Tensor]
    thresholds: dict[str, float | None]


def _scalar_threshold(neuron: Any, like: Tensor) -> float | None:
    v_th = getattr(neuron.params(like), "v_th", None) if getattr(neuron, "spiking", False) else None
    if isinstance(v_th, Tensor):
        return float(v_th.reshape(-1)[0]) if v_th.numel() == 1 or bool((v_th == v_th.reshape(-1)[0]).all()) else None
    return None if v_th is None else float(v_th)


@torch.no_grad()
def collect_activity(model: Any, x: Tensor, *, generator: torch.Generator | None = None) -> Activity:
    """Run ``model`` (an SNN classifier with ``network`` and ``encode``) on ``x [B, ...]``.

    Spikes and the input of each neuron layer come from :func:`spikeforge.layers.recording`; membranes from
    each layer's ``trace`` applied to the input it received.
    ``generator`` is passed to ``model.encode`` (random encoders); None leaves it out.
    """
    from spikeforge.layers import recording

    if not hasattr(model, "network") or not hasattr(model, "encode"):
        raise TypeError("collect_activity expects an SNN classifier with .network and .encode(x)")
    was_training = model.training
    model.eval()
    try:
        x_seq = model.encode(x) if generator is None else model.encode(x, generator=generator)  # [T, B, ...]
        with recording(model.network) as rec, recording(model.network, inputs=True) as inputs:
            model.network(x_seq)
        modules = dict(model.network.named_modules())
        spikes = {k: v for k, v in rec.items() if getattr(modules[k], "spiking", False)}
        membrane: dict[str, Tensor] = {}
        thresholds: dict[str, float | None] = {}
        for name, inp in inputs.items():
            neuron = modules[name]
            _, state_seq = neuron.trace(inp)
            if hasattr(state_seq, "v"):
                membrane[name] = state_seq.v
                thresholds[name] = _scalar_threshold(neuron, inp)
    finally:
        model.train(was_training)
    return Activity(spikes, membrane, thresholds)
