"""AEDAT4 files built byte by byte in this test from the published layout (magic, size-prefixed FlatBuffers
IOHeader and EventPacket tables, packet headers), so the reader is covered without dv-processing; where the
independent ``aedat`` reader is installed it must read the same bytes to the same events."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from spikeforge.events.formats import FormatError
from spikeforge.events.formats import read_aedat4

XML = (
    '<dv version="2.0"><node name="outInfo" path="/outInfo/">'
    '<node name="{sid}" path="/outInfo/{sid}/"><attr key="compression" type="string">NONE</attr>'
    '<attr key="typeIdentifier" type="string">EVTS</attr>'
    '<node name="info" path="/outInfo/{sid}/info/"><attr key="sizeX" type="int">{w}</attr>'
    '<attr key="sizeY" type="int">{h}</attr><attr key="source" type="string">Hand</attr></node></node>'
    '<node name="9" path="/outInfo/9/"><attr key="typeIdentifier" type="string">IMUS</attr></node>'
    "</node></dv>"
)


def _io_header(compression: int, info: str) -> bytes:
    """FlatBuffer: root offset, "IOHE", vtable (3 fields), table (soffset, int32, int64, string offset), string."""
    vtable = struct.pack("<HHHHH", 10, 20, 4, 8, 16) + b"\x00\x00"  # 12 bytes at offset 8
    table_at = 8 + len(vtable)  # 20
    string_at = table_at + 20
    table = struct.pack("<iiqI", table_at - 8, compression, -1, string_at - (table_at + 16))
    text = info.encode()
    return struct.pack("<I", table_at) + b"IOHE" + vtable + table + struct.pack("<I", len(text)) + text + b"\x00"


def _event_packet(t: np.ndarray, x: np.ndarray, y: np.ndarray, p: np.ndarray) -> bytes:
    """Size-prefixed FlatBuffer: root offset, "EVTS", vtable (1 field), table (soffset, vector offset), vector of
    16-byte structs (int64 t, int16 x, int16 y, bool p, 3 padding bytes)."""
    vtable = struct.pack("<HHH", 6, 8, 4) + b"\x00\x00"  # 8 bytes at offset 8
    table_at = 16
    vector_at = table_at + 8
    table = struct.pack("<iI", table_at - 8, vector_at - (table_at + 4))
    structs = b"".join(struct.pack("<qhh?3x", int(a), int(b), int(c), bool(d)) for a, b, c, d in zip(t, x, y, p))
    buf = struct.pack("<I", table_at) + b"EVTS" + vtable + table + struct.pack("<I", len(t)) + structs
    return struct.pack("<I", len(buf)) + buf


def _file(packets: list[tuple[int, bytes]], compression: int = 0, sid: int = 2, w: int = 40, h: int = 30) -> bytes:
    head = _io_header(compression, XML.format(sid=sid, w=w, h=h))
    out = b"#!AER-DAT4.0\r\n" + struct.pack("<I", len(head)) + head
    for stream, blob in packets:
        out += struct.pack("<ii", stream, len(blob)) + blob
    return out


def _random(n: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    return np.sort(rng.integers(10**15, 10**15 + 10**6, n)), rng.integers(0, 40, n), rng.integers(0, 30, n), rng.integers(0, 2, n)  # fmt: skip


@pytest.mark.parametrize("compression", [0, 1, 3])
def test_hand_built_file(tmp_path: Path, compression: int) -> None:
    t, x, y, p = _random(300, compression)
    codec = {0: lambda b: b}
    if compression == 1:
        codec[1] = pytest.importorskip("lz4.frame").compress
    if compression == 3:
        codec[3] = pytest.importorskip("zstandard").ZstdCompressor().compress
    packets = []
    for part in np.array_split(np.arange(300), 4):
        packets.append((2, codec[compression](_event_packet(t[part], x[part], y[part], p[part]))))
        packets.append((9, b"\x00" * 12))  # another stream's packet (IMU): skipped, never decoded
    path = tmp_path / "hand.aedat4"
    path.write_bytes(_file(packets, compression))
    ev, sensor = read_aedat4(path)
    assert sensor == (40, 30, 2)
    for name, ref in (("t", t), ("x", x), ("y", y), ("p", p)):
        np.testing.assert_array_equal(ev[name].astype(np.int64), ref)
    aedat = pytest.importorskip("aedat", reason="aedat (optional test dependency) is not installed")
    path.write_bytes(_file([q for q in packets if q[0] == 2], compression))  # aedat decodes every stream's packets
    np.testing.assert_array_equal(read_aedat4(path)[0], ev)
    theirs = np.concatenate([q["events"] for q in aedat.Decoder(str(path)) if "events" in q])
    np.testing.assert_array_equal(theirs["t"].astype(np.int64), t)
    np.testing.assert_array_equal(theirs["x"].astype(np.int64), x)


def test_hand_built_edges(tmp_path: Path) -> None:
    path = tmp_path / "e.aedat4"
    path.write_bytes(_file([]))
    ev, sensor = read_aedat4(path)
    assert ev.size == 0 and sensor == (40, 30, 2)
    one = _event_packet(np.array([7]), np.array([39]), np.array([29]), np.array([1]))
    path.write_bytes(_file([(2, one)]))
    assert read_aedat4(path)[0].tolist() == [(39, 29, 7, True)]
    path.write_bytes(_file([(2, one)], w=39))
    with pytest.raises(FormatError, match=r"x=39 outside the sensor \(W=39\)"):
        read_aedat4(path)
    path.write_bytes(_file([(2, one)], compression=7))
    with pytest.raises(FormatError, match="unknown compression type 7"):
        read_aedat4(path)
    path.write_bytes(_file([(2, one[:-5])]))  # the vector claims more than the packet holds
    with pytest.raises(FormatError, match="claims 1 events beyond its buffer"):
        read_aedat4(path)
    path.write_bytes(_file([(2, one)])[:-3])
    with pytest.raises(FormatError, match="runs past the end"):
        read_aedat4(path)
    path.write_bytes(_file([(2, one)]) + b"\x02\x00")
    with pytest.raises(FormatError, match=r"packet header at byte .* is cut off"):
        read_aedat4(path)
    two = _event_packet(np.array([5, 4]), np.array([1, 1]), np.array([1, 1]), np.array([0, 0]))
    path.write_bytes(_file([(2, two)]))
    with pytest.raises(FormatError, match="backwards at event 1"):
        read_aedat4(path)
