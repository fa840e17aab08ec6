"""Dataset registry: names -> (:class:`DatasetInfo`, builder).

The registry is the only module-level mutable object in :mod:`spikeforge.data`; it holds builder
functions, never data. :func:`register_dataset` rejects duplicate names. A builder has the signature
``builder(split: str, data_dir: pathlib.Path | None) -> (x, y)`` with ``x`` a float32 tensor
``[N, *input_shape]`` and ``y`` an int64 tensor ``[N]``; :func:`get_dataset` checks the result
against the :class:`DatasetInfo` (shape, size, label range) before wrapping it in a
:class:`~spikeforge.data.base.SplitDataset`. Registering a new dataset::

    @register_dataset(DatasetInfo(name="xor", input_shape=(2,), num_classes=2,
                                  splits=(("train", 4),), description="XOR", source="folklore"))
    def _build_xor(split, data_dir):
        x = torch.tensor([[0., 0.], [0., 1.], [1., 0.], [1., 1.]])
        return x, torch.tensor([0, 1, 1, 0])
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from spikeforge.data.base import SplitDataset

__all__ = [
    "DatasetInfo", "Builder", "register_dataset", "get_dataset", "list_datasets", "dataset_info", "files_found",
]  # fmt: skip

Builder = Callable[[str, Path | None], tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class DatasetInfo:
    """Static description of a registered dataset.

    Attributes:
        name: Registry name, e.g. ``"fashion_mnist"``.
        input_shape: Shape of one sample's features, e.g. ``(4,)`` or ``(1, 28, 28)``.
        num_classes: Number of classes; labels are ``0 .. num_classes - 1``.
        splits: ``((split_name, num_samples), ...)`` in canonical order, e.g.
            ``(("train", 5000), ("validation", 1000), ("test", 1000))``.
        description: One paragraph: content, preprocessing, how splits are made.
        source: Citation / origin of the data and its licence.
        class_names: Human-readable name per label (empty tuple if none).
        needs_files: ``True`` if the data is read from files (see ``data_dir``) rather than generated
            or shipped with a Python package.
        sequence: ``True`` if each sample already is a sequence over time (spike trains, event frames):
            ``input_shape = (T, *features)`` and samples ``x [N, T, *features]``, sample-major. The trainer feeds
            them time-major (``x.transpose(0, 1)``) with the ``"sequence"`` encoding and ``time_steps = T``,
            and the model sees ``features`` at every step (:attr:`step_shape`).
    """

    name: str
    input_shape: tuple[int, ...]
    num_classes: int
    splits: tuple[tuple[str, int], ...]
    description: str
    source: str
    class_names: tuple[str, ...] = ()
    needs_files: bool = False
    sequence: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"DatasetInfo.name must be a non-empty str, got {self.name!r}")
        if not self.input_shape or any(not isinstance(d, int) or d < 1 for d in self.input_shape):
            raise ValueError(f"DatasetInfo.input_shape must be a tuple of positive ints, got {self.input_shape!r}")
        if not isinstance(self.num_classes, int) or self.num_classes < 1:
            raise ValueError(f"DatasetInfo.num_classes must be a positive int, got {self.num_classes!r}")
        names = [s for s, _ in self.splits]
        if not names or len(set(names)) != len(names) or any(not isinstance(n, int) or n < 1 for _, n in self.splits):
            raise ValueError(f"DatasetInfo.splits must be unique (name, positive size) pairs, got {self.splits!r}")
        if not isinstance(self.sequence, bool):
            raise TypeError(f"DatasetInfo.sequence must be a bool, got {type(self.sequence).__name__}")
        if self.sequence and len(self.input_shape) < 2:
            raise ValueError(
                f"a sequence dataset's input_shape is (T, *features), got {self.input_shape!r}; add the feature axes"
            )
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ValueError(f"DatasetInfo.class_names needs {self.num_classes} entries, got {len(self.class_names)}")

    @property
    def step_shape(self) -> tuple[int, ...]:
        """Shape of what the model sees at one time step: ``input_shape[1:]`` for a sequence dataset, else
        ``input_shape`` (the trainer's encoder repeats or codes it over ``T`` steps)."""
        return self.input_shape[1:] if self.sequence else self.input_shape

    @property
    def split_names(self) -> tuple[str, ...]:
        """Names of the splits, in canonical order."""
        return tuple(s for s, _ in self.splits)

    def split_size(self, split: str) -> int:
        """Number of samples in ``split``; ``ValueError`` listing the valid splits if unknown."""
        for s, n in self.splits:
            if s == split:
                return n
        raise ValueError(
            f"unknown split {split!r} for dataset {self.name!r}; valid splits: {', '.join(self.split_names)}"
        )


_REGISTRY: dict[str, tuple[DatasetInfo, Builder]] = {}
#: Dataset name -> a cheap check that its files are found without ``data_dir`` (datasets read from files).
_FOUND: dict[str, Callable[[], bool]] = {}


def register_dataset(info: DatasetInfo, *, found: Callable[[], bool] | None = None) -> Callable[[Builder], Builder]:
    """Decorator registering ``builder`` under ``info.name``; a duplicate name raises ``ValueError``.

    ``found``: for a dataset read from files, a cheap check (no data loaded) that its files are found without
    ``data_dir`` (e.g. installed by a system package); see :func:`files_found`.
    """
    if not isinstance(info, DatasetInfo):
        raise TypeError(f"register_dataset expects a DatasetInfo, got {type(info).__name__}")
    if found is not None:
        _FOUND[info.name] = found

    def deco(builder: Builder) -> Builder:
        if info.name in _REGISTRY:
            raise ValueError(f"a dataset named {info.name!r} is already registered; pick another name")
        if not callable(builder):
            raise TypeError(f"the builder for {info.name!r} must be callable, got {builder!r}")
        _REGISTRY[info.name] = (info, builder)
        return builder

    return deco


def list_datasets() -> list[str]:
    """Sorted names of all registered datasets."""
    return sorted(_REGISTRY)


def _entry(name: str) -> tuple[DatasetInfo, Builder]:
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a str, got {type(name).__name__}")
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(list_datasets())}") from None


def dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of a registered dataset (no data is loaded)."""
    return _entry(name)[0]


def files_found(name: str) -> bool:
    """True if ``name`` loads without ``data_dir``: it is generated or shipped with a package, or its files
    are found in their default location (e.g. Debian's ``dataset-fashion-mnist``). No data is loaded."""
    info = dataset_info(name)
    if not info.needs_files:
        return True
    probe = _FOUND.get(name)
    return bool(probe is not None and probe())


def get_dataset(name: str, split: str, *, data_dir: str | os.PathLike[str] | None = None) -> SplitDataset:
    """Load one split of a registered dataset into memory.

    Args:
        name: A name from :func:`list_datasets`: ``"yinyang"``, ``"digits"``, ``"fashion_mnist"``, ``"mnist"``.
        split: A split of that dataset (``"train"``, ``"validation"`` or ``"test"`` for the built-ins).
        data_dir: Folder holding data files, for datasets read from files (``dataset_info(name).needs_files``);
            ignored by generated / package-bundled datasets.

    Returns:
        A :class:`SplitDataset`: ``ds[i] == (x_i, y_i)`` with ``x_i`` float32 ``input_shape`` and ``y_i`` an
        int64 scalar tensor; the whole split is ``ds.x`` ``[N, *input_shape]`` float32 and ``ds.y`` ``[N]``
        int64, for batching without a DataLoader.

    Raises:
        ValueError: Unknown ``name`` (message lists valid names) or ``split`` (lists valid splits); corrupt files.
        TypeError: ``data_dir`` is not a str / PathLike / None.
        FileNotFoundError: Data files missing (message lists the paths searched and how to get the data).
        ImportError: An optional dependency is missing (message names the extra to install).
    """
    info, builder = _entry(name)
    if not isinstance(split, str):
        raise TypeError(f"split must be a str, got {type(split).__name__}")
    size = info.split_size(split)
    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"data_dir must be a str, os.PathLike or None, got {type(data_dir).__name__}")
    x, y = builder(split, None if data_dir is None else Path(data_dir).expanduser())
    _check_built(info, split, size, x, y)
    return SplitDataset(x, y, name=name, split=split)


def _check_built(info: DatasetInfo, split: str, size: int, x: Tensor, y: Tensor) -> None:
    """Fail loudly if a builder's output disagrees with its :class:`DatasetInfo`."""
    where = f"builder for {info.name!r} split {split!r}"
    if not isinstance(x, Tensor) or not isinstance(y, Tensor) or x.dtype != torch.float32 or y.dtype != torch.int64:
        raise TypeError(f"{where} must return (float32 tensor, int64 tensor)")
    if tuple(x.shape) != (size, *info.input_shape) or tuple(y.shape) != (size,):
        raise ValueError(
            f"{where} returned x {tuple(x.shape)}, y {tuple(y.shape)}; DatasetInfo promises "
            f"x {(size, *info.input_shape)}, y {(size,)}"
        )
    if size and (int(y.min()) < 0 or int(y.max()) >= info.num_classes):
        raise ValueError(f"{where} returned labels outside 0..{info.num_classes - 1}")
