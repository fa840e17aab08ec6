r"""Prophesee ``.raw`` recordings in EVT 2.0 and EVT 3.0 (Prophesee's public "Event Data Formats" documentation).

A file starts with ASCII header lines that begin with ``%`` (``% evt 3.0``, ``% format EVT3;height=720;width=1280``,
``% geometry 1280x720``, ...; optionally closed by ``% end``), then little-endian words.

**EVT 2.0** (32-bit words, type in bits 31..28): ``CD_OFF`` 0x0 / ``CD_ON`` 0x1: timestamp bits 5..0 in 27..22,
x in 21..11, y in 10..0; ``EVT_TIME_HIGH`` 0x8: timestamp bits 33..6 in 27..0; ``EXT_TRIGGER`` 0xA,
``OTHERS`` 0xE, ``CONTINUED`` 0xF are skipped. The 34-bit time wraps about every 4.8 h: a ``TIME_HIGH`` more than
half its range below the previous one counts as a wrap (``+2**34`` us).

**EVT 3.0** (16-bit words, type in bits 15..12): ``EVT_ADDR_Y`` 0x0 (y in 10..0), ``EVT_ADDR_X`` 0x2 (polarity
bit 11, x in 10..0: one event), ``VECT_BASE_X`` 0x3 (polarity bit 11, base x in 10..0), ``VECT_12`` 0x4 /
``VECT_8`` 0x5 (a bit mask: an event at base x + i for each set bit i, then base x += 12 / 8),
``EVT_TIME_LOW`` 0x6 and ``EVT_TIME_HIGH`` 0x8 (the low / high 12 bits of a 24-bit microsecond time; a
``TIME_HIGH`` resets the low part to 0), ``CONTINUED_4`` 0x7, ``EXT_TRIGGER`` 0xA, ``OTHERS`` 0xE, ``CONTINUED_12``
0xF skipped. Wrap rule (Prophesee's reference decoder): a ``TIME_HIGH`` more than 10 units below the previous one
is a wrap (``+2**24`` us, about every 16.8 s); a smaller decrease is time going backwards (an error unless
``sort``). Other word types (0x1, 0x9, 0xB-0xD) are not EVT 3.0 and raise.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from spikeforge.events.formats._common import MAX_EVENTS
from spikeforge.events.formats._common import MAX_FILE_BYTES
from spikeforge.events.formats._common import FormatError
from spikeforge.events.formats._common import check_cap
from spikeforge.events.formats._common import finish_events
from spikeforge.events.formats._common import read_capped

__all__ = ["read_evt2", "read_evt3", "read_raw_header", "raw_format"]

_MAX_HEADER = 1 << 20
_CHUNK = 1 << 21
"""Data words decoded at a time: the decoder's temporaries stay near 100 bytes x this, whatever the file size."""
_EVT2_TYPES = frozenset({0x0, 0x1, 0x8, 0xA, 0xE, 0xF})
_EVT3_TYPES = frozenset({0x0, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0x8, 0xA, 0xE, 0xF})


def read_raw_header(data: bytes, where: str) -> tuple[dict[str, str], int]:
    """The ``%`` header lines as ``{key: value}`` and the offset of the first data byte."""
    pos = 0
    out: dict[str, str] = {}
    while data[pos : pos + 1] == b"%":
        nl = data.find(b"\n", pos, pos + _MAX_HEADER)
        if nl < 0:
            raise FormatError(f"{where}: a '%' header line has no end (no newline); the file is truncated")
        line = data[pos + 1 : nl].decode("ascii", "replace").strip()
        pos = nl + 1
        if line == "end":
            break
        key, _, value = line.partition(" ")
        out.setdefault(key.lower(), value.strip())
    return out, pos


def raw_format(header: dict[str, str]) -> str | None:
    """``"evt2"`` / ``"evt3"`` from the header's ``evt`` or ``format`` line; None when it names neither."""
    name = header.get("format", "").split(";")[0].strip().upper() or {"2.0": "EVT2", "3.0": "EVT3"}.get(
        header.get("evt", "").strip(), header.get("evt", "").strip()
    )
    return {"EVT2": "evt2", "EVT3": "evt3"}.get(name)


def _geometry(header: dict[str, str], where: str) -> tuple[int, int, int] | None:
    fmt = dict(kv.split("=", 1) for kv in header.get("format", "").split(";")[1:] if "=" in kv)
    if "width" in fmt and "height" in fmt:
        w, h = fmt["width"], fmt["height"]
    elif "geometry" in header:
        w, _, h = header["geometry"].partition("x")
    else:
        return None
    if not (w.strip().isdigit() and h.strip().isdigit()) or int(w) < 1 or int(h) < 1:
        raise FormatError(f"{where}: the header's sensor geometry {w!r} x {h!r} is not two positive integers")
    return int(w), int(h), 2


