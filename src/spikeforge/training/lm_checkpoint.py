"""Language-model checkpoints: weights, the ``TrainConfig``, the model sizes and the vocabulary, in one file.

Written atomically (:func:`spikeforge.training.checkpoint.atomic_save`); read through the same checked path as
every checkpoint (:func:`~spikeforge.training.checkpoint.load_weights_only`: zip archive and size caps,
``weights_only=True``; :func:`~spikeforge.training.checked.build_checked`: the model built under a budget set by
the tensors present, names and shapes compared). A file without a vocabulary, or of another format, is refused.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from spikeforge.data.text import CharVocab
from spikeforge.lm import SpikeGPT
from spikeforge.lm import SpikeGPTConfig
from spikeforge.training.config import TrainConfig

__all__ = ["LM_FORMAT", "LEGACY_MODEL_CONFIG", "build_lm", "lm_config", "save_lm", "load_lm", "is_lm_checkpoint"]

LM_FORMAT = "spikeforge-lm-checkpoint-v1"


#: ``model_config`` values of checkpoints written before the field existed (the model they were trained as).
LEGACY_MODEL_CONFIG: dict[str, Any] = {"spike_inputs": "all"}


def lm_config(config: TrainConfig, vocab_size: int, options: Mapping[str, Any] | None = None) -> SpikeGPTConfig:
    """The model sizes of a training config: ``d_model = hidden[0]``, one block per ``hidden`` entry; ``options``:
    other :class:`SpikeGPTConfig` fields (e.g. ``{"spike_inputs": "all"}``), the class defaults otherwise."""
    return SpikeGPTConfig(
        vocab_size=vocab_size,
        d_model=int(config.hidden[0]),
        n_layers=len(config.hidden),
        spiking=config.model == "spikegpt",
        neuron=config.neuron if config.neuron in ("lif", "if") else "lif",
        surrogate=config.surrogate,
        **dict(options or {}),
    )


def build_lm(config: TrainConfig, vocab_size: int, options: Mapping[str, Any] | None = None) -> SpikeGPT:
    return SpikeGPT(lm_config(config, vocab_size, options))


def save_lm(path: str | os.PathLike[str], model: SpikeGPT, config: TrainConfig, vocab: CharVocab, meta: dict) -> None:
    from spikeforge.training.checkpoint import atomic_save

    atomic_save(
        {
            "format": LM_FORMAT,
            "config": config.to_dict(),
            "model_config": model.config.to_dict(),
            "vocab": vocab.to_dict(),
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "meta": dict(meta),
        },
        path,
    )


def is_lm_checkpoint(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("format") == LM_FORMAT


def load_lm(path: str | os.PathLike[str]) -> tuple[SpikeGPT, TrainConfig, CharVocab]:
    """``(model in eval mode, its TrainConfig, its vocabulary)`` from a checkpoint of :func:`save_lm`."""
    from spikeforge.training.checked import build_checked
    from spikeforge.training.checkpoint import load_weights_only

    where = f"checkpoint {str(Path(path))!r}"
    obj = load_weights_only(path)
    if not is_lm_checkpoint(obj):
        raise ValueError(
            f"{where} is not a language-model checkpoint; give a best.pt of 'spikeforge train --model spikegpt'"
        )
    try:
        config = TrainConfig.from_dict(obj["config"])
        vocab = CharVocab.from_dict(obj["vocab"])
        mcfg = SpikeGPTConfig(**{**LEGACY_MODEL_CONFIG, **obj["model_config"]})
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(
            f"{where} has a damaged config or vocabulary ({e}); use a checkpoint written by spikeforge"
        ) from e
    if mcfg.vocab_size != len(vocab):
        raise ValueError(f"{where}: its model has {mcfg.vocab_size} tokens but its vocabulary {len(vocab)}")
    model = build_checked(lambda: SpikeGPT(mcfg), obj.get("model"), where)
    return model.eval(), config, vocab
