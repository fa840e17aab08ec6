"""Builders of the spiking-transformer models of ``TrainConfig.model``: ``"spikformer"``, ``"sdt"`` (the
Spike-driven Transformer) and ``"vit-twin"`` (the non-spiking twin of ``"sdt"``: ReLU for every LIF and softmax
attention, the same ``state_dict``, so a checkpoint of either initialises the other).

Their size comes from ``TrainConfig.transformer_kwargs`` (:class:`spikeforge.transformer.TransformerOptions`:
``dim``, ``depth``, ``heads``, ``mlp_ratio``; default 64, 2, 4, 4); ``hidden`` and ``channels`` are not used.
The LIF layers take ``neuron_kwargs`` over :data:`spikeforge.transformer.LIF_DEFAULTS`; ``surrogate`` applies.
"""

from __future__ import annotations

from typing import Any

from spikeforge.layers import SNNSequential
from spikeforge.training.config import TrainConfig
from spikeforge.transformer import build_transformer

__all__ = ["TRANSFORMER_BUILDERS", "transformer_defaults"]


def transformer_defaults(model: str) -> dict[str, Any]:
    """The recipe's values of the options not given (``spikeforge train --model spikformer|sdt|vit-twin``):
    ``T = 4``, batch 64, AdamW lr 3e-3, 5 epochs, and the logistic ``sigmoid`` surrogate (slope 5; the papers' code
    uses SpikingJelly's sigmoid surrogate with slope 4).

    From short runs (``benchmarks/transformers.py``, 2 epochs on 10 000 Fashion-MNIST training images;
    ``benchmarks/RESULTS.md``, session 11): the sigmoid surrogate gave SDT 82.1 % where the library-wide default
    ``fast_sigmoid`` (slope 25, a narrow derivative that fades through a dozen spiking layers) gave 76.6 %; on the
    validation split lr 3e-3 was the twin's best of 2e-3, 3e-3 and 5e-3 (SDT's second best), taken for both so the
    twin is not handicapped.
    Five epochs of the 55 000 training images took SDT 45 minutes on one core of the development machine (the twin
    about 35; ``benchmarks/RESULTS.md``, "The 45-minute budget")."""
    del model
    return {"time_steps": 4, "batch_size": 64, "lr": 3e-3, "epochs": 5, "surrogate": "sigmoid"}


def _image_shape(model: str, in_shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(in_shape) != 3 or min(in_shape[1:]) < 4:
        raise ValueError(
            f"model {model!r} needs (C, H, W) images with H, W >= 4 but the dataset has shape {in_shape}; "
            "use model='mlp' for flat inputs"
        )
    return int(in_shape[0]), int(in_shape[1]), int(in_shape[2])


def _builder(kind: str, spiking: bool, model: str) -> Any:
    def build(
        config: TrainConfig, in_shape: tuple[int, ...], num_classes: int, common: dict[str, Any]
    ) -> SNNSequential:
        if common["readout"] != "li":
            raise ValueError(f"model {model!r} ends in an LI readout; use decoding max_membrane or mean_membrane")
        return build_transformer(
            kind,
            _image_shape(model, in_shape),
            num_classes,
            options=config.transformer_kwargs,
            spiking=spiking,
            surrogate=config.surrogate,
            neuron_kwargs=config.neuron_kwargs,
        )

    return build


#: One builder per transformer model name (merged into :data:`spikeforge.training.models.MODEL_BUILDERS`).
TRANSFORMER_BUILDERS = {
    "spikformer": _builder("spikformer", True, "spikformer"),
    "sdt": _builder("sdt", True, "sdt"),
    "vit-twin": _builder("sdt", False, "vit-twin"),
}
