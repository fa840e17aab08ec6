r"""The converted spiking network: a time-stepped runner over the (converted) ``torch.fx`` graph.

How a ``[T, B, ...]`` input runs through the graph: time is folded into the batch, so every
stateless node (Linear, Conv, pooling, Flatten, ``view``/``reshape``, ``+``, ``cat``) runs *once* on
``[T*B, ...]``; at each stateful node (:class:`~spikeforge.conversion.spiking.SpikingActivation`,
:class:`~spikeforge.conversion.spiking.SpikingMaxPool`) the tensor is unfolded to ``[T, B, ...]``,
run through the one time loop with that node's state, and folded back. This is exact for
feed-forward graphs (also with residual branches) because a node's output at step ``t`` depends only
on its inputs at steps ``<= t``. States are threaded explicitly: ``forward(x_seq, states)`` takes and
returns a ``{node name: state}`` dict, so long runs can be fed in time chunks.

Biases are applied by their Linear/Conv at every step, i.e. they are constant input currents.

Restriction: the ANN must treat dimension 0 as the batch and never mix samples across it
(``x.view(x.size(0), -1)`` and ``torch.flatten(x, 1)`` are fine; ``x.view(32, -1)`` is not).
"""

from __future__ import annotations

from typing import Any
from typing import NamedTuple
from typing import cast

import torch
from torch import Tensor
from torch import fx
from torch import nn

from spikeforge._core.checks import check_float_tensor
from spikeforge.conversion.spiking import SpikingActivation
from spikeforge.conversion.spiking import TimeStateful
from spikeforge.encoding.rate import bernoulli_spikes
from spikeforge.encoding.rate import constant

__all__ = ["ConvertedSNN", "SNNRun", "INPUT_MODES"]

INPUT_MODES: tuple[str, ...] = ("analog", "rate")


class SNNRun(NamedTuple):
    """Result of :meth:`ConvertedSNN.run`.

    Attributes:
        output: network output at every step, ``[T, B, ...]`` (ANN units; average over time to decode).
        states: ``{node name: state}`` after the last step.
        spikes_per_step: ``{activation name: [T]}`` spikes emitted per step, summed over batch and neurons.
        spike_counts: ``{activation name: [B, ...]}`` spikes per neuron summed over the ``T`` steps.
    """

    output: Tensor
    states: dict[str, Any]
    spikes_per_step: dict[str, Tensor]
    spike_counts: dict[str, Tensor]


def _fetch_attr(root: nn.Module, target: str) -> Any:
    obj: Any = root
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


