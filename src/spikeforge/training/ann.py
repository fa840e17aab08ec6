"""Small ANNs to convert, and their training loop: the models of ``spikeforge convert`` and
``benchmarks/conversion.py``.

:func:`vgg_small` and :func:`mlp` build ``nn.Sequential`` networks with ReLU or QCFS activations
(:class:`spikeforge.conversion.QCFS`), registered by architecture name in :data:`ANN_ARCHS`;
:func:`train_ann` is a minimal Adam + cross-entropy loop and :func:`ann_accuracy` its test metric.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch import nn

from spikeforge.conversion import QCFS

__all__ = [
    "vgg_small", "mlp", "build_ann", "ANN_ARCHS", "ACTIVATIONS", "train_ann", "ann_accuracy", "default_arch",
    "default_epochs", "near_chance", "save_ann", "load_ann", "activation_of",
]  # fmt: skip

#: Activations the builders accept.
ACTIVATIONS: tuple[str, ...] = ("relu", "qcfs")


def _act(kind: str, levels: int, threshold: float) -> Callable[[], nn.Module]:
    if kind not in ACTIVATIONS:
        raise ValueError(f"activation must be 'relu' or 'qcfs', got {kind!r}")
    return (lambda: QCFS(levels, threshold)) if kind == "qcfs" else nn.ReLU


def vgg_small(
    in_shape: Sequence[int],
    num_classes: int,
    *,
    activation: str = "relu",
    levels: int = 4,
    threshold: float = 4.0,
    channels: Sequence[int] = (8, 16),
    hidden: int = 64,
) -> nn.Sequential:
    """VGG-style CNN: per width ``c``: ``[Conv3x3 c, BN, act] x 2, AvgPool2``; then ``Linear hidden, act, Linear``.

    Args:
        in_shape: ``(C, H, W)``; activation: ``"relu"`` or ``"qcfs"`` (with ``levels`` and initial ``threshold``).
    """
    act = _act(activation, levels, threshold)
    if len(in_shape) != 3:
        raise ValueError(f"'vgg' needs image inputs (C, H, W), got input shape {tuple(in_shape)}; use the 'mlp' arch")
    c, h, w = in_shape
    layers: list[nn.Module] = []
    for width in channels:
        for _ in range(2):
            layers += [nn.Conv2d(c, width, 3, padding=1), nn.BatchNorm2d(width), act()]
            c = width
        layers.append(nn.AvgPool2d(2))
        h, w = h // 2, w // 2
    layers += [nn.Flatten(), nn.Linear(c * h * w, hidden), act(), nn.Linear(hidden, num_classes)]
    return nn.Sequential(*layers)


def mlp(
    in_shape: Sequence[int],
    num_classes: int,
    *,
    activation: str = "relu",
    levels: int = 4,
    threshold: float = 4.0,
    hidden: int = 128,
) -> nn.Sequential:
    """``Flatten, Linear hidden, BN, act, Linear hidden, BN, act, Linear num_classes``."""
    act = _act(activation, levels, threshold)
    n_in = 1
    for d in in_shape:
        n_in *= int(d)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(n_in, hidden),
        nn.BatchNorm1d(hidden),
        act(),
        nn.Linear(hidden, hidden),
        nn.BatchNorm1d(hidden),
        act(),
        nn.Linear(hidden, num_classes),
    )


#: Architecture name -> builder ``(in_shape, num_classes, *, activation, levels, ...) -> nn.Sequential``.
ANN_ARCHS: dict[str, Callable[..., nn.Sequential]] = {"vgg": vgg_small, "mlp": mlp}


def default_arch(in_shape: Sequence[int]) -> str:
    """The architecture that trains well on inputs of ``in_shape``: ``"vgg"`` for images of at least 16x16
    pixels (``(C, H, W)``), ``"mlp"`` for flat inputs and small images (8x8 digits: two pooling stages leave 2x2)."""
    return "vgg" if len(in_shape) == 3 and min(int(d) for d in in_shape[1:]) >= 16 else "mlp"


def default_epochs(n_train: int) -> int:
    """Training epochs for ``n_train`` samples: 20 for small sets (digits 1 437, Yin-Yang 5 000: a few hundred
    Adam steps at batch 128), 3 for large ones (Fashion-MNIST 55 000)."""
    return 20 if n_train < 10_000 else 3


def near_chance(accuracy: float, num_classes: int) -> bool:
    """True if ``accuracy`` is within a quarter of the way from chance (``1 / num_classes``) to 100 %: the
    model has learned little, and a converted SNN's accuracies mean little."""
    chance = 1.0 / max(1, num_classes)
    return accuracy < chance + 0.25 * (1.0 - chance)


