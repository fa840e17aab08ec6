"""The in-memory dataset type returned by :func:`spikeforge.data.get_dataset`, and a batch iterator.

Every built-in split is small enough to hold in memory, so a dataset is just two tensors:

* ``x``: ``[N, *input_shape]`` float32 features (e.g. ``[N, 4]`` for Yin-Yang, ``[N, 1, 28, 28]`` for
  Fashion-MNIST),
* ``y``: ``[N]`` int64 class labels in ``0 .. num_classes - 1``.

``dataset[i]`` returns ``(x[i], y[i])`` (a float32 tensor and an int64 scalar tensor), so a
:class:`torch.utils.data.DataLoader` works unchanged; a trainer that wants to avoid per-item overhead
slices ``dataset.x`` / ``dataset.y`` directly, e.g. with :func:`iter_batches`.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.data import Dataset

__all__ = ["SplitDataset", "iter_batches"]


class SplitDataset(Dataset[tuple[Tensor, Tensor]]):
    """One split of a dataset, held as two tensors.

    Attributes:
        x: ``[N, *input_shape]`` float32 features.
        y: ``[N]`` int64 labels.
        name: Registered dataset name (e.g. ``"yinyang"``).
        split: Split name (e.g. ``"train"``).

    Args:
        x: Feature tensor, float32, first dimension ``N``.
        y: Label tensor, int64, shape ``[N]``.
        name: Dataset name, kept for ``repr`` and bookkeeping.
        split: Split name.

    Raises:
        TypeError: ``x``/``y`` are not tensors of dtype float32/int64.
        ValueError: ``y`` is not 1-D or its length differs from ``x``'s first dimension.
    """

    def __init__(self, x: Tensor, y: Tensor, *, name: str, split: str) -> None:
        if not isinstance(x, Tensor) or not isinstance(y, Tensor):
            raise TypeError(f"x and y must be torch.Tensors, got {type(x).__name__} and {type(y).__name__}")
        if x.dtype != torch.float32:
            raise TypeError(f"x must be float32, got {x.dtype}; convert with x.float()")
        if y.dtype != torch.int64:
            raise TypeError(f"y must be int64, got {y.dtype}; convert with y.long()")
        if y.dim() != 1 or x.dim() < 1 or x.shape[0] != y.shape[0]:
            raise ValueError(
                f"x must be [N, ...] and y [N] with the same N, got x {tuple(x.shape)} and y {tuple(y.shape)}"
            )
        self.x = x
        self.y = y
        self.name = name
        self.split = split

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.x[index], self.y[index]

    def __repr__(self) -> str:
        shapes = f"x={tuple(self.x.shape)}, y={tuple(self.y.shape)}"
        return f"SplitDataset(name={self.name!r}, split={self.split!r}, {shapes})"


def iter_batches(
    dataset: SplitDataset,
    batch_size: int,
    *,
    shuffle: bool = False,
    drop_last: bool = False,
    generator: torch.Generator | None = None,
) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield ``(x_batch, y_batch)`` slices of a :class:`SplitDataset` without a DataLoader.

    Args:
        dataset: A dataset from :func:`spikeforge.data.get_dataset` (anything with ``.x`` and ``.y``).
        batch_size: Samples per batch, ``>= 1``.
        shuffle: Visit samples in the order of ``torch.randperm(N, generator=generator)``.
        drop_last: Skip a final batch smaller than ``batch_size``.
        generator: RNG for the permutation; ``None`` uses torch's default generator.

    Yields:
        ``x_batch`` ``[b, *input_shape]`` float32 and ``y_batch`` ``[b]`` int64, on ``dataset.x``'s device.

    Raises:
        ValueError: ``batch_size < 1``.
        TypeError: ``dataset`` has no tensor ``.x``/``.y`` attributes.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    x, y = getattr(dataset, "x", None), getattr(dataset, "y", None)
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise TypeError("dataset must expose tensors .x and .y; build it with spikeforge.data.get_dataset")
    n = int(y.shape[0])
    order = torch.randperm(n, generator=generator).to(y.device) if shuffle else None
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        if order is None:
            yield x[start : start + batch_size], y[start : start + batch_size]
        else:
            idx = order[start : start + batch_size]
            yield x[idx], y[idx]