def _load(path, fmt: str, word: int, max_bytes: int, max_events: int):
    where = str(path)
    data = read_capped(path, max_bytes, "Prophesee .raw")
    check_cap(max_events, "max_events")
    header, start = read_raw_header(data, where)
    named = raw_format(header)
    if named is not None and named != fmt:
        raise FormatError(f"{where}: the header says {named.upper()}, not {fmt.upper()}; read it as format={named!r}")
    if header.get("evt", "").strip() not in ("", "2.0", "3.0") or header.get("format", "").upper().startswith("EVT21"):
        raise FormatError(f"{where}: EVT {header.get('evt') or '2.1'} is not supported; only EVT 2.0 and 3.0")
    body = memoryview(data)[start:]
    if len(body) % word:
        raise FormatError(
            f"{where}: {len(body)} data bytes is not a multiple of the {word}-byte {fmt.upper()} word; truncated file"
        )
    return body, _geometry(header, where), where


def _decode(body: memoryview, word: int, chunk_fn: Callable, state: tuple, where: str, max_events: int):
    """Run ``chunk_fn(words, state, where, first_word_index) -> (columns, state)`` over the data in chunks."""
    n = len(body) // word
    parts, total = [], 0
    for s in range(0, n, _CHUNK):
        words = np.frombuffer(body, dtype="<u4" if word == 4 else "<u2", count=min(_CHUNK, n - s), offset=s * word)
        cols, state = chunk_fn(words.astype(np.int64), state, where, s)
        total += cols["t"].size
        if total > max_events:
            raise FormatError(f"{where} holds more than max_events={max_events} events; pass a larger max_events")
        parts.append({"x": cols["x"].astype(np.int16), "y": cols["y"].astype(np.int16), "t": cols["t"],
                      "p": cols["p"].astype(np.uint8)})  # fmt: skip
    empty = {"x": np.int16, "y": np.int16, "t": np.int64, "p": np.uint8}
    return {k: np.concatenate([q[k] for q in parts]) if parts else np.zeros(0, v) for k, v in empty.items()}


def _unwrap(values: np.ndarray, threshold: int, period: int) -> np.ndarray:
    """Add ``period`` at each drop of more than ``threshold`` (a counter wrap), cumulatively."""
    loops = np.concatenate([[0], np.cumsum(np.diff(values) < -threshold)])
    return values + loops * period


def _continue(raw: np.ndarray, prev_raw: int | None, prev: int, threshold: int, period: int) -> np.ndarray:
    """:func:`_unwrap` of a chunk's time-high values, continuing from the previous chunk's last one."""
    if prev_raw is None:
        return _unwrap(raw, threshold, period)
    return (_unwrap(np.concatenate([[prev_raw], raw]), threshold, period) + (prev - prev_raw))[1:]


def _ffill(mask: np.ndarray) -> np.ndarray:
    """Index of the last ``True`` of ``mask`` at or before each position (-1 before the first)."""
    return np.maximum.accumulate(np.where(mask, np.arange(mask.size), -1))


def _check_types(kind: np.ndarray, allowed: frozenset[int], where: str, fmt: str, at: int) -> None:
    bad = ~np.isin(kind, list(allowed))
    if bad.any():
        i = int(np.argmax(bad))
        raise FormatError(
            f"{where}: data word {at + i} has type {int(kind[i]):#x}, not an {fmt} word type; the file is corrupt "
            "or in another format (pass format='evt2' or 'evt3')"
        )


class _Evt2(NamedTuple):
    th: int | None = None  # the last TIME_HIGH as stored (28 bits)
    high: int = 0  # ... unwrapped (0 before the first)


def _evt2_chunk(words: np.ndarray, st: _Evt2, where: str, at: int) -> tuple[dict[str, np.ndarray], _Evt2]:
    kind = words >> 28
    _check_types(kind, _EVT2_TYPES, where, "EVT 2.0", at)
    is_th = kind == 0x8
    raw = words[is_th] & 0x0FFFFFFF
    high_vals = _continue(raw, st.th, st.high, 1 << 27, 1 << 28)
    high = np.zeros(words.size, dtype=np.int64)
    high[is_th] = high_vals
    last = _ffill(is_th)
    base = np.where(last >= 0, high[np.maximum(last, 0)], st.high)
    cd = kind <= 0x1
    w = words[cd]
    cols = {"x": (w >> 11) & 0x7FF, "y": w & 0x7FF, "t": (base[cd] << 6) | ((w >> 22) & 0x3F), "p": kind[cd]}
    return cols, (_Evt2(int(raw[-1]), int(high_vals[-1])) if raw.size else st)


