"""The options (``TrainConfig.model_kwargs``, ``--model-kwargs JSON``) of the models with synaptic delays or SRM
neurons (:mod:`spikeforge.training.delay_models`), each validated once, here, when the config is made.

``delay-mlp``: ``[DelayedLinear -> neuron] * len(hidden) -> Linear -> readout``

* ``max_delay`` (default ``(time_steps - 1) // 3``): the largest delay in steps (taps ``0 .. max_delay``),
  ``< time_steps``;
* ``per`` (``"synapse"``): ``"synapse"`` (DCLS, one delay per weight) or ``"axon"`` (SLAYER, one per input);
* ``interpolation`` (``"gaussian"``): ``"gaussian"`` (DCLS, annealed width) or ``"linear"`` (SLAYER);
* ``sigma_start`` (``max(max_delay / 6, 0.5)``) and ``sigma_end`` (``0.1``): the Gaussian width in steps at the
  first training step and from the end of the annealing on, linear in between;
* ``anneal_fraction`` (``0.5``): the share of the run's optimiser steps over which the width is annealed; the rest
  trains at ``sigma_end``, close to the integer delays that inference runs (the learning rate decays to 0 over the
  run, so annealing until the last step leaves no steps to adapt to the narrow kernels);
* ``weight_gain`` (``3.0``): factor on the initial weights of the delayed layers (the Gaussian taps spread each
  spike over several steps, so ``nn.Linear``'s initialisation alone gives too little drive to spike).

``srm``: ``[Linear or DelayedLinear -> SRM] * len(hidden) -> Linear -> readout`` (an LI readout for the membrane
decodings, an SRM layer for ``spike_count``). Options: ``tau_s`` (4.0), ``tau_r`` (4.0), ``scale_ref`` (2.0):
the SRM kernels (:class:`~spikeforge.synapses.SRM`); ``delays`` (false): delayed hidden layers, then with the
options of ``delay-mlp``; ``weight_gain`` (3.0, as above). The SRM neurons use SLAYER's probability-density
surrogate, so ``--neuron`` and ``--surrogate`` are refused with ``srm``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

__all__ = ["DELAY_MODELS", "DELAY_KEYS", "SRM_KEYS", "resolve_model_kwargs", "check_model_kwargs"]

#: Models that take ``model_kwargs``.
DELAY_MODELS: tuple[str, ...] = ("delay-mlp", "srm")
DELAY_KEYS: tuple[str, ...] = (
    "max_delay", "per", "interpolation", "sigma_start", "sigma_end", "anneal_fraction", "weight_gain",
)  # fmt: skip
SRM_KEYS: tuple[str, ...] = ("tau_s", "tau_r", "scale_ref", "delays", *DELAY_KEYS)
_CHOICES = {"per": ("synapse", "axon"), "interpolation": ("gaussian", "linear")}


def _positive(model: str, key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"model_kwargs {key!r} of model {model!r} must be a finite number > 0, got {value!r}")
    return float(value)


def _delay_options(model: str, given: Mapping[str, Any], time_steps: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    max_delay = given.get("max_delay", (time_steps - 1) // 3)
    if isinstance(max_delay, bool) or not isinstance(max_delay, int) or not 0 <= max_delay < time_steps:
        raise ValueError(
            f"model_kwargs 'max_delay' of model {model!r} must be an int in [0, time_steps - 1 = {time_steps - 1}] "
            f"(a delay of d steps needs T > d), got {max_delay!r}; lower it or raise --time-steps"
        )
    out["max_delay"] = max_delay
    for key, choices in _CHOICES.items():
        value = given.get(key, choices[0])
        if value not in choices:
            raise ValueError(f"model_kwargs {key!r} of model {model!r} must be one of {choices}, got {value!r}")
        out[key] = value
    out["sigma_start"] = _positive(model, "sigma_start", given.get("sigma_start", max(max_delay / 6, 0.5)))
    out["sigma_end"] = _positive(model, "sigma_end", given.get("sigma_end", 0.1))
    out["anneal_fraction"] = _positive(model, "anneal_fraction", given.get("anneal_fraction", 0.5))
    if out["anneal_fraction"] > 1:
        raise ValueError(
            f"model_kwargs 'anneal_fraction' of model {model!r} is a share of the run in (0, 1], got "
            f"{out['anneal_fraction']!r}"
        )
    out["weight_gain"] = _positive(model, "weight_gain", given.get("weight_gain", 3.0))
    return out


def resolve_model_kwargs(model: str, model_kwargs: Mapping[str, Any] | None, *, time_steps: int) -> dict[str, Any]:
    """Every option of ``model`` (one of :data:`DELAY_MODELS`) with the defaults filled in; ``ValueError`` naming
    the option and the fix for an unknown key or a bad value."""
    given = dict(model_kwargs or {})
    keys = DELAY_KEYS if model == "delay-mlp" else SRM_KEYS
    unknown = sorted(set(given) - set(keys))
    if unknown:
        raise ValueError(f"model {model!r} has no option(s) {unknown} in model_kwargs; valid: {', '.join(keys)}")
    if model == "delay-mlp":
        return _delay_options(model, given, time_steps)
    delays = given.get("delays", False)
    if not isinstance(delays, bool):
        raise ValueError(f"model_kwargs 'delays' of model 'srm' must be true or false, got {delays!r}")
    if not delays and any(k in given for k in DELAY_KEYS if k != "weight_gain"):
        extra = sorted(k for k in given if k in DELAY_KEYS and k != "weight_gain")
        raise ValueError(f"model_kwargs {extra} of model 'srm' need delays; add \"delays\": true or drop them")
    out = _delay_options(model, given, time_steps) if delays else {
        "weight_gain": _positive(model, "weight_gain", given.get("weight_gain", 3.0))
    }  # fmt: skip
    out["delays"] = delays
    out["tau_s"] = _positive(model, "tau_s", given.get("tau_s", 4.0))
    out["tau_r"] = _positive(model, "tau_r", given.get("tau_r", 4.0))
    scale_ref = given.get("scale_ref", 2.0)
    if isinstance(scale_ref, bool) or not isinstance(scale_ref, (int, float)) or not 0 <= scale_ref < math.inf:
        raise ValueError(f"model_kwargs 'scale_ref' of model 'srm' must be a finite number >= 0, got {scale_ref!r}")
    out["scale_ref"] = float(scale_ref)
    return out


def check_model_kwargs(
    model: str, model_kwargs: object, *, time_steps: int, hidden: Sequence[int], neuron: str, surrogate: str,
    defaults: Mapping[str, Any],
) -> None:  # fmt: skip
    """Called by :class:`~spikeforge.training.config.TrainConfig`: ``model_kwargs`` only for :data:`DELAY_MODELS`
    and valid there; those models with at least one hidden width; ``srm`` with ``neuron`` and ``surrogate`` at
    their ``defaults`` (it has its own)."""
    if model_kwargs is not None and not isinstance(model_kwargs, dict):
        raise TypeError(f"TrainConfig.model_kwargs must be a dict or None, got {type(model_kwargs).__name__}")
    if model not in DELAY_MODELS:
        if model_kwargs:
            raise ValueError(
                f"model {model!r} takes no model_kwargs (got {sorted(model_kwargs)}); they are options of "
                f"{' and '.join(DELAY_MODELS)}: drop --model-kwargs or choose one of those models"
            )
        return
    resolve_model_kwargs(model, model_kwargs, time_steps=time_steps)
    if not hidden:
        raise ValueError(
            f"model {model!r} needs at least one hidden layer (its delays and spiking neurons live there); give "
            "--hidden, e.g. --hidden 32"
        )
    if model == "srm":
        for name, value in (("neuron", neuron), ("surrogate", surrogate)):
            if value != defaults[name]:
                raise ValueError(
                    f"--{name} {value} does not apply to model 'srm' (its hidden layers are SLAYER's SRM neurons with "
                    f"their probability-density surrogate); drop --{name}, or use --model delay-mlp for "
                    "LIF-family neurons"
                )
