"""Evaluate a classifier on a whole dataset, and rebuild or evaluate the model saved in a checkpoint."""

from __future__ import annotations

import os
from typing import Any

import torch

from spikeforge.data.base import SplitDataset
from spikeforge.training.checkpoint import read_checkpoint
from spikeforge.training.config import TrainConfig
from spikeforge.training.evaluate import evaluate_tensors
from spikeforge.training.loop import load_splits
from spikeforge.training.models import SNNClassifier
from spikeforge.training.models import build_model

__all__ = ["evaluate", "load_checkpoint", "evaluate_checkpoint"]


def evaluate(
    model: SNNClassifier,
    dataset: SplitDataset | tuple[torch.Tensor, torch.Tensor],
    *,
    batch_size: int = 1000,
    device: str | torch.device | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, Any]:
    """Accuracy, loss and spiking activity of ``model`` on a whole dataset (eval mode, no gradients).

    Args:
        model: a trained :class:`~spikeforge.models.SNNClassifier`.
        dataset: a :class:`~spikeforge.data.base.SplitDataset` (uses ``.x`` / ``.y``) or an ``(x, y)`` pair.
        batch_size: samples per forward pass.
        device: where to compute (the model is moved there); None = the device of its parameters.
        generator: for random encoders; None = a fresh generator seeded 0 (repeatable numbers).
    Returns:
        ``{"accuracy", "loss", "firing_rates": {layer: spikes per neuron per step}, "spikes_per_sample", "n"}``.
    """
    if isinstance(dataset, tuple) and len(dataset) == 2:
        x, y = dataset
    elif hasattr(dataset, "x") and hasattr(dataset, "y"):
        x, y = dataset.x, dataset.y
    else:
        raise TypeError(f"dataset must be a SplitDataset or an (x, y) pair, got {type(dataset).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if device is None:
        p = next(iter(model.parameters()), None)
        dev = p.device if p is not None else torch.device("cpu")
    else:
        dev = torch.device(device)
    model.to(dev)
    return evaluate_tensors(model, x.cpu(), y.cpu(), batch_size=batch_size, device=dev, generator=generator)


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[SNNClassifier, TrainConfig, dict[str, Any]]:
    """Rebuild the model stored in ``checkpoint.pt`` or ``best.pt`` (loaded with ``weights_only=True``).

    Returns:
        ``(model in eval mode on the CPU, config, info)`` where ``info`` holds ``epoch``, ``kind``
        (``"best"`` or ``"last"``) and ``metrics`` (that epoch's history entry).
    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is truncated or corrupt, or not a spikeforge checkpoint.
    """
    from spikeforge.data import dataset_info

    ckpt = read_checkpoint(path)
    config = TrainConfig.from_dict(dict(ckpt["config"]))
    with torch.random.fork_rng(devices=[]):  # building initialises weights: keep the caller's RNG untouched
        model = build_model(config, dataset_info(config.dataset))
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as err:
        raise ValueError(f"checkpoint {str(path)!r} does not match its own config: {err}") from None
    model.eval()
    info = {"epoch": int(ckpt["epoch"]), "kind": ckpt.get("kind", "last"), "metrics": ckpt.get("metrics", {})}
    return model, config, info


def evaluate_checkpoint(
    path: str | os.PathLike[str],
    split: str = "test",
    *,
    data_dir: str | None = None,
    batch_size: int | None = None,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """:func:`evaluate` the model in a checkpoint on ``"train"``, ``"validation"`` or ``"test"`` of its dataset.

    ``data_dir`` overrides the one stored in the checkpoint's config. The validation split is the one
    the run used (held out from ``"train"`` if the dataset has none).
    """
    valid = ("train", "validation", "test")
    if split not in valid:
        raise ValueError(f"unknown split {split!r}; valid choices: {', '.join(valid)}")
    model, config, _ = load_checkpoint(path)
    x, y = load_splits(config, data_dir=data_dir)[split]
    return evaluate(model, (x, y), batch_size=batch_size or config.eval_batch_size, device=device)
