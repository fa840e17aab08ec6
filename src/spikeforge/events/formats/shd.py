r"""The Spiking Heidelberg Digits / Spiking Speech Commands HDF5 layout (Cramer et al. 2020, "The Heidelberg
Spiking Data Sets for the Systematic Evaluation of Spiking Neural Networks", IEEE TNNLS 33(7)).

One HDF5 file per split::

    spikes/times   variable-length float arrays, one per sample: spike times in seconds
    spikes/units   variable-length integer arrays, one per sample: the input channel (0..699) of each spike
    labels         one integer class per sample (SHD: 20 classes, SSC: 35)

(``extra/...`` metadata, e.g. speaker ids, is not read.) Needs the optional ``h5py`` package. The file is opened
through :func:`~spikeforge._core.files.open_regular`, its size checked before HDF5 reads anything.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from spikeforge._core.files import open_regular
from spikeforge.events.formats._common import MAX_EVENTS
from spikeforge.events.formats._common import MAX_FILE_BYTES
from spikeforge.events.formats._common import FormatError
from spikeforge.events.formats._common import check_cap
from spikeforge.events.stream import make_events

__all__ = ["SpikeSamples", "read_shd", "shd_to_events", "SHD_UNITS"]

SHD_UNITS = 700
"""Input channels of SHD and SSC (the cochlea model's 700 fibres)."""
_CHUNK = 1024


class SpikeSamples(NamedTuple):
    """Per-sample spike trains: ``times[i]`` (float64 seconds, ascending) and ``units[i]`` (int64), ``labels``."""

    times: list[np.ndarray]
    units: list[np.ndarray]
    labels: np.ndarray


def _dataset(h5: object, name: str, where: str):
    try:
        obj = h5[name]  # type: ignore[index]
    except KeyError:
        raise FormatError(
            f"{where} has no {name!r} dataset; an SHD/SSC file holds spikes/times, spikes/units and labels"
        ) from None
    if not hasattr(obj, "shape") or len(obj.shape) != 1:
        raise FormatError(f"{where}: {name!r} must be a 1-D dataset, got {getattr(obj, 'shape', type(obj).__name__)}")
    return obj


def read_shd(
    path: str | os.PathLike[str], *, max_bytes: int = MAX_FILE_BYTES, max_spikes: int = MAX_EVENTS
) -> SpikeSamples:
    """Read an SHD/SSC ``.h5`` file (uncompressed from the published ``.h5.gz``) into :class:`SpikeSamples`.

    Raises:
        ImportError: h5py is not installed (``pip install h5py``).
        FormatError: not HDF5, a dataset missing, sample counts or per-sample lengths disagreeing, times not
            finite / negative / descending, negative units or labels, more than ``max_spikes`` spikes in all.
    """
    try:
        import h5py
    except ImportError:
        raise ImportError("reading SHD/SSC files needs h5py: pip install h5py") from None
    where = str(path)
    max_bytes, max_spikes = check_cap(max_bytes, "max_bytes"), check_cap(max_spikes, "max_spikes")
    with open_regular(path, f"{path} is not a regular file; pass the path of an SHD/SSC .h5 file") as f:
        size = os.fstat(f.fileno()).st_size
        if size > max_bytes:
            raise FormatError(f"{where} is {size} bytes, more than max_bytes={max_bytes}; pass a larger max_bytes")
        if f.read(8) != b"\x89HDF\r\n\x1a\n":
            raise FormatError(f"{where} is not an HDF5 file (bad signature); gunzip a published .h5.gz first")
        f.seek(0)
        try:
            with h5py.File(f, "r") as h5:
                return _read_open(h5, where, max_spikes)
        except (OSError, RuntimeError, TypeError) as exc:  # h5py's errors for a damaged file
            raise FormatError(f"{where}: HDF5 cannot read it ({exc}); the file is corrupt or truncated") from None


def _read_open(h5: object, where: str, max_spikes: int) -> SpikeSamples:
    times_ds = _dataset(h5, "spikes/times", where)
    units_ds = _dataset(h5, "spikes/units", where)
    labels = np.asarray(_dataset(h5, "labels", where)[()])
    n = labels.shape[0]
    if times_ds.shape[0] != n or units_ds.shape[0] != n:
        raise FormatError(
            f"{where}: {times_ds.shape[0]} spike-time rows, {units_ds.shape[0]} unit rows and {n} labels; "
            "the three must have one entry per sample"
        )
    if labels.dtype.kind not in "iu" or (n and int(labels.min()) < 0):
        raise FormatError(f"{where}: labels must be non-negative integers, got dtype {labels.dtype}")
    times: list[np.ndarray] = []
    units: list[np.ndarray] = []
    total = 0
    for s in range(0, n, _CHUNK):
        for tt, uu in zip(times_ds[s : s + _CHUNK], units_ds[s : s + _CHUNK]):
            i = len(times)
            tt, uu = np.asarray(tt), np.asarray(uu)
            total += tt.size
            if total > max_spikes:
                raise FormatError(f"{where} holds more than max_spikes={max_spikes}; pass a larger max_spikes")
            _check_sample(tt, uu, i, where)
            times.append(tt.astype(np.float64))
            units.append(uu.astype(np.int64))
    return SpikeSamples(times, units, labels.astype(np.int64))


def _check_sample(tt: np.ndarray, uu: np.ndarray, i: int, where: str) -> None:
    if tt.ndim != 1 or uu.ndim != 1 or tt.shape != uu.shape:
        raise FormatError(f"{where}: sample {i} has {tt.shape} spike times but {uu.shape} units; they must match")
    if tt.dtype.kind != "f" or uu.dtype.kind not in "iu":
        raise FormatError(f"{where}: sample {i} needs float times and integer units, got {tt.dtype} / {uu.dtype}")
    if tt.size and (not np.isfinite(tt).all() or float(tt.min()) < 0):
        raise FormatError(f"{where}: sample {i} has a negative or non-finite spike time; the file is corrupt")
    if tt.size and np.any(tt[1:] < tt[:-1]):
        j = int(np.argmax(tt[1:] < tt[:-1])) + 1
        raise FormatError(
            f"{where}: sample {i}'s spike times go backwards at spike {j} ({tt[j]} s after {tt[j - 1]} s)"
        )
    if uu.size and int(uu.min()) < 0:
        raise FormatError(f"{where}: sample {i} has a negative unit index {int(uu.min())}")


def shd_to_events(
    times: np.ndarray, units: np.ndarray, *, n_units: int = SHD_UNITS
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """One sample's spikes as an event array on a ``(n_units, 1, 1)`` sensor (x = unit, y = 0, p = 0,
    t = round(time * 1e6) microseconds), the layout Tonic uses for SHD."""
    times, units = np.asarray(times), np.asarray(units)
    if units.size and int(units.max()) >= n_units:
        raise ValueError(f"unit {int(units.max())} >= n_units={n_units}; pass the data set's n_units")
    t = np.round(times.astype(np.float64) * 1e6).astype(np.int64)
    zeros = np.zeros(t.size, dtype=np.int64)
    return make_events(units, zeros, t, zeros, sensor_size=(n_units, 1, 1)), (n_units, 1, 1)
