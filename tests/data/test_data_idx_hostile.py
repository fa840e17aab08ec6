"""Hostile IDX files (issue 13): a gzip bomb, headers declaring other or huge dims, trailing data, broken
streams and non-files. The reader must stop after the declared bytes (+1), counted at the stream and by
tracemalloc, never inflate a whole stream first."""

from __future__ import annotations

import gzip
import io
import os
import struct
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from spikeforge.data import get_dataset
from spikeforge.data import idx as idx_mod
from spikeforge.data import write_idx
from spikeforge.data.idx import MAX_IDX_BYTES
from spikeforge.data.idx import read_idx

MIB = 2**20


def _header(dims: tuple[int, ...], code: int = 0x08) -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def _gzip_bomb(payload: bytes, zero_mib: int) -> bytes:
    """A valid gzip member of ``payload`` followed by ``zero_mib`` MiB of zeros, built without holding them:
    one fully flushed deflate block of 1 MiB of zeros references nothing before it, so it can be repeated."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate; the gzip header/trailer are written here
    body = comp.compress(payload) + comp.flush(zlib.Z_FULL_FLUSH)
    zeros = bytes(MIB)
    block = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    tail = comp.flush()
    crc = zlib.crc32(payload)
    for _ in range(zero_mib):
        crc = zlib.crc32(zeros, crc)
    size = (len(payload) + zero_mib * MIB) % 2**32
    head = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return head + body + block * zero_mib + tail + struct.pack("<II", crc, size)


class _Counting(io.RawIOBase):
    """Counts the bytes a reader takes from ``inner``."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.taken = inner, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self.inner.readinto(b)
        self.taken += n or 0
        return n

    def read(self, n: int = -1) -> bytes:
        out = self.inner.read(n)
        self.taken += len(out)
        return out


def test_bomb_builder_makes_a_real_gzip_stream() -> None:
    payload = _header((10, 28, 28)) + bytes(range(256)) * 30 + bytes(160)
    assert gzip.decompress(_gzip_bomb(payload, 3)) == payload + bytes(3 * MIB)


def test_gzip_bomb_stops_after_the_declared_bytes(tmp_path: Path) -> None:
    images = np.random.default_rng(0).integers(0, 256, (10, 28, 28), dtype=np.uint8)
    payload = _header((10, 28, 28)) + images.tobytes()
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(_gzip_bomb(payload, 1024))  # 1 GiB of zeros after the 10 images, ~1 MB on disk
    assert path.stat().st_size < 2 * MIB
    # decompressed bytes the reader asks for: header + data + 1, not the gigabyte behind them
    with open(path, "rb") as raw, gzip.GzipFile(fileobj=raw) as gz:
        counted = _Counting(gz)
        with pytest.raises(ValueError, match=r"has trailing bytes: dims \(10, 28, 28\) of uint8 need 7840"):
            idx_mod._read_stream(counted, path, (10, 28, 28), np.dtype(np.uint8), MAX_IDX_BYTES)
        assert counted.taken == len(payload) + 1
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz: IDX file has trailing bytes.*re-download"):
            read_idx(path, shape=(10, 28, 28), dtype=np.uint8)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * MIB, peak
    # the same stream without the bomb reads back exactly
    (tmp_path / "ok.gz").write_bytes(_gzip_bomb(payload, 0))
    np.testing.assert_array_equal(read_idx(tmp_path / "ok.gz", shape=(10, 28, 28), dtype=np.uint8), images)


@pytest.mark.parametrize("gz", [False, True])
def test_declared_size_is_checked_before_reading(tmp_path: Path, gz: bool) -> None:
    raw = _header((400_000, 28, 28)) + bytes(100)  # declares 313.6 MB, holds 100 bytes
    path = tmp_path / "big"
    path.write_bytes(gzip.compress(raw) if gz else raw)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"big: IDX header declares 313600000 data bytes.*max_bytes=268435456"):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * MIB, peak
    with pytest.raises(ValueError, match=r"expected uint8 data of shape \(10000, 28, 28\).*declares uint8 \(400000"):
        read_idx(path, shape=(10000, 28, 28), dtype=np.uint8)
    small = tmp_path / "small"
    write_idx(small, np.zeros((4, 5), np.float32))
    np.testing.assert_array_equal(read_idx(small, max_bytes=80), np.zeros((4, 5), np.float32))  # edge: exactly 80
    with pytest.raises(ValueError, match="max_bytes=79"):
        read_idx(small, max_bytes=79)
    with pytest.raises(ValueError, match="declares float32"):
        read_idx(small, dtype=np.uint8)
    for bad in (0, -1, True, 2.0):
        with pytest.raises(ValueError, match="max_bytes must be a positive int"):
            read_idx(small, max_bytes=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "content,match",
    [
        (gzip.compress(b"PK\x03\x04" + bytes(8)), "bad IDX magic"),
        (gzip.compress(_header((3, 28, 28))[:9]), "truncated IDX header"),
        (gzip.compress(_header((2,)) + b"\x01"), r"truncated: dims \(2,\) of uint8 need 2 data bytes, found 1"),
        (gzip.compress(_header((2,)) + b"\x01\x02") + b"garbage!", "corrupt or truncated gzip"),
        (gzip.compress(_header((2,)) + b"\x01\x02\x03"), "has trailing bytes"),
        (gzip.compress(_header((2,)) + b"\x01\x02")[:-6], "corrupt or truncated gzip"),
    ],
)
def test_broken_gzip_contents_name_the_file(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "labels.gz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"labels\\.gz.*{match}"):
        read_idx(path)


def test_not_a_regular_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a regular file"):
        read_idx(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=r"fifo: not a regular file; point data_dir"):  # returns at once
        read_idx(fifo)


def test_gzip_bomb_in_a_data_dir_is_refused(tmp_path: Path) -> None:
    labels = (np.arange(10000) % 10).astype(np.uint8)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((10000, 28, 28), np.uint8))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(_gzip_bomb(_header((10000,)) + labels.tobytes(), 256))
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte\.gz: IDX file has trailing bytes"):
        get_dataset("mnist", "test", data_dir=tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(_gzip_bomb(_header((10000,)) + labels.tobytes(), 0))
    ds = get_dataset("mnist", "test", data_dir=tmp_path)
    assert ds.x.shape == (10000, 1, 28, 28)
    np.testing.assert_array_equal(ds.y.numpy(), labels.astype(np.int64))