def read_evt2(
    path: str | os.PathLike[str],
    *,
    sensor_size: tuple[int, int, int] | None = None,
    sort: bool = False,
    max_bytes: int = MAX_FILE_BYTES,
    max_events: int = MAX_EVENTS,
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Read an EVT 2.0 ``.raw`` file into ``(events, sensor_size)`` (default size: the header's geometry)."""
    body, geometry, where = _load(path, "evt2", 4, max_bytes, max_events)
    columns = _decode(body, 4, _evt2_chunk, _Evt2(), where, max_events)
    return finish_events(columns, sensor_size or geometry, where, sort=sort)


class _Evt3(NamedTuple):
    th: int | None = None  # the last TIME_HIGH as stored (12 bits)
    high: int = 0  # ... unwrapped
    low: int = 0  # the current low 12 bits (0 after a TIME_HIGH)
    y: int = -1  # the current row (-1: none yet)
    base: int = -1  # the current vector base x, advanced past the vectors since (-1: none yet)
    pol: int = 0


def _evt3_chunk(words: np.ndarray, st: _Evt3, where: str, at: int) -> tuple[dict[str, np.ndarray], _Evt3]:
    kind, low12 = words >> 12, words & 0xFFF
    _check_types(kind, _EVT3_TYPES, where, "EVT 3.0", at)
    # time: the last TIME_HIGH (unwrapped) in the high bits; the last TIME_LOW only if it came after it
    is_th, is_tl = kind == 0x8, kind == 0x6
    high_vals = _continue(low12[is_th], st.th, st.high, 10, 1 << 12)
    high = np.zeros(words.size, dtype=np.int64)
    high[is_th] = high_vals
    last_th, last_tl = _ffill(is_th), _ffill(is_tl)
    hi = np.where(last_th >= 0, high[np.maximum(last_th, 0)], st.high)
    lo = np.where(
        (last_tl >= 0) & (last_tl > last_th), low12[np.maximum(last_tl, 0)], np.where(last_th >= 0, 0, st.low)
    )
    t_all = (hi << 12) | lo
    last_y = _ffill(kind == 0x0)
    y_all = np.where(last_y >= 0, low12[np.maximum(last_y, 0)] & 0x7FF, st.y)
    # vectors: base x and polarity from the last VECT_BASE_X, advanced by 12 / 8 per vector word since then
    step = np.where(kind == 0x4, 12, np.where(kind == 0x5, 8, 0))
    before = np.cumsum(step) - step  # vector advance strictly before each word
    last_base = _ffill(kind == 0x3)
    lb = np.maximum(last_base, 0)
    base_x = np.where(last_base >= 0, (words[lb] & 0x7FF) + before - before[lb], st.base + before)
    base_pol = np.where(last_base >= 0, (words[lb] >> 11) & 1, st.pol)
    is_vec = step > 0
    no_y = ((kind == 0x2) | is_vec) & (y_all < 0)
    if no_y.any():
        i = at + int(np.argmax(no_y))
        raise FormatError(f"{where}: event word {i} comes before any EVT_ADDR_Y word (no row); the file is corrupt")
    no_base = is_vec & (last_base < 0) & (st.base < 0)
    if no_base.any():
        i = at + int(np.argmax(no_base))
        raise FormatError(f"{where}: vector word {i} comes before any VECT_BASE_X word; the file is corrupt")
    single = np.nonzero(kind == 0x2)[0]
    vec = np.nonzero(is_vec)[0]
    rows, bit = np.nonzero((low12[vec, None] >> np.arange(12)) & 1)
    vw = vec[rows]
    order = np.argsort(np.concatenate([single * 16, vw * 16 + bit]), kind="stable")
    idx = np.concatenate([single, vw])[order]
    cols = {
        "x": np.concatenate([words[single] & 0x7FF, base_x[vw] + bit])[order],
        "y": y_all[idx],
        "t": t_all[idx],
        "p": np.concatenate([(words[single] >> 11) & 1, base_pol[vw]])[order],
    }
    has_base = last_base[-1] >= 0 or st.base >= 0
    end = _Evt3(
        int(low12[is_th][-1]) if high_vals.size else st.th,
        int(high_vals[-1]) if high_vals.size else st.high,
        int(lo[-1]),
        int(y_all[-1]),
        int(base_x[-1] + step[-1]) if has_base else -1,
        int(base_pol[-1]),
    )
    return cols, end


def read_evt3(
    path: str | os.PathLike[str],
    *,
    sensor_size: tuple[int, int, int] | None = None,
    sort: bool = False,
    max_bytes: int = MAX_FILE_BYTES,
    max_events: int = MAX_EVENTS,
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Read an EVT 3.0 ``.raw`` file into ``(events, sensor_size)`` (default size: the header's geometry)."""
    body, geometry, where = _load(path, "evt3", 2, max_bytes, max_events)
    columns = _decode(body, 2, _evt3_chunk, _Evt3(), where, max_events)
    return finish_events(columns, sensor_size or geometry, where, sort=sort)
