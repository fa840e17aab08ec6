"""``nmnist`` and ``shd``: real event recordings read from a user's folder (``data_dir``, CLI ``--data-dir``)
through the readers of :mod:`spikeforge.events.formats`. Nothing is downloaded or cached.

===== ================ ======= ======================= ==================================================
name  input_shape      classes splits (train/val/test) files under ``data_dir``
===== ================ ======= ======================= ==================================================
nmnist (10, 2, 34, 34) 10      55000 / 5000 / 10000    ``Train/<0-9>/*.bin``, ``Test/<0-9>/*.bin`` (N-MNIST)
shd   (100, 700)       20      7341 / 815 / 2264       ``shd_train.h5``, ``shd_test.h5`` (gunzipped)
===== ================ ======= ======================= ==================================================

``nmnist`` (Orchard et al. 2015): each ``.bin`` is read by :func:`~spikeforge.events.formats.read_nmnist` on the
34x34 sensor and binned exactly as ``nfashion_mnist`` (:func:`~spikeforge.data.event_datasets.bin_events`):
``x [N, 10, 2, 34, 34]`` event counts per 30 ms bin of the 300 ms, polarity (OFF, ON), row, column; an event at
or after 300 ms (a recording lasts about 306 ms) counts in the last bin.

``shd`` (Cramer et al. 2020): each split is read by :func:`~spikeforge.events.formats.read_shd` (needs ``h5py``,
the ``events`` extra) and every sample turned into events by :func:`~spikeforge.events.formats.shd_to_events`
(``t`` in integer microseconds); ``x [N, 100, 700]`` spike counts per 14 ms bin over 1.4 s and per channel; a
spike at or after 1.4 s counts in the last bin.

Splits: ``test`` is the published test set. The published training set, in a fixed order (N-MNIST: digit folder,
then file name; SHD: the file's order), is split by position: every 12th sample (N-MNIST, ``i % 12 == 11``) or
every 10th (SHD, ``i % 10 == 9``) is ``validation``, the rest ``train`` - deterministic and class-proportional.
The published counts are checked (60 000 / 10 000 files; 8 156 / 2 264 samples): a partial copy fails loudly.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from spikeforge.data import event_datasets as evd
from spikeforge.data.registry import DatasetInfo
from spikeforge.data.registry import dataset_info
from spikeforge.data.registry import register_dataset
from spikeforge.events.formats import SHD_UNITS
from spikeforge.events.formats import read_nmnist
from spikeforge.events.formats import read_shd
from spikeforge.events.formats import shd_to_events

__all__ = [
    "NMNIST_PARTS", "SHD_PARTS", "NMNIST_EVERY", "SHD_EVERY", "SHD_BINS", "SHD_DURATION_US", "recorded_splits",
    "nmnist_files", "bin_shd",
]  # fmt: skip

#: Published N-MNIST folders and their file counts.
NMNIST_PARTS = {"Train": 60000, "Test": 10000}
#: Published SHD files and their sample counts.
SHD_PARTS = {"shd_train.h5": 8156, "shd_test.h5": 2264}
#: Every ``k``-th training sample (``i % k == k - 1``) is validation.
NMNIST_EVERY = 12
SHD_EVERY = 10
SHD_BINS = 100
SHD_DURATION_US = 1_400_000
SHD_CLASSES = 20
_SENSOR = (evd.SENSOR_HW[1], evd.SENSOR_HW[0], 2)  # (W, H, P)
_NMNIST_LAYOUT = "DIR/Train/<0-9>/*.bin and DIR/Test/<0-9>/*.bin (the published N-MNIST archives, extracted)"
_SHD_LAYOUT = "DIR/shd_train.h5 and DIR/shd_test.h5 (the published .h5.gz files, gunzipped)"


def recorded_splits(n_train_files: int, n_test: int, every: int) -> tuple[tuple[str, int], ...]:
    """``(("train", n), ("validation", n), ("test", n))`` when every ``every``-th training sample is validation."""
    val = n_train_files // every
    return (("train", n_train_files - val), ("validation", val), ("test", n_test))


def _split_index(split: str, n: int, every: int) -> np.ndarray:
    """Positions of ``split`` in the published training (``train`` / ``validation``) or test set of ``n``."""
    i = np.arange(n)
    if split == "test":
        return i
    is_val = i % every == every - 1
    return i[is_val] if split == "validation" else i[~is_val]


def _folder(name: str, data_dir: Path | None, layout: str) -> Path:
    if data_dir is None:
        raise FileNotFoundError(f"{name} reads recordings from disk: pass --data-dir DIR (data_dir=) with {layout}")
    if not data_dir.is_dir():
        raise FileNotFoundError(f"{name}: --data-dir {data_dir} is not a folder; it must hold {layout}")
    return data_dir


def _expected(name: str, split: str) -> int:
    """Published sample count of the part ``split`` comes from, from the registered :class:`DatasetInfo`."""
    info = dataset_info(name)
    if split == "test":
        return info.split_size("test")
    return info.split_size("train") + info.split_size("validation")


def nmnist_files(data_dir: Path | None, part: str, expected: int) -> tuple[list[Path], np.ndarray]:
    """The ``.bin`` files of ``DIR/<part>/<digit>/`` in digit, then name order, and their labels (the digit).

    Raises:
        FileNotFoundError: no ``data_dir``, or the folder / a digit folder is missing (names the expected layout).
        ValueError: the number of files differs from ``expected`` (the published count).
    """
    root = _folder("nmnist", data_dir, _NMNIST_LAYOUT) / part
    files: list[Path] = []
    labels: list[int] = []
    for digit in range(10):
        d = root / str(digit)
        if not d.is_dir():
            raise FileNotFoundError(f"nmnist: {d} is not a folder; --data-dir must hold {_NMNIST_LAYOUT}")
        found = sorted(p for p in d.iterdir() if p.suffix == ".bin")
        files += found
        labels += [digit] * len(found)
    if len(files) != expected:
        raise ValueError(
            f"nmnist: found {len(files)} .bin files under {root}, the published N-MNIST has {expected}; "
            f"extract the complete archive so that --data-dir holds {_NMNIST_LAYOUT}"
        )
    return files, np.asarray(labels, dtype=np.int64)


def _pack(events: np.ndarray) -> np.ndarray:
    """N-MNIST events in the packed ``uint32`` layout of :mod:`~spikeforge.data.event_datasets` (``t`` clipped to
    the 300 ms window: a later event lands in the last bin either way)."""
    t = np.minimum(events["t"].astype(np.int64), evd.DURATION_US)
    x, y, p = events["x"].astype(np.int64), events["y"].astype(np.int64), events["p"].astype(np.int64)
    return (t | x << 19 | y << 25 | p << 31).astype(np.uint32)


def _build_nmnist(split: str, data_dir: Path | None) -> tuple[Tensor, Tensor]:
    part = "Test" if split == "test" else "Train"
    files, labels = nmnist_files(data_dir, part, _expected("nmnist", split))
    idx = _split_index(split, len(files), NMNIST_EVERY)
    out = np.empty((idx.size, evd.N_BINS, 2, *evd.SENSOR_HW), dtype=np.float32)
    chunk = 1000
    for start in range(0, idx.size, chunk):
        sel = idx[start : start + chunk]
        packed = [_pack(read_nmnist(files[i], sensor_size=_SENSOR)[0]) for i in sel]
        offsets = np.concatenate([[0], np.cumsum([p.size for p in packed])]).astype(np.int64)
        events = np.concatenate(packed) if packed else np.empty(0, dtype=np.uint32)
        out[start : start + sel.size] = evd.bin_events(events, offsets, np.arange(sel.size))
    return torch.from_numpy(out), torch.from_numpy(labels[idx])


def bin_shd(times: list[np.ndarray], units: list[np.ndarray]) -> np.ndarray:
    """Float32 ``[N, SHD_BINS, 700]``: spikes per bin of ``SHD_DURATION_US / SHD_BINS`` and channel; each sample
    goes through :func:`~spikeforge.events.formats.shd_to_events` (a spike at or after the window's end counts in
    the last bin)."""
    out = np.zeros((len(times), SHD_BINS * SHD_UNITS), dtype=np.float32)
    for i, (tt, uu) in enumerate(zip(times, units)):
        ev, _ = shd_to_events(tt, uu, n_units=SHD_UNITS)
        b = np.minimum(ev["t"].astype(np.int64) * SHD_BINS // SHD_DURATION_US, SHD_BINS - 1)
        out[i] = np.bincount(b * SHD_UNITS + ev["x"].astype(np.int64), minlength=SHD_BINS * SHD_UNITS)
    return out.reshape(len(times), SHD_BINS, SHD_UNITS)


def _build_shd(split: str, data_dir: Path | None) -> tuple[Tensor, Tensor]:
    if importlib.util.find_spec("h5py") is None:
        raise ImportError("the shd data set reads HDF5 files and needs h5py: pip install 'spikeforge[events]'")
    fname = "shd_test.h5" if split == "test" else "shd_train.h5"
    path = _folder("shd", data_dir, _SHD_LAYOUT) / fname
    if not path.is_file():
        raise FileNotFoundError(f"shd: {path} is not a file; --data-dir must hold {_SHD_LAYOUT}")
    samples = read_shd(path)
    n, expected = samples.labels.shape[0], _expected("shd", split)
    if n != expected:
        raise ValueError(f"shd: {path} holds {n} samples, the published file has {expected}; use the complete file")
    if n and int(samples.labels.max()) >= SHD_CLASSES:
        raise ValueError(f"shd: {path} has label {int(samples.labels.max())}, SHD's are 0..19; is this an SSC file?")
    for i, u in enumerate(samples.units):
        if u.size and int(u.max()) >= SHD_UNITS:
            raise ValueError(f"shd: {path} sample {i} has unit {int(u.max())}, SHD's are 0..{SHD_UNITS - 1}")
    idx = _split_index(split, n, SHD_EVERY)
    x = bin_shd([samples.times[i] for i in idx], [samples.units[i] for i in idx])
    return torch.from_numpy(x), torch.from_numpy(samples.labels[idx])


_SPLIT_DOC = "test = the published test set; validation = every {k}th sample of the published training set in {order}, train = the rest."  # fmt: skip

register_dataset(
    DatasetInfo(
        name="nmnist", input_shape=(evd.N_BINS, 2, *evd.SENSOR_HW), num_classes=10,
        splits=recorded_splits(NMNIST_PARTS["Train"], NMNIST_PARTS["Test"], NMNIST_EVERY),
        description=(
            "N-MNIST: 70 000 MNIST digits recorded by an ATIS event camera (34x34) moved through three saccades. "
            f"Read from {_NMNIST_LAYOUT} (--data-dir); events binned into {evd.N_BINS} frames of 30 ms, 2 polarities: "
            "x [N, 10, 2, 34, 34] event counts. " + _SPLIT_DOC.format(k=NMNIST_EVERY, order="digit, then file order")
        ),
        source="Orchard, Jayawant, Cohen & Thakor, Front. Neurosci. 9:437 (2015); licence: see the data set's page",
        class_names=tuple(str(d) for d in range(10)), needs_files=True, sequence=True,
    )
)(_build_nmnist)  # fmt: skip

register_dataset(
    DatasetInfo(
        name="shd", input_shape=(SHD_BINS, SHD_UNITS), num_classes=SHD_CLASSES,
        splits=recorded_splits(SHD_PARTS["shd_train.h5"], SHD_PARTS["shd_test.h5"], SHD_EVERY),
        description=(
            "Spiking Heidelberg Digits: spoken digits 0-9 in English and German (20 classes) through a cochlea "
            f"model, 700 channels. Read from {_SHD_LAYOUT} (--data-dir; needs h5py, the events extra); spikes binned "
            f"into {SHD_BINS} bins of 14 ms over 1.4 s: x [N, 100, 700] spike counts. "
            + _SPLIT_DOC.format(k=SHD_EVERY, order="file order")
        ),
        source="Cramer, Stradmann, Schemmel & Zenke, IEEE TNNLS (2020); licence: see the data set's page",
        class_names=tuple(f"{lang}-{d}" for lang in ("en", "de") for d in range(10)), needs_files=True,
        sequence=True,
    )
)(_build_shd)  # fmt: skip
