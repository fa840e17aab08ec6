"""Evaluate a classifier on a whole dataset, and rebuild or evaluate the model saved in a checkpoint."""

from __future__ import annotations

import os
from typing import Any

import torch

from spikeforge.data.base import SplitDataset
from spikeforge.training.checked import build_checked
from spikeforge.training.checkpoint import read_checkpoint
from spikeforge.training.config import TrainConfig
from spikeforge.training.evaluate import evaluate_tensors
from spikeforge.training.exact_models import ExactClassifier
from spikeforge.training.memory import check_run_memory
from spikeforge.training.models import SNNClassifier
from spikeforge.training.models import build_model
from spikeforge.training.splits import check_input_shape
from spikeforge.training.splits import load_splits
from spikeforge.training.threads import threads_for
from spikeforge.training.threads import use_threads

__all__ = ["evaluate", "load_checkpoint", "load_model", "evaluate_checkpoint", "config_of", "check_input_shape"]


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

    Every check of :func:`spikeforge.training.checked.build_checked` applies: the file's config must be a valid
    :class:`TrainConfig` whose model has exactly the names and shapes of the weights present, built under an
    allocation budget set by those weights (a config declaring a larger model is refused before allocating it).

    Returns:
        ``(model in eval mode on the CPU, config, info)`` where ``info`` holds ``epoch``, ``kind``
        (``"best"`` or ``"last"``) and ``metrics`` (that epoch's history entry).
    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is truncated, damaged, too large or not a spikeforge checkpoint, or its config and
            weights disagree.
    """
    model, config, details = load_model(path)
    if not isinstance(model, SNNClassifier):
        raise ValueError(
            f"checkpoint {str(path)!r} holds a network trained with --method {config.method} (exact gradients), not "
            "an SNNClassifier; 'evaluate', 'energy' and 'report' take it, NIR export and conversion do not "
            "(load it with spikeforge.training.saved.load_model)"
        )
    return model, config, details


def load_model(path: str | os.PathLike[str]) -> tuple[SNNClassifier | ExactClassifier, TrainConfig, dict[str, Any]]:
    """:func:`load_checkpoint` for a run of any method: an :class:`SNNClassifier` (``method="surrogate"``) or an
    :class:`~spikeforge.training.exact_models.ExactClassifier` (``"eventprop"``, ``"ttfs"``), each built through
    the checked build (the config's widths must match the weights, under the same allocation budget)."""
    from spikeforge.data import dataset_info
    from spikeforge.training.exact_method import load_exact

    where = f"checkpoint {str(path)!r}"
    ckpt = read_checkpoint(path)
    config = config_of(ckpt, where)
    info = dataset_info(config.dataset)
    model: SNNClassifier | ExactClassifier
    if config.method == "surrogate":
        model = build_checked(lambda: build_model(config, info), ckpt["model"], where)
    else:
        model = load_exact(ckpt, config, where)
    metrics = ckpt.get("metrics", {})
    kind = ckpt.get("kind", "last")
    details = {
        "epoch": int(ckpt["epoch"]),
        "kind": kind if kind in ("best", "last") else "last",
        "metrics": metrics if isinstance(metrics, dict) else {},
    }
    return model, config, details


def config_of(ckpt: dict[str, Any], where: str) -> TrainConfig:
    """The :class:`TrainConfig` stored in a checkpoint dict, or ``ValueError`` naming ``where``."""
    try:
        return TrainConfig.from_dict(dict(ckpt["config"]))
    except (TypeError, ValueError) as err:
        message = " ".join(str(err).split())
        raise ValueError(
            f"{where} holds an invalid config ({message}); the file is damaged or not from spikeforge"
        ) from None


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
    the run used (held out from ``"train"`` if the dataset has none). Torch's thread count is chosen as for the
    run's training (:func:`spikeforge.training.threads.threads_for`) for the duration of the call.
    """
    from spikeforge.data import dataset_info

    valid = ("train", "validation", "test")
    if split not in valid:
        raise ValueError(f"unknown split {split!r}; valid choices: {', '.join(valid)}")
    model, config, _ = load_model(path)
    if isinstance(model, SNNClassifier):
        check_run_memory(config, dataset_info(config.dataset), config.eval_batch_size, f"evaluating {str(path)!r}")
    x, y = load_splits(config, data_dir=data_dir)[split]
    check_input_shape(x, config, f"evaluating {str(path)!r}")
    with use_threads(threads_for(config).threads):  # the training's thread policy
        if not isinstance(model, SNNClassifier):
            from spikeforge.training.exact_method import check_exact_memory
            from spikeforge.training.exact_method import evaluate_exact

            size = batch_size or config.eval_batch_size
            check_exact_memory(config, model.recipe, size, f"evaluating {str(path)!r}")
            return evaluate_exact(model, x, y, batch_size=batch_size or config.eval_batch_size)
        return evaluate(model, (x, y), batch_size=batch_size or config.eval_batch_size, device=device)
