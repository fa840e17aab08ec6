"""Every named choice of a training run and the one validator of each.

:class:`~spikeforge.training.config.TrainConfig` validates its fields with these functions, and the public
model builders (:func:`~spikeforge.training.models.build_mlp`, :func:`~spikeforge.training.models.build_conv`,
:class:`~spikeforge.training.models.SNNClassifier`) reuse them, so each name is checked by one definition and
every error names the fix (the valid choices, or the value to use instead).

Encodings and decodings are tables (name -> function); their keys are the valid names.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor

from spikeforge import encoding as enc
from spikeforge.training.run_options import SELECT_RULES as SELECT_RULES
from spikeforge.training.run_options import SPARSE_MODES as SPARSE_MODES
from spikeforge.training.run_options import check_select as check_select
from spikeforge.training.run_options import check_sparse as check_sparse
from spikeforge.training.sequence import check_sequence_input
from spikeforge.training.sequence import sequence_defaults

__all__ = [
    "ENCODERS", "DECODERS", "MODELS", "READOUTS", "DEVICE_TYPES", "check_choice", "check_dataset", "check_model",
    "check_neuron", "check_hidden_neuron", "check_surrogate", "check_encoding", "check_encoding_options",
    "check_decoding", "check_readout", "check_device", "check_device_available", "available_devices",
    "check_neuron_kwargs", "check_positive_int", "check_widths", "check_dropout",
    "spiking_neurons", "valid_names", "METHODS", "EXACT_METHODS", "EXACT_UNUSED", "check_method", "MAX_EPOCHS",
    "MAX_TIME_STEPS", "check_sequence_input", "sequence_defaults", "TRANSFORMER_MODELS", "LM_MODELS", "LM_UNUSED",
    "check_lm", "SPARSE_MODES", "check_sparse", "SELECT_RULES", "check_select",
]  # fmt: skip

#: ``(x [B, ...], time_steps, generator, options) -> x_seq [T, B, ...]``.
Encoder = Callable[[Tensor, int, "torch.Generator | None", Mapping[str, Any]], Tensor]
#: ``out_seq [T, B, C] -> logits [B, C]``.
Decoder = Callable[[Tensor], Tensor]


def _encode_constant(
    x: Tensor, time_steps: int, generator: torch.Generator | None, options: Mapping[str, Any]
) -> Tensor:
    return enc.constant(x, time_steps)


def _encode_rate(x: Tensor, time_steps: int, generator: torch.Generator | None, options: Mapping[str, Any]) -> Tensor:
    return enc.rate(x, time_steps, generator=generator, **options)


def _encode_latency(
    x: Tensor, time_steps: int, generator: torch.Generator | None, options: Mapping[str, Any]
) -> Tensor:
    return enc.latency(x, time_steps, **options)


def _encode_sequence(
    x: Tensor, time_steps: int, generator: torch.Generator | None, options: Mapping[str, Any]
) -> Tensor:
    if x.dim() < 3 or x.shape[1] != time_steps:
        raise ValueError(
            f"the 'sequence' encoding takes samples [B, T={time_steps}, ...] (a sequence dataset's spike trains or "
            f"frames), got {list(x.shape)}; set time_steps to the dataset's T or use a static-input encoding"
        )
    return x.transpose(0, 1)


def _max_over_time(out_seq: Tensor) -> Tensor:
    return out_seq.max(dim=0).values


def _mean_over_time(out_seq: Tensor) -> Tensor:
    return out_seq.mean(dim=0)


def _sum_over_time(out_seq: Tensor) -> Tensor:
    return out_seq.sum(dim=0)


#: Input codes of :class:`~spikeforge.training.models.SNNClassifier` (see :mod:`spikeforge.encoding`).
ENCODERS: Mapping[str, Encoder] = MappingProxyType(
    {"constant": _encode_constant, "rate": _encode_rate, "latency": _encode_latency, "sequence": _encode_sequence}
)
#: Readout decodings: max / mean of the LI membrane over time, or the spike count of a spiking readout.
DECODERS: Mapping[str, Decoder] = MappingProxyType(
    {"max_membrane": _max_over_time, "mean_membrane": _mean_over_time, "spike_count": _sum_over_time}
)
#: Model names; :data:`spikeforge.training.models.MODEL_BUILDERS` holds one builder per name.
MODELS: tuple[str, ...] = ("mlp", "conv", "delay-mlp", "srm", *("spikformer", "sdt", "vit-twin"))
#: ``delay-mlp`` and ``srm``: :mod:`spikeforge.training.delay_models`.
#: The spiking-transformer models (:mod:`spikeforge.training.transformer_models`; sized by ``transformer_kwargs``).
TRANSFORMER_MODELS: tuple[str, ...] = ("spikformer", "sdt", "vit-twin")
#: Readout layers: a non-spiking LI (membrane decodings) or the hidden neuron type (``spike_count``).
READOUTS: tuple[str, ...] = ("li", "spiking")
#: Device types the trainer runs on.
DEVICE_TYPES: tuple[str, ...] = ("cpu", "cuda", "mps")
#: Caps on counts that would otherwise run for days without failing: epochs and time steps of a run (the
#: command line's ``train`` and ``convert`` use the same). A run beyond them is a typo.
MAX_EPOCHS = 100_000
MAX_TIME_STEPS = 1_000_000
#: Training methods: BPTT with surrogate gradients (the discrete-time models of ``models.py``), or the exact
#: gradients of :mod:`spikeforge.exact` on Yin-Yang (EventProp; analytic time-to-first-spike).
METHODS: tuple[str, ...] = ("surrogate", "eventprop", "ttfs")
EXACT_METHODS: tuple[str, ...] = ("eventprop", "ttfs")
#: Datasets the exact methods train on (their recipes latency-code Yin-Yang's four features).
EXACT_DATASETS: tuple[str, ...] = ("yinyang",)
#: ``TrainConfig`` fields of the discrete-time model that the exact methods do not use: refused there unless left
#: at their defaults (the exact methods simulate their own current-based LIF neurons in continuous time, on a
#: fixed latency code, with their papers' losses and Adam).
EXACT_UNUSED: tuple[str, ...] = (
    "model", "channels", "neuron", "surrogate", "neuron_kwargs", "time_steps", "encoding", "encoding_kwargs",
    "decoding", "dropout", "weight_decay", "grad_clip", "patience", "model_kwargs", "transformer_kwargs", "augment",
    "select",
)  # fmt: skip


def check_choice(kind: str, value: object, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``, else ``ValueError("unknown <kind> ...; valid choices: ...")``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"unknown {kind} {value!r}; valid choices: {', '.join(choices)}")
    return value


def check_dataset(name: object) -> str:
    from spikeforge.data import list_datasets
    from spikeforge.data.text import list_corpora

    return check_choice("dataset", name, [*list_datasets(), *list_corpora()])


def check_model(name: object) -> str:
    return check_choice("model", name, (*MODELS, *LM_MODELS))


#: Language models (:mod:`spikeforge.training.lm`): SpikeGPT and its non-spiking RWKV-4 twin, on text corpora.
LM_MODELS: tuple[str, ...] = ("spikegpt", "rwkv")
#: ``TrainConfig`` fields the language models do not use: refused there unless left at their defaults.
LM_UNUSED: tuple[str, ...] = (
    "channels", "neuron_kwargs", "encoding", "encoding_kwargs", "decoding", "dropout", "patience", "method",
    "model_kwargs", "transformer_kwargs", "augment", "select",
)  # fmt: skip


def check_lm(model: str, dataset: str, *, changed: Sequence[str], hidden: Sequence[int], neuron: str) -> None:
    """A language model (:data:`LM_MODELS`) trains on a text corpus only, and a corpus only with one; its blocks
    are ``hidden`` (one width per block, all equal), its fields of :data:`LM_UNUSED` keep their defaults."""
    from spikeforge.data.text import list_corpora

    is_lm, is_text = model in LM_MODELS, dataset in list_corpora()
    if is_lm != is_text:
        raise ValueError(
            f"--model {model} {'needs a text corpus' if is_lm else 'cannot train on a text corpus'}, got --dataset "
            f"{dataset}; use --dataset {'|'.join(list_corpora())} with --model {'|'.join(LM_MODELS)}"
        )
    if not is_lm:
        return
    if changed:
        flags = ", ".join("--" + f.replace("_", "-") for f in changed)
        raise ValueError(f"{flags} do(es) not apply to --model {model}; drop them")
    if not hidden or len(set(hidden)) != 1:
        raise ValueError(
            f"--model {model} takes one width per block, all equal (e.g. --hidden 128 128 128 128 for 4 blocks of "
            f"width 128), got --hidden {' '.join(map(str, hidden)) or '(none)'}"
        )
    from spikeforge.lm import LM_NEURONS

    if model == "spikegpt" and neuron not in LM_NEURONS:
        raise ValueError(f"--model spikegpt uses --neuron {' or '.join(LM_NEURONS)}, got {neuron!r}")


def check_method(name: object, *, dataset: str, changed: Sequence[str], hidden: Sequence[int], device: str) -> str:
    """A training method of :data:`METHODS`; an exact one (:data:`EXACT_METHODS`) only on :data:`EXACT_DATASETS`,
    with one hidden layer, on the CPU, and with every field of :data:`EXACT_UNUSED` at its default (``changed``
    lists those that are not)."""
    check_choice("method", name, METHODS)
    if name not in EXACT_METHODS:
        return str(name)
    if dataset not in EXACT_DATASETS:
        raise ValueError(
            f"--method {name} trains on Yin-Yang only (its latency code has four features), not on dataset "
            f"{dataset!r}; use --dataset yinyang, or --method surrogate for {dataset!r}"
        )
    if changed:
        flags = ", ".join("--" + f.replace("_", "-") for f in changed)
        raise ValueError(
            f"{flags} {'does' if len(changed) == 1 else 'do'} not apply to --method {name} (it simulates its own "
            "current-based LIF neurons in continuous time on a fixed latency code, with its paper's loss and Adam); "
            f"drop {'it' if len(changed) == 1 else 'them'}, or use --method surrogate"
        )
    if len(hidden) != 1:
        raise ValueError(
            f"--method {name} trains one hidden layer, got --hidden {' '.join(map(str, hidden)) or '(none)'}; "
            "give one width, e.g. --hidden 120"
        )
    if torch.device(device).type != "cpu":
        raise ValueError(
            f"--method {name} runs its event simulation in float64 on the CPU, not on {device!r}; use --device cpu"
        )
    return str(name)


def check_encoding(name: object) -> str:
    return check_choice("encoding", name, list(ENCODERS))


def check_decoding(name: object) -> str:
    return check_choice("decoding", name, list(DECODERS))


def check_encoding_options(name: str, encoding: str, options: object) -> dict[str, Any]:
    """The encoder options as a dict (``None`` -> ``{}``); the constant code takes none."""
    if options is not None and not isinstance(options, Mapping):
        raise TypeError(f"{name} must be a dict or None, got {type(options).__name__}")
    out = dict(options or {})
    if encoding in ("constant", "sequence") and out:
        raise ValueError(
            f"{encoding} encoding takes no options, got {sorted(out)}; "
            "pass no encoding options or choose encoding 'rate' or 'latency'"
        )
    return out


def check_readout(name: object) -> str:
    return check_choice("readout", name, READOUTS)


def check_neuron(name: object) -> str:
    from spikeforge.neurons import list_neurons

    return check_choice("neuron", name, list_neurons())


def spiking_neurons() -> list[str]:
    """Registered neurons whose output is spikes (the ones allowed in hidden layers)."""
    from spikeforge.neurons import NEURON_REGISTRY
    from spikeforge.neurons import list_neurons

    return [n for n in list_neurons() if NEURON_REGISTRY[n].capabilities.spiking]


def check_hidden_neuron(name: object) -> str:
    """A registered neuron that spikes: hidden layers must spike (a readout such as ``li`` is added by the model)."""
    check_neuron(name)
    spiking = spiking_neurons()
    if name not in spiking:
        raise ValueError(
            f"neuron {name!r} does not spike, but hidden layers must spike (the LI readout is added by the model); "
            f"choose a spiking neuron: {', '.join(spiking)}"
        )
    return str(name)


def check_surrogate(name: object) -> str:
    from spikeforge.surrogate import get_surrogate
    from spikeforge.surrogate import list_surrogates

    check_choice("surrogate", name, list_surrogates())
    get_surrogate(str(name))  # constructible with its defaults
    return str(name)


_DEVICE_CHOICES = "use 'cpu', 'cuda', 'cuda:N' (N: a GPU index) or 'mps'"


def check_device(name: str, value: object) -> str:
    """A ``torch.device`` string of a type the trainer runs on (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``).

    Only the spelling is checked here (a config may be read on a machine without the device, e.g. to evaluate a
    GPU run on the CPU); :func:`check_device_available` checks that this machine has it."""
    if not isinstance(value, str):
        raise ValueError(f"{name} (--device) must be a device string, got {value!r}; {_DEVICE_CHOICES}")
    try:
        dev = torch.device(value)
    except RuntimeError:
        raise ValueError(
            f"{name}={value!r} is not a torch device the trainer knows (--device); {_DEVICE_CHOICES}"
        ) from None
    if dev.type not in DEVICE_TYPES:
        raise ValueError(
            f"{name}={value!r} (--device): the trainer does not run on {dev.type!r} devices; {_DEVICE_CHOICES}"
        )
    return value


def available_devices() -> list[str]:
    """The devices of :data:`DEVICE_TYPES` that this machine has, e.g. ``["cpu", "cuda", "cuda:0"]``."""
    out = ["cpu"]
    if torch.cuda.is_available():
        out += ["cuda", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]
    if torch.backends.mps.is_available():
        out.append("mps")
    return out


def check_device_available(name: str, value: object) -> str:
    """:func:`check_device`, and that this machine has the device (``"cuda"`` without CUDA raises naming
    ``--device`` and the devices it does have). Called when a run starts."""
    dev = torch.device(check_device(name, value))
    here = available_devices()
    if dev.type == "cpu" or (dev.type == "cuda" and dev.index is None and "cuda" in here) or str(dev) in here:
        return str(value)
    what = {"cuda": "CUDA", "mps": "Apple MPS"}[dev.type]
    missing = f"GPU {dev.index} does not exist" if dev.type == "cuda" and "cuda" in here else f"{what} is not available"
    raise ValueError(
        f"{name} (--device) is {value!r}, but on this machine {missing}; use one of: {', '.join(here)} "
        "(e.g. --device cpu)"
    )


def check_neuron_kwargs(name: str, neuron: str, kwargs: object) -> None:
    """Build one ``neuron`` layer with ``kwargs`` (a layer of width 1 if the model needs a ``size``), so bad
    neuron parameters fail when the config is made, naming the parameter, not later in the run."""
    if kwargs is None:
        return
    from spikeforge.neurons import NEURON_REGISTRY

    if not isinstance(kwargs, Mapping):
        raise TypeError(f"{name} must be a dict or None, got {type(kwargs).__name__}")
    cls = NEURON_REGISTRY[neuron]
    given = dict(kwargs)
    size = inspect.signature(cls.__init__).parameters.get("size")
    if size is not None and size.default is inspect.Parameter.empty:
        given.setdefault("size", 1)
    try:
        with torch.random.fork_rng(devices=[]):  # a random initial weight must not move the caller's RNG
            cls(**given)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{name} for neuron {neuron!r}: {err}") from None


def check_positive_int(
    name: str, value: object, *, allow_none: bool = False, cap: int | None = None, cap_name: str = ""
) -> Any:
    """A positive int (or None with ``allow_none``), at most ``cap`` (the constant ``cap_name``) when given."""
    if allow_none and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int{' or None' if allow_none else ''}, got {value!r}")
    if cap is not None and value > cap:
        raise ValueError(f"{name} is {value:,}, more than {cap_name} = {cap:,}; give a smaller value")
    return value


def check_widths(name: str, value: object, *, allow_empty: bool) -> tuple[int, ...]:
    """Layer widths as a tuple of positive ints (any sequence is accepted, e.g. a JSON list)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a tuple of positive ints (any sequence), e.g. (128,), got {value!r}")
    out = tuple(value)
    if any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in out):
        raise ValueError(f"{name} must hold positive ints, got {value!r}")
    if not out and not allow_empty:
        raise ValueError(f"{name} must not be empty; give at least one width, e.g. (128,)")
    return out


def check_dropout(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1) (0 disables it), got {value!r}")
    return float(value)


def valid_names() -> dict[str, list[str]]:
    """The valid values of every :class:`~spikeforge.training.config.TrainConfig` field that holds a name
    (``neuron`` lists the spiking neurons: hidden layers must spike), e.g. for ``--help`` and ``spikeforge info``."""
    from spikeforge.data import list_datasets
    from spikeforge.data.text import list_corpora
    from spikeforge.surrogate import list_surrogates

    return {
        "dataset": [*list_datasets(), *list_corpora()],
        "model": [*MODELS, *LM_MODELS],
        "neuron": spiking_neurons(),
        "surrogate": list_surrogates(),
        "encoding": list(ENCODERS),
        "decoding": list(DECODERS),
        "device": [*DEVICE_TYPES, "cuda:N"],
        "method": list(METHODS),
    }
