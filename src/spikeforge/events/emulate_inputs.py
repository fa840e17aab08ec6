"""Inputs for the event-camera emulator: a still image moved along a saccade path, or a video file.

* :func:`translate_bilinear` places images on a sensor at a sub-pixel offset (bilinear interpolation, zero
  outside the image).
* :func:`saccade_frames` renders an image moved along straight saccades between ``vertices``;
  :data:`NMNIST_VERTICES` is a triangle of three saccades of 100 ms each on a 34x34 sensor, as the N-MNIST
  recording (Orchard, Jayawant, Cohen & Thakor, "Converting static image datasets to spiking neuromorphic
  datasets using saccades", Front. Neurosci. 2015: an ATIS sensor moved in three saccades forming a
  triangle, about 300 ms per digit, 28x28 digits on a 34x34 field). The vertices here are ours (the paper's
  motion came from a pan-tilt unit, not a list of positions).
* :func:`emulate_saccades` runs :func:`~spikeforge.events.emulate.emulate_frames` on those frames.
* :func:`read_video` / :func:`emulate_video` read a video file with OpenCV (optional extra
  ``pip install 'spikeforge[video]'``, which installs ``opencv-python-headless``; imported only when called).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from spikeforge.events.emulate import EmulatorParams
from spikeforge.events.emulate import as_frames
from spikeforge.events.emulate import emulate_frames

__all__ = [
    "NMNIST_VERTICES", "NMNIST_SACCADE_US", "translate_bilinear", "saccade_path", "saccade_frames",
    "emulate_saccades", "read_video", "emulate_video",
]  # fmt: skip

#: Top-left positions ``(x, y)`` (pixels) of a 28x28 image on a 34x34 sensor at the corners of the three
#: saccades (start, after saccade 1, 2, 3 = start): an isosceles triangle inside the 6-pixel margin.
NMNIST_VERTICES: tuple[tuple[float, float], ...] = ((1.0, 5.0), (5.0, 5.0), (3.0, 1.0), (1.0, 5.0))
#: Duration of one saccade in microseconds (three of them: 300 ms per sample).
NMNIST_SACCADE_US = 100_000


def translate_bilinear(images: np.ndarray, offset: tuple[float, float], sensor_hw: tuple[int, int]) -> np.ndarray:
    """Images ``[..., h, w]`` placed with their top-left corner at ``offset = (x, y)`` on a sensor ``(H, W)``.

    Sensor pixel ``(v, u)`` shows the image at ``(v - y, u - x)``, bilinearly interpolated; outside the image
    the sensor sees 0. Returns float64 ``[..., H, W]``.
    """
    img = np.asarray(images, dtype=np.float64)
    if img.ndim < 2:
        raise ValueError(f"images must be [..., h, w], got shape {img.shape}")
    ox, oy = (float(v) for v in offset)
    if not (math.isfinite(ox) and math.isfinite(oy)):
        raise ValueError(f"offset must be finite, got {offset!r}")
    big_h, big_w = sensor_hw
    h, w = img.shape[-2:]
    ix, iy = math.floor(ox), math.floor(oy)
    fx, fy = ox - ix, oy - iy
    canvas = np.zeros((*img.shape[:-2], big_h + 1, big_w + 1))
    # canvas[1 + r, 1 + c] = image[r - iy, c - ix] for sensor rows/columns r, c in -1 .. H-1 / W-1
    r0, c0 = max(-1, iy), max(-1, ix)
    r1, c1 = min(big_h, iy + h), min(big_w, ix + w)
    if r1 > r0 and c1 > c0:
        canvas[..., 1 + r0 : 1 + r1, 1 + c0 : 1 + c1] = img[..., r0 - iy : r1 - iy, c0 - ix : c1 - ix]
    out = (1 - fx) * (1 - fy) * canvas[..., 1:, 1:]
    out += fx * (1 - fy) * canvas[..., 1:, :-1]
    out += (1 - fx) * fy * canvas[..., :-1, 1:]
    out += fx * fy * canvas[..., :-1, :-1]
    return out


def saccade_path(
    vertices: Sequence[tuple[float, float]], saccade_us: int, steps_per_saccade: int
) -> tuple[np.ndarray, np.ndarray]:
    """Times ``[K]`` (microseconds, from 0) and positions ``[K, 2]`` of straight, constant-speed saccades
    between consecutive ``vertices``, each lasting ``saccade_us`` and sampled ``steps_per_saccade`` times."""
    v = np.asarray(vertices, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 2 or v.shape[0] < 2 or not np.all(np.isfinite(v)):
        raise ValueError(f"vertices must be at least two finite (x, y) points, got {vertices!r}")
    for name, val in (("saccade_us", saccade_us), ("steps_per_saccade", steps_per_saccade)):
        if isinstance(val, bool) or not isinstance(val, int) or val < 1:
            raise ValueError(f"{name} must be a positive int, got {val!r}")
    frac = np.arange(steps_per_saccade) / steps_per_saccade  # [0, 1)
    pos = [v[i] + frac[:, None] * (v[i + 1] - v[i]) for i in range(v.shape[0] - 1)]
    positions = np.concatenate([*pos, v[-1:]])
    n_sac = v.shape[0] - 1
    times = np.round(np.arange(n_sac * steps_per_saccade + 1) * (saccade_us / steps_per_saccade)).astype(np.int64)
    return times, positions


def saccade_frames(
    images: np.ndarray,
    sensor_hw: tuple[int, int] = (34, 34),
    *,
    vertices: Sequence[tuple[float, float]] = NMNIST_VERTICES,
    saccade_us: int = NMNIST_SACCADE_US,
    steps_per_saccade: int = 20,
) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``[K, ..., H, W]`` of ``images`` ``[..., h, w]`` moved along the saccades, and their times ``[K]``."""
    times, positions = saccade_path(vertices, saccade_us, steps_per_saccade)
    img = as_frames(np.asarray(images))
    frames = np.empty((positions.shape[0], *img.shape[:-2], *sensor_hw))
    for k, (x, y) in enumerate(positions):
        frames[k] = translate_bilinear(img, (float(x), float(y)), sensor_hw)
    return frames, times


