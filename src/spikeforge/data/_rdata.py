"""A small reader of R's lazy-load databases (``.rdx`` index + ``.rdb`` records), for character vectors only.

R installs a package's data sets as a lazy-load database (R Internals, "Serialization formats" and
"Lazy loading"): ``Rdata.rdx`` is a gzip-compressed serialization of ``list(variables=, references=,
compressed=)``, where ``variables`` maps each name to ``c(offset, length)`` in ``Rdata.rdb``; each record there
is a 4-byte big-endian uncompressed length followed by zlib data (``compressed=TRUE``), or, for
``compressed=2/3``, a type byte (``'Z'`` xz, ``'2'`` bzip2, ``'1'`` zlib, ``'0'`` stored) before the data. The
record is an R XDR serialization (format version 2 or 3).

Only what a text corpus needs is decoded: NULL, symbols, pairlists (attributes), character, logical, integer,
real and generic vectors, and references to symbols. Anything else is refused with :class:`RDataError`, as is a
truncated or oversized file; sizes are checked before data are decompressed (:data:`MAX_FILE_BYTES`,
:data:`MAX_RECORD_BYTES`).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import struct
import zlib
from typing import Any

from spikeforge._core.files import open_regular

__all__ = ["RDataError", "read_capped", "read_rdx", "read_record", "unserialize", "MAX_FILE_BYTES", "MAX_RECORD_BYTES"]

#: Largest ``.rdb``/``.rdx`` file read (the six Austen novels take 1.6 MB compressed).
MAX_FILE_BYTES = 64 * 2**20
#: Largest decompressed record (the longest novel is about 1 MB of text).
MAX_RECORD_BYTES = 64 * 2**20

_NIL, _REF, _SYM, _LIST, _CHAR, _LGL, _INT, _REAL, _STR, _VEC = 254, 255, 1, 2, 9, 10, 13, 14, 16, 19
_SPECIAL_ENVS = {253, 242, 241, 250, 251, 252}  # global/empty/base env, base namespace, missing, unbound


class RDataError(ValueError):
    """A file that is not, or not only, what this reader decodes (the message names the file and the fix)."""


def read_capped(path: str | os.PathLike[str]) -> bytes:
    with open_regular(path, f"{str(path)!r} is not a regular file; give the package's Rdata.rdb/.rdx") as f:
        size = os.fstat(f.fileno()).st_size
        if size > MAX_FILE_BYTES:
            raise RDataError(f"{str(path)!r} has {size} bytes, more than MAX_FILE_BYTES={MAX_FILE_BYTES}")
        return f.read()


def _bounded(decompress: Any, data: bytes, what: str) -> bytes:
    out = decompress(data, MAX_RECORD_BYTES + 1)
    if len(out) > MAX_RECORD_BYTES:
        raise RDataError(f"{what} decompresses to more than MAX_RECORD_BYTES={MAX_RECORD_BYTES} bytes")
    return bytes(out)


def _zlib(data: bytes, limit: int) -> bytes:
    d = zlib.decompressobj()
    out = d.decompress(data, limit)
    if not d.eof and d.unconsumed_tail:
        out += d.decompress(d.unconsumed_tail, 1)  # more than the header says: caught by the length check
    if not d.eof and len(out) <= limit:
        raise RDataError("truncated zlib stream (no end marker)")
    return out


def _stream(factory: Any) -> Any:
    def run(data: bytes, limit: int) -> bytes:
        d = factory()
        out = d.decompress(data, max_length=limit + 1)
        if not d.eof and len(out) <= limit:
            raise RDataError("truncated compressed stream (no end marker)")
        return bytes(out)

    return run


def read_rdx(path: str | os.PathLike[str]) -> dict[str, tuple[int, int, int]]:
    """The index of a lazy-load database: ``{name: (offset, length, compression)}``."""
    raw = read_capped(path)
    if raw[:2] != b"\x1f\x8b":
        raise RDataError(f"{str(path)!r} is not a gzip-compressed R index (wrong magic {raw[:2]!r})")
    try:
        data = _bounded(lambda b, n: gzip.GzipFile(fileobj=io.BytesIO(b)).read(n), raw, str(path))
    except (OSError, EOFError, zlib.error) as e:
        raise RDataError(f"{str(path)!r}: corrupt or truncated gzip data ({e})") from e
    index = unserialize(data, where=str(path))
    if not isinstance(index, RList) or "variables" not in index.names:
        raise RDataError(f"{str(path)!r} is not a lazy-load index (no 'variables' entry)")
    comp = index["compressed"] if "compressed" in index.names else [1]
    comp_level = int(comp[0]) if isinstance(comp, list) and comp and comp[0] is not None else 1
    out = {}
    variables = index["variables"]
    for name, where in zip(variables.names, variables.items, strict=True):
        if not isinstance(where, list) or len(where) != 2:
            raise RDataError(f"{str(path)!r}: entry {name!r} is not an (offset, length) pair")
        out[name] = (int(where[0]), int(where[1]), comp_level)
    return out


def read_record(rdb: bytes, offset: int, length: int, compression: int, *, where: str) -> Any:
    """Decode the record at ``offset`` of ``rdb`` (the ``.rdb`` file's bytes)."""
    if offset < 0 or length < 4 or offset + length > len(rdb):
        raise RDataError(f"{where}: record at {offset}+{length} lies outside the {len(rdb)}-byte file (truncated?)")
    rec = rdb[offset : offset + length]
    size = struct.unpack(">I", rec[:4])[0]
    if size > MAX_RECORD_BYTES:
        raise RDataError(f"{where}: record of {size} bytes, more than MAX_RECORD_BYTES={MAX_RECORD_BYTES}")
    body, kind = rec[4:], "1"
    if compression in (2, 3):
        kind, body = chr(rec[4]), rec[5:]
    methods = {"1": _zlib, "2": _stream(bz2.BZ2Decompressor), "Z": _stream(lzma.LZMADecompressor)}
    try:
        data = body if kind == "0" else methods[kind](body, size)
    except KeyError:
        raise RDataError(f"{where}: unknown record compression {kind!r}") from None
    except (zlib.error, OSError, lzma.LZMAError, EOFError) as e:
        raise RDataError(f"{where}: corrupt compressed record ({e})") from e
    if len(data) != size:
        raise RDataError(f"{where}: record holds {len(data)} bytes, its header says {size} (truncated?)")
    return unserialize(data, where=where)


class RList:
    """A named R list: ``names`` and ``items`` in order; ``obj[name]`` is the first item of that name."""

    def __init__(self, items: list[Any], names: list[str]) -> None:
        self.items, self.names = items, names

    def __getitem__(self, name: str) -> Any:
        return self.items[self.names.index(name)]


class _Reader:
    def __init__(self, data: bytes, where: str) -> None:
        self.data, self.pos, self.where, self.native = data, 0, where, "utf-8"
        self.refs: list[Any] = []

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise RDataError(f"{self.where}: serialization ends early (truncated file?)")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def i32(self) -> int:
        return int(struct.unpack(">i", self.take(4))[0])

    def length(self) -> int:
        n = self.i32()
        if n == -1:
            n = (self.i32() << 32) + self.i32()
        if n < 0 or n > len(self.data):
            raise RDataError(f"{self.where}: bad vector length {n}")
        return n

    def item(self, depth: int = 0) -> Any:
        if depth > 64:
            raise RDataError(f"{self.where}: serialization nested deeper than 64 levels")
        flags = self.i32()
        kind, has_attr, has_tag = flags & 0xFF, bool(flags & (1 << 9)), bool(flags & (1 << 10))
        if kind == _NIL or kind in _SPECIAL_ENVS:
            return None
        if kind == _REF:
            index = flags >> 8 or self.i32()
            if not 0 < index <= len(self.refs):
                raise RDataError(f"{self.where}: reference {index} to an unknown object")
            return self.refs[index - 1]
        if kind == _SYM:
            name = self.item(depth + 1)
            self.refs.append(name)
            return name
        if kind == _LIST:
            return self.pairlist(flags, depth)
        if kind == _CHAR:
            n = self.i32()
            if n == -1:
                return None
            encoding = "latin-1" if flags & (1 << 14) else "utf-8" if flags & (1 << 15 | 1 << 18) else self.native
            try:
                return self.take(n).decode(encoding)
            except (UnicodeDecodeError, LookupError) as e:
                raise RDataError(f"{self.where}: a string is not valid {encoding} ({e})") from e
        if kind in (_LGL, _INT):
            n = self.length()
            values: list[Any] = [v if v != -(2**31) else None for v in struct.unpack(f">{n}i", self.take(4 * n))]
        elif kind == _REAL:
            n = self.length()
            values = list(struct.unpack(f">{n}d", self.take(8 * n)))
        elif kind in (_STR, _VEC):
            values = [self.item(depth + 1) for _ in range(self.length())]
        else:
            raise RDataError(f"{self.where}: R object type {kind} is not supported by this reader (text only)")
        attrs = self.item(depth + 1) if has_attr else None
        del has_tag
        names = attrs.get("names") if isinstance(attrs, dict) else None
        if kind == _VEC and names is not None:
            return RList(values, list(names))
        return values

    def pairlist(self, flags: int, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        while True:
            if flags & (1 << 9):
                self.item(depth + 1)
            tag = self.item(depth + 1) if flags & (1 << 10) else None
            out[str(tag)] = self.item(depth + 1)
            flags = self.i32()
            if flags & 0xFF != _LIST:
                if flags & 0xFF != _NIL:
                    raise RDataError(f"{self.where}: malformed pairlist")
                return out


def unserialize(data: bytes, *, where: str) -> Any:
    """Decode one R XDR serialization (``X\\n`` header, format version 2 or 3)."""
    if data[:2] != b"X\n":
        raise RDataError(f"{where}: not an R XDR serialization (wrong magic {data[:2]!r}); only format 'X' is read")
    r = _Reader(data, where)
    r.pos = 2
    version = r.i32()
    r.i32(), r.i32()
    if version == 3:
        r.native = r.take(r.i32()).decode("ascii", "replace").lower()  # native encoding name
    elif version != 2:
        raise RDataError(f"{where}: R serialization format {version} is not supported (2 or 3 are)")
    return r.item()
