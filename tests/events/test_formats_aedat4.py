"""AEDAT4 reader: files written by iniVation's own dv-processing (every compression option), compared with the
events written and with the independent ``aedat`` reader; then corrupted copies of such files."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from spikeforge.events import check_events
from spikeforge.events.formats import FormatError
from spikeforge.events.formats import aedat4_streams
from spikeforge.events.formats import read_aedat4
from spikeforge.events.formats import read_events

dv = pytest.importorskip("dv_processing", reason="dv-processing (optional test dependency, writes AEDAT4) is absent")

COMPRESSIONS = ["NONE", "LZ4", "LZ4_HIGH", "ZSTD", "ZSTD_HIGH"]
T0 = 1_700_000_000_000_000  # camera time stamps are microseconds since the Unix epoch


def _random(n: int, seed: int, w: int = 64, h: int = 48) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.zeros(n, dtype=[("t", np.int64), ("x", np.int64), ("y", np.int64), ("p", np.int64)])
    out["t"] = T0 + np.sort(rng.integers(0, 1_000_000, n))
    out["x"], out["y"], out["p"] = rng.integers(0, w, n), rng.integers(0, h, n), rng.integers(0, 2, n)
    return out


def _write(path: Path, ref: np.ndarray, compression: str = "NONE", packets: int = 4) -> Path:
    cfg = dv.io.MonoCameraWriter.EventOnlyConfig("Test", (64, 48), getattr(dv.CompressionType, compression))
    writer = dv.io.MonoCameraWriter(str(path), cfg)
    for chunk in np.array_split(ref, packets):
        store = dv.EventStore()
        for e in chunk:
            store.push_back(int(e["t"]), int(e["x"]), int(e["y"]), bool(e["p"]))
        writer.writeEvents(store)
    del writer  # closes the file (writes the data table and final header)
    return path


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_reads_dv_processing_files(tmp_path: Path, compression: str) -> None:
    ref = _random(1500, COMPRESSIONS.index(compression))
    path = _write(tmp_path / f"rec_{compression}.aedat4", ref, compression)
    if compression != "NONE":
        pytest.importorskip("lz4.frame" if "LZ4" in compression else "zstandard")
    ev, sensor = read_aedat4(path)
    assert sensor == (64, 48, 2)
    check_events(ev, sensor)
    for name in ("x", "y", "t", "p"):
        np.testing.assert_array_equal(ev[name].astype(np.int64), ref[name])
    np.testing.assert_array_equal(read_events(path)[0], ev)  # detected by extension


@pytest.mark.parametrize("compression", ["NONE", "LZ4", "ZSTD"])
def test_agrees_with_aedat_reader(tmp_path: Path, compression: str) -> None:
    aedat = pytest.importorskip("aedat", reason="aedat (optional test dependency) is not installed")
    pytest.importorskip("lz4.frame")
    pytest.importorskip("zstandard")
    path = _write(tmp_path / "r.aedat4", _random(700, 9), compression, packets=3)
    decoder = aedat.Decoder(str(path))
    assert decoder.id_to_stream()[0] == {"type": "events", "width": 64, "height": 48}
    theirs = np.concatenate([p["events"] for p in decoder if "events" in p])
    ev, _ = read_aedat4(path)
    for ours, their in (("t", "t"), ("x", "x"), ("y", "y"), ("p", "on")):
        np.testing.assert_array_equal(ev[ours].astype(np.int64), theirs[their].astype(np.int64))


def test_header_streams_and_stream_choice(tmp_path: Path) -> None:
    cfg = dv.io.MonoCameraWriter.Config("Two")
    cfg.addEventStream((64, 48), "left")
    cfg.addEventStream((32, 16), "right")
    writer = dv.io.MonoCameraWriter(str(tmp_path / "two.aedat4"), cfg)
    for name, (t, x, y) in (("left", (10, 63, 47)), ("right", (20, 31, 15))):
        store = dv.EventStore()
        store.push_back(t, x, y, True)
        writer.writeEvents(store, streamName=name)
    del writer
    path = tmp_path / "two.aedat4"
    streams = aedat4_streams(path)
    ids = sorted(streams)
    assert [streams[i]["typeIdentifier"] for i in ids] == ["EVTS", "EVTS"]
    with pytest.raises(FormatError, match=r"several event streams \[0, 1\].*stream=<id>"):
        read_aedat4(path)
    sizes = {(int(streams[i]["sizeX"]), int(streams[i]["sizeY"])): i for i in ids}
    ev, sensor = read_aedat4(path, stream=sizes[(32, 16)])
    assert sensor == (32, 16, 2) and ev.tolist() == [(31, 15, 20, True)]
    ev, sensor = read_events(path, stream=sizes[(64, 48)])
    assert sensor == (64, 48, 2) and ev.tolist() == [(63, 47, 10, True)]
    with pytest.raises(ValueError, match=r"not an event stream"):
        read_aedat4(path, stream=7)


def test_empty_recording(tmp_path: Path) -> None:
    path = _write(tmp_path / "empty.aedat4", _random(0, 0), packets=1)
    ev, sensor = read_aedat4(path)
    assert ev.size == 0 and sensor == (64, 48, 2)


def _event_offset(data: bytes, t: int) -> int:
    return data.index(struct.pack("<q", t))


def test_corrupt_copies(tmp_path: Path) -> None:
    ref = _random(50, 5)
    path = _write(tmp_path / "ok.aedat4", ref, packets=2)
    data = path.read_bytes()
    bad = tmp_path / "bad.aedat4"

    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match=r"outside the file|truncated"):
        read_aedat4(bad)
    bad.write_bytes(b"#!AER-DAT3.1\r\n" + data[14:])
    with pytest.raises(FormatError, match=r"AEDAT version 3.1 is not supported"):
        read_aedat4(bad)
    bad.write_bytes(b"hello world, not a recording")
    with pytest.raises(FormatError, match=r"not an AEDAT4 file"):
        read_aedat4(bad)
    bad.write_bytes(data.replace(b"EVTS\x00\x00", b"XXXX\x00\x00", 1) if b"EVTS\x00\x00" in data else b"")
    with pytest.raises(FormatError, match=r"identifier 'EVTS'"):
        read_aedat4(bad)
    bad.write_bytes(data[:14] + b"\xff\xff\x00\x00" + data[18:])
    with pytest.raises(FormatError, match=r"IOHeader .* truncated"):
        read_aedat4(bad)

    # the last event's time stamp moved before the first one's: timestamps going backwards
    i = _event_offset(data, int(ref["t"][-1]))
    bad.write_bytes(data[:i] + struct.pack("<q", int(ref["t"][0]) - 1) + data[i + 8 :])
    with pytest.raises(FormatError, match=r"backwards at event 49"):
        read_aedat4(bad)
    assert read_aedat4(bad, sort=True)[0]["t"][0] == ref["t"][0] - 1

    # an x coordinate beyond the header's sizeX = 64
    i = _event_offset(data, int(ref["t"][3])) + 8
    bad.write_bytes(data[:i] + struct.pack("<h", 99) + data[i + 2 :])
    with pytest.raises(FormatError, match=r"x=99 outside the sensor .W=64"):
        read_aedat4(bad)
    with pytest.raises(FormatError, match=r"max_events=10"):
        read_aedat4(path, max_events=10)
    with pytest.raises(FormatError, match=r"max_bytes=100"):
        read_aedat4(path, max_bytes=100)


def test_corrupt_compressed_packet(tmp_path: Path) -> None:
    pytest.importorskip("lz4.frame")
    path = _write(tmp_path / "c.aedat4", _random(200, 6), "LZ4", packets=1)
    data = bytearray(path.read_bytes())
    start = 18 + struct.unpack_from("<I", data, 14)[0]  # the first packet, after magic and IOHeader
    assert struct.unpack_from("<i", data, start)[0] == 0  # stream 0
    assert data[start + 8 : start + 12] == b"\x04\x22\x4d\x18"  # an LZ4 frame starts here
    data[start + 8 + 20 : start + 8 + 40] = b"\xaa" * 20
    bad = tmp_path / "bad.aedat4"
    bad.write_bytes(bytes(data))
    with pytest.raises(FormatError, match=r"lz4 packet does not decompress|outside its buffer|identifier"):
        read_aedat4(bad)


@pytest.mark.parametrize("compression", ["LZ4", "ZSTD"])
def test_compressed_packet_cut_short(tmp_path: Path, compression: str) -> None:
    """A packet whose frame ends early (container sizes consistent): an error, not a silently short packet."""
    pytest.importorskip("lz4.frame" if compression == "LZ4" else "zstandard")
    path = _write(tmp_path / "c.aedat4", _random(300, 7), compression, packets=1)
    data = path.read_bytes()
    ev, _ = read_aedat4(path)
    start = 18 + struct.unpack_from("<I", data, 14)[0]
    sid, size = struct.unpack_from("<ii", data, start)
    table_pos = start + 8 + size  # the data table follows the one packet; drop it from the header too
    header = data[:start].replace(struct.pack("<q", table_pos), struct.pack("<q", -1))
    assert header != data[:start]
    cut = size // 2
    bad = tmp_path / "cut.aedat4"
    bad.write_bytes(header + struct.pack("<ii", sid, cut) + data[start + 8 : start + 8 + cut])
    with pytest.raises(FormatError, match=r"packet ends inside its frame|does not decompress"):
        read_aedat4(bad)
    whole = tmp_path / "whole.aedat4"  # the same surgery without the cut reads back every event
    whole.write_bytes(header + data[start : start + 8 + size])
    np.testing.assert_array_equal(read_aedat4(whole)[0], ev)


def test_entity_declarations_are_refused(tmp_path: Path) -> None:
    data = _write(tmp_path / "ok.aedat4", _random(5, 8)).read_bytes()
    bad = tmp_path / "bad.aedat4"
    bad.write_bytes(data.replace(b'<dv version="2.0">', b'<!DOCTYPE a><dv ver="2.0">', 1))
    with pytest.raises(FormatError, match="DOCTYPE/ENTITY"):
        read_aedat4(bad)
