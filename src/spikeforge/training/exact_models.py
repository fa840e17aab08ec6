r"""The networks ``spikeforge train --method eventprop|ttfs`` trains, as modules a checkpoint can hold, and their
spike and synaptic-operation counts.

:class:`ExactClassifier` wraps either method's network behind one interface: ``encode`` (Yin-Yang features
``[B, 4]`` in ``[0, 1]`` -> the method's input spike times), ``spike_times`` (every population's spike times,
bias spikes included), ``forward`` (class scores ``[B, C]``, larger = more likely) and ``predict``. It is built
from the run's :class:`~spikeforge.training.config.TrainConfig` (``hidden``) and the method's recipe settings (the
time constants, code and loss of :class:`~spikeforge.training.exact_eventprop.EventPropTrainConfig` or
:class:`~spikeforge.training.exact_ttfs.TTFSTrainConfig`), which the checkpoint stores beside the weights.

Prediction follows each recipe: EventProp's first-spike readout predicts the output neuron that fires first,
a silent output counting as firing at ``t_end`` (ties and all-silent: the lowest index); its max-membrane readout
the largest maximum membrane; TTFS the output neuron that fires first, and no class (wrong) when none fires.

**Counts** (:func:`exact_counts`): the simulation is event-driven in continuous time, so every presynaptic
spike (input, bias or hidden) is one accumulate at each of its postsynaptic targets:
:math:`\text{SynOps} = \sum_l s_{l-1} N_l` with :math:`s_{l-1}` the spikes (bias spikes included) of the
population feeding layer :math:`l` of :math:`N_l` neurons (all-to-all). There is no time grid: the counts
describe one step per inference (``time_steps = 1``), one neuron update per neuron (active when it received
at least one spike), and a state of two values (``V``, ``I``) read and written per update; ``dense_macs`` is
the layer's ``N_in x N_out`` once, so the dense ANN baseline of :mod:`spikeforge.energy` is the same layers run
once. :func:`spikeforge.energy.estimate` prices these counts on the chips (its constants, not ours).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch import nn

from spikeforge.energy import LayerCounts
from spikeforge.energy import OpCounts

__all__ = ["ExactClassifier", "ExactRun", "recipe_config", "recipe_dict", "exact_counts", "STATE_VALUES"]

#: State values of one neuron (membrane ``V`` and synaptic current ``I``) read and written per update.
STATE_VALUES = 2


def recipe_config(method: str, values: Mapping[str, Any] | None = None) -> Any:
    """The recipe settings of ``method`` (``"eventprop"`` or ``"ttfs"``): its config class built from ``values``
    (e.g. as a checkpoint stores them; JSON lists become tuples), its defaults for the fields not given.

    Raises:
        ValueError: an unknown method, an unknown field or a value the recipe refuses.
    """
    if method == "eventprop":
        from spikeforge.training.exact_eventprop import EventPropTrainConfig as cls
    elif method == "ttfs":
        from spikeforge.training.exact_ttfs import TTFSTrainConfig as cls  # type: ignore[assignment]
    else:
        raise ValueError(f"unknown exact method {method!r}; valid choices: eventprop, ttfs")
    given = {k: _tuples(v) for k, v in dict(values or {}).items()}
    try:
        return cls(**given)
    except TypeError as err:
        raise ValueError(f"the {method} settings do not fit its recipe ({err})") from None


def recipe_dict(recipe: Any) -> dict[str, Any]:
    """The recipe settings as plain values (what a checkpoint stores); :func:`recipe_config` inverts it."""
    return {k: _lists(v) for k, v in asdict(recipe).items()}


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def _lists(value: Any) -> Any:
    return [_lists(v) for v in value] if isinstance(value, (list, tuple)) else value


class ExactClassifier(nn.Module):
    """A Yin-Yang classifier trained with exact gradients: ``n_in - hidden - n_classes`` (see the module docstring).

    Args:
        method: ``"eventprop"`` or ``"ttfs"``.
        n_in, hidden, n_classes: layer widths (without the bias inputs).
        recipe: the method's recipe config (:func:`recipe_config`).
    State dict: EventProp ``weights.0`` ``[hidden, n_in + 1]`` and ``weights.1`` ``[n_classes, hidden]``
    (membrane units; the bias spike is the last input); TTFS the :class:`~spikeforge.exact.ttfs.TTFSNetwork`
    at ``net`` (``net.layers.L.weight`` ``[N_in + 1, N_out]``, ``net.layers.L.bias_times``).
    """

    def __init__(self, method: str, n_in: int, hidden: int, n_classes: int, recipe: Any) -> None:
        super().__init__()
        self.method, self.recipe = method, recipe
        self.sizes = (int(n_in), int(hidden), int(n_classes))
        if method == "ttfs":
            from spikeforge.exact.ttfs import TTFSNetwork
            from spikeforge.exact.ttfs import TTFSParams

            self.net = TTFSNetwork(self.sizes, params=TTFSParams(), bias_times=(recipe.bias_time,))
        elif method == "eventprop":
            shapes = ((hidden, n_in + 1), (n_classes, hidden))
            self.weights = nn.ParameterList([nn.Parameter(torch.zeros(s, dtype=torch.float64)) for s in shapes])
        else:
            raise ValueError(f"unknown exact method {method!r}; valid choices: eventprop, ttfs")

    @property
    def spiking_output(self) -> bool:
        """False for EventProp's max-membrane readout (a non-spiking output layer)."""
        return self.method == "ttfs" or self.recipe.readout == "first_spike"

    def extra_repr(self) -> str:
        return f"method={self.method}, sizes={self.sizes}"

    def encode(self, x: Tensor) -> Tensor:
        """Features ``[B, n_in]`` in ``[0, 1]`` -> input spike times: EventProp ``[B, n_in + 1, 1]`` (the bias spike
        last), TTFS ``[B, n_in]`` (each layer adds its bias spike), float64."""
        x = x.detach().to("cpu", torch.float64)
        if self.method == "ttfs":
            from spikeforge.training.exact_ttfs import ttfs_encode

            return ttfs_encode(x, self.recipe)
        from spikeforge.training.exact_eventprop import eventprop_encode

        return eventprop_encode(x, self.recipe)

    def run(self, x: Tensor) -> ExactRun:
        """One simulation of the features ``x [B, n_in]``: scores, predictions and every population's spike times
        (see :class:`ExactRun`). No gradient."""
        t_in = self.encode(x)
        with torch.no_grad():
            if self.method == "ttfs":
                from spikeforge.exact.losses import silent_to_t_max

                hidden, t_out = self.net.forward_all(t_in)
                scores = -silent_to_t_max(t_out, self.recipe.t_max) / self.recipe.xi
                pops = [
                    ("input", self._with_bias(t_in, 0)),
                    ("hidden", hidden[:, :, None]),
                    ("output", t_out[:, :, None]),
                ]
                fired = torch.isfinite(t_out).any(dim=1)
                pred = torch.where(fired, scores.argmax(dim=1), torch.full_like(fired, -1, dtype=torch.int64))
                return ExactRun(scores, pred, pops)
            from spikeforge.exact.simulate import max_membrane
            from spikeforge.exact.simulate import simulate

            cfg = self.recipe.event_config()
            weights = [w.detach() for w in self.weights]
            if self.spiking_output:  # every layer spikes: one simulation gives the scores and the rasters
                layers = simulate(t_in, weights, cfg)
                first = layers[1][:, :, 0]
                scores = -torch.where(torch.isinf(first), torch.full_like(first, self.recipe.t_end), first)
                scores = scores / self.recipe.tau0
            else:
                layers = simulate(t_in, weights[:1], cfg)
                scores = max_membrane(t_in, weights, cfg)[0]
            names = ["hidden", "output"][: len(layers)]
            return ExactRun(scores, scores.argmax(dim=1), [("input", t_in), *zip(names, layers, strict=True)])

    def spike_times(self, x: Tensor) -> list[tuple[str, Tensor]]:
        """``(name, times [B, N, K])`` of every population, input first, ``+inf`` = no spike; each population
        that feeds a layer includes its bias spike(s). A non-spiking readout is left out."""
        return self.run(x).populations

    def _with_bias(self, t: Tensor, layer: int) -> Tensor:
        """TTFS: ``[B, N]`` times -> ``[B, N + n_bias, 1]`` with layer ``layer``'s bias spikes."""
        bias: Tensor = self.net.layers[layer].bias_times  # type: ignore[assignment]
        return torch.cat([t, bias.to(t.dtype).expand(t.shape[0], -1)], dim=1)[:, :, None]

    def presynaptic(self, populations: list[tuple[str, Tensor]]) -> list[tuple[str, Tensor, int]]:
        """``(layer name, presynaptic spike times [B, N_pre, K], fan-out N_out)`` of each synaptic layer, from
        :meth:`spike_times`' populations (TTFS: the hidden layer's bias spike added)."""
        pre = [populations[0][1], populations[1][1]]
        if self.method == "ttfs":
            pre[1] = self._with_bias(pre[1][:, :, 0], 1)
        return [("fc1", pre[0], self.sizes[1]), ("fc2", pre[1], self.sizes[2])]

    def forward(self, x: Tensor) -> Tensor:
        """Class scores ``[B, n_classes]`` (float64, larger = more likely): ``-t_first / tau0`` (EventProp,
        silent = ``t_end``), ``V_max`` (EventProp max-membrane), ``-t_first / xi`` (TTFS, silent = ``t_max``)."""
        return self.run(x).scores

    def predict(self, x: Tensor) -> Tensor:
        """Predicted classes ``[B]`` (int64; ``-1`` = no output spike, TTFS only)."""
        return self.run(x).predictions

    def loss(self, x: Tensor, y: Tensor) -> Tensor:
        """Mean cross-entropy of :meth:`forward`'s scores (the papers' loss without its regulariser)."""
        return F.cross_entropy(self(x), y.to(torch.int64))


