"""Reader and writer for the IDX format of MNIST / Fashion-MNIST (plain or gzip-compressed).

Format (LeCun et al., http://yann.lecun.com/exdb/mnist/): a 4-byte magic number
``0x00 0x00 <type> <ndim>``, then ``ndim`` big-endian uint32 dimension sizes, then
``prod(dims)`` big-endian values of ``<type>``: ``0x08`` uint8, ``0x09`` int8, ``0x0B`` int16,
``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64. Compression is detected from the gzip magic bytes
``1f 8b``, not from the file name. Every inconsistency (bad magic, unknown type, header or data shorter
or longer than the dimensions say, broken gzip stream) raises ``ValueError`` naming the file.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = ["read_idx", "write_idx", "IDX_TYPES"]

#: IDX type code -> big-endian numpy dtype.
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError; a cut stream is EOFError
        raise ValueError(f"{path}: corrupt or truncated gzip stream ({e}); re-download or re-extract the file") from e


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (``.gz`` or uncompressed) into a native-byte-order numpy array.

    Args:
        path: File to read.

    Returns:
        A writable array of shape ``dims`` and the file's element type (e.g. uint8 ``[60000, 28, 28]``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: Bad magic number, unknown type code, zero dimensions, a header or payload whose
            length disagrees with the dimensions, or a broken gzip stream; the message names the file.
    """
    path = Path(path)
    buf = _read_bytes(path)
    if len(buf) < 4:
        raise ValueError(f"{path}: truncated IDX file ({len(buf)} bytes, the magic number alone needs 4)")
    zero, code, ndim = struct.unpack(">HBB", buf[:4])
    if zero != 0 or code not in IDX_TYPES:
        raise ValueError(
            f"{path}: bad IDX magic number 0x{buf[:4].hex()} (expected 0x0000TTNN with type TT in "
            f"{sorted(f'{c:02x}' for c in IDX_TYPES)}); is this really an IDX file?"
        )
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(buf)} bytes, {ndim} dims need {header})")
    dims = struct.unpack(f">{ndim}I", buf[4:header])
    dtype = IDX_TYPES[code]
    count = int(np.prod(dims, dtype=np.int64))
    expected, found = count * dtype.itemsize, len(buf) - header
    if found != expected:
        what = "truncated" if found < expected else "has trailing bytes"
        raise ValueError(
            f"{path}: IDX file {what}: dims {dims} of {dtype.name} need {expected} data bytes, found {found}"
        )
    data = np.frombuffer(buf, dtype=dtype, count=count, offset=header)
    return data.astype(dtype.newbyteorder("="), copy=True).reshape(dims)


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
    path.write_bytes(payload)
    return path
