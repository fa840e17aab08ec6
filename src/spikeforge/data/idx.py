"""Reader and writer for the IDX format of MNIST / Fashion-MNIST (plain or gzip-compressed).

Format (LeCun et al., http://yann.lecun.com/exdb/mnist/): a 4-byte magic number
``0x00 0x00 <type> <ndim>``, then ``ndim`` big-endian uint32 dimension sizes, then
``prod(dims)`` big-endian values of ``<type>``: ``0x08`` uint8, ``0x09`` int8, ``0x0B`` int16,
``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64. Compression is detected from the gzip magic bytes
``1f 8b``, not from the file name.

Files are read as a stream, never whole: the header is read (and decompressed) first, checked against the
expected ``shape``/``dtype`` when the caller gives them and against the cap ``max_bytes`` (default
:data:`MAX_IDX_BYTES`, 256 MiB), and then exactly the declared number of data bytes plus one (to detect
trailing data) is read. A gzip bomb (a tiny file that inflates to gigabytes) therefore costs at most the
declared size. Every inconsistency (bad magic, unknown type, unexpected dims, header or data shorter or
longer than the dimensions say, broken gzip stream, a path that is not a regular file) raises
``ValueError`` naming the file.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path
from typing import Any
from typing import Protocol

import numpy as np
from numpy.typing import DTypeLike

from spikeforge._core.files import atomic_write_bytes
from spikeforge._core.files import open_regular

__all__ = ["read_idx", "write_idx", "IDX_TYPES", "MAX_IDX_BYTES"]

#: IDX type code -> big-endian numpy dtype.
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
#: Default cap (bytes) on the data an IDX header may declare (MNIST's training images are 47 MB).
MAX_IDX_BYTES = 256 * 2**20
_GZIP_MAGIC = b"\x1f\x8b"
_FIX = "re-download or re-extract the file"


class _Stream(Protocol):
    """A readable binary stream: a plain file or a ``gzip.GzipFile``."""

    def read(self, size: int = -1, /) -> bytes: ...

    def readinto(self, buffer: Any, /) -> int | None: ...


def _read_upto(f: _Stream, n: int) -> bytes:
    """Up to ``n`` bytes (fewer only at the end of the stream: a gzip read may return less than asked)."""
    parts, got = [], 0
    while got < n:
        chunk = f.read(n - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _read_stream(
    f: _Stream, path: Path, shape: tuple[int, ...] | None, dtype: np.dtype | None, max_bytes: int
) -> np.ndarray:
    """Header, checks, then exactly the declared data bytes and one more (which must not exist)."""
    head = _read_upto(f, 4)
    if len(head) < 4:
        raise ValueError(f"{path}: truncated IDX file ({len(head)} bytes, the magic number alone needs 4); {_FIX}")
    zero, code, ndim = struct.unpack(">HBB", head)
    if zero != 0 or code not in IDX_TYPES:
        raise ValueError(
            f"{path}: bad IDX magic number 0x{head.hex()} (expected 0x0000TTNN with type TT in "
            f"{sorted(f'{c:02x}' for c in IDX_TYPES)}); is this really an IDX file?"
        )
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares 0 dimensions; {_FIX}")
    raw_dims = _read_upto(f, 4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise ValueError(
            f"{path}: truncated IDX header ({4 + len(raw_dims)} bytes, {ndim} dims need {4 + 4 * ndim}); {_FIX}"
        )
    dims = struct.unpack(f">{ndim}I", raw_dims)
    dt = IDX_TYPES[code]
    if (shape is not None and dims != shape) or (dtype is not None and dt.newbyteorder("=") != dtype):
        want = f"{dtype.name if dtype is not None else 'any'} data of shape {shape if shape is not None else 'any'}"
        raise ValueError(
            f"{path}: expected {want}, but the IDX header declares {dt.name} {dims}; "
            "point data_dir at the right files or re-download them"
        )
    nbytes = dt.itemsize
    for d in dims:
        nbytes *= d
    if nbytes > max_bytes:
        raise ValueError(
            f"{path}: IDX header declares {nbytes} data bytes (dims {dims} of {dt.name}), over the cap "
            f"max_bytes={max_bytes}; pass a larger max_bytes= only for a file you trust"
        )
    out = np.empty(dims, dtype=dt)
    view = out.reshape(-1).view(np.uint8).data  # a writable memoryview of the array's bytes
    got = 0
    while got < nbytes:
        n = f.readinto(view[got:])
        if not n:
            break
        got += n
    if got < nbytes or f.read(1):
        what = "truncated" if got < nbytes else "has trailing bytes"
        found = str(got) if got < nbytes else "more"
        raise ValueError(
            f"{path}: IDX file {what}: dims {dims} of {dt.name} need {nbytes} data bytes, found {found}; {_FIX}"
        )
    return out.astype(dt.newbyteorder("="), copy=False)  # a fresh array: no copy for one-byte types


def read_idx(
    path: str | os.PathLike[str],
    *,
    shape: tuple[int, ...] | None = None,
    dtype: DTypeLike | None = None,
    max_bytes: int = MAX_IDX_BYTES,
) -> np.ndarray:
    """Read an IDX file (``.gz`` or uncompressed) into a native-byte-order numpy array, as a capped stream.

    Args:
        path: File to read.
        shape: Expected dims (e.g. ``(10000, 28, 28)``), checked before any data is read; ``None``: any.
        dtype: Expected element type (e.g. ``np.uint8``), checked likewise; ``None``: any.
        max_bytes: Cap on the data bytes the header may declare (default :data:`MAX_IDX_BYTES`, 256 MiB).
            Never more than this plus one byte is decompressed, whatever the file holds.

    Returns:
        A writable array of shape ``dims`` and the file's element type (e.g. uint8 ``[60000, 28, 28]``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: Not a regular file, bad magic number, unknown type code, zero dimensions, dims or type
            other than ``shape``/``dtype``, declared data over ``max_bytes``, a header or payload whose
            length disagrees with the dimensions, or a broken gzip stream; the message names the file.
    """
    path = Path(path)
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        raise ValueError(f"max_bytes must be a positive int (bytes), got {max_bytes!r}")
    want = np.dtype(dtype).newbyteorder("=") if dtype is not None else None
    want_shape = tuple(int(d) for d in shape) if shape is not None else None
    with open_regular(path, f"{path}: not a regular file; point data_dir at a folder holding the IDX files") as raw:
        compressed = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        if not compressed:
            return _read_stream(raw, path, want_shape, want, max_bytes)
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
                return _read_stream(gz, path, want_shape, want, max_bytes)
        except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError; a cut stream is EOFError
            raise ValueError(f"{path}: corrupt or truncated gzip stream ({e}); {_FIX}") from e


def write_idx(path: str | os.PathLike[str], array: np.ndarray, *, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file.

    Args:
        path: Destination file.
        array: Array of a type in :data:`IDX_TYPES` (uint8, int8, int16, int32, float32, float64), ``ndim >= 1``.
        compress: gzip the file; ``None`` compresses iff ``path`` ends in ``.gz``.

    Returns:
        The written path.

    Raises:
        TypeError: Unsupported dtype.
        ValueError: 0-d array or more than 255 dimensions.
    """
    path = Path(path)
    arr = np.asarray(array)
    codes = {dt.newbyteorder("="): c for c, dt in IDX_TYPES.items()}
    code = codes.get(arr.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(
            f"IDX cannot store dtype {arr.dtype}; convert to one of uint8, int8, int16, int32, float32, float64"
        )
    if not 1 <= arr.ndim <= 255:
        raise ValueError(f"IDX needs 1..255 dimensions, got an array of shape {arr.shape}")
    payload = struct.pack(f">HBB{arr.ndim}I", 0, code, arr.ndim, *arr.shape) + arr.astype(IDX_TYPES[code]).tobytes()
    if compress if compress is not None else path.name.endswith(".gz"):
        payload = gzip.compress(payload, mtime=0)
    return atomic_write_bytes(path, payload)
