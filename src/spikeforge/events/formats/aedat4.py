r"""AEDAT 4.0 (iniVation DV): the event streams of a ``.aedat4`` recording.

Layout (iniVation's AEDAT4 file format description and the ``dv-processing`` FlatBuffers schemas)::

    "#!AER-DAT4.0\r\n"
    uint32 n, then an n-byte FlatBuffer ``IOHeader`` (identifier "IOHE"): compression (int32 enum: 0 none,
        1 LZ4, 2 LZ4 high, 3 Zstd, 4 Zstd high), dataTablePosition (int64, -1 if absent), infoNode (string: XML
        naming each output stream's id, ``typeIdentifier`` and ``sizeX``/``sizeY``)
    packets until dataTablePosition (or the end): int32 streamID, int32 size, then ``size`` bytes: one
        size-prefixed FlatBuffer, compressed as one LZ4 / Zstd frame unless compression is 0. An event stream
        (typeIdentifier "EVTS") holds ``EventPacket { elements: [Event] }`` with the 16-byte struct
        ``Event { int64 timestamp; int16 x; int16 y; bool polarity; }`` (timestamps in microseconds).

Decompression needs the optional packages ``lz4`` / ``zstandard`` (imported only for compressed files). The
FlatBuffers are decoded here with bounds checks on every offset, so a corrupt file raises :class:`FormatError`.
"""

from __future__ import annotations

import io
import os
import struct
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np

from spikeforge.events.formats._common import MAX_EVENTS
from spikeforge.events.formats._common import MAX_FILE_BYTES
from spikeforge.events.formats._common import FormatError
from spikeforge.events.formats._common import check_cap
from spikeforge.events.formats._common import finish_events
from spikeforge.events.formats._common import read_capped

__all__ = ["read_aedat4", "aedat4_streams", "MAGIC", "EVENT_STRUCT"]

MAGIC = b"#!AER-DAT4.0\r\n"
EVENT_STRUCT = np.dtype({"names": ["t", "x", "y", "p"], "formats": ["<i8", "<i2", "<i2", "u1"], "offsets": [0, 8, 10, 12], "itemsize": 16})  # fmt: skip
"""The FlatBuffers ``Event`` struct as stored (little endian, 8-byte aligned: 16 bytes)."""
_COMPRESSION = {0: "none", 1: "lz4", 2: "lz4", 3: "zstd", 4: "zstd"}


def _unpack(fmt: str, buf: bytes, off: int, where: str) -> Any:
    if off < 0 or off + struct.calcsize(fmt) > len(buf):
        raise FormatError(
            f"{where}: an offset points outside its buffer (byte {off} of {len(buf)}); the file is corrupt"
        )
    return struct.unpack_from(fmt, buf, off)[0]


