"""What :mod:`spikeforge.cli.plots` draws, gathered from a trained classifier: spikes, membranes (before and
after the reset), thresholds."""

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
        pre_reset: neuron layer name -> the membrane ``V'`` of each step before its reset, the value the
            spike test compares with the threshold ``[T, B, ...]`` (layers whose parameters have a ``reset``).
    """

    spikes: dict[str, Tensor]
    membrane: dict[str, Tensor]
    thresholds: dict[str, float | None]
    pre_reset: dict[str, Tensor]


def _scalar_threshold(neuron: Any, like: Tensor) -> float | None:
    v_th = getattr(neuron.params(like), "v_th", None) if getattr(neuron, "spiking", False) else None
    if isinstance(v_th, Tensor):
        return float(v_th.reshape(-1)[0]) if v_th.numel() == 1 or bool((v_th == v_th.reshape(-1)[0]).all()) else None
    return None if v_th is None else float(v_th)


def _without_reset(p: Any) -> Any:
    """``p`` (a Params NamedTuple, possibly nesting another) with ``reset="none"``; None if it has no reset."""
    fields = getattr(p, "_fields", ())
    if "reset" in fields:
        return p._replace(reset="none")
    for name in fields:
        inner = _without_reset(getattr(p, name))
        if inner is not None:
            return p._replace(**{name: inner})
    return None


def _pre_reset(neuron: Any, inp: Tensor, states: Any) -> Tensor | None:
    """The membrane ``V'`` of every step before its reset, ``[T, B, ...]``: each step run again from the state
    before it (the initial state, then ``states[t - 1]``) with the reset switched off."""
    p = _without_reset(neuron.params(inp))
    if p is None or not hasattr(states, "v") or not hasattr(type(neuron), "step_fn"):
        return None
    t, b = inp.shape[:2]
    first = neuron.init_state(inp[0])
    before = [torch.cat([f0.unsqueeze(0), f[:-1]]) for f0, f in zip(first, states)]  # state entering each step

    def flat(z: Tensor) -> Tensor:
        return z.reshape(t * b, *z.shape[2:])

    opts = neuron.step_options()
    _, after = type(neuron).step_fn(
        flat(inp), type(states)(*map(flat, before)), p, dt=neuron.dt, surrogate=neuron.surrogate, **opts
    )
    return after.v.reshape(t, b, *after.v.shape[1:])


@torch.no_grad()
def collect_activity(model: Any, x: Tensor, *, generator: torch.Generator | None = None) -> Activity:
    """Run ``model`` (an SNN classifier with ``network`` and ``encode``) on ``x [B, ...]``.

    Spikes and the input of each neuron layer come from :func:`spikeforge.layers.recording`; membranes from
    each layer's ``trace`` applied to the input it received, and the same steps without the reset (``pre_reset``).
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
        pre_reset: dict[str, Tensor] = {}
        for name, inp in inputs.items():
            neuron = modules[name]
            _, state_seq = neuron.trace(inp)
            if hasattr(state_seq, "v"):
                membrane[name] = state_seq.v
                thresholds[name] = _scalar_threshold(neuron, inp)
                v_pre = _pre_reset(neuron, inp, state_seq) if name in spikes else None
                if v_pre is not None:
                    pre_reset[name] = v_pre
    finally:
        model.train(was_training)
    return Activity(spikes, membrane, thresholds, pre_reset)
