"""Neuromorphic data sets generated offline: still images moved through N-MNIST's saccades in front of the
event-camera emulator (:mod:`spikeforge.events.emulate`), cached once, presented as binned event frames.

Generation (:func:`images_to_events`): each 28x28 image (grey in ``[0, 1]``) is moved along the three saccades of
:data:`~spikeforge.events.emulate_inputs.NMNIST_VERTICES` (100 ms each, ``STEPS_PER_SACCADE`` frames per
saccade, bilinear sub-pixel motion) on a 34x34 sensor with the pixel model :data:`EMULATOR` and one sensor's
threshold mismatch (:data:`SENSOR_SEED`) shared by every sample, as one physical camera would. Samples are
emulated side by side in chunks of :data:`CHUNK` (the pixels are independent), in worker processes when
``workers > 1``; the events do not depend on the number of workers.

Storage: one ``uint32`` per event, ``t | x << 19 | y << 25 | p << 31`` (``t`` in microseconds, ``< 2**19``),
sorted by sample then time, with ``offsets [N + 1]`` and ``labels [N]``, in ``<root>/<name>/v<VERSION>/<part>.npz``
next to a manifest ``<part>.json`` (generator version, emulator constants, source checksum and the SHA-256 of
the ``.npz``). Both are written atomically (:mod:`spikeforge._core.files`), the manifest last. A cache whose
manifest is missing, from another version or whose checksum does not match is regenerated; the ``.npz`` is read
once, and the bytes checked are the bytes loaded. ``<root>`` is
``data_dir`` if given, else ``$SPIKEFORGE_DATA_DIR``, else ``~/.cache/spikeforge``.

Training presents ``x [N, T, 2, 34, 34]`` float32: event counts per (bin, polarity, row, column), ``T`` =
:data:`N_BINS` bins of 30 ms over the 300 ms of a sample (:func:`bin_events`).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import json
import multiprocessing
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge._core.files import atomic_write
from spikeforge._core.files import atomic_write_bytes
from spikeforge._core.files import open_regular
from spikeforge.events.emulate import EmulatorParams
from spikeforge.events.emulate import emulate_frames
from spikeforge.events.emulate import sensor_thresholds
from spikeforge.events.emulate_inputs import NMNIST_SACCADE_US
from spikeforge.events.emulate_inputs import saccade_frames
from spikeforge.events.stream import EVENT_DTYPE

__all__ = [
    "VERSION", "SENSOR_HW", "N_BINS", "DURATION_US", "STEPS_PER_SACCADE", "EMULATOR", "SENSOR_SEED", "CHUNK",
    "DATA_DIR_ENV", "Progress", "cache_root", "cache_ready", "images_to_events", "generate_events", "unpack_sample", "bin_events",
    "cached_events",
]  # fmt: skip

#: Generator version: bump when anything that changes the events changes (a new version is a new cache folder).
VERSION = 1
SENSOR_HW = (34, 34)
N_BINS = 10
DURATION_US = 3 * NMNIST_SACCADE_US
STEPS_PER_SACCADE = 10
#: The sensor: contrast thresholds 0.5 +- 0.05 (log units), no refractory period, leak or noise.
EMULATOR = EmulatorParams(pos_threshold=0.5, neg_threshold=0.5, threshold_sigma=0.05)
SENSOR_SEED = 0
CHUNK = 500
DATA_DIR_ENV = "SPIKEFORGE_DATA_DIR"
#: Largest cache file read (bytes): 70 000 samples of ~5 000 events are ~1.4 GB.
MAX_CACHE_BYTES = 8 * 2**30

#: ``progress(done, total)`` after each chunk of samples (the command line draws a bar from it).
Progress = Callable[[int, int], None]


def cache_root(data_dir: str | os.PathLike[str] | None) -> Path:
    """``data_dir``, else ``$SPIKEFORGE_DATA_DIR``, else ``~/.cache/spikeforge``."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "spikeforge"


