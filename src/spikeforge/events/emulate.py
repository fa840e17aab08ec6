r"""An event-camera (DVS) emulator: frames in, ``(x, y, t, p)`` events out.

The pixel model is the one of ESIM (Rebecq, Gehrig & Scaramuzza, CoRL 2018) and v2e (Hu, Liu, Delbruck,
CVPR-W 2021), as summarised in Gallego et al., "Event-based Vision: A Survey", TPAMI 2022, Sec. 2.1:

* **Log intensity.** Each pixel sees ``L = log(I)`` above ``lin_log_threshold`` and, below it, the tangent
  line of the log at the threshold, ``L = log(th) + (I - th) / th`` (linear near black, as v2e's "lin-log",
  which keeps dark noise from producing huge log changes; continuous with a continuous slope). With
  ``lin_log_threshold=None`` it is ``L = log(I + log_eps)``. ``I`` is in the frames' units (``[0, 1]``
  floats, or uint8 scaled by 1/255).
* **Linear interpolation between frames.** Between frames ``k`` (time ``t_k``) and ``k+1``, ``L`` moves
  linearly in time, so each threshold crossing gets an interpolated time stamp, and a change of several
  thresholds in one frame interval gives several events at their own crossing times.
* **Contrast thresholds with mismatch.** A pixel emits an ON event when ``L - L_ref`` reaches ``+C_on`` and
  an OFF event when it reaches ``-C_off``; ``L_ref`` is the level memorised at the pixel's last event.
  ``C_on`` / ``C_off`` are drawn once per pixel from ``N(pos_threshold, threshold_sigma^2)`` /
  ``N(neg_threshold, threshold_sigma^2)`` (seeded) and clipped below at ``min_threshold``.
* **Reset and refractory period.** Without refractory period the reference steps by exactly one threshold
  per event. With ``refractory_us = R > 0`` the change detector is held in reset for ``R`` after an event
  (Lichtsteiner, Posch & Delbruck, JSSC 2008): ``L_ref`` follows ``L`` until ``t_event + R`` and is
  memorised then, so changes during the refractory period are lost. On a ramp of slope ``s`` starting from
  its reference this gives events at ``C/s + k (R + C/s)``.
* **Leak** (``leak_rate_hz``): ``L_ref`` drifts down by ``leak_rate_hz * C_on`` per second, so a static
  pixel emits ON events at about that rate (v2e's leak events).
* **Shot noise** (``shot_noise_rate_hz``): per pixel and second, Poisson-distributed extra events at uniform
  random times in each interval, ON or OFF with probability 1/2; they do not move the pixel's reference.

Every random draw comes from ``numpy.random.default_rng`` seeded with ``(seed, ...)`` (thresholds:
``(seed, 0)``; noise of interval ``k``: ``(seed, 1, k)``), so a fixed seed gives bit-identical events.
Time stamps are integer microseconds, ``floor`` of the crossing time; the output is sorted by time (events in
the same microsecond in a fixed order: by their rank among their pixel's crossings in the frame interval, then
by pixel index, then shot noise), so each pixel's time stamps are non-decreasing.

Use :func:`emulate_frames` for a whole sequence, or :func:`emulator_init` / :func:`emulator_step` (pure
functions on an :class:`EmulatorState`) to stream frames one at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from spikeforge.events.stream import EVENT_DTYPE

__all__ = [
    "EmulatorParams", "EmulatorState", "log_intensity", "sensor_thresholds", "emulator_init", "emulator_step",
    "emulate_frames", "as_frames",
]  # fmt: skip


def _num(name: str, v: object, *, low: float = 0.0, strict: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"EmulatorParams.{name} must be a finite number, got {v!r}")
    if v < low or (strict and v == low):
        raise ValueError(f"EmulatorParams.{name} must be {'>' if strict else '>='} {low}, got {v!r}")
    return float(v)


@dataclass(frozen=True)
class EmulatorParams:
    """The pixel model's constants (defaults: v2e's nominal thresholds, an ideal noise-free sensor).

    Attributes:
        pos_threshold: mean ON contrast threshold ``C_on`` (log units).
        neg_threshold: mean OFF contrast threshold ``C_off`` (log units).
        threshold_sigma: standard deviation of the per-pixel threshold mismatch (log units).
        min_threshold: thresholds drawn below this are clipped to it (> 0).
        refractory_us: refractory period ``R`` in microseconds (0: none).
        leak_rate_hz: leak-event rate of a static pixel (0: none).
        shot_noise_rate_hz: shot-noise events per pixel and second (0: none).
        lin_log_threshold: intensity below which the response is linear (see the module docstring); ``None``
            uses ``log(I + log_eps)``.
        log_eps: offset of the pure-log response (used only when ``lin_log_threshold`` is ``None``).
    """

    pos_threshold: float = 0.2
    neg_threshold: float = 0.2
    threshold_sigma: float = 0.03
    min_threshold: float = 0.01
    refractory_us: float = 0.0
    leak_rate_hz: float = 0.0
    shot_noise_rate_hz: float = 0.0
    lin_log_threshold: float | None = 20.0 / 255.0
    log_eps: float = 1e-3

    def __post_init__(self) -> None:
        _num("pos_threshold", self.pos_threshold, strict=True)
        _num("neg_threshold", self.neg_threshold, strict=True)
        _num("threshold_sigma", self.threshold_sigma)
        _num("min_threshold", self.min_threshold, strict=True)
        _num("refractory_us", self.refractory_us)
        _num("leak_rate_hz", self.leak_rate_hz)
        _num("shot_noise_rate_hz", self.shot_noise_rate_hz)
        if self.lin_log_threshold is not None:
            _num("lin_log_threshold", self.lin_log_threshold, strict=True)
        else:
            _num("log_eps", self.log_eps, strict=True)


class EmulatorState(NamedTuple):
    """Everything the emulator remembers between frames (arrays are flat, one entry per pixel).

    Attributes:
        log_prev: ``[P]`` float64 log intensity of the last frame.
        t_prev: time of the last frame, microseconds.
        diff: ``[P]`` float64 ``L - L_ref`` at ``t_prev`` (0 for a pixel still held in refractory reset).
        release: ``[P]`` float64 end of each pixel's refractory period (``-inf``: none pending).
        c_on: ``[P]`` float64 ON thresholds.
        c_off: ``[P]`` float64 OFF thresholds.
        shape: the frames' ``(H, W)``.
        seed: seed of the noise draws.
        steps: number of frame intervals processed.
    """

    log_prev: np.ndarray
    t_prev: float
    diff: np.ndarray
    release: np.ndarray
    c_on: np.ndarray
    c_off: np.ndarray
    shape: tuple[int, int]
    seed: int
    steps: int


def as_frames(frames: object) -> np.ndarray:
    """Frames as a float64 numpy array: floats unchanged, unsigned 8-bit and 16-bit integers scaled to ``[0, 1]``."""
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().numpy()
    if not isinstance(frames, np.ndarray):
        raise TypeError(f"frames must be a numpy array or torch tensor, got {type(frames).__name__}")
    if frames.dtype == np.uint8 or frames.dtype == np.uint16:
        return frames.astype(np.float64) / float(np.iinfo(frames.dtype).max)
    if frames.dtype.kind != "f":
        raise TypeError(f"frames must be float (intensity >= 0) or uint8/uint16, got {frames.dtype}")
    out = frames.astype(np.float64, copy=False)
    if not np.all(np.isfinite(out)) or (out.size and float(out.min()) < 0):
        raise ValueError("frames must hold finite intensities >= 0 (no NaN, inf or negative values)")
    return out


def log_intensity(intensity: np.ndarray, params: EmulatorParams) -> np.ndarray:
    """The pixels' log response ``L(I)`` (see the module docstring), float64, same shape."""
    i = np.asarray(intensity, dtype=np.float64)
    th = params.lin_log_threshold
    if th is None:
        return np.log(i + params.log_eps)
    return np.where(i >= th, np.log(np.maximum(i, th)), math.log(th) + (i - th) / th)


