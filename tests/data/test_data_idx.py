"""IDX reader/writer: files built byte by byte in the test, round trips, and every corruption path."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from spikeforge.data import read_idx
from spikeforge.data import write_idx


def handmade_idx(arr: np.ndarray, code: int, be: str) -> bytes:
    """Independent encoder: magic 00 00 TT NN, big-endian uint32 dims, big-endian payload."""
    head = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return head + arr.astype(be).tobytes()


CASES = [
    (np.uint8, 0x08, ">u1"), (np.int8, 0x09, ">i1"), (np.int16, 0x0B, ">i2"),
    (np.int32, 0x0C, ">i4"), (np.float32, 0x0D, ">f4"), (np.float64, 0x0E, ">f8"),
]


@pytest.mark.parametrize("dtype,code,be", CASES)
@pytest.mark.parametrize("gz", [False, True])
def test_reads_handmade_files(tmp_path: Path, dtype: type, code: int, be: str, gz: bool) -> None:
    rng = np.random.default_rng(0)
    arr = (rng.standard_normal((3, 4, 5)) * 50).astype(dtype)
    raw = handmade_idx(arr, code, be)
    p = tmp_path / "f.idx"
    p.write_bytes(gzip.compress(raw) if gz else raw)  # no .gz suffix: compression is sniffed from content
    out = read_idx(p)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative and out.flags.writeable
    np.testing.assert_array_equal(out, arr)


@pytest.mark.parametrize("dtype,code,be", CASES)
@pytest.mark.parametrize("name", ["a-ubyte", "a-ubyte.gz"])
def test_write_round_trip(tmp_path: Path, dtype: type, code: int, be: str, name: str) -> None:
    arr = np.arange(2 * 3 * 7).reshape(2, 3, 7).astype(dtype)
    p = write_idx(tmp_path / name, arr)
    data = p.read_bytes()
    assert (data[:2] == b"\x1f\x8b") == name.endswith(".gz")
    assert (gzip.decompress(data) if name.endswith(".gz") else data) == handmade_idx(arr, code, be)
    np.testing.assert_array_equal(read_idx(p), arr)


def test_one_dimensional_and_explicit_compress(tmp_path: Path) -> None:
    labels = np.array([0, 9, 3, 255], dtype=np.uint8)
    p = write_idx(tmp_path / "labels", labels, compress=True)
    assert p.read_bytes()[:2] == b"\x1f\x8b"
    np.testing.assert_array_equal(read_idx(p), labels)


def test_truncated_payload(tmp_path: Path) -> None:
    raw = handmade_idx(np.zeros((10, 28, 28), np.uint8), 0x08, ">u1")
    p = tmp_path / "images"
    p.write_bytes(raw[:-100])
    with pytest.raises(ValueError, match=r"images.*truncated.*7840 data bytes, found 7740"):
        read_idx(p)


def test_trailing_bytes(tmp_path: Path) -> None:
    p = tmp_path / "x"
    p.write_bytes(handmade_idx(np.zeros(4, np.uint8), 0x08, ">u1") + b"\x00")
    with pytest.raises(ValueError, match="trailing bytes"):
        read_idx(p)


def test_truncated_gzip_stream(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    comp = gzip.compress(handmade_idx(rng.integers(0, 255, (50, 28, 28), dtype=np.uint8), 0x08, ">u1"))
    p = tmp_path / "cut.gz"
    p.write_bytes(comp[: len(comp) // 2])
    with pytest.raises(ValueError, match=r"cut\.gz.*gzip"):
        read_idx(p)


def test_corrupt_gzip_stream(tmp_path: Path) -> None:
    comp = bytearray(gzip.compress(handmade_idx(np.arange(200, dtype=np.uint8), 0x08, ">u1")))
    comp[12:20] = b"\xff" * 8
    p = tmp_path / "bad.gz"
    p.write_bytes(bytes(comp))
    with pytest.raises(ValueError, match=r"bad\.gz.*gzip"):
        read_idx(p)


@pytest.mark.parametrize("head", [b"\x01\x00\x08\x01", b"\x00\x00\x07\x01", b"PK\x03\x04"])
def test_bad_magic(tmp_path: Path, head: bytes) -> None:
    p = tmp_path / "m"
    p.write_bytes(head + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(ValueError, match=r"m: bad IDX magic"):
        read_idx(p)


@pytest.mark.parametrize("content,match", [(b"", "truncated IDX file"), (b"\x00\x00\x08", "truncated IDX file"),
                                           (b"\x00\x00\x08\x03\x00\x00\x00\x01", "truncated IDX header"),
                                           (b"\x00\x00\x08\x00", "0 dimensions")])
def test_short_or_degenerate_header(tmp_path: Path, content: bytes, match: str) -> None:
    p = tmp_path / "h"
    p.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        read_idx(p)


def test_missing_file_and_bad_write(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")
    with pytest.raises(TypeError, match="uint8"):
        write_idx(tmp_path / "b", np.zeros(3, dtype=np.uint64))
    with pytest.raises(ValueError, match="dimensions"):
        write_idx(tmp_path / "c", np.array(3, dtype=np.uint8))
