"""What every event-file reader shares: opening a file safely under a size cap, and turning decoded columns
into a checked event array (timestamps ascending, coordinates inside the sensor) with one-line errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from spikeforge._core.files import open_regular
from spikeforge.events.stream import EVENT_DTYPE

__all__ = ["MAX_FILE_BYTES", "MAX_EVENTS", "FormatError", "read_capped", "finish_events", "check_cap"]

MAX_FILE_BYTES = 4 * 2**30
"""Default largest file (4 GiB) a reader loads; a bigger one raises before anything is allocated."""

MAX_EVENTS = 2**28
"""Default largest number of events (268M, 4 GiB as :data:`EVENT_DTYPE`) a reader builds."""


class FormatError(ValueError):
    """A file is not valid in the format it is read as (wrong magic or header, truncated, out of range)."""


def check_cap(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def read_capped(path: str | os.PathLike[str], max_bytes: int, what: str) -> bytes:
    """The whole file as bytes, refusing a non-regular file and, before reading, one over ``max_bytes``."""
    max_bytes = check_cap(max_bytes, "max_bytes")
    with open_regular(path, f"{path} is not a regular file; pass the path of a {what} file") as f:
        size = os.fstat(f.fileno()).st_size
        if size > max_bytes:
            raise FormatError(
                f"{path} is {size} bytes, more than max_bytes={max_bytes}; pass a larger max_bytes to read it"
            )
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:  # the file grew while being read
        raise FormatError(f"{path} grew past max_bytes={max_bytes} while being read; pass a larger max_bytes")
    return data


def _sensor_from(columns: dict[str, np.ndarray], sensor_size: tuple[int, int, int] | None, where: str):
    x, y = columns["x"], columns["y"]
    if sensor_size is None:
        w = int(x.max()) + 1 if x.size else 1
        h = int(y.max()) + 1 if y.size else 1
        return (w, h, 2)
    if not isinstance(sensor_size, (tuple, list)) or len(sensor_size) != 3:
        raise ValueError(f"sensor_size must be a tuple (W, H, P), got {sensor_size!r}")
    for name, v in zip(("W", "H", "P"), sensor_size):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < 1:
            raise ValueError(f"sensor_size {name} must be a positive int, got {v!r}")
    for name, col, size in (("x", x, int(sensor_size[0])), ("y", y, int(sensor_size[1]))):
        if col.size and int(col.max()) >= size:
            i = int(np.argmax(col >= size))
            raise FormatError(
                f"{where}: event {i} has {name}={int(col[i])} outside the sensor ({'W' if name == 'x' else 'H'}="
                f"{size}); the file is corrupt or sensor_size is wrong (pass the right sensor_size)"
            )
    if int(sensor_size[2]) < 2:
        raise ValueError(f"sensor_size P must be 2 for ON/OFF events, got {sensor_size[2]}")
    return (int(sensor_size[0]), int(sensor_size[1]), int(sensor_size[2]))


def finish_events(
    columns: dict[str, np.ndarray],
    sensor_size: tuple[int, int, int] | None,
    where: str,
    *,
    sort: bool = False,
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Build an :data:`EVENT_DTYPE` array from decoded ``x``, ``y``, ``t`` (int64 microseconds), ``p`` columns.

    ``sensor_size=None`` takes it from the data (``(max x + 1, max y + 1, 2)``); otherwise coordinates outside it
    raise. Timestamps going backwards raise (naming the event) unless ``sort`` is True, which sorts them stably.
    """
    t = np.asarray(columns["t"], dtype=np.int64)
    if t.size and int(t.min()) < 0:
        i = int(np.argmax(t < 0))
        raise FormatError(f"{where}: event {i} has a negative timestamp t={int(t[i])}; the file is corrupt")
    for name in ("x", "y"):
        col = columns[name]
        if col.size and int(col.min()) < 0:
            raise FormatError(f"{where}: negative {name} coordinate {int(col.min())}; the file is corrupt")
    sensor = _sensor_from(columns, sensor_size, where)
    if sensor[0] > np.iinfo(np.int16).max or sensor[1] > np.iinfo(np.int16).max:
        raise FormatError(f"{where}: sensor {sensor[0]}x{sensor[1]} is larger than int16 coordinates allow")
    ev = np.empty(t.size, dtype=EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"] = columns["x"], columns["y"], t
    ev["p"] = np.asarray(columns["p"]) != 0
    back = t[1:] < t[:-1]
    if back.any():
        if not sort:
            i = int(np.argmax(back)) + 1
            raise FormatError(
                f"{where}: timestamps go backwards at event {i} (t={int(t[i])} after t={int(t[i - 1])}); "
                "pass sort=True to sort the events by time"
            )
        ev = ev[np.argsort(t, kind="stable")]
    return ev, sensor


def suffix(path: str | os.PathLike[str]) -> str:
    return Path(path).suffix.lower()
