r"""Dense representations of event arrays beyond :func:`~spikeforge.events.to_frames` (binning by time):

* :func:`to_count_frames`: frames of a fixed number of events each, or a fixed number of frames splitting the
  events evenly (Tonic's ``ToFrame(event_count=...)`` / ``ToFrame(n_event_bins=...)``).
* :func:`time_surfaces`: exponentially decaying time surfaces (Lagorce et al. 2017, "HOTS: a hierarchy of
  event-based time-surfaces for pattern recognition", IEEE TPAMI 39(7)) over the whole sensor, sampled every
  ``dt`` (Tonic's ``ToTimesurface``).

Both return time-major ``[n, P, H, W]`` tensors and refuse results over ``max_elements`` before allocating.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from spikeforge.events.stream import MAX_ELEMENTS
from spikeforge.events.stream import check_dense_size
from spikeforge.events.stream import check_events
from spikeforge.events.stream import check_origin

__all__ = ["to_count_frames", "time_surfaces"]


def _positive(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _flat(events: np.ndarray, sensor_size: tuple[int, int, int]) -> np.ndarray:
    w, h = int(sensor_size[0]), int(sensor_size[1])
    p = events["p"].astype(np.int64)
    return (p * h + events["y"].astype(np.int64)) * w + events["x"].astype(np.int64)


def to_count_frames(
    events: np.ndarray,
    sensor_size: tuple[int, int, int],
    *,
    event_count: int | None = None,
    n_event_bins: int | None = None,
    overlap: int = 0,
    include_incomplete: bool = False,
    dtype: torch.dtype = torch.float32,
    max_elements: int = MAX_ELEMENTS,
) -> Tensor:
    """Frames of event counts ``[n, P, H, W]`` sliced by event count. Give exactly one of the two options.

    Args:
        event_count: ``N`` events per frame; frame ``k`` holds events ``[k s, k s + N)`` with stride
            ``s = N - overlap``. Only full frames unless ``include_incomplete``, which adds the frames that
            start before the end and hold events no earlier frame holds. 0 frames for fewer than ``N``
            events (Tonic then returns one partial frame), or no events at all (Tonic: one empty frame).
        n_event_bins: ``n`` frames; event ``i`` of ``E`` goes to frame ``(i n) // E`` (every event lands in
            exactly one frame; Tonic gives each frame ``E // n`` events and drops the remaining ones).
        overlap: events shared by consecutive frames (``event_count`` only), ``0 <= overlap < N``.
    """
    if (event_count is None) == (n_event_bins is None):
        raise ValueError("give exactly one of event_count or n_event_bins")
    check_events(events, sensor_size)
    w, h, npol = (int(v) for v in sensor_size)
    n_ev = events.size
    flat = _flat(events, sensor_size)
    per_frame = npol * h * w
    if n_event_bins is not None:
        n = _positive(n_event_bins, "n_event_bins")
        if overlap:
            raise ValueError("overlap applies to event_count only; pass overlap=0 with n_event_bins")
        check_dense_size(n, per_frame, max_elements, "n_event_bins", "use fewer bins")
        frame = (np.arange(n_ev, dtype=np.int64) * n) // max(n_ev, 1)
        counts = np.bincount(frame * per_frame + flat, minlength=n * per_frame)
        return torch.from_numpy(counts).to(dtype).reshape(n, npol, h, w)
    count = _positive(event_count, "event_count")
    if isinstance(overlap, bool) or not isinstance(overlap, (int, np.integer)) or not 0 <= overlap < count:
        raise ValueError(f"overlap must be an int in [0, event_count={count}), got {overlap!r}")
    stride = count - int(overlap)
    if n_ev >= count:
        n = (n_ev - count) // stride + 1
        if include_incomplete and (n_ev - count) % stride:
            n += 1
    else:
        n = 1 if include_incomplete and n_ev else 0
    check_dense_size(n, per_frame, max_elements, f"the number of frames ({n_ev} events / event_count={count})",
                     "use a larger event_count")  # fmt: skip
    # event i lies in frames k = i // stride - j for j = 0, 1, ... while k >= 0 and i < k * stride + count
    i = np.arange(n_ev, dtype=np.int64)
    counts = np.zeros(n * per_frame, dtype=np.int64)
    for j in range(-(-count // stride)):
        k = i // stride - j
        ok = (k >= 0) & (k < n) & (i < k * stride + count)
        counts += np.bincount(k[ok] * per_frame + flat[ok], minlength=n * per_frame)
    return torch.from_numpy(counts).to(dtype).reshape(n, npol, h, w)


def time_surfaces(
    events: np.ndarray,
    sensor_size: tuple[int, int, int],
    *,
    dt: int,
    tau: float,
    start: int | None = None,
    n_frames: int | None = None,
    dtype: torch.dtype = torch.float32,
    max_elements: int = MAX_ELEMENTS,
) -> Tensor:
    """Time surfaces ``[n, P, H, W]``: surface ``k`` at time ``T_k = start + (k + 1) dt`` is
    ``exp(-(T_k - t_last) / tau)`` where ``t_last`` is the latest event of that ``(p, y, x)`` with ``t < T_k``,
    and 0 where there is none.

    Args:
        dt: sampling interval in microseconds (> 0).
        tau: decay time constant in microseconds (> 0, finite).
        start: default the first event's time (0 if there are none).
        n_frames: default just enough surfaces for the last event to count (0 for no events).

    Tonic's ``ToTimesurface(dt, tau)`` computes the same surfaces (same ``start``, same ``t < T_k`` windows) but
    only for complete windows: one surface fewer than the default here (``include_incomplete=True``: the same
    count unless the last event lies exactly on a window boundary, which Tonic then drops).
    """
    check_events(events, sensor_size)
    w, h, npol = (int(v) for v in sensor_size)
    dt = _positive(dt, "dt")
    if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not math.isfinite(tau) or tau <= 0:
        raise ValueError(f"tau must be a positive finite number of microseconds, got {tau!r}")
    t = events["t"]
    start = check_origin(t, int(t[0]) if t.size and start is None else (start or 0), "start")
    frame = (t - start) // dt
    if n_frames is None:
        n = int(frame[-1]) + 1 if t.size else 0
        check_dense_size(n, npol * h * w, max_elements, f"the number of surfaces (last event t={int(t[-1]) if t.size else 0}, start={start}, dt={dt})",
                         "pass n_frames, drop late events or use a larger dt")  # fmt: skip
    else:
        n = _positive(n_frames, "n_frames")
        check_dense_size(n, npol * h * w, max_elements, "n_frames", "use fewer surfaces")
    per_frame = npol * h * w
    last = np.full((max(n, 1), per_frame), -np.inf)
    inside = frame < n
    np.maximum.at(last, (frame[inside], _flat(events[inside], sensor_size)), t[inside].astype(np.float64))
    last = np.maximum.accumulate(last, axis=0)[:n]
    times = start + (np.arange(1, n + 1, dtype=np.float64) * dt)[:, None]
    surf = np.exp(-(times - last) / float(tau))  # exp(-inf) = 0 where nothing fired yet
    return torch.from_numpy(surf).to(dtype).reshape(n, npol, h, w)
