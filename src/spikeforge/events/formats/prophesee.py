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

import numpy as np

from spikeforge.events.formats._common import MAX_EVENTS
from spikeforge.events.formats._common import MAX_FILE_BYTES
from spikeforge.events.formats._common import FormatError
from spikeforge.events.formats._common import check_cap
from spikeforge.events.formats._common import finish_events
from spikeforge.events.formats._common import read_capped

__all__ = ["read_evt2", "read_evt3", "read_raw_header", "raw_format"]

_MAX_HEADER = 1 << 20
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
    if len(body) // word > 12 * max_events + 16:  # at most 12 events per word (VECT_12)
        raise FormatError(f"{where} may hold more than max_events={max_events} events; pass a larger max_events")
    words = np.frombuffer(body, dtype="<u4" if word == 4 else "<u2").astype(np.int64)
    return words, _geometry(header, where), where


def _unwrap(values: np.ndarray, threshold: int, period: int) -> np.ndarray:
    """Add ``period`` at each drop of more than ``threshold`` (a counter wrap), cumulatively."""
    loops = np.concatenate([[0], np.cumsum(np.diff(values) < -threshold)])
    return values + loops * period


def _ffill(mask: np.ndarray) -> np.ndarray:
    """Index of the last ``True`` of ``mask`` at or before each position (-1 before the first)."""
    return np.maximum.accumulate(np.where(mask, np.arange(mask.size), -1))


def _check_types(kind: np.ndarray, allowed: frozenset[int], where: str, fmt: str) -> None:
    bad = ~np.isin(kind, list(allowed))
    if bad.any():
        i = int(np.argmax(bad))
        raise FormatError(
            f"{where}: data word {i} has type {int(kind[i]):#x}, not an {fmt} word type; the file is corrupt or "
            "in another format (pass format='evt2' or 'evt3')"
        )


def _limit(n: int, max_events: int, where: str) -> None:
    if n > max_events:
        raise FormatError(f"{where} holds {n} events, more than max_events={max_events}; pass a larger max_events")


def read_evt2(
    path: str | os.PathLike[str],
    *,
    sensor_size: tuple[int, int, int] | None = None,
    sort: bool = False,
    max_bytes: int = MAX_FILE_BYTES,
    max_events: int = MAX_EVENTS,
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Read an EVT 2.0 ``.raw`` file into ``(events, sensor_size)`` (default size: the header's geometry)."""
    words, geometry, where = _load(path, "evt2", 4, max_bytes, max_events)
    kind = words >> 28
    _check_types(kind, _EVT2_TYPES, where, "EVT 2.0")
    is_th = kind == 0x8
    high = np.zeros(words.size, dtype=np.int64)
    high[is_th] = _unwrap(words[is_th] & 0x0FFFFFFF, 1 << 27, 1 << 28)
    last = _ffill(is_th)
    base = np.where(last >= 0, high[np.maximum(last, 0)], 0)
    cd = kind <= 0x1
    _limit(int(cd.sum()), max_events, where)
    w = words[cd]
    columns = {"x": (w >> 11) & 0x7FF, "y": w & 0x7FF, "t": (base[cd] << 6) | ((w >> 22) & 0x3F), "p": kind[cd]}
    return finish_events(columns, sensor_size or geometry, where, sort=sort)


def read_evt3(
    path: str | os.PathLike[str],
    *,
    sensor_size: tuple[int, int, int] | None = None,
    sort: bool = False,
    max_bytes: int = MAX_FILE_BYTES,
    max_events: int = MAX_EVENTS,
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Read an EVT 3.0 ``.raw`` file into ``(events, sensor_size)`` (default size: the header's geometry)."""
    words, geometry, where = _load(path, "evt3", 2, max_bytes, max_events)
    kind, low12 = words >> 12, words & 0xFFF
    _check_types(kind, _EVT3_TYPES, where, "EVT 3.0")
    n = words.size
    # time: the last TIME_HIGH (unwrapped) in the high bits; the last TIME_LOW only if it came after it
    is_th, is_tl = kind == 0x8, kind == 0x6
    high = np.zeros(n, dtype=np.int64)
    high[is_th] = _unwrap(low12[is_th], 10, 1 << 12)
    last_th, last_tl = _ffill(is_th), _ffill(is_tl)
    t_all = np.where(last_th >= 0, high[np.maximum(last_th, 0)], 0) << 12
    t_all |= np.where((last_tl >= 0) & (last_tl > last_th), low12[np.maximum(last_tl, 0)], 0)
    last_y = _ffill(kind == 0x0)
    # vectors: base x and polarity from the last VECT_BASE_X, advanced by 12 / 8 per vector word since then
    is_base = kind == 0x3
    step = np.where(kind == 0x4, 12, np.where(kind == 0x5, 8, 0))
    before = np.cumsum(step) - step  # vector advance strictly before each word
    last_base = _ffill(is_base)
    lb = np.maximum(last_base, 0)
    base_x = (words[lb] & 0x7FF) + before - before[lb]
    is_vec = step > 0
    event_words = (kind == 0x2) | is_vec
    if np.any(event_words & (last_y < 0)):
        i = int(np.argmax(event_words & (last_y < 0)))
        raise FormatError(f"{where}: event word {i} comes before any EVT_ADDR_Y word (no row); the file is corrupt")
    if np.any(is_vec & (last_base < 0)):
        i = int(np.argmax(is_vec & (last_base < 0)))
        raise FormatError(f"{where}: vector word {i} comes before any VECT_BASE_X word; the file is corrupt")
    y_all = low12[np.maximum(last_y, 0)] & 0x7FF
    single = np.nonzero(kind == 0x2)[0]
    vec = np.nonzero(is_vec)[0]
    bits = (low12[vec, None] >> np.arange(12)) & 1
    rows, bit = np.nonzero(bits)
    _limit(single.size + rows.size, max_events, where)
    vw = vec[rows]
    idx = np.concatenate([single, vw])
    order = np.argsort(np.concatenate([single * 16, vw * 16 + bit]), kind="stable")
    x = np.concatenate([words[single] & 0x7FF, base_x[vw] + bit])[order]
    p = np.concatenate([(words[single] >> 11) & 1, (words[lb[vw]] >> 11) & 1])[order]
    idx = idx[order]
    columns = {"x": x, "y": y_all[idx], "t": t_all[idx], "p": p}
    return finish_events(columns, sensor_size or geometry, where, sort=sort)