def build_ann(
    arch: str, in_shape: Sequence[int], num_classes: int, *, activation: str = "relu", levels: int = 4
) -> nn.Sequential:
    """The :data:`ANN_ARCHS` builder ``arch``; an unknown name raises ``ValueError`` listing the valid ones."""
    if arch not in ANN_ARCHS:
        raise ValueError(f"arch must be one of {tuple(ANN_ARCHS)}, got {arch!r}")
    return ANN_ARCHS[arch](in_shape, num_classes, activation=activation, levels=levels)


def train_ann(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    epochs: int = 3,
    batch_size: int = 128,
    lr: float = 1e-3,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """Minimal Adam + cross-entropy loop (cosine learning rate); returns ``model`` in eval mode."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n_batches = epochs * ((x.shape[0] + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, n_batches))
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(x.shape[0], generator=generator)
        for idx in perm.split(batch_size):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


@torch.no_grad()
def ann_accuracy(model: nn.Module, x: Tensor, y: Tensor, *, batch_size: int = 1000) -> float:
    """Top-1 accuracy of ``model`` (eval mode) on ``x [N, ...]``, ``y [N]``."""
    model.eval()
    correct = sum(int((model(xb).argmax(-1) == yb).sum()) for xb, yb in zip(x.split(batch_size), y.split(batch_size)))
    return correct / x.shape[0]


#: Keys and types of an ANN checkpoint (:func:`save_ann`).
_ANN_KEYS: dict[str, type] = {
    "arch": str, "method": str, "levels": int, "in_shape": list, "num_classes": int, "state_dict": dict,
}  # fmt: skip


def save_ann(path: str | os.PathLike[str], ann: nn.Module, *, arch: str, method: str, levels: int,
             in_shape: Sequence[int], num_classes: int) -> None:  # fmt: skip
    """Write an ANN checkpoint (``state_dict`` + architecture, loadable with ``weights_only=True``) atomically."""
    from spikeforge.training.checkpoint import atomic_save

    atomic_save(
        {"arch": arch, "method": method, "levels": int(levels), "in_shape": [int(d) for d in in_shape],
         "num_classes": int(num_classes), "state_dict": ann.state_dict()},
        path,
    )  # fmt: skip


def activation_of(method: str) -> str:
    """The ANN activation a conversion method needs: ``"qcfs"`` for QCFS, ``"relu"`` otherwise (Rueckauer)."""
    return "qcfs" if method == "qcfs" else "relu"


def load_ann(path: str | os.PathLike[str]) -> tuple[nn.Sequential, dict[str, Any]]:
    """Rebuild the ANN of a :func:`save_ann` checkpoint: ``(ann in eval mode, the checkpoint's settings)``.

    The activation follows the saved ``method`` (:func:`activation_of`); the caller compares ``settings["method"]``
    with the method it wants.

    Loaded with ``weights_only=True`` after the file checks of :func:`~spikeforge.training.checkpoint.check_archive`;
    the settings are type-checked and the network is built by
    :func:`~spikeforge.training.checked.build_checked` (under an allocation budget set by the weights present,
    names and shapes compared), so a file declaring a larger network than it holds is refused before allocating.

    Raises:
        FileNotFoundError / IsADirectoryError: no such file.
        ValueError: a damaged, foreign or inconsistent file (one line).
    """
    from spikeforge.training.checked import build_checked
    from spikeforge.training.checkpoint import load_weights_only

    where = f"ANN checkpoint {str(path)!r}"
    ckpt = load_weights_only(path, "ANN checkpoint")
    not_ours = f"{where} is not an ANN checkpoint written by 'spikeforge convert --save'"
    if not isinstance(ckpt, dict) or not set(_ANN_KEYS) <= set(ckpt):
        raise ValueError(not_ours)
    for key, kind in _ANN_KEYS.items():
        if not isinstance(ckpt[key], kind) or isinstance(ckpt[key], bool):
            raise ValueError(f"{not_ours}: its {key!r} is a {type(ckpt[key]).__name__}, not a {kind.__name__}")
    in_shape = ckpt["in_shape"]
    if not (
        1 <= len(in_shape) <= 3 and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in in_shape)
    ):
        raise ValueError(f"{not_ours}: its in_shape {in_shape!r} is not 1 to 3 positive sizes")
    if ckpt["num_classes"] < 1 or ckpt["levels"] < 1:
        raise ValueError(f"{not_ours}: num_classes and levels must be positive")
    arch, levels, n = ckpt["arch"], ckpt["levels"], ckpt["num_classes"]
    activation = activation_of(ckpt["method"])
    ann = build_checked(
        lambda: build_ann(arch, in_shape, n, activation=activation, levels=levels), ckpt["state_dict"], where
    )
    settings = {k: ckpt[k] for k in _ANN_KEYS if k != "state_dict"}
    return ann, settings
