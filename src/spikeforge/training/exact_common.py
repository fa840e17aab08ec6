"""What the exact-gradient recipes share (:func:`~spikeforge.training.exact_eventprop.fit_eventprop`,
:func:`~spikeforge.training.exact_ttfs.fit_ttfs`): the Yin-Yang data path, the result type, the history rows and
the step learning-rate schedule.

**Data.** Both recipes take ``data = (train_features, train_labels, test_features, test_labels)``: features
``[N, F]`` in ``[0, 1]`` (Yin-Yang: ``x, y, 1-x, 1-y``) and int64 labels ``[N]``; each recipe latency-codes the
features itself with :mod:`spikeforge.exact.encode` (its own time constants, bias spikes as in its paper).
Default: the published Yin-Yang splits (Kriener et al. 2021; 5000 train / 1000 test, seeds 42 / 40) from
:func:`spikeforge.data.yinyang.make_yinyang`.

**History.** One row per epoch with at least ``epoch, loss, train_acc, test_acc, lr, seconds`` (the key names of
the surrogate-gradient trainer, :func:`spikeforge.training.loop.train`; ``train_acc`` is the running accuracy of
the training batches before their update, ``lr`` the epoch's learning rate).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic
from typing import TypeVar

import torch
from torch import Tensor

from spikeforge.data.yinyang import YINYANG_SPLITS
from spikeforge.data.yinyang import make_yinyang

__all__ = [
    "ExactFitResult",
    "ExactData",
    "EpochCallback",
    "yinyang_data",
    "check_data",
    "step_lr",
    "check_positive",
    "HISTORY_KEYS",
]

M = TypeVar("M")

#: ``(train_features, train_labels, test_features, test_labels)``.
ExactData = tuple[Tensor, Tensor, Tensor, Tensor]
#: Called with each epoch's history row (e.g. to print progress).
EpochCallback = Callable[[dict[str, float]], None]
#: Keys every history row has (recipes may add more, e.g. ``bumps``).
HISTORY_KEYS = ("epoch", "loss", "train_acc", "test_acc", "lr", "seconds")


@dataclass(frozen=True)
class ExactFitResult(Generic[M]):
    """What a recipe returns: the trained network, one history row per epoch, the final test accuracy and the
    configuration (``dataclasses.asdict`` of the config)."""

    model: M
    history: list[dict[str, float]]
    test_acc: float
    config: dict[str, object]


def yinyang_data(train_size: int = YINYANG_SPLITS["train"][0], test_size: int = YINYANG_SPLITS["test"][0]) -> ExactData:
    """The first ``train_size`` / ``test_size`` samples of the published Yin-Yang train and test splits (float64)."""
    parts: list[Tensor] = []
    for split, size in (("train", train_size), ("test", test_size)):
        feats, labels = make_yinyang(size, YINYANG_SPLITS[split][1])
        parts += [torch.from_numpy(feats), torch.from_numpy(labels)]
    return parts[0], parts[1], parts[2], parts[3]


def check_data(data: object) -> tuple[ExactData, int]:
    """Validate ``data`` (module docstring); returns it in float64 and the number of classes."""
    if not isinstance(data, tuple) or len(data) != 4 or not all(isinstance(d, Tensor) for d in data):
        raise TypeError(
            "data must be a tuple of four tensors (train_features, train_labels, test_features, test_labels)"
        )
    for feats, labels, split in ((data[0], data[1], "train"), (data[2], data[3], "test")):
        if not feats.is_floating_point() or feats.dim() != 2 or feats.shape[0] == 0:
            raise ValueError(f"{split} features must be a non-empty floating-point [N, F] tensor")
        if bool(torch.isnan(feats).any()) or bool(((feats < 0) | (feats > 1)).any()):
            raise ValueError(f"{split} features must lie in [0, 1]; rescale them first")
        if labels.dtype != torch.int64 or labels.shape != feats.shape[:1] or bool((labels < 0).any()):
            raise ValueError(f"{split} labels must be int64 [N] class indices >= 0 matching the features; use .long()")
    if data[0].shape[1] != data[2].shape[1]:
        raise ValueError(f"train and test have {data[0].shape[1]} and {data[2].shape[1]} features; make them equal")
    classes = int(max(int(data[1].max()), int(data[3].max()))) + 1
    return (data[0].double(), data[1], data[2].double(), data[3]), classes


def step_lr(lr: float, gamma: float, step: int, epoch: int) -> float:
    """StepLR: ``lr * gamma ** (epoch // step)`` (written out: an epoch may make no optimiser step at all)."""
    return lr * gamma ** (epoch // step)


def check_positive(cfg: object, names: tuple[str, ...], *, ints: tuple[str, ...] = ()) -> None:
    """Config validation shared by the recipes: ``ints`` positive ints (``epochs`` may be 0), ``names`` finite > 0."""
    for name in ints:
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "epochs" else 1):
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    for name in names:
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
