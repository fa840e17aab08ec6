r"""The N-MNIST / N-Caltech101 binary format (Orchard et al. 2015, "Converting static image datasets to spiking
neuromorphic datasets using saccades", Front. Neurosci. 9:437).

A file is a bare sequence of 40-bit events, 5 bytes each, no header::

    byte 0: x (8 bit)        byte 1: y (8 bit)
    byte 2: bit 7 polarity (1 = ON), bits 6..0 timestamp bits 22..16
    byte 3: timestamp bits 15..8      byte 4: timestamp bits 7..0      (microseconds)

Wraparound rule (the dataset authors' reference reader, ``Read_Ndataset.m`` / ``eventvision.py``): an entry with
``y == 240`` is not an event but a time-stamp overflow marker; every entry after it has ``2**13`` microseconds
added to its time stamp. The file has no sensor size: N-MNIST is ``(34, 34, 2)``, N-Caltech101 up to
``(240, 180, 2)``; pass ``sensor_size`` to check coordinates against it (default: taken from the data).
"""

from __future__ import annotations

import os

import numpy as np

from spikeforge._core.files import atomic_write_bytes
from spikeforge.events.formats._common import MAX_EVENTS
from spikeforge.events.formats._common import MAX_FILE_BYTES
from spikeforge.events.formats._common import FormatError
from spikeforge.events.formats._common import check_cap
from spikeforge.events.formats._common import finish_events
from spikeforge.events.formats._common import read_capped
from spikeforge.events.stream import check_events

__all__ = ["read_nmnist", "write_nmnist", "OVERFLOW_Y", "OVERFLOW_STEP"]

OVERFLOW_Y = 240
"""``y`` value of a time-stamp overflow marker."""
OVERFLOW_STEP = 2**13
"""Microseconds added to every entry after an overflow marker (the reference reader's rule)."""
_MAX_T = 2**23


def read_nmnist(
    path: str | os.PathLike[str],
    *,
    sensor_size: tuple[int, int, int] | None = None,
    sort: bool = False,
    max_bytes: int = MAX_FILE_BYTES,
    max_events: int = MAX_EVENTS,
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Read an N-MNIST / N-Caltech101 ``.bin`` file into ``(events, sensor_size)``.

    Raises:
        FormatError: the size is not a multiple of 5 bytes (truncated), timestamps go backwards (unless
            ``sort``), a coordinate lies outside ``sensor_size``, more than ``max_events`` events.
    """
    data = read_capped(path, max_bytes, "N-MNIST .bin")
    if len(data) % 5:
        raise FormatError(
            f"{path}: {len(data)} bytes is not a multiple of 5 (40-bit events); the file is truncated or not an "
            "N-MNIST/N-Caltech101 .bin file"
        )
    if len(data) // 5 > check_cap(max_events, "max_events"):
        raise FormatError(f"{path} holds {len(data) // 5} events, more than max_events={max_events}")
    raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, 5)  # a view: no copy of the file
    marker = raw[:, 1] == OVERFLOW_Y
    t = (raw[:, 2] & 0x7F).astype(np.int64) << 16
    t |= raw[:, 3].astype(np.int64) << 8
    t |= raw[:, 4]
    t += np.cumsum(marker, dtype=np.int64) * OVERFLOW_STEP
    keep = ~marker
    columns = {"x": raw[keep, 0], "y": raw[keep, 1], "t": t[keep], "p": raw[keep, 2] >> 7}
    return finish_events(columns, sensor_size, str(path), sort=sort)


def write_nmnist(path: str | os.PathLike[str], events: np.ndarray, sensor_size: tuple[int, int, int]) -> None:
    """Write events in the N-MNIST binary format (inserting overflow markers for timestamps >= 2**23 us).

    Coordinates must fit 8 bits and not use ``y == 240`` (the marker); polarity must be 2-valued.
    """
    check_events(events, sensor_size)
    w, h, npol = sensor_size
    if w > 256 or h > OVERFLOW_Y or npol > 2:
        raise ValueError(f"the N-MNIST format holds x < 256, y < 240 and 2 polarities; sensor_size is {sensor_size}")
    t = events["t"].astype(np.int64)
    markers = np.zeros(t.size, dtype=np.int64)
    if t.size:
        # Overflow markers needed before each event so that its stored 23-bit time stamp fits: k = ceil excess.
        need = np.maximum(0, (t - _MAX_T + OVERFLOW_STEP) // OVERFLOW_STEP)
        markers = np.diff(np.concatenate([[0], need]))
    stored = t - np.cumsum(markers) * OVERFLOW_STEP
    p = events["p"].astype(np.int64)
    rows = np.stack(
        [events["x"], events["y"], (p << 7) | (stored >> 16), (stored >> 8) & 0xFF, stored & 0xFF], axis=1
    ).astype(np.uint8)
    marker_row = np.array([0, OVERFLOW_Y, 0, 0, 0], dtype=np.uint8)
    rows = np.insert(rows, np.repeat(np.arange(t.size), markers), marker_row, axis=0)
    atomic_write_bytes(path, rows.tobytes())
