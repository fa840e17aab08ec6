r"""Transforms on event arrays (``(x, y, t, p)``, :data:`~spikeforge.events.EVENT_DTYPE` or Tonic's layout): pure
numpy functions, no state, the input never modified. Each validates ``events`` against ``sensor_size = (W, H, P)``.

* :func:`crop` / :func:`center_crop`: keep the events inside a box, coordinates relative to it.
* :func:`downsample`: integer spatial pooling, ``x // fx``, ``y // fy`` (every event kept).
* :func:`denoise`: the background-activity filter (Delbruck 2008, "Frame-free dynamic digital vision"): keep an
  event only if a neighbouring pixel had an event less than ``filter_time`` before it.
* :func:`refractory`: drop an event whose pixel had an event at most ``refractory_time`` before it.

Dense representations (frames by event count, time surfaces) are in
:mod:`~spikeforge.events.transforms_frames`. Differences from Tonic's transforms of the same names are listed
in each docstring (the tests check agreement where the semantics match).
"""

from __future__ import annotations

import numpy as np

from spikeforge.events.stream import check_events

__all__ = ["crop", "center_crop", "downsample", "denoise", "refractory"]


def _nonneg_int(value: object, name: str, *, positive: bool = False) -> int:
    low = 1 if positive else 0
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < low:
        raise ValueError(f"{name} must be an int >= {low} (microseconds or pixels), got {value!r}")
    return int(value)


def _pair(value: object, name: str) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair (x, y), got {value!r}")
        return _nonneg_int(value[0], name, positive=True), _nonneg_int(value[1], name, positive=True)
    v = _nonneg_int(value, name, positive=True)
    return v, v