class ConvertedSNN(nn.Module):
    """A converted SNN. Build it with :func:`spikeforge.conversion.convert`.

    Args:
        graph_module: the converted graph (activations replaced by spiking modules).
        input_mode: ``"analog"`` (current injection) or ``"rate"`` (Bernoulli spikes, inputs in [0, 1]).
        method: conversion method used (informational).
    """

    def __init__(self, graph_module: fx.GraphModule, *, input_mode: str = "analog", method: str = "") -> None:
        super().__init__()
        if input_mode not in INPUT_MODES:
            raise ValueError(f"input must be one of {INPUT_MODES}, got {input_mode!r}")
        self.body = graph_module
        self.input_mode = input_mode
        self.method = method
        placeholders = [n for n in graph_module.graph.nodes if n.op == "placeholder"]
        if len(placeholders) != 1:
            raise ValueError(f"the converted graph must have exactly one input, found {len(placeholders)}")

    # ---- introspection -----------------------------------------------------------------------
    @property
    def activation_names(self) -> list[str]:
        """Qualified names of the spiking activation layers, in graph order."""
        return [
            str(n.target)
            for n in self.body.graph.nodes
            if n.op == "call_module" and isinstance(self.body.get_submodule(n.target), SpikingActivation)
        ]

    def thresholds(self) -> dict[str, float]:
        """``{activation name: threshold lambda}``."""
        return {name: self._activation(name).threshold for name in self.activation_names}

    def _activation(self, name: str) -> SpikingActivation:
        """The spiking activation ``name`` (one of :attr:`activation_names`)."""
        return cast(SpikingActivation, self.body.get_submodule(name))

    # ---- input encoding ----------------------------------------------------------------------
    def encode(self, x: Tensor, num_steps: int, *, generator: torch.Generator | None = None) -> Tensor:
        """Input sequence ``[T, B, ...]`` for a static input ``x`` ``[B, ...]``.

        ``"analog"``: ``x`` repeated every step (the first layer receives the analog value each step).
        ``"rate"``: Bernoulli spikes with probability ``x`` per step (``x`` must lie in ``[0, 1]``).
        """
        check_float_tensor(x, "x", min_dim=1)
        if self.input_mode == "analog":
            return constant(x, num_steps)
        if bool((x < 0).any()) or bool((x > 1).any()):
            raise ValueError(
                "rate-coded input needs x in [0, 1] (spike probabilities); rescale x or use input='analog'"
            )
        return bernoulli_spikes(x, num_steps, generator=generator)

    # ---- running -----------------------------------------------------------------------------
    def _execute(
        self, x: Tensor, *, steps: int | None, states: dict[str, Any] | None, ann: bool, record: dict[str, Any] | None
    ) -> tuple[Tensor, dict[str, Any]]:
        env: dict[fx.Node, Any] = {}
        new_states: dict[str, Any] = {}
        result: Any = None
        for node in self.body.graph.nodes:
            args = fx.node.map_arg(node.args, lambda n: env[n])
            kwargs = fx.node.map_arg(node.kwargs, lambda n: env[n])
            if node.op == "placeholder":
                env[node] = x
            elif node.op == "get_attr":
                env[node] = _fetch_attr(self.body, node.target)
            elif node.op == "call_function":
                env[node] = node.target(*args, **kwargs)
            elif node.op == "call_method":
                env[node] = getattr(args[0], node.target)(*args[1:], **kwargs)
            elif node.op == "call_module":
                mod = self.body.get_submodule(node.target)
                if isinstance(mod, TimeStateful):
                    env[node] = self._stateful(mod, str(node.target), args[0], steps, states, new_states, ann, record)
                else:
                    env[node] = mod(*args, **kwargs)
            elif node.op == "output":
                result = args[0]
        if not isinstance(result, Tensor):
            raise TypeError("the converted graph must return a single tensor")
        return result, new_states

    def _stateful(
        self,
        mod: TimeStateful,
        name: str,
        h: Tensor,
        steps: int | None,
        states: dict[str, Any] | None,
        new_states: dict[str, Any],
        ann: bool,
        record: dict[str, Any] | None,
    ) -> Tensor:
        if ann:
            out = mod.source(h)
            if record is not None and isinstance(mod, SpikingActivation):
                record[name] = out.detach()
            return out
        if steps is None:  # internal invariant: the SNN path always knows T
            raise RuntimeError("internal error: number of steps missing in the SNN path")
        h_seq = h.reshape(steps, h.shape[0] // steps, *h.shape[1:])
        state = None if states is None else states.get(name)
        if isinstance(mod, SpikingActivation):
            z, new_states[name] = mod.spikes(h_seq, state)
            if record is not None:
                zd = z.detach()
                record["per_step"][name] = zd.reshape(steps, -1).sum(1)
                record["counts"][name] = zd.sum(0)
            y = z * mod.threshold
        else:
            y, new_states[name] = mod(h_seq, state)
        return y.reshape(steps * y.shape[1], *y.shape[2:])

    def run(self, x_seq: Tensor, states: dict[str, Any] | None = None) -> SNNRun:
        """Run ``x_seq`` ``[T, B, ...]``; return output, states and spike counts (see :class:`SNNRun`)."""
        check_float_tensor(x_seq, "x_seq", min_dim=2)
        steps, batch = x_seq.shape[:2]
        if steps == 0 or batch == 0:
            raise ValueError(f"x_seq must have T >= 1 and B >= 1, got shape {tuple(x_seq.shape)}")
        if states is not None and not isinstance(states, dict):
            raise TypeError("states must be the dict returned by a previous call, or None to start fresh")
        rec: dict[str, Any] = {"per_step": {}, "counts": {}}
        out, new_states = self._execute(
            x_seq.reshape(steps * batch, *x_seq.shape[2:]), steps=steps, states=states, ann=False, record=rec
        )
        return SNNRun(out.reshape(steps, batch, *out.shape[1:]), new_states, rec["per_step"], rec["counts"])

    def forward(self, x_seq: Tensor, states: dict[str, Any] | None = None) -> tuple[Tensor, dict[str, Any]]:
        """``(output [T, B, ...], states)`` for input ``x_seq`` ``[T, B, ...]``."""
        r = self.run(x_seq, states)
        return r.output, r.states

    def ann_forward(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Run the ANN this SNN was converted from (BatchNorm folded): ``(output, {activation: a})``.

        Every spiking layer is replaced by the module it came from, so this is the reference for the
        per-layer conversion error.
        """
        check_float_tensor(x, "x", min_dim=1)
        rec: dict[str, Any] = {}
        out, _ = self._execute(x, steps=None, states=None, ann=True, record=rec)
        return out, rec