def images_to_events(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Packed events (sorted by sample, then time) and per-sample counts ``[n]`` of images ``[n, 28, 28]``."""
    img = np.asarray(images, dtype=np.float64)
    if img.ndim != 3 or img.shape[1:] != (28, 28) or (img.size and (img.min() < 0 or img.max() > 1)):
        raise ValueError(f"images must be [n, 28, 28] in [0, 1], got shape {img.shape}")
    n = img.shape[0]
    if n == 0:
        return np.empty(0, dtype=np.uint32), np.zeros(0, dtype=np.int64)
    h, w = SENSOR_HW
    frames, times = saccade_frames(img, SENSOR_HW, steps_per_saccade=STEPS_PER_SACCADE)  # [K, n, 34, 34]
    c_on, c_off = sensor_thresholds(SENSOR_HW, EMULATOR, SENSOR_SEED)
    tiled = (np.tile(c_on, (n, 1)), np.tile(c_off, (n, 1)))
    ev = emulate_frames(frames.reshape(frames.shape[0], n * h, w), times, EMULATOR, thresholds=tiled)
    sample = ev["y"].astype(np.int64) // h
    order = np.argsort(sample, kind="stable")  # the events are sorted by time: keep that within each sample
    ev, sample = ev[order], sample[order]
    packed = (
        ev["t"].astype(np.uint32)
        | (ev["x"].astype(np.uint32) << 19)
        | ((ev["y"].astype(np.uint32) % h) << 25)
        | (ev["p"].astype(np.uint32) << 31)
    )
    return packed, np.bincount(sample, minlength=n).astype(np.int64)


def _chunk(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return images_to_events(images)


def generate_events(
    images: np.ndarray, *, workers: int = 1, progress: Progress | None = None, chunk: int = CHUNK
) -> tuple[np.ndarray, np.ndarray]:
    """Events of every image (uint8 ``[N, 28, 28]`` scaled by 1/255, or float in ``[0, 1]``), in chunks of
    ``chunk`` (default :data:`CHUNK`; the events do not depend on it). Returns packed events and ``offsets [N + 1]`` (sample ``i`` is ``events[offsets[i]:offsets[i+1]]``).
    """
    arr = np.asarray(images)
    img = arr.astype(np.float64) / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float64)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    n = img.shape[0]
    chunks = [img[i : i + chunk] for i in range(0, n, chunk)]
    results: list[tuple[np.ndarray, np.ndarray]] = []
    done = 0
    if workers == 1 or len(chunks) < 2:
        for c in chunks:
            results.append(_chunk(c))
            done += c.shape[0]
            if progress is not None:
                progress(done, n)
    else:
        # fork: the workers run numpy only, and spawn would re-run a user's script without a __main__ guard
        ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            for c, res in zip(chunks, pool.map(_chunk, chunks)):
                results.append(res)
                done += c.shape[0]
                if progress is not None:
                    progress(done, n)
    packed = np.concatenate([r[0] for r in results]) if results else np.empty(0, dtype=np.uint32)
    counts = np.concatenate([r[1] for r in results]) if results else np.zeros(0, dtype=np.int64)
    return packed, np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def unpack_sample(events: np.ndarray, offsets: np.ndarray, i: int) -> np.ndarray:
    """Sample ``i`` as an event array (:data:`~spikeforge.events.stream.EVENT_DTYPE`, sensor_size (34, 34, 2))."""
    e = events[int(offsets[i]) : int(offsets[i + 1])]
    out = np.empty(e.size, dtype=EVENT_DTYPE)
    out["t"] = e & 0x7FFFF
    out["x"] = (e >> 19) & 0x3F
    out["y"] = (e >> 25) & 0x3F
    out["p"] = (e >> 31) == 1
    return out


def bin_events(
    events: np.ndarray, offsets: np.ndarray, indices: np.ndarray, n_bins: int = N_BINS, batch: int = 1000
) -> np.ndarray:
    """Float32 frames ``[len(indices), n_bins, 2, 34, 34]``: events per bin of ``DURATION_US / n_bins``
    (an event at exactly ``DURATION_US`` counts in the last bin), polarity (0 = OFF, 1 = ON), row, column."""
    h, w = SENSOR_HW
    per = 2 * h * w
    out = np.zeros((len(indices), n_bins * per), dtype=np.float32)
    for start in range(0, len(indices), batch):
        sel = np.asarray(indices[start : start + batch], dtype=np.int64)
        lo, hi = offsets[sel], offsets[sel + 1]
        lengths = hi - lo
        rows = np.repeat(np.arange(sel.size), lengths)
        take = np.repeat(lo - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths) + np.arange(int(lengths.sum()))
        e = events[take].astype(np.int64)
        t, x, y, p = e & 0x7FFFF, (e >> 19) & 0x3F, (e >> 25) & 0x3F, (e >> 31) & 1
        b = np.minimum(t * n_bins // DURATION_US, n_bins - 1)
        flat = rows * (n_bins * per) + b * per + p * (h * w) + y * w + x
        out[start : start + sel.size] = np.bincount(flat, minlength=sel.size * n_bins * per).reshape(sel.size, -1)
    return out.reshape(len(indices), n_bins, 2, h, w)


def _read_checked(npz: Path, sha256: object) -> bytes | None:
    """The bytes of ``npz``, read once, when they are at most :data:`MAX_CACHE_BYTES` and their SHA-256 is
    ``sha256``; else None. The caller loads these bytes, so a file swapped after the check is never loaded."""
    with open_regular(npz, f"{npz} is not a regular file; delete it so that the cache is regenerated") as f:
        size = os.fstat(f.fileno()).st_size
        if size > MAX_CACHE_BYTES:
            return None
        data = f.read(size)  # a file grown since the fstat is cut here, and then fails the checksum
    return data if hashlib.sha256(data).hexdigest() == sha256 else None


def _manifest(name: str, part: str, n: int, source_sha256: str) -> dict[str, Any]:
    return {
        "name": name, "part": part, "version": VERSION, "samples": n, "emulator": asdict(EMULATOR),
        "sensor_seed": SENSOR_SEED, "steps_per_saccade": STEPS_PER_SACCADE, "source_sha256": source_sha256,
    }  # fmt: skip


def _want(name: str, part: str, n: int) -> dict[str, Any]:
    return {"name": name, "part": part, "version": VERSION, "samples": n, "emulator": asdict(EMULATOR)}


def _read_manifest(meta: Path, want: dict[str, Any]) -> dict[str, Any] | None:
    try:
        with open_regular(meta, f"{meta} is not a regular file") as f:
            got = json.loads(f.read(2**16))
    except (OSError, ValueError):
        return None
    return got if isinstance(got, dict) and {k: got.get(k) for k in want} == want else None


def cache_ready(name: str, part: str, n: int, data_dir: str | os.PathLike[str] | None = None) -> bool:
    """Whether ``name``/``part`` has a cache with a current manifest (a cheap check; loading verifies the data)."""
    folder = cache_root(data_dir) / name / f"v{VERSION}"
    return (folder / f"{part}.npz").is_file() and _read_manifest(
        folder / f"{part}.json", _want(name, part, n)
    ) is not None


def _read_cache(npz: Path, meta: Path, want: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The cached arrays, or None when the cache is absent, stale or corrupt (it is then regenerated)."""
    if not meta.is_file() or not npz.is_file():
        return None
    got = _read_manifest(meta, want)
    if got is None:
        return None
    try:
        data = _read_checked(npz, got.get("sha256"))
        if data is None:
            return None  # corrupt (or replaced) data file
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            events, offsets, labels = z["events"], z["offsets"], z["labels"]
    except (OSError, ValueError, KeyError):
        return None
    n = want["samples"]
    ok = (
        events.dtype == np.uint32 and offsets.dtype == np.int64 and labels.dtype == np.uint8
        and offsets.shape == (n + 1,) and labels.shape == (n,) and offsets[0] == 0 and offsets[-1] == events.size
        and bool(np.all(np.diff(offsets) >= 0))
    )  # fmt: skip
    return (events, offsets, labels) if ok else None


def cached_events(
    name: str,
    part: str,
    load_source: Callable[[], tuple[np.ndarray, np.ndarray]],
    n: int,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(events, offsets, labels)`` of ``n`` samples of ``name``/``part``: from the cache, else generated from
    ``load_source() -> (images [n, 28, 28], labels [n])`` and cached (see the module docstring).

    ``workers``: processes for the generation (default: the CPUs this process may use).
    """
    folder = cache_root(data_dir) / name / f"v{VERSION}"
    npz, meta = folder / f"{part}.npz", folder / f"{part}.json"
    want = _want(name, part, n)
    cached = _read_cache(npz, meta, want)
    if cached is not None:
        return cached
    images, labels = load_source()
    if images.shape[0] != n or labels.shape != (n,):
        raise ValueError(f"{name}/{part}: the source has {images.shape[0]} images, expected {n}")
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    events, offsets = generate_events(images, workers=workers, progress=progress)
    labels = np.asarray(labels, dtype=np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, events=events, offsets=offsets, labels=labels)
    data = buf.getbuffer()  # no copy of the (large) archive
    atomic_write(npz, lambda f: f.write(data))
    record = _manifest(name, part, n, hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest())
    record["sha256"] = hashlib.sha256(data).hexdigest()  # of the bytes written, not of a second read of the path
    atomic_write_bytes(meta, (json.dumps(record, indent=1) + "\n").encode())
    return events, offsets, labels