def sensor_thresholds(shape: tuple[int, ...], params: EmulatorParams, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel ``(C_on, C_off)`` of shape ``shape``, from ``numpy.random.default_rng((seed, 0))``."""
    rng = np.random.default_rng((_seed(seed), 0))
    on = params.pos_threshold + params.threshold_sigma * rng.standard_normal(shape)
    off = params.neg_threshold + params.threshold_sigma * rng.standard_normal(shape)
    return np.maximum(on, params.min_threshold), np.maximum(off, params.min_threshold)


def _seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or int(seed) < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed)


def emulator_init(
    frame: object,
    t0: float,
    params: EmulatorParams,
    *,
    seed: int = 0,
    thresholds: tuple[np.ndarray, np.ndarray] | None = None,
) -> EmulatorState:
    """The state after the first frame ``[H, W]`` at time ``t0`` (microseconds): every reference set to it.

    ``thresholds``: ``(C_on, C_off)`` arrays of shape ``[H, W]`` to use instead of drawing them (e.g. one sensor's
    mismatch tiled over many samples); default :func:`sensor_thresholds` ``(shape, params, seed)``.
    """
    if not isinstance(params, EmulatorParams):
        raise TypeError(f"params must be an EmulatorParams, got {type(params).__name__}")
    if isinstance(frame, torch.Tensor):
        frame = frame.detach().cpu().numpy()
    f = as_frames(frame)
    if f.ndim != 2:
        raise ValueError(f"a frame must be [H, W], got shape {f.shape}; pass grey frames (average the colours)")
    seed = _seed(seed)
    if thresholds is None:
        c_on, c_off = sensor_thresholds(f.shape, params, seed)
    else:
        c_on, c_off = (np.asarray(c, dtype=np.float64) for c in thresholds)
        if c_on.shape != f.shape or c_off.shape != f.shape or not (np.all(c_on > 0) and np.all(c_off > 0)):
            raise ValueError(f"thresholds must be two arrays of shape {f.shape} with positive entries")
    n = f.size
    h, w = f.shape
    return EmulatorState(
        log_prev=_log_frame(frame, params), t_prev=float(t0), diff=np.zeros(n), release=np.full(n, -np.inf),
        c_on=c_on.ravel().copy(), c_off=c_off.ravel().copy(), shape=(int(h), int(w)), seed=seed, steps=0,
    )  # fmt: skip


def _crossings(
    idx: np.ndarray, s: np.ndarray, d: np.ndarray, b: np.ndarray, c: np.ndarray, t1: float, refractory: float
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Every threshold crossing of the pixels ``idx`` in ``(s, t1]``: ``D(t) = d + b (t - s)`` reaches ``c``
    (signed: ``+C_on`` or ``-C_off``), then restarts from 0 at the event (or at its release after ``R``).

    Returns the events' positions in ``idx`` and float times (one array per round), and per pixel of ``idx``
    the final ``D(t1)``, release time and whether it ends held (release after ``t1``)."""
    ev_pos: list[np.ndarray] = []
    ev_t: list[np.ndarray] = []
    n = idx.size
    final_d = np.zeros(n)
    release = np.full(n, -np.inf)
    held = np.zeros(n, dtype=bool)
    pos = np.arange(n)
    # the caller selected pixels with D(t1) beyond threshold: they fire even if rounding puts the crossing past t1
    tc = np.clip(s + (c - d) / b, s, t1)
    while pos.size:
        ev_pos.append(pos)
        ev_t.append(tc)
        s = tc + refractory if refractory > 0 else tc
        if refractory > 0:
            release[pos] = s
        d_end = b * (t1 - s)
        hold = s > t1
        held[pos[hold]] = True
        again = ~hold & (np.abs(d_end) >= np.abs(c))
        done = ~hold & ~again
        final_d[pos[done]] = d_end[done]
        pos, s, b, c = pos[again], s[again], b[again], c[again]
        tc = s + c / b  # D restarts from 0 at s
    return ev_pos, ev_t, final_d, release, held


def _noise(state: EmulatorState, t1: float, params: EmulatorParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shot-noise events of the interval ``(t_prev, t1]``: pixel indices, float times, ON flags."""
    rng = np.random.default_rng((state.seed, 1, state.steps))
    n_pix = state.log_prev.size
    lam = params.shot_noise_rate_hz * n_pix * (t1 - state.t_prev) * 1e-6
    k = int(rng.poisson(lam))
    return (
        rng.integers(0, n_pix, size=k),
        state.t_prev + (t1 - state.t_prev) * rng.random(k),
        rng.random(k) < 0.5,
    )


def _log_frame(frame: object, params: EmulatorParams, lut: np.ndarray | None = None) -> np.ndarray:
    """``L`` of one frame, flat float64; uint8 frames through a 256-entry table (the same values)."""
    if isinstance(frame, np.ndarray) and frame.dtype == np.uint8:
        table = log_intensity(np.arange(256) / 255.0, params) if lut is None else lut
        return table[frame.ravel()]
    return log_intensity(as_frames(frame), params).ravel()


def emulator_step(
    state: EmulatorState, frame: object, t1: float, params: EmulatorParams, *, lut: np.ndarray | None = None
) -> tuple[np.ndarray, EmulatorState]:
    """Advance to ``frame`` ``[H, W]`` at time ``t1`` (microseconds, after ``state.t_prev``).

    ``lut``: optional precomputed ``log_intensity(arange(256) / 255, params)`` for uint8 frames (a speed-up).

    Returns:
        ``(events, new_state)``: the events of ``(t_prev, t1]`` (dtype :data:`EVENT_DTYPE`, sorted by time) and
        the state at ``t1``. ``state`` is not modified.
    """
    shape = tuple(getattr(frame, "shape", ()))
    if tuple(shape) != state.shape:
        raise ValueError(f"frame shape {shape} differs from the sensor's {state.shape}; resize the frames first")
    t0, t1 = state.t_prev, float(t1)
    if not t1 > t0:
        raise ValueError(f"frame times must increase: got t={t1} after t={t0} (microseconds)")
    log_new = _log_frame(frame, params, lut)
    dt = t1 - t0
    delta = log_new - state.log_prev
    leak = params.leak_rate_hz * 1e-6 * state.c_on if params.leak_rate_hz > 0 else None  # the reference sinks
    refractory = params.refractory_us
    release = state.release
    if refractory > 0:
        held = release > t1
        fresh = (release > t0) & ~held
        s = np.where(fresh, release, t0)
        d = np.where(fresh, 0.0, state.diff)
        b = delta / dt if leak is None else delta / dt + leak
        d_end = d + b * (t1 - s)
        cand = ~held & ((d_end >= state.c_on) | (d_end <= -state.c_off))
        d_end[held] = 0.0
    else:
        d_end = state.diff + delta if leak is None else state.diff + delta + leak * dt
        cand = (d_end >= state.c_on) | (d_end <= -state.c_off)
    idx = np.flatnonzero(cand)
    up = d_end[idx] > 0
    c = np.where(up, state.c_on[idx], -state.c_off[idx])
    if refractory > 0:
        s_i, d_i, b_i = s[idx], d[idx], b[idx]
    else:
        s_i, d_i = np.full(idx.size, t0), state.diff[idx]
        b_i = delta[idx] / dt if leak is None else delta[idx] / dt + leak[idx]
    ev_pos, ev_t, final_d, rel, held_i = _crossings(idx, s_i, d_i, b_i, c, t1, refractory)
    d_end[idx] = np.where(held_i, 0.0, final_d)
    if refractory > 0:
        release = release.copy()
        release[idx] = rel
    pos = np.concatenate([*ev_pos, np.empty(0, dtype=np.int64)]).astype(np.int64)
    all_idx, all_t, all_p = idx[pos], np.concatenate([*ev_t, np.empty(0)]), up[pos]
    if params.shot_noise_rate_hz > 0:
        n_idx, n_t, n_p = _noise(state, t1, params)
        all_idx, all_t, all_p = (
            np.concatenate([all_idx, n_idx]),
            np.concatenate([all_t, n_t]),
            np.concatenate([all_p, n_p]),
        )
    t_us = np.floor(all_t).astype(np.int64)
    order = np.argsort(t_us, kind="stable")  # by microsecond; ties: a pixel's k-th crossing before its k+1-th
    events = _pack(all_idx[order], t_us[order], all_p[order], state.shape[1])
    new = state._replace(log_prev=log_new, t_prev=t1, diff=d_end, release=release, steps=state.steps + 1)
    return events, new


def _pack(idx: np.ndarray, t: np.ndarray, p: np.ndarray, width: int) -> np.ndarray:
    ev = np.empty(idx.size, dtype=EVENT_DTYPE)
    ev["x"] = idx % width
    ev["y"] = idx // width
    ev["t"] = t
    ev["p"] = p
    return ev


def emulate_frames(
    frames: object,
    timestamps_us: object,
    params: EmulatorParams | None = None,
    *,
    seed: int = 0,
    thresholds: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Emulate an event camera watching ``frames`` ``[T, H, W]`` shown at ``timestamps_us`` ``[T]``.

    Args:
        frames: grey intensities, float ``>= 0`` (e.g. ``[0, 1]``) or uint8/uint16; numpy array or tensor.
        timestamps_us: strictly increasing frame times in microseconds (``t`` of the output is in the same
            clock; the first frame only sets the references and makes no events).
        params: the pixel model (default :class:`EmulatorParams()`).
        seed: seed of the threshold mismatch and the noise.
        thresholds: optional ``(C_on, C_off)`` ``[H, W]`` arrays (see :func:`emulator_init`).

    Returns:
        Events of dtype :data:`~spikeforge.events.stream.EVENT_DTYPE` for ``sensor_size = (W, H, 2)``, sorted.
    """
    params = EmulatorParams() if params is None else params
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().numpy()
    f = frames if isinstance(frames, np.ndarray) and frames.dtype == np.uint8 else as_frames(frames)
    lut = log_intensity(np.arange(256) / 255.0, params) if f.dtype == np.uint8 else None
    ts = np.asarray(timestamps_us.detach().cpu().numpy() if isinstance(timestamps_us, torch.Tensor) else timestamps_us)
    if f.ndim != 3:
        raise ValueError(f"frames must be [T, H, W], got shape {f.shape}; add a time axis with frames[None]")
    if ts.ndim != 1 or ts.shape[0] != f.shape[0] or ts.dtype.kind not in "iuf":
        raise ValueError(f"timestamps_us must be a 1-D numeric array of length T={f.shape[0]}, got shape {ts.shape}")
    ts = ts.astype(np.float64)
    if not np.all(np.isfinite(ts)) or np.any(np.diff(ts) <= 0) or (ts.size and ts[0] < 0):
        raise ValueError("timestamps_us must be finite, >= 0 and strictly increasing (microseconds)")
    if f.shape[0] == 0:
        return np.empty(0, dtype=EVENT_DTYPE)
    state = emulator_init(f[0], ts[0], params, seed=seed, thresholds=thresholds)
    chunks = []
    for k in range(1, f.shape[0]):
        ev, state = emulator_step(state, f[k], ts[k], params, lut=lut)
        chunks.append(ev)
    return np.concatenate(chunks) if chunks else np.empty(0, dtype=EVENT_DTYPE)
