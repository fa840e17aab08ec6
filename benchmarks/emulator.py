"""Throughput of the event-camera emulator (``spikeforge.events.emulate``), and the time to generate a data set.

``frames`` mode (default): frames per second of :func:`~spikeforge.events.emulate.emulate_frames` at 346x260
(DAVIS346) on one core. Input: ``vtest.avi`` of Debian's ``opencv-doc`` examples
(``/usr/share/doc/opencv-doc/examples/data/vtest.avi``, 768x576 at 10 fps, 795 frames), decoded with OpenCV
(the ``video`` extra) and resized to 346x260 before timing (decoding is not timed). Without OpenCV or the file,
a synthetic pattern: a smooth random texture (Gaussian-blurred noise) translated by 1 px per frame. Both as uint8
frames 1 ms apart, default :class:`~spikeforge.events.emulate.EmulatorParams`. Reports the best of ``--repeats``
wall times and the process CPU time of that run (on a busy machine the CPU time is the better measure of what
one dedicated core would take).

``dataset`` mode: generates a whole data set (``nfashion_mnist``: 70 000 images) into ``--data-dir`` with
``--workers`` processes, reporting wall time and the CPU time of this process and its workers.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/emulator.py [frames|dataset] [--workers 2] [--data-dir D]``.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np

from spikeforge.events.emulate import EmulatorParams
from spikeforge.events.emulate import emulate_frames

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
SIZE = (346, 260)  # (W, H) of a DAVIS346


def load_frames(n: int) -> tuple[np.ndarray, str]:
    """uint8 frames [n, 260, 346] and a description of where they came from."""
    try:
        from spikeforge.events.emulate_inputs import read_video

        if VTEST.is_file():
            frames, _ = read_video(VTEST, size=SIZE, max_frames=n)
            return frames, f"{VTEST} resized to {SIZE[0]}x{SIZE[1]} ({frames.shape[0]} frames)"
    except ImportError:
        pass
    rng = np.random.default_rng(0)
    h, w = SIZE[1], SIZE[0]
    noise = rng.random((h + 64, w + n + 64))
    # separable box blur (x3) ~ Gaussian, no scipy needed
    for axis in (0, 1, 0, 1, 0, 1):
        noise = (np.roll(noise, -3, axis) + np.roll(noise, -2, axis) + np.roll(noise, -1, axis) + noise
                 + np.roll(noise, 1, axis) + np.roll(noise, 2, axis) + np.roll(noise, 3, axis)) / 7  # fmt: skip
    noise = (noise - noise.min()) / (noise.max() - noise.min())
    frames = np.stack([noise[32 : 32 + h, 32 + k : 32 + k + w] for k in range(n)])
    return (frames * 255).astype(np.uint8), f"synthetic blurred texture moving 1 px/frame ({n} frames)"


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def bench_frames(n: int, repeats: int) -> None:
    frames, what = load_frames(n)
    times = np.arange(frames.shape[0], dtype=np.int64) * 1000
    params = EmulatorParams()
    best, best_cpu, events = float("inf"), 0.0, 0
    for _ in range(repeats):
        c0, t0 = cpu_seconds(), time.perf_counter()
        ev = emulate_frames(frames, times, params, seed=0)
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        if wall < best:
            best, best_cpu, events = wall, cpu, ev.size
    k = frames.shape[0] - 1
    print(f"input: {what}")
    print(f"emulator: {k / best:.0f} frames/s wall (best of {repeats}), {k / best_cpu:.0f} frames/s per CPU second, "
          f"{events / k:.0f} events/frame")  # fmt: skip


def bench_dataset(name: str, data_dir: str, workers: int) -> None:
    from spikeforge.data.nfashion_mnist import prepare

    c0, t0 = cpu_seconds(), time.perf_counter()
    prepare(name, data_dir, workers=workers)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    size = sum(p.stat().st_size for p in Path(data_dir).rglob("*.npz"))
    print(f"{name}: generated in {wall:.0f} s wall with {workers} workers, {cpu:.0f} CPU-s "
          f"({cpu / workers:.0f} s per worker core); cache {size / 2**20:.0f} MiB")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", nargs="?", default="frames", choices=("frames", "dataset"))
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dataset", default="nfashion_mnist")
    ap.add_argument("--data-dir", default="/tmp/spikeforge-emulator-bench")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    if args.mode == "frames":
        bench_frames(args.frames, args.repeats)
    else:
        bench_dataset(args.dataset, args.data_dir, args.workers)


if __name__ == "__main__":
    main()
