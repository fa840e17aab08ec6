"""N-MNIST / N-Caltech101 .bin reader: against files packed by hand from Orchard et al.'s 40-bit layout (an
independent writer in this test), against Tonic's reader on the same bytes, and malformed files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from spikeforge.events import check_events
from spikeforge.events.formats import FormatError
from spikeforge.events.formats import read_events
from spikeforge.events.formats import read_nmnist
from spikeforge.events.formats import write_nmnist


def _pack(rows: list[tuple[int, int, int, int]]) -> bytes:
    """(x, y, t, p) -> 5 bytes each, bit by bit: x, y, p<<7 | t[22:16], t[15:8], t[7:0] (big-endian time)."""
    out = bytearray()
    for x, y, t, p in rows:
        assert 0 <= t < 2**23
        out += bytes([x, y, (p << 7) | (t >> 16), (t >> 8) & 0xFF, t & 0xFF])
    return bytes(out)


def _random_rows(n: int, seed: int) -> list[tuple[int, int, int, int]]:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, 2**23, n))
    return [(int(a), int(b), int(c), int(d)) for a, b, c, d in zip(rng.integers(0, 34, n), rng.integers(0, 34, n), t, rng.integers(0, 2, n))]  # fmt: skip


def test_reads_hand_packed_file(tmp_path: Path) -> None:
    rows = _random_rows(300, 0)
    path = tmp_path / "sample.bin"
    path.write_bytes(_pack(rows))
    ev, sensor = read_nmnist(path, sensor_size=(34, 34, 2))
    assert sensor == (34, 34, 2)
    check_events(ev, sensor)
    ref = np.array(rows)
    for k, name in enumerate(("x", "y", "t", "p")):
        np.testing.assert_array_equal(ev[name].astype(np.int64), ref[:, k])
    ev2, _ = read_events(path, sensor_size=(34, 34, 2))  # detected from .bin
    np.testing.assert_array_equal(ev, ev2)


def test_high_bits_of_each_field(tmp_path: Path) -> None:
    """The top bit of byte 2 is polarity, not time: t = 2**23 - 1 with p = 0 and t = 0 with p = 1."""
    path = tmp_path / "edge.bin"
    path.write_bytes(_pack([(255, 239, 0, 1), (0, 0, 2**23 - 1, 0)]))
    ev, sensor = read_nmnist(path)
    assert sensor == (256, 240, 2)
    assert ev["x"].tolist() == [255, 0] and ev["y"].tolist() == [239, 0]
    assert ev["t"].tolist() == [0, 2**23 - 1] and ev["p"].tolist() == [True, False]


def test_overflow_marker_adds_2_pow_13(tmp_path: Path) -> None:
    """y == 240 marks a time-stamp overflow: later entries gain 2**13 us each (the reference reader's rule)."""
    raw = _pack([(1, 2, 8000, 1), (0, 240, 0, 0), (3, 4, 100, 0), (0, 240, 0, 0), (0, 240, 0, 0), (5, 6, 7, 1)])
    path = tmp_path / "overflow.bin"
    path.write_bytes(raw)
    ev, _ = read_nmnist(path)
    assert ev["t"].tolist() == [8000, 100 + 2**13, 7 + 3 * 2**13]
    assert ev["x"].tolist() == [1, 3, 5]


def test_agrees_with_tonic_reader(tmp_path: Path) -> None:
    tonic_io = pytest.importorskip("tonic.io", reason="tonic (optional test dependency) is not installed")
    rows = _random_rows(200, 1)
    raw = _pack(rows[:100]) + _pack([(0, 240, 0, 0)]) + _pack(rows[100:])
    path = tmp_path / "t.bin"
    path.write_bytes(raw)
    dtype = np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])
    ref = tonic_io.read_mnist_file(str(path), dtype=dtype)
    ev, _ = read_nmnist(path)
    assert ev.size == 200 and ref["t"][100] == rows[100][2] + 2**13
    for name in ("x", "y", "t", "p"):
        np.testing.assert_array_equal(ev[name].astype(np.int64), ref[name])


def test_writer_round_trip_with_overflow(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    from spikeforge.events import make_events

    t = np.sort(rng.integers(0, 3 * 2**23, 500))
    ev = make_events(
        rng.integers(0, 34, 500), rng.integers(0, 34, 500), t, rng.integers(0, 2, 500), sensor_size=(34, 34, 2)
    )
    path = tmp_path / "w.bin"
    write_nmnist(path, ev, (34, 34, 2))
    back, _ = read_nmnist(path, sensor_size=(34, 34, 2))
    np.testing.assert_array_equal(back, ev)
    raw = np.frombuffer(path.read_bytes(), dtype=np.uint8).reshape(-1, 5)
    assert int((raw[:, 1] == 240).sum()) > 0  # markers were needed and written
    tonic_io = pytest.importorskip("tonic.io", reason="tonic (optional test dependency) is not installed")
    ref = tonic_io.read_mnist_file(str(path), dtype=np.dtype([("x", int), ("y", int), ("t", int), ("p", int)]))
    np.testing.assert_array_equal(ref["t"], ev["t"])


def test_empty_and_single(tmp_path: Path) -> None:
    path = tmp_path / "e.bin"
    path.write_bytes(b"")
    ev, sensor = read_nmnist(path)
    assert ev.size == 0 and sensor == (1, 1, 2)
    path.write_bytes(_pack([(3, 4, 5, 1)]))
    ev, sensor = read_nmnist(path)
    assert ev.tolist() == [(3, 4, 5, True)] and sensor == (4, 5, 2)


def test_malformed_files(tmp_path: Path) -> None:
    rows = _random_rows(10, 3)
    path = tmp_path / "bad.bin"
    path.write_bytes(_pack(rows)[:-2])
    with pytest.raises(FormatError, match=r"not a multiple of 5.*truncated"):
        read_nmnist(path)
    path.write_bytes(_pack([(1, 1, 500, 0), (1, 1, 400, 0)]))
    with pytest.raises(FormatError, match=r"backwards at event 1 .*sort=True"):
        read_nmnist(path)
    assert read_nmnist(path, sort=True)[0]["t"].tolist() == [400, 500]
    path.write_bytes(_pack([(40, 1, 5, 0)]))
    with pytest.raises(FormatError, match=r"x=40 outside the sensor"):
        read_nmnist(path, sensor_size=(34, 34, 2))
    path.write_bytes(_pack(rows))
    with pytest.raises(FormatError, match=r"max_bytes=49"):
        read_nmnist(path, max_bytes=49)
    with pytest.raises(FormatError, match=r"max_events=9"):
        read_nmnist(path, max_events=9)
    with pytest.raises(ValueError, match=r"not a regular file"):
        read_nmnist(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_nmnist(tmp_path / "missing.bin")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.bin"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=r"not a regular file"):
        read_events(fifo)