def emulate_saccades(
    image: np.ndarray,
    sensor_hw: tuple[int, int] = (34, 34),
    params: EmulatorParams | None = None,
    *,
    seed: int = 0,
    vertices: Sequence[tuple[float, float]] = NMNIST_VERTICES,
    saccade_us: int = NMNIST_SACCADE_US,
    steps_per_saccade: int = 20,
) -> np.ndarray:
    """Events of one still ``image`` ``[h, w]`` moved along the saccades (default: N-MNIST's three, 300 ms)
    in front of an emulated sensor ``(H, W)``; ``sensor_size`` of the result is ``(W, H, 2)``."""
    img = np.asarray(image)
    if img.ndim != 2:
        raise ValueError(f"image must be [h, w], got shape {img.shape}; convert colour images to grey first")
    frames, times = saccade_frames(
        img, sensor_hw, vertices=vertices, saccade_us=saccade_us, steps_per_saccade=steps_per_saccade
    )
    return emulate_frames(frames, times, params, seed=seed)


def _cv2() -> object:
    try:
        import cv2
    except ImportError as e:
        raise ImportError(
            "reading video files needs OpenCV; install it with: pip install 'spikeforge[video]' "
            "(opencv-python-headless)"
        ) from e
    return cv2


def read_video(
    path: str | os.PathLike[str], *, size: tuple[int, int] | None = None, max_frames: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Grey uint8 frames ``[T, H, W]`` of a video file and their times ``[T]`` in microseconds.

    ``size = (W, H)`` resizes every frame (area interpolation); times come from the file's frame rate
    (``round(k * 1e6 / fps)``). Needs the ``video`` extra (OpenCV).
    """
    cv2 = _cv2()
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"video file not found: {p}")
    if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1):
        raise ValueError(f"max_frames must be a positive int or None, got {max_frames!r}")
    cap = cv2.VideoCapture(str(p))  # type: ignore[attr-defined]
    try:
        if not cap.isOpened():
            raise ValueError(f"{p}: OpenCV cannot open this video (unknown container or codec)")
        fps = float(cap.get(cv2.CAP_PROP_FPS))  # type: ignore[attr-defined]
        if not math.isfinite(fps) or fps <= 0:
            raise ValueError(f"{p}: the video declares no frame rate ({fps}); pass frames to emulate_frames instead")
        frames: list[np.ndarray] = []
        while max_frames is None or len(frames) < max_frames:
            ok, bgr = cap.read()
            if not ok:
                break
            grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr  # type: ignore[attr-defined]
            if size is not None:
                grey = cv2.resize(grey, tuple(size), interpolation=cv2.INTER_AREA)  # type: ignore[attr-defined]
            frames.append(np.ascontiguousarray(grey, dtype=np.uint8))
    finally:
        cap.release()
    if not frames:
        raise ValueError(f"{p}: no frames could be decoded")
    times = np.round(np.arange(len(frames)) * (1e6 / fps)).astype(np.int64)
    return np.stack(frames), times


def emulate_video(
    path: str | os.PathLike[str],
    params: EmulatorParams | None = None,
    *,
    size: tuple[int, int] | None = None,
    max_frames: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Events of a video file (see :func:`read_video`); ``sensor_size`` is ``(W, H, 2)`` of the (resized) frames."""
    frames, times = read_video(path, size=size, max_frames=max_frames)
    return emulate_frames(frames, times, params, seed=seed)