def crop(
    events: np.ndarray, sensor_size: tuple[int, int, int], box: tuple[int, int, int, int]
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Keep events with ``x0 <= x < x0 + width`` and ``y0 <= y < y0 + height``; shift them to the box's corner.

    Args:
        box: ``(x0, y0, width, height)``, inside the sensor.
    Returns:
        ``(events, (width, height, P))``; same dtype as the input, time order kept.
    """
    check_events(events, sensor_size)
    if not isinstance(box, (tuple, list)) or len(box) != 4:
        raise ValueError(f"box must be (x0, y0, width, height), got {box!r}")
    x0, y0 = _nonneg_int(box[0], "box x0"), _nonneg_int(box[1], "box y0")
    w, h = _nonneg_int(box[2], "box width", positive=True), _nonneg_int(box[3], "box height", positive=True)
    if x0 + w > sensor_size[0] or y0 + h > sensor_size[1]:
        raise ValueError(
            f"box {tuple(box)} reaches past the sensor {sensor_size[0]}x{sensor_size[1]}; shrink it or move x0/y0"
        )
    x, y = events["x"].astype(np.int64), events["y"].astype(np.int64)
    out = events[(x >= x0) & (x < x0 + w) & (y >= y0) & (y < y0 + h)].copy()
    out["x"] -= x0
    out["y"] -= y0
    return out, (w, h, int(sensor_size[2]))


def center_crop(
    events: np.ndarray, sensor_size: tuple[int, int, int], size: int | tuple[int, int]
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """:func:`crop` to a ``size = (width, height)`` box (an int: square) at the sensor's centre, its corner at
    ``((W - width) // 2, (H - height) // 2)`` (Tonic's ``CenterCrop`` offsets)."""
    w, h = _pair(size, "size")
    if w > sensor_size[0] or h > sensor_size[1]:
        raise ValueError(f"crop size {(w, h)} is larger than the sensor {sensor_size[0]}x{sensor_size[1]}")
    return crop(events, sensor_size, ((sensor_size[0] - w) // 2, (sensor_size[1] - h) // 2, w, h))


def downsample(
    events: np.ndarray, sensor_size: tuple[int, int, int], factor: int | tuple[int, int]
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Spatial downsampling by integer factors: ``x // fx``, ``y // fy``; no event is dropped (counts add up
    when the events are binned). The new sensor is ``(ceil(W / fx), ceil(H / fy), P)``.

    Tonic's ``Downsample(spatial_factor=1 / f)`` multiplies by a float and truncates on assignment, which equals
    ``x // f`` when ``1 / f`` is exact in binary (``f`` a power of two); for other ``f`` rounding can differ.
    """
    check_events(events, sensor_size)
    fx, fy = _pair(factor, "factor")
    out = events.copy()
    out["x"] = events["x"] // fx
    out["y"] = events["y"] // fy
    return out, (-(-sensor_size[0] // fx), -(-sensor_size[1] // fy), int(sensor_size[2]))


def _pixels(events: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y = events["x"].astype(np.int64), events["y"].astype(np.int64)
    return x, y, y * width + x


def denoise(
    events: np.ndarray, sensor_size: tuple[int, int, int], filter_time: int, *, neighbours: int = 8
) -> np.ndarray:
    """Background-activity filter: keep event ``i`` if an *earlier* event (in array order) at one of the pixel's
    ``neighbours`` (4: left, right, up, down; 8: also the diagonals; never the pixel itself, any polarity)
    happened less than ``filter_time`` microseconds before it (``t_i - t_j < filter_time``).

    With ``neighbours=4`` this is Tonic's ``Denoise`` except that Tonic starts every pixel's memory as if it had
    fired at ``t = 0``, so Tonic keeps every event with ``t < filter_time``; here nothing is kept without support.
    """
    check_events(events, sensor_size)
    w, h = int(sensor_size[0]), int(sensor_size[1])
    filter_time = _nonneg_int(filter_time, "filter_time", positive=True)
    if neighbours not in (4, 8):
        raise ValueError(f"neighbours must be 4 or 8, got {neighbours!r}")
    n = events.size
    if n == 0:
        return events.copy()
    x, y, pix = _pixels(events, w)
    idx = np.arange(n, dtype=np.int64)
    order = np.lexsort((idx, pix))
    keys = pix[order] * n + idx[order]  # sorted: by pixel, then position in the stream
    t = events["t"]
    t_sorted = t[order]
    keep = np.zeros(n, dtype=bool)
    offsets = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    if neighbours == 8:
        offsets += [(-1, -1), (1, -1), (-1, 1), (1, 1)]
    for dx, dy in offsets:
        nx, ny = x + dx, y + dy
        inside = (nx >= 0) & (nx < w) & (ny >= 0) & (ny < h)
        q = ny * w + nx
        # the neighbour's last event before event i: the largest key below (q, i)
        pos = np.searchsorted(keys, q * n + idx) - 1
        found = inside & (pos >= 0)
        found &= keys[np.maximum(pos, 0)] // n == q
        keep |= found & (t - t_sorted[np.maximum(pos, 0)] < filter_time)
    return events[keep]


def refractory(events: np.ndarray, sensor_size: tuple[int, int, int], refractory_time: int) -> np.ndarray:
    """Drop event ``i`` if its pixel (any polarity) had an event ``j`` (kept or dropped) with
    ``t_i - t_j <= refractory_time``; a pixel's first event is always kept.

    This is Tonic's ``RefractoryPeriod`` rule (``time since the pixel's previous event > refractory_time``),
    except that Tonic's memory starts at ``-refractory_time``, so Tonic drops a pixel's first event at ``t = 0``.
    """
    check_events(events, sensor_size)
    w = int(sensor_size[0])
    refractory_time = _nonneg_int(refractory_time, "refractory_time")
    n = events.size
    if n == 0:
        return events.copy()
    _, _, pix = _pixels(events, w)
    order = np.lexsort((np.arange(n), pix))
    t = events["t"][order]
    same = np.zeros(n, dtype=bool)
    same[1:] = pix[order][1:] == pix[order][:-1]
    gap = np.zeros(n, dtype=np.int64)
    gap[1:] = t[1:] - t[:-1]
    keep = np.empty(n, dtype=bool)
    keep[order] = ~same | (gap > refractory_time)
    return events[keep]
