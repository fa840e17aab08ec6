"""scikit-learn's bundled 8x8 handwritten digits (UCI optdigits test set), with a fixed stratified split.

Source: ``sklearn.datasets.load_digits`` (1797 images, 10 classes, pixel values 0..16; data from the UCI
"Optical Recognition of Handwritten Digits" set, E. Alpaydin & C. Kaynak, CC BY 4.0). scikit-learn is an
optional dependency (``pip install 'spikeforge[data]'``), imported only when the dataset is built.

Preprocessing: ``x = pixels / 16`` in ``[0, 1]``, shaped ``[N, 1, 8, 8]`` (channel-first, so conv
layers apply directly; an MLP flattens with ``x.flatten(1)`` to ``[N, 64]``).

Split (deterministic, independent of every global RNG): for each class ``c`` with ``n_c`` samples, take
its sample indices in original order and permute them with ``numpy.random.RandomState(0).permutation``
(one RandomState, advanced class by class in order 0..9; the legacy stream is frozen by NumPy). The
first ``n_c // 5`` go to validation, the next ``n_c // 5`` to test, the rest (~60 %) to train. Each
split keeps the original sample order. Sizes: train 1087, validation 355, test 355.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from spikeforge.data.registry import DatasetInfo
from spikeforge.data.registry import register_dataset

__all__ = ["DIGITS_SPLIT_SEED", "digits_split_indices"]

#: Seed of the ``numpy.random.RandomState`` that makes the stratified split.
DIGITS_SPLIT_SEED = 0


def digits_split_indices(labels: np.ndarray, seed: int = DIGITS_SPLIT_SEED) -> dict[str, np.ndarray]:
    """Stratified ~60/20/20 split of sample indices (see the module docstring for the exact rule).

    Args:
        labels: ``[N]`` integer class labels.
        seed: Seed of the ``numpy.random.RandomState`` used for the per-class permutations.

    Returns:
        ``{"train": idx, "validation": idx, "test": idx}``: sorted int64 index arrays that partition
        ``range(N)``.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D integer array, got {labels.dtype} with shape {labels.shape}")
    rng = np.random.RandomState(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "validation": [], "test": []}
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(idx.size)]
        k = idx.size // 5
        parts["validation"].append(idx[:k])
        parts["test"].append(idx[k : 2 * k])
        parts["train"].append(idx[2 * k :])
    return {s: np.sort(np.concatenate(p)).astype(np.int64) for s, p in parts.items()}


def _load_sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise ImportError(
            "the 'digits' dataset needs scikit-learn; install it with: pip install 'spikeforge[data]'"
        ) from e
    bunch = load_digits()
    return np.asarray(bunch.images, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64)


@register_dataset(
    DatasetInfo(
        name="digits",
        input_shape=(1, 8, 8),
        num_classes=10,
        splits=(("train", 1087), ("validation", 355), ("test", 355)),
        description=(
            "scikit-learn's 8x8 handwritten digits (1797 images, 10 classes), pixels / 16 in [0, 1], shape "
            "(1, 8, 8) (MLPs flatten to 64). Fixed stratified split per class: floor(n_c/5) validation, "
            "floor(n_c/5) test, rest train, via numpy.random.RandomState(0); original order kept. "
            "Needs scikit-learn (pip install 'spikeforge[data]')."
        ),
        source=(
            "sklearn.datasets.load_digits (BSD-3); UCI Optical Recognition of Handwritten Digits, "
            "E. Alpaydin & C. Kaynak 1998 (CC BY 4.0)"
        ),
        class_names=tuple(str(d) for d in range(10)),
    )
)
def _build_digits(split: str, data_dir: Path | None) -> tuple[Tensor, Tensor]:
    images, labels = _load_sklearn_digits()  # [1797, 8, 8] in 0..16, [1797]
    idx = digits_split_indices(labels)[split]
    x = torch.from_numpy(images[idx] / 16.0).to(torch.float32).unsqueeze(1)  # [N, 1, 8, 8]
    return x, torch.from_numpy(labels[idx])
