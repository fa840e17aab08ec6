"""MNIST and Fashion-MNIST from standard IDX files, found offline.

Both datasets are 28x28 grey images in 10 classes, 60000 official training and 10000 test images.
Splits: ``train`` = the first 55000 images of the official training file, ``validation`` = its last 5000,
``test`` = the official 10000. Pixels are scaled ``uint8 / 255`` to ``[0, 1]`` and shaped
``[N, 1, 28, 28]`` (MLPs flatten with ``x.flatten(1)``).

Where the files are looked for (first match wins, per file):

* With ``data_dir=D``: ``D``, then ``D/FashionMNIST/raw``, ``D/FashionMNIST``, ``D/fashion-mnist`` (for
  ``fashion_mnist``) or ``D/MNIST/raw``, ``D/MNIST``, ``D/mnist`` (for ``mnist``). The default location is then not
  consulted, so a wrong ``data_dir`` fails loudly instead of silently using other files.
* Without ``data_dir``: Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package
  (``/usr/share/datasets/fashion-mnist``; ``apt-get install dataset-fashion-mnist``). MNIST has no offline
  package, so it needs ``data_dir``.

Accepted names: ``{train,t10k}-{images-idx3,labels-idx1}-ubyte`` and the ``images.idx3-ubyte`` spelling,
each plain or ``.gz`` (plain preferred, it loads faster). Sources: LeCun, Cortes & Burges, MNIST
(http://yann.lecun.com/exdb/mnist/); Xiao, Rasul & Vollgraf 2017, Fashion-MNIST, arXiv:1708.07747 (MIT).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from spikeforge.data.idx import read_idx
from spikeforge.data.registry import DatasetInfo
from spikeforge.data.registry import register_dataset

__all__ = ["FASHION_MNIST_SYSTEM_DIR", "find_idx_file", "load_idx_pair"]

#: Where Debian's ``dataset-fashion-mnist`` package installs the IDX files.
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")

_SPLITS = (("train", 55000), ("validation", 5000), ("test", 10000))
_N_OFFICIAL = {"train": 60000, "t10k": 10000}
_SUBDIRS = {
    "fashion_mnist": ("FashionMNIST/raw", "FashionMNIST", "fashion-mnist"),
    "mnist": ("MNIST/raw", "MNIST", "mnist"),
}
_HOWTO = {
    "fashion_mnist": (
        "install Debian's package (apt-get install dataset-fashion-mnist, files land in "
        f"{FASHION_MNIST_SYSTEM_DIR}) or pass data_dir (CLI: --data-dir) pointing at a folder with the IDX files"
    ),
    "mnist": (
        "MNIST has no offline package: pass data_dir (CLI: --data-dir) pointing at a folder with the IDX files "
        "(or a torchvision root containing MNIST/raw)"
    ),
}


def _candidate_names(prefix: str, kind: str) -> list[str]:
    """``prefix`` in {train, t10k}, ``kind`` in {images, labels} -> accepted file names, plain first."""
    rank = "idx3" if kind == "images" else "idx1"
    stems = [f"{prefix}-{kind}-{rank}-ubyte", f"{prefix}-{kind}.{rank}-ubyte"]
    return stems + [s + ".gz" for s in stems]


def _search_dirs(dataset: str, data_dir: Path | None) -> list[Path]:
    if data_dir is not None:
        return [data_dir] + [data_dir / sub for sub in _SUBDIRS[dataset]]
    return [FASHION_MNIST_SYSTEM_DIR] if dataset == "fashion_mnist" else []


def find_idx_file(dataset: str, prefix: str, kind: str, data_dir: Path | None) -> Path:
    """Locate one IDX file of ``dataset`` (``"mnist"`` / ``"fashion_mnist"``).

    Args:
        dataset: ``"mnist"`` or ``"fashion_mnist"`` (selects the sub-folders and the default location).
        prefix: ``"train"`` or ``"t10k"``.
        kind: ``"images"`` or ``"labels"``.
        data_dir: Folder to search, or ``None`` for the default location.

    Returns:
        The first existing candidate path.

    Raises:
        FileNotFoundError: Nothing found; the message lists every path searched and how to get the data.
    """
    if dataset not in _SUBDIRS or prefix not in _N_OFFICIAL or kind not in ("images", "labels"):
        raise ValueError(f"bad IDX file request: dataset={dataset!r}, prefix={prefix!r}, kind={kind!r}")
    names = _candidate_names(prefix, kind)
    tried: list[str] = []
    for d in _search_dirs(dataset, data_dir):
        for name in names:
            p = d / name
            if p.is_file():
                return p
            tried.append(str(p))
    searched = "\n  ".join(tried) if tried else "(no default location for this dataset)"
    raise FileNotFoundError(
        f"{dataset}: {prefix} {kind} IDX file not found. Searched:\n  {searched}\nTo get the data: {_HOWTO[dataset]}."
    )


def load_idx_pair(dataset: str, prefix: str, data_dir: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """Read and cross-check the images/labels files of one official set.

    Returns:
        ``images`` uint8 ``[n, 28, 28]`` and ``labels`` uint8 ``[n]`` with ``n`` 60000 (``train``) or
        10000 (``t10k``).

    Each file is streamed by :func:`~spikeforge.data.idx.read_idx` with the expected shape and type, so a
    hostile file in a data folder (a gzip bomb, a header declaring other dims, trailing data, a FIFO or device
    planted under an accepted name) is refused after reading its header, never decompressed whole.

    Raises:
        FileNotFoundError: See :func:`find_idx_file`.
        ValueError: A corrupt file, or contents that are not MNIST-like (wrong type, shape, count or labels).
    """
    img_path = find_idx_file(dataset, prefix, "images", data_dir)
    lab_path = find_idx_file(dataset, prefix, "labels", data_dir)
    n = _N_OFFICIAL[prefix]
    # shape and type are checked from the header before any data is read; at most n * 784 + 1 bytes are inflated
    images = read_idx(img_path, shape=(n, 28, 28), dtype=np.uint8)
    labels = read_idx(lab_path, shape=(n,), dtype=np.uint8)
    if int(labels.max()) > 9:
        raise ValueError(f"{lab_path}: labels must be 0..9, found {int(labels.max())}")
    return images, labels


def _found(dataset: str) -> bool:
    """Every IDX file of ``dataset`` is found in its default location (no data_dir)."""
    try:
        for prefix in _N_OFFICIAL:
            for kind in ("images", "labels"):
                find_idx_file(dataset, prefix, kind, None)
    except FileNotFoundError:
        return False
    return True


def _build(dataset: str, split: str, data_dir: Path | None) -> tuple[Tensor, Tensor]:
    images, labels = load_idx_pair(dataset, "t10k" if split == "test" else "train", data_dir)
    sl = {"train": slice(0, 55000), "validation": slice(55000, 60000), "test": slice(0, 10000)}[split]
    x = torch.from_numpy(images[sl]).to(torch.float32).div_(255.0).unsqueeze(1)  # [N, 1, 28, 28]
    y = torch.from_numpy(labels[sl].astype(np.int64))  # [N]
    return x, y


_COMMON = (
    "28x28 grey images, 10 classes; pixels / 255 in [0, 1], shape (1, 28, 28) (MLPs flatten to 784). "
    "Splits: train = first 55000 of the official 60000 training images, validation = the last 5000, "
    "test = the official 10000."
)


def _idx_dataset(name: str, description: str, source: str, class_names: tuple[str, ...]) -> DatasetInfo:
    """The DatasetInfo of a 28x28 10-class IDX dataset (both share shape, splits and file reading)."""
    return DatasetInfo(
        name=name, input_shape=(1, 28, 28), num_classes=10, splits=_SPLITS, description=description,
        source=source, class_names=class_names, needs_files=True,
    )  # fmt: skip


FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot")  # fmt: skip


@register_dataset(
    _idx_dataset(
        "fashion_mnist",
        f"Fashion-MNIST (Zalando article images). {_COMMON} Read from IDX files: by default those of "
        f"Debian's dataset-fashion-mnist package ({FASHION_MNIST_SYSTEM_DIR}), or data_dir.",
        "Xiao, Rasul & Vollgraf, 'Fashion-MNIST', arXiv:1708.07747 (2017); "
        "github.com/zalandoresearch/fashion-mnist (MIT)",
        FASHION_MNIST_CLASSES,
    ),
    found=lambda: _found("fashion_mnist"),
)
def _build_fashion_mnist(split: str, data_dir: Path | None) -> tuple[Tensor, Tensor]:
    return _build("fashion_mnist", split, data_dir)


@register_dataset(
    _idx_dataset(
        "mnist",
        f"MNIST handwritten digits. {_COMMON} No offline package exists: pass data_dir pointing at the IDX "
        "files (flat, or a torchvision root with MNIST/raw).",
        "LeCun, Bottou, Bengio & Haffner 1998; LeCun, Cortes & Burges, http://yann.lecun.com/exdb/mnist/",
        tuple(str(d) for d in range(10)),
    )
)
def _build_mnist(split: str, data_dir: Path | None) -> tuple[Tensor, Tensor]:
    return _build("mnist", split, data_dir)