def _root(buf: bytes, ident: bytes, where: str) -> tuple[int, list[int]]:
    """The root table of a FlatBuffer (identifier checked): its position and the vtable's field offsets."""
    if len(buf) < 8 or buf[4:8] != ident:
        raise FormatError(f"{where}: expected a FlatBuffer with identifier {ident.decode()!r}, got {buf[4:8]!r}")
    table = _unpack("<I", buf, 0, where)
    vtable = table - _unpack("<i", buf, table, where)
    size = _unpack("<H", buf, vtable, where)
    if size < 4 or size % 2:
        raise FormatError(f"{where}: invalid FlatBuffer vtable size {size}; the file is corrupt")
    return table, [_unpack("<H", buf, vtable + 4 + 2 * i, where) for i in range((size - 4) // 2)]


def _field(fields: list[int], i: int) -> int | None:
    return fields[i] if i < len(fields) and fields[i] else None


def _vector(buf: bytes, table: int, fields: list[int], i: int, where: str) -> tuple[int, int]:
    """(start, length) of the vector (or string) in field ``i``; (0, 0) when absent."""
    off = _field(fields, i)
    if off is None:
        return 0, 0
    pos = table + off
    start = pos + _unpack("<I", buf, pos, where)
    return start + 4, _unpack("<I", buf, start, where)


def _header(data: bytes, where: str) -> tuple[int, int, str, int]:
    if not data.startswith(MAGIC):
        if data.startswith(b"#!AER-DAT"):
            version = data[9:12].decode("ascii", "replace")
            raise FormatError(f"{where}: AEDAT version {version} is not supported; only AEDAT 4.0 files are read")
        raise FormatError(f"{where}: not an AEDAT4 file (it does not start with {MAGIC!r})")
    n = _unpack("<I", data, len(MAGIC), where)
    start = len(MAGIC) + 4
    if start + n > len(data):
        raise FormatError(f"{where}: the IOHeader of {n} bytes runs past the end of the file; the file is truncated")
    buf = data[start : start + n]
    table, fields = _root(buf, b"IOHE", f"{where} (IOHeader)")
    off = _field(fields, 0)
    compression = _unpack("<i", buf, table + off, where) if off else 0
    off = _field(fields, 1)
    table_pos = _unpack("<q", buf, table + off, where) if off else -1
    s, length = _vector(buf, table, fields, 2, where)
    if s + length > len(buf):
        raise FormatError(f"{where}: the IOHeader's info string runs past its buffer; the file is corrupt")
    if compression not in _COMPRESSION:
        raise FormatError(f"{where}: unknown compression type {compression} (known: 0-4)")
    return compression, table_pos, buf[s : s + length].decode("utf-8", "replace"), start + n


def _streams(info: str, where: str) -> dict[int, dict[str, str]]:
    if "<!DOCTYPE" in info or "<!ENTITY" in info:  # dv never writes them; refuse entity expansion outright
        raise FormatError(f"{where}: the IOHeader's info XML declares a DOCTYPE/ENTITY; the file is not from dv")
    try:
        root = ET.fromstring(info)
    except ET.ParseError as exc:
        raise FormatError(f"{where}: the IOHeader's info XML does not parse ({exc}); the file is corrupt") from None
    out: dict[int, dict[str, str]] = {}
    for node in root.iter("node"):
        parts = (node.get("path") or "").strip("/").split("/")
        if len(parts) == 2 and parts[0] == "outInfo" and parts[1].isdigit():
            attrs = {a.get("key", ""): a.text or "" for a in node.iter("attr")}
            out[int(parts[1])] = attrs
    return out


def aedat4_streams(path: str | os.PathLike[str], *, max_bytes: int = MAX_FILE_BYTES) -> dict[int, dict[str, str]]:
    """The output streams declared in an AEDAT4 file's header: ``{id: {"typeIdentifier": ..., "sizeX": ...}}``."""
    data = read_capped(path, max_bytes, "AEDAT4")
    return _streams(_header(data, str(path))[2], str(path))


def _decompress(blob: bytes, kind: str, cap: int, where: str) -> bytes:
    """One packet's frame, decompressed to at most ``cap`` bytes; a frame cut short or corrupt raises."""
    if kind == "none":
        return blob
    try:
        if kind == "lz4":
            import lz4.frame

            dec = lz4.frame.LZ4FrameDecompressor()
            out = dec.decompress(blob, max_length=cap + 1)
            complete = dec.eof
        else:
            import zstandard

            declared = zstandard.frame_content_size(blob)
            if declared > cap:
                raise FormatError(f"{where}: a packet declares {declared} bytes, past the max_events budget")
            reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob))
            parts, total = [], 0
            while total <= cap and (part := reader.read(min(cap + 1 - total, 1 << 20))):
                parts.append(part)
                total += len(part)
            out = b"".join(parts)
            complete = declared < 0 or len(out) == declared
    except ImportError:
        pkg = "lz4" if kind == "lz4" else "zstandard"
        raise ImportError(f"reading {kind}-compressed AEDAT4 needs the '{pkg}' package: pip install {pkg}") from None
    except FormatError:
        raise
    except Exception as exc:  # the codecs raise their own error types
        raise FormatError(f"{where}: a {kind} packet does not decompress ({exc}); the file is corrupt") from None
    if len(out) > cap:
        raise FormatError(f"{where}: a packet decompresses past the max_events budget; pass a larger max_events")
    if not complete:
        raise FormatError(f"{where}: a {kind} packet ends inside its frame; the file is truncated or corrupt")
    return bytes(out)


