"""Damaged recordings: seeded random byte changes and truncations of valid files of every format either read
(a valid file again) or raise the readers' one-line :class:`FormatError`, never another exception."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from spikeforge.events.formats import FormatError
from spikeforge.events.formats import read_events
from spikeforge.events.formats import read_shd

TRIALS = 60


def _damage(data: bytes, rng: np.random.Generator, trial: int) -> bytes:
    b = bytearray(data)
    if trial % 3 == 0:
        for _ in range(int(rng.integers(1, 8))):
            b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
    elif trial % 3 == 1:
        b = b[: int(rng.integers(0, len(b)))]
    else:
        i = int(rng.integers(0, len(b)))
        b[i : i + 4] = rng.integers(0, 256, 4, dtype=np.uint8).tobytes()
    return bytes(b)


def _fuzz(tmp_path: Path, data: bytes, read: Callable[[Path], object], suffix: str) -> int:
    rng = np.random.default_rng(len(data))
    path = tmp_path / f"damaged{suffix}"
    raised = 0
    for trial in range(TRIALS):
        path.write_bytes(_damage(data, rng, trial))
        try:
            read(path)
        except FormatError as exc:
            assert "\n" not in str(exc)
            raised += 1
    return raised


def _evt3_body(n: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    words = [0x8000]
    for t in np.sort(rng.integers(0, 4096, n)):
        words += [0x6000 | int(t), int(rng.integers(0, 480)), 0x3000 | int(rng.integers(0, 600)), 0x4000 | int(rng.integers(1, 4096))]  # fmt: skip
    return np.array(words, dtype="<u2").tobytes()


def _evt2_body(n: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    words = [(0x8 << 28) | 5]
    for _ in range(n):
        words.append((int(rng.integers(0, 2)) << 28) | (int(rng.integers(0, 640)) << 11) | int(rng.integers(0, 480)))
    return np.array(words, dtype="<u4").tobytes()


@pytest.mark.parametrize("fmt", ["nmnist", "evt2", "evt3"])
def test_damaged_hand_packed_files(tmp_path: Path, fmt: str) -> None:
    rng = np.random.default_rng(1)
    if fmt == "nmnist":
        data = bytes(rng.integers(0, 34, 5 * 200, dtype=np.uint8))  # t bytes too: times go backwards often
    elif fmt == "evt2":
        data = b"% evt 2.0\n% format EVT2;height=480;width=640\n" + _evt2_body(200, 2)
    else:
        data = b"% evt 3.0\n% format EVT3;height=480;width=640\n% end\n" + _evt3_body(100, 3)
    raised = _fuzz(tmp_path, data, lambda p: read_events(p, fmt), ".dat")
    assert raised > TRIALS // 4  # the damage is detected, not only survived


@pytest.mark.parametrize("compression", ["NONE", "LZ4", "ZSTD"])
def test_damaged_aedat4(tmp_path: Path, compression: str) -> None:
    dv = pytest.importorskip("dv_processing", reason="dv-processing (optional test dependency) is not installed")
    pytest.importorskip("lz4.frame")
    pytest.importorskip("zstandard")
    cfg = dv.io.MonoCameraWriter.EventOnlyConfig("T", (64, 48), getattr(dv.CompressionType, compression))
    writer = dv.io.MonoCameraWriter(str(tmp_path / "ok.aedat4"), cfg)
    for k in range(3):
        store = dv.EventStore()
        for i in range(40):
            store.push_back(1000 * k + i, i % 64, i % 48, bool(i % 2))
        writer.writeEvents(store)
    del writer
    data = (tmp_path / "ok.aedat4").read_bytes()
    assert _fuzz(tmp_path, data, lambda p: read_events(p, "aedat4"), ".aedat4") > TRIALS // 4


def test_damaged_shd(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py", reason="h5py (optional) is not installed")
    rng = np.random.default_rng(4)
    path = tmp_path / "ok.h5"
    with h5py.File(path, "w") as f:
        times = f.create_dataset("spikes/times", (10,), dtype=h5py.vlen_dtype(np.float32))
        units = f.create_dataset("spikes/units", (10,), dtype=h5py.vlen_dtype(np.uint16))
        for i in range(10):
            c = int(rng.integers(1, 50))
            times[i], units[i] = np.sort(rng.uniform(0, 1, c)).astype(np.float32), rng.integers(0, 700, c)
        f.create_dataset("labels", data=rng.integers(0, 20, 10).astype(np.uint16))
    assert _fuzz(tmp_path, path.read_bytes(), read_shd, ".h5") > 0
