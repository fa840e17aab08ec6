"""Event-camera recordings on disk, read into event arrays (:data:`~spikeforge.events.EVENT_DTYPE`, Tonic's layout,
``t`` in integer microseconds, ``sensor_size = (W, H, P)``).

* :func:`read_events` reads one recording, the format taken from ``format=`` or detected (extension, then
  header): ``"nmnist"`` (N-MNIST / N-Caltech101 ``.bin``), ``"aedat4"`` (iniVation ``.aedat4``), ``"evt2"`` /
  ``"evt3"`` (Prophesee ``.raw``).
* :func:`read_shd` reads an SHD / SSC HDF5 split (many samples: spike times, units, labels);
  :func:`shd_to_events` turns one sample into an event array.

Every reader opens the file with :func:`~spikeforge._core.files.open_regular`, refuses files over ``max_bytes``
before reading and results over ``max_events`` before building them, and raises :class:`FormatError` (a
``ValueError``) with one line naming the problem for truncated files, wrong magic / headers, timestamps going
backwards (``sort=True`` sorts instead) and coordinates outside the sensor.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from spikeforge._core.files import open_regular
from spikeforge.events.formats._common import MAX_EVENTS
from spikeforge.events.formats._common import MAX_FILE_BYTES
from spikeforge.events.formats._common import FormatError
from spikeforge.events.formats._common import suffix
from spikeforge.events.formats.aedat4 import MAGIC
from spikeforge.events.formats.aedat4 import aedat4_streams
from spikeforge.events.formats.aedat4 import read_aedat4
from spikeforge.events.formats.nmnist import read_nmnist
from spikeforge.events.formats.nmnist import write_nmnist
from spikeforge.events.formats.prophesee import raw_format
from spikeforge.events.formats.prophesee import read_evt2
from spikeforge.events.formats.prophesee import read_evt3
from spikeforge.events.formats.prophesee import read_raw_header
from spikeforge.events.formats.shd import SHD_UNITS
from spikeforge.events.formats.shd import SpikeSamples
from spikeforge.events.formats.shd import read_shd
from spikeforge.events.formats.shd import shd_to_events

__all__ = [
    "FORMATS", "FormatError", "MAX_FILE_BYTES", "MAX_EVENTS", "read_events", "detect_format", "read_nmnist",
    "write_nmnist", "read_aedat4", "aedat4_streams", "read_evt2", "read_evt3", "read_shd", "shd_to_events",
    "SpikeSamples", "SHD_UNITS",
]  # fmt: skip

FORMATS = {"nmnist": read_nmnist, "aedat4": read_aedat4, "evt2": read_evt2, "evt3": read_evt3}
"""The event-file formats :func:`read_events` reads, by name."""
_BY_SUFFIX = {".bin": "nmnist", ".aedat4": "aedat4", ".evt2": "evt2", ".evt3": "evt3"}


def detect_format(path: str | os.PathLike[str]) -> str:
    """The format name of an event file: from its extension, else from its first bytes.

    Raises:
        FormatError: the format cannot be told (name it with ``format=``), or the file is an SHD/SSC ``.h5``.
    """
    ext = suffix(path)
    if ext in (".h5", ".hdf5"):
        raise FormatError(f"{path} is HDF5 (an SHD/SSC split holds many samples); read it with read_shd(path)")
    if ext in _BY_SUFFIX:
        return _BY_SUFFIX[ext]
    with open_regular(path, f"{path} is not a regular file; pass the path of an event recording") as f:
        head = f.read(1 << 16)
    if head.startswith(MAGIC[:9]):
        return "aedat4"
    if head.startswith(b"%"):
        if b"\n" not in head:
            raise FormatError(f"{path}: the '%' header has no line end in its first 64 KiB; pass format='evt2'/'evt3'")
        named = raw_format(read_raw_header(head, str(path))[0])
        if named is not None:
            return named
    raise FormatError(
        f"cannot tell the format of {path} from its extension {ext!r} or its header; pass format= one of "
        f"{sorted(FORMATS)}"
    )


def read_events(
    path: str | os.PathLike[str],
    format: str | None = None,
    *,
    sensor_size: tuple[int, int, int] | None = None,
    sort: bool = False,
    max_bytes: int = MAX_FILE_BYTES,
    max_events: int = MAX_EVENTS,
    **options: Any,
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Read an event recording into ``(events, sensor_size)``.

    Args:
        format: one of :data:`FORMATS` (``"nmnist"``, ``"aedat4"``, ``"evt2"``, ``"evt3"``); default: detected.
        sensor_size: ``(W, H, P)`` to check coordinates against; default: the file header's (AEDAT4, EVT with a
            geometry line), else ``(max x + 1, max y + 1, 2)`` from the data.
        sort: sort events whose timestamps go backwards, instead of raising.
        options: format-specific (AEDAT4: ``stream=<id>``).
    """
    if format is None:
        format = detect_format(path)
    if format not in FORMATS:
        raise ValueError(f"unknown event file format {format!r}; choose one of {sorted(FORMATS)}")
    if options and format != "aedat4":
        raise TypeError(f"format {format!r} takes no options {sorted(options)}")
    reader: Any = FORMATS[format]
    return reader(path, sensor_size=sensor_size, sort=sort, max_bytes=max_bytes, max_events=max_events, **options)