def read_aedat4(
    path: str | os.PathLike[str],
    *,
    stream: int | None = None,
    sensor_size: tuple[int, int, int] | None = None,
    sort: bool = False,
    max_bytes: int = MAX_FILE_BYTES,
    max_events: int = MAX_EVENTS,
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Read the events of one event stream of an AEDAT4 file into ``(events, sensor_size)``.

    Args:
        stream: the event stream's id; default: the file's only event stream (several raise, naming their ids).
        sensor_size: default ``(sizeX, sizeY, 2)`` from the header (from the data if the header has none).
        sort: sort events whose timestamps go backwards instead of raising.
    Timestamps are the file's (microseconds since the Unix epoch for a camera recording), not shifted to 0.
    """
    where = str(path)
    data = read_capped(path, max_bytes, "AEDAT4")
    max_events = check_cap(max_events, "max_events")
    compression, table_pos, info, pos = _header(data, where)
    streams = _streams(info, where)
    events_ids = sorted(i for i, a in streams.items() if a.get("typeIdentifier") == "EVTS")
    if stream is None:
        if len(events_ids) != 1:
            raise FormatError(
                f"{where}: {'no event stream' if not events_ids else f'several event streams {events_ids}'} "
                f"in the header (streams: { {i: a.get('typeIdentifier') for i, a in streams.items()} }); "
                + ("pass stream=<id>" if events_ids else "this recording has no events")
            )
        stream = events_ids[0]
    elif stream not in events_ids:
        raise ValueError(f"stream {stream!r} is not an event stream of {where}; its event streams are {events_ids}")
    if sensor_size is None and "sizeX" in streams[stream] and "sizeY" in streams[stream]:
        try:
            sensor_size = (int(streams[stream]["sizeX"]), int(streams[stream]["sizeY"]), 2)
        except ValueError:
            raise FormatError(f"{where}: stream {stream} has a non-integer sizeX/sizeY in its header") from None
    end = len(data) if table_pos < 0 else table_pos
    if not pos <= end <= len(data):
        raise FormatError(f"{where}: dataTablePosition {table_pos} lies outside the file ({len(data)} bytes)")
    chunks, total = [], 0
    while pos < end:
        if pos + 8 > end:
            raise FormatError(f"{where}: a packet header at byte {pos} is cut off; the file is truncated")
        sid, size = struct.unpack_from("<ii", data, pos)
        if size < 0 or pos + 8 + size > end:
            raise FormatError(f"{where}: the packet at byte {pos} ({size} bytes) runs past the end; truncated file")
        if sid == stream:
            buf = _decompress(data[pos + 8 : pos + 8 + size], _COMPRESSION[compression], 16 * max_events + 64, where)
            buf = buf[4 : 4 + _unpack("<I", buf, 0, where)]
            table, fields = _root(buf, b"EVTS", f"{where} (packet at byte {pos})")
            start, n = _vector(buf, table, fields, 0, where)
            if start + 16 * n > len(buf):
                raise FormatError(f"{where}: the packet at byte {pos} claims {n} events beyond its buffer; corrupt")
            total += n
            if total > max_events:
                raise FormatError(f"{where} holds more than max_events={max_events} events; pass a larger max_events")
            chunks.append(np.frombuffer(buf, dtype=EVENT_STRUCT, count=n, offset=start))
        pos += 8 + size
    ev = np.concatenate(chunks) if chunks else np.empty(0, dtype=EVENT_STRUCT)
    columns = {k: ev[k] for k in ("x", "y", "t", "p")}
    return finish_events(columns, sensor_size, where, sort=sort)