class ExactRun(NamedTuple):
    """What :meth:`ExactClassifier.run` computes from one simulation of a batch."""

    scores: Tensor  # [B, C], larger = more likely
    predictions: Tensor  # [B] int64, -1 = no output spike (TTFS)
    populations: list[tuple[str, Tensor]]  # (name, spike times [B, N, K]), input (with bias spikes) first


def exact_counts(model: ExactClassifier, x: Tensor, run: ExactRun | None = None) -> OpCounts:
    """Spikes, SynOps, updates and memory traffic of ``model`` on the features ``x [B, n_in]`` (module docstring).

    Layers: ``fc1``, ``lif1`` (hidden), ``fc2``, ``lif2`` (output), as :func:`spikeforge.energy.count` names its
    ``linear`` and ``neuron`` entries; ``input_spikes`` counts the input and bias spikes fed to ``fc1``. ``run``:
    :meth:`ExactClassifier.run` of ``x`` if already computed.
    """
    if x.dim() != 2 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty [B, {model.sizes[0]}] batch of features, got {tuple(x.shape)}")
    batch = int(x.shape[0])
    populations = (run or model.run(x)).populations
    by_name = dict(populations)
    synaptic = model.presynaptic(populations)
    layers: list[LayerCounts] = []
    for index, (name, pre, fan_out) in enumerate(synaptic, start=1):
        spikes_in = int(torch.isfinite(pre).sum())
        synops = spikes_in * fan_out
        layers.append(
            LayerCounts(
                name=name, kind="linear", module_type=f"{model.method} synapses", calls=1, synops=synops,
                dense_macs=batch * int(pre.shape[1]) * fan_out, weight_reads=synops,
                weights=int(pre.shape[1]) * fan_out, input_binary=True,
            )
        )  # fmt: skip
        received = torch.isfinite(pre).flatten(1).any(dim=1)  # [B]: every neuron gets every presynaptic spike
        updates = batch * fan_out
        post = by_name.get("hidden" if index == 1 else "output")
        layers.append(
            LayerCounts(
                name=f"lif{index}", kind="neuron", module_type=f"{model.method} neurons", calls=1,
                neuron_updates=updates, active_updates=int(received.sum()) * fan_out,
                spikes=int(torch.isfinite(post).sum()) if post is not None else 0,
                state_reads=STATE_VALUES * updates, state_writes=STATE_VALUES * updates, spiking=post is not None,
            )
        )  # fmt: skip
    first = synaptic[0][1]
    return OpCounts(
        layers=tuple(layers),
        time_steps=1,
        batch_size=batch,
        bytes_per_element=8,
        input_spikes=int(torch.isfinite(first).sum()),
    )
