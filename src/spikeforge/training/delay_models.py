r"""Model builders with learnable synaptic delays (``delay-mlp``) and SLAYER's SRM neurons (``srm``), for
``spikeforge train --model delay-mlp|srm`` (registered in :data:`spikeforge.training.models.MODEL_BUILDERS`).

* ``delay-mlp``: ``[AnnealedDelayedLinear -> neuron (-> Dropout)] * len(hidden) -> Linear -> readout``, the
  hidden neurons any registered spiking neuron (``--neuron lif``, ``cuba_lif``, ...).
* ``srm``: ``[Linear or AnnealedDelayedLinear -> SRM] * len(hidden) -> Linear -> readout``; the readout is an LI
  (membrane decodings) or an SRM layer (``--decoding spike_count``).

Options (``--model-kwargs``) and their defaults: :mod:`spikeforge.training.delay_options`.

The trainer knows nothing of delays, so the delayed layer carries its own schedule,
:class:`AnnealedDelayedLinear` (a :class:`~spikeforge.synapses.DelayedLinear`):

* **training mode** -- DCLS's recipe (Hammouamri et al., ICLR 2024): the delays are real and interpolated by a
  Gaussian whose width is annealed linearly from ``sigma_start`` to ``sigma_end`` over the first
  ``anneal_fraction`` of the run's optimiser steps (then held);
  the step count is a buffer (``anneal_step``, like BatchNorm's ``num_batches_tracked``), so a resumed run
  continues the schedule where it stopped. Delays are clamped into ``[0, max_delay]`` before each forward (DCLS
  clamps after each optimiser step).
* **eval mode** -- inference: the delays are rounded to integers and run as exact shifts (what
  :meth:`~spikeforge.synapses.DelayedLinear.rounded` gives, the path the energy counts, NIR export and the
  streaming engine accept). The validation and test accuracies of a run are those of this inference model.

The initial delays are drawn from a generator seeded with ``config.seed``, so rebuilding a run's model from its
config gives its initial delays (the delay histogram of :mod:`spikeforge.cli.plots_delays` shows before/after).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch import nn

from spikeforge._core.checks import check_int
from spikeforge.layers import SNNSequential
from spikeforge.synapses import SRM
from spikeforge.synapses import DelayedLinear
from spikeforge.training.choices import check_widths
from spikeforge.training.delay_options import resolve_model_kwargs

__all__ = ["AnnealedDelayedLinear", "build_delay_mlp", "build_srm", "delayed_layers", "train_steps", "Factory"]

#: ``(neuron name, surrogate name, width, neuron_kwargs) -> layer``: how :mod:`spikeforge.training.models` makes
#: a hidden neuron layer and each readout (passed in, so this module does not import the one that registers it).
Factory = Callable[[str, str, int, "Mapping[str, Any] | None"], nn.Module]

_PER = ("axon", "synapse")
_INTERP = ("gaussian", "linear")


class AnnealedDelayedLinear(DelayedLinear):
    """A :class:`~spikeforge.synapses.DelayedLinear` that anneals its Gaussian width over ``total_steps``
    training forwards and runs exact integer shifts in eval mode (see the module docstring).

    Args:
        in_features, out_features, max_delay, per, interpolation, generator: as ``DelayedLinear``.
        sigma_start, sigma_end: Gaussian width (steps) at the first and the last training step.
        total_steps: training steps of the annealing (the schedule's length); later steps keep ``sigma_end``.
        weight_gain: factor on the initial weights.
    """

    anneal_step: Tensor  # training forwards so far (a buffer: saved, restored, resumed)

    def __init__(
        self,
        in_features: int,
        out_features: int,
        max_delay: int,
        *,
        per: str,
        interpolation: str,
        sigma_start: float,
        sigma_end: float,
        total_steps: int,
        weight_gain: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(
            in_features, out_features, max_delay, per=per, interpolation=interpolation, sigma=sigma_start,
            generator=generator,
        )  # fmt: skip
        self.set_sigma(sigma_end)  # validates it
        self.sigma_start, self.sigma_end = float(sigma_start), float(sigma_end)
        self.set_sigma(sigma_start)
        self.total_steps = check_int(total_steps, "total_steps", minimum=1)
        with torch.no_grad():
            self.weight.mul_(float(weight_gain))
        self.register_buffer("anneal_step", torch.zeros((), dtype=torch.long))

    # ``integer`` is True after rounded() and in eval mode: the parent's forward, step and kernel then run exact
    # integer shifts, and every integration that asks ``layer.integer`` sees the inference model.
    @property
    def integer(self) -> bool:
        return bool(self.__dict__.get("_rounded", False)) or not self.training

    @integer.setter
    def integer(self, value: bool) -> None:
        self.__dict__["_rounded"] = bool(value)

    def train(self, mode: bool = True) -> AnnealedDelayedLinear:
        if not mode:
            self.clamp_delays_()  # the integer path indexes with the rounded delays: keep them in range
        return super().train(mode)

    def sigma_at(self, step: int) -> float:
        """The Gaussian width at training step ``step`` (0-based; ``sigma_end`` from ``total_steps - 1`` on)."""
        frac = min(1.0, step / max(1, self.total_steps - 1))
        return self.sigma_start + (self.sigma_end - self.sigma_start) * frac

    def forward(self, x_seq: Tensor) -> Tensor:
        if self.training and not self.__dict__.get("_rounded", False):
            if isinstance(self.delays, nn.Parameter):  # its own learnt delays, not a tensor given by functional_call
                self.clamp_delays_()
            self.set_sigma(self.sigma_at(int(self.anneal_step)))
            with torch.no_grad():
                self.anneal_step.add_(1)  # in place: the buffer stays the one registered
        return super().forward(x_seq)

    def get_extra_state(self) -> Tensor:  # type: ignore[override]
        """A float64 tensor (a checkpoint holds tensors only): placement, interpolation, max_delay, rounded, sigma."""
        rounded = float(self.__dict__.get("_rounded", False))
        codes = [_PER.index(self.per), _INTERP.index(self.interpolation), self.max_delay, rounded, self.sigma]
        return torch.tensor(codes, dtype=torch.float64)

    def set_extra_state(self, state: object) -> None:
        if not isinstance(state, Tensor) or tuple(state.shape) != (5,):
            raise ValueError(f"AnnealedDelayedLinear: unreadable saved settings {state!r}; save it with this version")
        per, interp, max_delay, rounded, sigma = state.tolist()
        saved = {"per": _PER[int(per)] if 0 <= per < 2 else per, "max_delay": int(max_delay),
                 "interpolation": _INTERP[int(interp)] if 0 <= interp < 2 else interp}  # fmt: skip
        for key, value in saved.items():
            if value != getattr(self, key):
                raise ValueError(
                    f"AnnealedDelayedLinear: the state_dict was saved with {key}={value!r} but this layer has "
                    f"{key}={getattr(self, key)!r}; build the layer with the saved settings"
                )
        self.integer = bool(rounded)
        self.set_sigma(float(sigma))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, sigma {self.sigma_start:g} -> {self.sigma_end:g} over {self.total_steps} steps"


def train_steps(config: Any) -> int:
    """Optimiser steps of a run: ``epochs * ceil(n_train / batch_size)``, ``n_train`` the training samples left
    after the validation share when the dataset has no validation split (as
    :func:`~spikeforge.training.splits.load_splits` holds out)."""
    from spikeforge.data import dataset_info

    info = dataset_info(config.dataset)
    n = int(info.split_size("train"))
    if "validation" not in info.split_names:
        n -= max(1, round(config.val_fraction * n))
    return int(config.epochs) * max(1, math.ceil(max(n, 1) / int(config.batch_size)))


def _delayed(n_in: int, width: int, opts: dict[str, Any], steps: int, gen: torch.Generator) -> AnnealedDelayedLinear:
    return AnnealedDelayedLinear(
        n_in, width, opts["max_delay"], per=opts["per"], interpolation=opts["interpolation"],
        sigma_start=opts["sigma_start"], sigma_end=opts["sigma_end"],
        total_steps=max(1, round(opts["anneal_fraction"] * steps)),
        weight_gain=opts["weight_gain"], generator=gen,
    )  # fmt: skip


def _first(in_shape: Sequence[int]) -> list[nn.Module]:
    """``[Flatten]`` for multi-dimensional per-step features (a DelayedLinear takes ``[T, B, in]``), else ``[]``."""
    return [nn.Flatten()] if len(in_shape) > 1 else []


def build_delay_mlp(
    config: Any, in_shape: Sequence[int], num_classes: int, common: Mapping[str, Any], *, neuron: Factory,
    readouts: Mapping[str, Factory],
) -> SNNSequential:  # fmt: skip
    """``[AnnealedDelayedLinear -> neuron (-> Dropout)] * len(hidden) -> Linear -> readout`` for per-step features
    ``in_shape`` (names already validated by the config; ``common``: ``neuron``, ``surrogate``, ``neuron_kwargs``,
    ``dropout``, ``readout`` as :func:`~spikeforge.training.models.build_model` passes them; ``neuron`` and
    ``readouts[common["readout"]]`` make the neuron layers)."""
    opts = resolve_model_kwargs("delay-mlp", config.model_kwargs, time_steps=config.time_steps)
    widths = check_widths("hidden", config.hidden, allow_empty=False)
    steps = train_steps(config)
    gen = torch.Generator().manual_seed(int(config.seed))  # the initial delays: rebuilt identically from the config
    layers, n_in = _first(in_shape), math.prod(in_shape)
    for width in widths:
        layers += [
            _delayed(n_in, width, opts, steps, gen),
            neuron(common["neuron"], common["surrogate"], width, common["neuron_kwargs"]),
        ]
        if common["dropout"] > 0:
            layers.append(nn.Dropout(common["dropout"]))
        n_in = width
    layers.append(nn.Linear(n_in, num_classes))
    make = readouts[common["readout"]]
    layers.append(make(common["neuron"], common["surrogate"], num_classes, common["neuron_kwargs"]))
    return SNNSequential(*layers)


def build_srm(
    config: Any, in_shape: Sequence[int], num_classes: int, common: Mapping[str, Any], *, neuron: Factory,
    readouts: Mapping[str, Factory],
) -> SNNSequential:  # fmt: skip
    """``[Linear or AnnealedDelayedLinear -> SRM (-> Dropout)] * len(hidden) -> Linear -> readout``: the LI readout
    of ``readouts["li"]`` for the membrane decodings, an SRM layer for ``spike_count`` (``neuron`` is unused: the
    hidden layers are SRM neurons)."""
    opts = resolve_model_kwargs("srm", config.model_kwargs, time_steps=config.time_steps)
    widths = check_widths("hidden", config.hidden, allow_empty=False)
    steps = train_steps(config)
    gen = torch.Generator().manual_seed(int(config.seed))
    srm = {"tau_s": opts["tau_s"], "tau_r": opts["tau_r"], "scale_ref": opts["scale_ref"]}
    layers, n_in = _first(in_shape), math.prod(in_shape)
    for width in widths:
        syn: nn.Module
        if opts["delays"]:
            syn = _delayed(n_in, width, opts, steps, gen)
        else:
            syn = nn.Linear(n_in, width)
            with torch.no_grad():
                syn.weight.mul_(opts["weight_gain"])
        layers += [syn, SRM(**srm)]
        if common["dropout"] > 0:
            layers.append(nn.Dropout(common["dropout"]))
        n_in = width
    layers.append(nn.Linear(n_in, num_classes))
    if common["readout"] == "spiking":
        layers.append(SRM(**srm))
    else:
        layers.append(readouts["li"](common["neuron"], common["surrogate"], num_classes, common["neuron_kwargs"]))
    return SNNSequential(*layers)


def delayed_layers(model: nn.Module) -> list[tuple[str, DelayedLinear]]:
    """``(qualified name, layer)`` of every :class:`~spikeforge.synapses.DelayedLinear` in ``model``, in order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, DelayedLinear)]
