"""Prophesee EVT 2.0 / 3.0 readers: files packed word by word in this test from Prophesee's published format
description (vectors, time wraps, skipped trigger / "others" words), files written by ``expelliarmus`` (a third
party encoder), ``expelliarmus``' decoder on the hand-packed files, and malformed files.

expelliarmus 1.1.12's EVT 3.0 *encoder* writes ``EVT_TIME_HIGH`` only once, at the start (checked below), and
its decoder counts a ``TIME_LOW`` decrease as a wrap in addition to the ``TIME_HIGH`` words, so its EVT 3.0 files and
decoder agree with the format only while every event lies within one 4096 us time-high period; they are compared
there only (the hand-packed files cover time-high changes and wraps).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spikeforge.events import check_events
from spikeforge.events.formats import FormatError
from spikeforge.events.formats import detect_format
from spikeforge.events.formats import read_events
from spikeforge.events.formats import read_evt2
from spikeforge.events.formats import read_evt3

HEADER3 = b"% evt 3.0\n% format EVT3;height=480;width=640\n% end\n"
HEADER2 = b"% date 2024-01-01 00:00:00\n% evt 2.0\n% geometry 640x480\n"


def _evt2(events: list[tuple[int, int, int, int]]) -> tuple[bytes, list[tuple[int, int, int, int]]]:
    """(x, y, t, p) -> EVT 2.0 words: TIME_HIGH (t >> 6, 28 bits, wrapping) whenever it changes, then CD_ON/OFF."""
    words, high = [], None
    for x, y, t, p in events:
        if t >> 6 != high:
            high = t >> 6
            words.append((0x8 << 28) | (high & 0x0FFFFFFF))
        words.append((p << 28) | ((t & 0x3F) << 22) | (x << 11) | y)
        if x == 5:  # an external trigger and an "others" word + continued word, which readers skip
            words += [(0xA << 28) | (3 << 8) | 1, (0xE << 28) | 123, (0xF << 28) | 456]
    return np.array(words, dtype="<u4").tobytes(), events


def _evt3(
    chunks: list[tuple[int, int, int, list[int]]], skipped: bool = True
) -> tuple[bytes, list[tuple[int, int, int, int]]]:
    """(t, y, p, xs) groups -> EVT 3.0 words: TIME_HIGH when t >> 12 changes (12 bits, wrapping), TIME_LOW,
    ADDR_Y, then ADDR_X for a single x or VECT_BASE_X + VECT_12 / VECT_8 masks for several."""
    words, expect, high = [], [], None
    for t, y, p, xs in chunks:
        if t >> 12 != high:
            high = t >> 12
            words.append(0x8000 | (high & 0xFFF))
        words += [0x6000 | (t & 0xFFF), 0x0000 | y]
        if len(xs) == 1:
            words.append(0x2000 | (p << 11) | xs[0])
        else:
            base = xs[0]
            words.append(0x3000 | (p << 11) | base)
            while base <= xs[-1]:
                width = 8 if xs[-1] - base < 8 else 12
                mask = sum(1 << (x - base) for x in xs if base <= x < base + width)
                words.append((0x5000 if width == 8 else 0x4000) | mask)
                base += width
        if skipped and y % 8 == 7:  # trigger, others and continued words are skipped
            words += [0xA000 | 0x101, 0xE000 | 0x5, 0x7000 | 0x3, 0xF000 | 0x123]
        expect += [(x, y, t, p) for x in xs]
    return np.array(words, dtype="<u2").tobytes(), expect


def _check(ev: np.ndarray, expect: list[tuple[int, int, int, int]]) -> None:
    got = [(int(e["x"]), int(e["y"]), int(e["t"]), int(e["p"])) for e in ev]
    assert got == expect


def _chunks(seed: int, n: int = 300, t_start: int = 0, t_step: int = 900) -> list[tuple[int, int, int, list[int]]]:
    rng = np.random.default_rng(seed)
    out, t = [], t_start
    for _ in range(n):
        t += int(rng.integers(0, t_step))
        k = int(rng.integers(1, 30))
        base = int(rng.integers(0, 600))
        xs = sorted({base, *(base + rng.integers(0, 40, k - 1)).tolist()})
        out.append((t, int(rng.integers(0, 480)), int(rng.integers(0, 2)), xs))
    return out


def test_evt3_hand_packed_with_vectors_and_wrap(tmp_path: Path) -> None:
    body, expect = _evt3(_chunks(0, t_start=2**24 - 100_000))  # crosses the 24-bit wrap
    assert any(t >= 2**24 for _, _, t, _ in expect) and any(t < 2**24 for _, _, t, _ in expect)
    path = tmp_path / "rec.raw"
    path.write_bytes(HEADER3 + body)
    assert detect_format(path) == "evt3"
    ev, sensor = read_events(path)
    assert sensor == (640, 480, 2)
    check_events(ev, sensor)
    _check(ev, expect)


def test_evt3_agrees_with_expelliarmus_decoder(tmp_path: Path) -> None:
    ex = pytest.importorskip("expelliarmus", reason="expelliarmus (optional test dependency) is not installed")
    # within one time-high period: expelliarmus' decoder also counts a TIME_LOW decrease as a wrap, on top of
    # the TIME_HIGH that the format sends (so it adds 4096 us twice at a period change); and it rejects
    # EXT_TRIGGER words
    body, expect = _evt3(_chunks(1, n=150, t_start=4096 * 7, t_step=27), skipped=False)
    assert expect[-1][2] < 4096 * 8
    path = tmp_path / "rec.raw"
    path.write_bytes(HEADER3 + body)
    theirs = ex.Wizard(encoding="evt3").read(str(path))
    ev, _ = read_evt3(path)
    for name in ("x", "y", "t", "p"):
        np.testing.assert_array_equal(ev[name].astype(np.int64), theirs[name].astype(np.int64))


def test_evt2_hand_packed_with_wrap(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    t = np.sort(rng.integers(2**34 - 50_000, 2**34 + 50_000, 400))
    events = [(int(a), int(b), int(c), int(d)) for a, b, c, d in zip(rng.integers(0, 640, 400), rng.integers(0, 480, 400), t, rng.integers(0, 2, 400))]  # fmt: skip
    events[10] = (5, events[10][1], events[10][2], events[10][3])  # adds trigger/others words after it
    body, expect = _evt2(events)
    path = tmp_path / "rec.raw"
    path.write_bytes(HEADER2 + body)
    assert detect_format(path) == "evt2"
    ev, sensor = read_events(path)
    assert sensor == (640, 480, 2)
    _check(ev, expect)


@pytest.mark.parametrize("encoding", ["evt2", "evt3"])
def test_files_written_by_expelliarmus(tmp_path: Path, encoding: str) -> None:
    ex = pytest.importorskip("expelliarmus", reason="expelliarmus (optional test dependency) is not installed")
    rng = np.random.default_rng(3)
    n = 3000
    ref = np.zeros(n, dtype=[("t", np.int64), ("y", np.int16), ("x", np.int16), ("p", np.uint8)])
    # EVT2: 20 s of events; EVT3: one 4096 us time-high period (see the module docstring)
    t0, span = (123, 20_000_000) if encoding == "evt2" else (4096 * 1000, 4096)
    ref["t"] = np.sort(t0 + rng.integers(0, span, n))
    ref["x"], ref["y"], ref["p"] = rng.integers(0, 1280, n), rng.integers(0, 720, n), rng.integers(0, 2, n)
    path = tmp_path / "rec.raw"
    ex.Wizard(encoding=encoding).save(str(path), ref)
    ev, sensor = read_events(path, sensor_size=(1280, 720, 2))
    assert sensor == (1280, 720, 2)
    for name in ("x", "y", "t", "p"):
        np.testing.assert_array_equal(ev[name].astype(np.int64), ref[name].astype(np.int64))


def test_expelliarmus_evt3_encoder_writes_time_high_once(tmp_path: Path) -> None:
    """The finding the module docstring relies on (if a new release fixes it, widen the test above)."""
    ex = pytest.importorskip("expelliarmus", reason="expelliarmus (optional test dependency) is not installed")
    ref = np.zeros(2, dtype=[("t", np.int64), ("y", np.int16), ("x", np.int16), ("p", np.uint8)])
    ref["t"] = [3000, 5000]  # stored as TIME_LOW 3000 then 904, with no TIME_HIGH between
    path = tmp_path / "rec.raw"
    ex.Wizard(encoding="evt3").save(str(path), ref)
    data, start = path.read_bytes(), 0
    while data[start : start + 1] == b"%":
        start = data.index(b"\n", start) + 1
    words = np.frombuffer(data[start:], dtype="<u2")
    assert int(((words >> 12) == 0x8).sum()) == 1
    with pytest.raises(FormatError, match=r"backwards"):
        read_evt3(path)


def test_empty_and_single(tmp_path: Path) -> None:
    path = tmp_path / "e.raw"
    path.write_bytes(HEADER3)
    ev, sensor = read_evt3(path)
    assert ev.size == 0 and sensor == (640, 480, 2)
    body, expect = _evt3([(77, 3, 1, [9])])
    path.write_bytes(b"% evt 3.0\n" + body)
    ev, sensor = read_evt3(path)
    _check(ev, expect)
    assert sensor == (10, 4, 2)  # no geometry in the header: from the data


def test_malformed(tmp_path: Path) -> None:
    body3, _ = _evt3(_chunks(4, n=20))
    path = tmp_path / "bad.raw"
    path.write_bytes(HEADER3 + body3[:-1])
    with pytest.raises(FormatError, match=r"not a multiple of the 2-byte EVT3 word; truncated"):
        read_evt3(path)
    path.write_bytes(HEADER3 + body3 + np.array([0x1000], dtype="<u2").tobytes())
    with pytest.raises(FormatError, match=r"type 0x1, not an EVT 3.0 word type"):
        read_evt3(path)
    path.write_bytes(HEADER3 + np.array([0x8000, 0x6005, 0x2001], dtype="<u2").tobytes())
    with pytest.raises(FormatError, match=r"before any EVT_ADDR_Y"):
        read_evt3(path)
    path.write_bytes(HEADER3 + np.array([0x0001, 0x4003], dtype="<u2").tobytes())
    with pytest.raises(FormatError, match=r"before any VECT_BASE_X"):
        read_evt3(path)
    # TIME_HIGH 5 then 3: a decrease of 2 (< Prophesee's 10-unit wrap threshold) is time going backwards
    path.write_bytes(HEADER3 + np.array([0x0001, 0x8005, 0x2001, 0x8003, 0x2002], dtype="<u2").tobytes())
    with pytest.raises(FormatError, match=r"backwards at event 1"):
        read_evt3(path)
    assert read_evt3(path, sort=True)[0]["t"].tolist() == [3 << 12, 5 << 12]
    path.write_bytes(HEADER3 + np.array([0x0001, 0x2000 | 700], dtype="<u2").tobytes())
    with pytest.raises(FormatError, match=r"x=700 outside the sensor .W=640"):
        read_evt3(path)
    path.write_bytes(HEADER3 + body3)
    with pytest.raises(FormatError, match=r"header says EVT3.*format='evt3'"):
        read_evt2(path)
    with pytest.raises(FormatError, match=r"max_events=5"):
        read_evt3(path, max_events=5)
    path.write_bytes(b"% evt 2.1\n" + body3)
    with pytest.raises(FormatError, match=r"EVT 2.1 is not supported"):
        read_evt3(path)
    path.write_bytes(b"% evt 3.0\n% geometry 64xabc\n" + body3)
    with pytest.raises(FormatError, match=r"geometry"):
        read_evt3(path)
    path.write_bytes(b"% evt 3.0 but no newline")
    with pytest.raises(FormatError, match=r"no end"):
        read_evt3(path)
    body2, _ = _evt2([(1, 2, 100, 1)])
    path.write_bytes(HEADER2 + body2[:-1])
    with pytest.raises(FormatError, match=r"4-byte EVT2 word; truncated"):
        read_evt2(path)
    path.write_bytes(HEADER2 + np.array([(0x1 << 28) | (700 << 11)], dtype="<u4").tobytes())
    with pytest.raises(FormatError, match=r"x=700 outside"):
        read_evt2(path)
    path.write_bytes(b"\x00\x01" * 8)  # no header: format cannot be told
    with pytest.raises(FormatError, match=r"cannot tell the format.*format="):
        read_events(path)
    assert read_events(path, "evt3")[0].size == 0  # 0x0... words are ADDR_Y only


def test_evt2_time_high_small_decrease_is_an_error(tmp_path: Path) -> None:
    words = [(0x8 << 28) | 1000, (1 << 28) | (3 << 11) | 4, (0x8 << 28) | 999, (0 << 28) | (5 << 11) | 6]
    path = tmp_path / "b.raw"
    path.write_bytes(HEADER2 + np.array(words, dtype="<u4").tobytes())
    with pytest.raises(FormatError, match=r"backwards at event 1 .t=63936 after t=64000"):
        read_evt2(path)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_chunked_decoding_equals_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    """The decoders run over the data in chunks carrying time, row and vector state across chunk edges: tiny
    chunks give exactly the events of one chunk (wraps, vectors, time-high changes on the edges)."""
    from spikeforge.events.formats import prophesee

    body3, expect3 = _evt3(_chunks(6, n=120, t_start=2**24 - 40_000))
    rng = np.random.default_rng(7)
    t = np.sort(rng.integers(2**34 - 5_000, 2**34 + 5_000, 150))
    events2 = [(int(a), int(b), int(c), int(d)) for a, b, c, d in zip(rng.integers(0, 640, 150), rng.integers(0, 480, 150), t, rng.integers(0, 2, 150))]  # fmt: skip
    body2, expect2 = _evt2(events2)
    (tmp_path / "a.raw").write_bytes(HEADER3 + body3)
    (tmp_path / "b.raw").write_bytes(HEADER2 + body2)
    monkeypatch.setattr(prophesee, "_CHUNK", chunk)
    _check(read_evt3(tmp_path / "a.raw")[0], expect3)
    _check(read_evt2(tmp_path / "b.raw")[0], expect2)
    # errors name the word's index in the whole file, not in its chunk
    (tmp_path / "c.raw").write_bytes(HEADER3 + np.array([0x0001, 0x2001, 0x2002, 0x1000], dtype="<u2").tobytes())
    with pytest.raises(FormatError, match="data word 3 has type 0x1"):
        read_evt3(tmp_path / "c.raw")
