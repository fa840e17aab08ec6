r"""Event streams: structured numpy arrays ``(x, y, t, p)`` and their conversion to dense spike tensors.

The layout follows the convention of Tonic's structured event arrays, so arrays made by Tonic (or by
an event camera driver that writes the same fields) can be passed directly; this module does not
import Tonic. An event ``(x, y, t, p)`` is a change at pixel column ``x``, row ``y``, time ``t``
(integer **microseconds**) with polarity ``p`` (bool, or an integer in ``[0, P)``).

``sensor_size = (W, H, P)`` (width, height, polarities), as in Tonic. Dense tensors are time-major
``[T, P, H, W]``: event ``e`` falls into time step ``floor((t_e - t0) / dt)``, channel ``p``, row ``y``,
column ``x``.

* :func:`make_events` builds a validated array, :func:`check_events` validates one.
* :func:`events_to_dense` / :func:`dense_to_events` convert at a fixed step ``dt`` (a round trip
  dense -> events -> dense is exact; events -> dense -> events keeps every event and moves its time
  stamp to the start of its step).
* :func:`to_frames` bins by a time window or into a number of equal bins (event counts per pixel).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "EVENT_DTYPE", "MAX_ELEMENTS", "make_events", "check_events", "events_to_dense", "dense_to_events", "to_frames",
    "check_dense_size", "check_origin",
]  # fmt: skip

EVENT_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.bool_)])
"""Default dtype of event arrays made here; any integer ``x``/``y``, ``int64`` ``t`` and bool or integer
``p`` are accepted on input."""

_FIELDS = ("x", "y", "t", "p")


def _check_sensor(sensor_size: object) -> tuple[int, int, int]:
    if not isinstance(sensor_size, (tuple, list)) or len(sensor_size) != 3:
        raise ValueError(f"sensor_size must be a tuple (W, H, P), got {sensor_size!r}")
    out = []
    for name, v in zip(("W", "H", "P"), sensor_size):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < 1:
            raise ValueError(f"sensor_size {name} must be a positive int, got {v!r}")
        out.append(int(v))
    return out[0], out[1], out[2]


def check_events(events: object, sensor_size: tuple[int, int, int]) -> np.ndarray:
    """Validate a structured event array and return it unchanged.

    Raises:
        TypeError: not a 1-D structured numpy array with integer ``x``, ``y``, ``int64`` ``t`` and bool
            or integer ``p``.
        ValueError: timestamps not sorted ascending, negative timestamps or coordinates, coordinates or
            polarities outside ``sensor_size``.
    """
    w, h, npol = _check_sensor(sensor_size)
    if not isinstance(events, np.ndarray) or events.dtype.names is None:
        raise TypeError(
            f"events must be a structured numpy array with fields {_FIELDS}, got {type(events).__name__}; "
            "build one with spikeforge.events.make_events(x, y, t, p)"
        )
    missing = [f for f in _FIELDS if f not in events.dtype.names]
    if missing:
        raise TypeError(f"events lacks the fields {missing}; it needs {_FIELDS} (Tonic's layout)")
    if events.ndim != 1:
        raise ValueError(f"events must be 1-D, got shape {events.shape}; flatten it with events.ravel()")
    for f in ("x", "y"):
        if events.dtype[f].kind not in "iu":
            raise TypeError(f"events field {f!r} must be an integer dtype, got {events.dtype[f]}; cast with astype")
    if events.dtype["t"] != np.int64:
        raise TypeError(
            f"events field 't' must be int64 microseconds, got {events.dtype['t']}; "
            "convert seconds with (t_seconds * 1e6).round().astype(np.int64)"
        )
    if events.dtype["p"].kind not in "biu":
        raise TypeError(f"events field 'p' must be bool or integer, got {events.dtype['p']}")
    if events.size == 0:
        return events
    t = events["t"]
    if np.any(t[1:] < t[:-1]):
        first = int(np.argmax(t[1:] < t[:-1])) + 1
        raise ValueError(
            f"event timestamps must be sorted ascending; event {first} has t={int(t[first])} after "
            f"t={int(t[first - 1])}; sort with events[np.argsort(events['t'], kind='stable')]"
        )
    if t[0] < 0:
        raise ValueError(f"event timestamps must be >= 0 microseconds, got {int(t[0])}")
    for f, size in (("x", w), ("y", h), ("p", npol)):
        v = events[f].astype(np.int64)
        if np.any(v < 0):
            raise ValueError(f"events field {f!r} has negative values (min {int(v.min())}); coordinates start at 0")
        if np.any(v >= size):
            raise ValueError(
                f"events field {f!r} has values up to {int(v.max())} but sensor_size allows < {size}; "
                "check sensor_size=(W, H, P) or crop the events"
            )
    return events


def make_events(
    x: np.ndarray, y: np.ndarray, t: np.ndarray, p: np.ndarray, *, sensor_size: tuple[int, int, int]
) -> np.ndarray:
    """Build and validate an event array of dtype :data:`EVENT_DTYPE` from four 1-D arrays.

    ``t`` must be integer microseconds (it is not rounded); ``p`` is cast to bool when ``P <= 2``.
    """
    _, _, npol = _check_sensor(sensor_size)
    cols = [np.asarray(a) for a in (x, y, t, p)]
    n = cols[0].shape[0] if cols[0].ndim == 1 else -1
    if any(c.ndim != 1 or c.shape[0] != n for c in cols):
        raise ValueError(f"x, y, t, p must be 1-D arrays of equal length, got shapes {[c.shape for c in cols]}")
    if cols[2].size and cols[2].dtype.kind not in "iu":
        raise TypeError(f"t must be integer microseconds, got dtype {cols[2].dtype}; round and cast it first")
    dtype = EVENT_DTYPE if npol <= 2 else np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int16)])
    if max(sensor_size[0], sensor_size[1]) > np.iinfo(np.int16).max:
        dtype = np.dtype([("x", np.int32), ("y", np.int32), ("t", np.int64), (dtype.descr[3][0], dtype["p"])])
    for name, c, size in zip(("x", "y", "p"), (cols[0], cols[1], cols[3]), sensor_size):
        if c.size and np.any(c.astype(np.int64) < 0):
            raise ValueError(f"{name} has negative values; coordinates and polarities start at 0")
        if c.size and np.any(c.astype(np.int64) >= size):
            raise ValueError(f"{name} has values up to {int(c.max())} but sensor_size allows < {size}")
    ev = np.empty(n, dtype=dtype)
    ev["x"], ev["y"], ev["t"] = cols[0], cols[1], cols[2].astype(np.int64)
    ev["p"] = cols[3].astype(dtype["p"]) if npol > 2 else cols[3].astype(np.int64) != 0
    return check_events(ev, sensor_size)


def _check_dt(dt: object) -> int:
    if isinstance(dt, bool) or not isinstance(dt, (int, np.integer)) or int(dt) < 1:
        raise ValueError(f"dt must be a positive int number of microseconds, got {dt!r}")
    return int(dt)


MAX_ELEMENTS = 2**32
"""Default ``max_elements`` of :func:`events_to_dense` and :func:`to_frames`: the largest dense result they
build (2**32 entries: 16 GiB in float32, plus an int64 count buffer twice that size while binning)."""


def check_origin(t: np.ndarray, origin: object, name: str) -> int:
    """``origin`` (``t0`` / ``start``) as an int at or before the first event, with every ``t - origin``
    representable in int64 (so the binning arithmetic cannot overflow)."""
    if isinstance(origin, bool) or not isinstance(origin, (int, np.integer)):
        raise TypeError(f"{name} must be an int number of microseconds, got {origin!r}")
    origin = int(origin)
    if t.size and int(t[0]) < origin:
        raise ValueError(f"events start at t={int(t[0])} before {name}={origin}; pass a smaller {name}")
    if (t.size and int(t[-1]) - origin > np.iinfo(np.int64).max) or origin < np.iinfo(np.int64).min:
        raise ValueError(f"{name}={origin} is too far before the last event (t={int(t[-1])}); pass {name} >= 0")
    return origin


def check_dense_size(steps: int, per_step: int, max_elements: int, steps_name: str, fix: str) -> None:
    """Raise (naming ``steps_name`` and the fix) when ``steps x per_step`` entries exceed ``max_elements``:
    an inferred step count from one stray late time stamp must fail with a message, not a petabyte
    allocation."""
    if isinstance(max_elements, bool) or not isinstance(max_elements, int) or max_elements < 1:
        raise ValueError(f"max_elements must be a positive int, got {max_elements!r}")
    total = steps * per_step
    if total > max_elements:
        raise ValueError(
            f"{steps_name} = {steps} steps x {per_step} entries per step = {total} entries, more than "
            f"max_elements = {max_elements} ({total * 4 / 2**30:.3g} GiB in float32); {fix}, or raise max_elements"
        )


def events_to_dense(
    events: np.ndarray,
    sensor_size: tuple[int, int, int],
    dt: int,
    *,
    num_steps: int | None = None,
    t0: int = 0,
    binary: bool = False,
    dtype: torch.dtype = torch.float32,
    max_elements: int = MAX_ELEMENTS,
) -> Tensor:
    """Events to a dense time-major tensor ``[T, P, H, W]``.

    Args:
        events: validated event array (see :func:`check_events`).
        sensor_size: ``(W, H, P)``.
        dt: step length in microseconds (> 0); event ``e`` goes to step ``(t_e - t0) // dt``.
        num_steps: ``T``; default: just enough steps for the last event. Events at or past
            ``t0 + num_steps * dt`` raise (shorten the stream or raise ``num_steps``).
        t0: start time in microseconds; events before ``t0`` raise.
        binary: False (default): each entry counts the events in its bin; True: 1 if any.
        dtype: floating dtype of the result.
        max_elements: the largest ``T * P * H * W`` built (default :data:`MAX_ELEMENTS`); beyond it (e.g.
            one stray time stamp far in the future inflating the inferred ``T``) raise, naming ``T``.
    Returns:
        ``[T, P, H, W]`` tensor of event counts (or 0/1).
    """
    w, h, npol = _check_sensor(sensor_size)
    check_events(events, sensor_size)
    dt = _check_dt(dt)
    t0 = check_origin(events["t"], t0, "t0")
    steps = (events["t"] - t0) // dt
    inferred = num_steps is None
    if num_steps is None:
        if events.size == 0:
            raise ValueError("cannot infer num_steps from an empty event array; pass num_steps")
        num_steps = int(steps[-1]) + 1
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps must be a positive int, got {num_steps!r}")
    last = f" from the last event at t={int(events['t'][-1])} with t0={t0}, dt={dt}" if inferred else ""
    check_dense_size(
        num_steps,
        npol * h * w,
        max_elements,
        f"num_steps{' (inferred' + last + ')' if inferred else ''}",
        "pass num_steps explicitly and drop late events (events[events['t'] < t_end]), use a larger dt, or "
        "set t0 nearer the first event",
    )
    if events.size and int(steps[-1]) >= num_steps:
        raise ValueError(
            f"the last event (t={int(events['t'][-1])}) falls in step {int(steps[-1])} >= num_steps={num_steps}; "
            "raise num_steps or drop late events"
        )
    flat = ((steps * npol + events["p"].astype(np.int64)) * h + events["y"].astype(np.int64)) * w + events["x"].astype(
        np.int64
    )
    counts = np.bincount(flat, minlength=num_steps * npol * h * w)
    out = torch.from_numpy(counts).to(dtype).reshape(num_steps, npol, h, w)
    return (out > 0).to(dtype) if binary else out


def dense_to_events(spikes: Tensor, dt: int, *, t0: int = 0) -> np.ndarray:
    """Dense ``[T, P, H, W]`` spikes (or non-negative integer counts) to an event array.

    Entry ``[k, p, y, x] = n`` becomes ``n`` events at ``t = t0 + k * dt``; events are sorted by time,
    then channel, row, column. ``sensor_size`` of the result is ``(W, H, P)``.
    """
    dt = _check_dt(dt)
    if not isinstance(spikes, Tensor) or spikes.dim() != 4:
        got = tuple(spikes.shape) if isinstance(spikes, Tensor) else type(spikes).__name__
        raise ValueError(f"spikes must be a [T, P, H, W] tensor, got {got}; add missing dims with unsqueeze")
    s = spikes.detach().cpu()
    if s.is_floating_point() and not bool(torch.isfinite(s).all()):
        raise ValueError("spikes contains NaN or inf")
    if bool((s < 0).any()) or bool((s != s.round()).any()):
        raise ValueError("spikes must hold non-negative integer counts (e.g. 0/1 spikes)")
    _, npol, h, w = s.shape
    counts = s.to(torch.int64).reshape(-1).numpy()
    flat = np.repeat(np.nonzero(counts)[0], counts[counts > 0])
    x = flat % w
    y = (flat // w) % h
    p = (flat // (w * h)) % npol
    k = flat // (w * h * npol)
    return make_events(x, y, t0 + k * dt, p, sensor_size=(w, h, npol))


def to_frames(
    events: np.ndarray,
    sensor_size: tuple[int, int, int],
    *,
    time_window: int | None = None,
    n_bins: int | None = None,
    start: int | None = None,
    dtype: torch.dtype = torch.float32,
    max_elements: int = MAX_ELEMENTS,
) -> Tensor:
    """Bin events into frames of event counts ``[n, P, H, W]``. Give exactly one of the two options.

    Args:
        time_window: frame length in microseconds: frame ``k`` holds ``start + k w <= t < start + (k+1) w``;
            as many frames as needed to hold the last event (0 frames for no events).
        n_bins: split ``[start, t_last]`` into ``n_bins`` frames of equal length
            ``(t_last - start + 1) / n_bins`` (so the last event lands in the last frame).
        start: first frame's start time (default: the first event's time stamp; 0 if empty).
        max_elements: the largest ``n * P * H * W`` built (default :data:`MAX_ELEMENTS`); beyond it raise,
            naming the inferred number of frames. The binning is exact for any int64 time stamps.
    """
    if (time_window is None) == (n_bins is None):
        raise ValueError("give exactly one of time_window (microseconds) or n_bins")
    w, h, npol = _check_sensor(sensor_size)
    check_events(events, sensor_size)
    t = events["t"]
    start = check_origin(t, int(t[0]) if t.size and start is None else (start or 0), "start")
    if time_window is not None:
        window = _check_dt(time_window)
        idx = (t - start) // window
        n = int(idx[-1]) + 1 if t.size else 0
        last = f"inferred from the last event at t={int(t[-1])}, " if t.size else ""
        check_dense_size(
            n,
            npol * h * w,
            max_elements,
            f"the number of frames ({last}start={start}, time_window={window})",
            "drop late events (events[events['t'] < t_end]), use a larger time_window or n_bins",
        )
    else:
        if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
            raise ValueError(f"n_bins must be a positive int, got {n_bins!r}")
        n = n_bins
        check_dense_size(n, npol * h * w, max_elements, "n_bins", "use fewer bins")
        span = int(t[-1]) - start + 1 if t.size else 1
        if span * n <= np.iinfo(np.int64).max:
            idx = ((t - start) * n) // span
        else:  # (t - start) * n would overflow int64: exact integer arithmetic in Python ints
            idx = np.array([(int(d) * n) // span for d in (t - start).tolist()], dtype=np.int64)
    flat = ((idx * npol + events["p"].astype(np.int64)) * h + events["y"].astype(np.int64)) * w + events["x"].astype(
        np.int64
    )
    counts = np.bincount(flat.astype(np.int64), minlength=n * npol * h * w)
    return torch.from_numpy(counts).to(dtype).reshape(n, npol, h, w)
