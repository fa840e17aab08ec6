"""Reading a NIR file that may be hostile: the HDF5 structure is checked before one byte of data is read.

A NIR file is an HDF5 file, and HDF5 can make a read touch much more than the file: *external storage*
(a dataset whose bytes live in any other local file, e.g. ``~/.ssh/id_rsa``), *external links* (an object
in another HDF5 file), *virtual datasets* (stitched from other files), *soft links* (a path elsewhere in
the file, which can also form loops), and *bombs*: a chunked dataset that declares a huge shape and stores
only a fill value, or a tiny deflate chunk that inflates to gigabytes. ``nir.read`` follows all of these.

:func:`read_nir` therefore opens the file once and, before reading any data, walks every link with
h5py's low-level API (link info and object headers only) and refuses:

* any link that is not a hard link (soft links, external links, user-defined links);
* any object that is not a group or a dataset (committed datatypes), and any object reached twice
  (hard-link loops and one dataset shared by many nodes);
* datasets with external storage or a virtual layout;
* element types other than bool/int/float numbers and strings (references, compounds, vlen arrays);
* HDF5 filters other than deflate (gzip), shuffle and fletcher32 (no plugin is ever loaded);
* more than ``max_bytes`` of data: the declared size ``prod(shape) * itemsize`` of each dataset, of each
  chunk, and of all datasets together; the file's own size; and each stored deflate chunk is inflated
  (at most its declared size + 1 bytes) to prove it does not expand past its declared size;
* more than :data:`MAX_NIR_OBJECTS` links, or groups nested deeper than :data:`MAX_NIR_DEPTH`.

Only then is the graph built from the same open file, so the file checked is the file read. A refusal is
a :class:`NIRFileError` (a ``ValueError``): one line naming the file, the HDF5 path and the fix.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from spikeforge._core.files import open_regular
from spikeforge.nir._export import require_nir
from spikeforge.nir._import_graph import SUPPORTED_NODES
from spikeforge.nir._mapping import NIRImportError

__all__ = ["read_nir", "check_hdf5", "NIRFileError", "MAX_NIR_BYTES", "MAX_NIR_OBJECTS", "MAX_NIR_DEPTH"]

#: Default cap (bytes) on a NIR file's size and on its declared data (256 MiB: ~64 M float32 weights).
MAX_NIR_BYTES = 256 * 2**20
#: Most HDF5 links (groups + datasets) a NIR file may hold.
MAX_NIR_OBJECTS = 100_000
#: Deepest nesting of HDF5 groups (a NIR subgraph costs two levels).
MAX_NIR_DEPTH = 64

# HDF5 constants (h5py.h5l / h5o / h5d / h5z), spelled out so this module imports h5py only when it reads.
_LINK_HARD = 0
_OBJ_GROUP, _OBJ_DATASET = 0, 1
_LAYOUT_CHUNKED, _LAYOUT_VIRTUAL = 2, 3
_DEFLATE, _SHUFFLE, _FLETCHER32 = 1, 2, 3
_FILTER_NAMES = {1: "deflate", 2: "shuffle", 3: "fletcher32", 4: "szip", 5: "nbit", 6: "scaleoffset", 32000: "lzf"}


class NIRFileError(NIRImportError):
    """The NIR file itself is refused (unsafe HDF5 feature or over the size cap); nothing was read."""


def _fail(where: str, hpath: str, msg: str) -> NIRFileError:
    at = f" at {hpath!r}" if hpath else ""
    return NIRFileError(f"{where}: refused NIR file{at}: {msg}")


def _cap_hint(max_bytes: int) -> str:
    return (
        f"over the cap max_bytes={max_bytes}; if you trust the file, pass a larger max_bytes= "
        f"(spikeforge import --max-bytes)"
    )


def _check_dtype(dt: Any, where: str, hpath: str) -> None:
    import h5py

    if h5py.check_string_dtype(dt) is not None:
        return
    if dt.kind in "biuf" and dt.fields is None and dt.subdtype is None:
        return
    raise _fail(where, hpath, f"element type {dt} is not a number or a string; NIR stores only those")


def _chunks(dsid: Any) -> Iterator[tuple[tuple[int, ...], int, int]]:
    """(offset, filter_mask, stored size) of every stored chunk, from the chunk index only."""
    found: list[tuple[tuple[int, ...], int, int]] = []
    try:
        dsid.chunk_iter(lambda info: found.append((tuple(info.chunk_offset), int(info.filter_mask), int(info.size))))
    except (AttributeError, NotImplementedError):  # HDF5 < 1.12.3: one index query per chunk
        for i in range(dsid.get_num_chunks()):
            info = dsid.get_chunk_info(i)
            found.append((tuple(info.chunk_offset), int(info.filter_mask), int(info.size)))
    return iter(found)


def _check_chunks(dsid: Any, filters: list[int], chunk_bytes: int, where: str, hpath: str) -> None:
    """Inflate each stored deflate chunk into at most ``chunk_bytes + 1`` bytes: a larger one is a bomb.

    HDF5's own deflate filter grows its output buffer until the stream ends, whatever the chunk declares.
    """
    if _DEFLATE not in filters:
        return
    bit = filters.index(_DEFLATE)
    after = filters[bit + 1 :]
    if after not in ([], [_FLETCHER32]) or filters.count(_DEFLATE) > 1:
        raise _fail(where, hpath, "only fletcher32 may follow deflate in a filter pipeline; re-save with nir.write")
    fletcher = len(filters) - 1 if after else -1
    for offset, mask, _size in _chunks(dsid):
        _, raw = dsid.read_direct_chunk(offset)
        if fletcher >= 0 and not mask & (1 << fletcher):
            raw = raw[:-4]  # the checksum HDF5 appends after the other filters
        if mask & (1 << bit):
            continue  # deflate skipped for this chunk: stored raw, already bounded by its stored size
        d = zlib.decompressobj()
        try:
            out = d.decompress(raw, chunk_bytes + 1)
        except zlib.error as e:
            raise _fail(where, hpath, f"corrupt deflate chunk at {offset} ({e})") from None
        if len(out) > chunk_bytes or d.unconsumed_tail:
            raise _fail(
                where, hpath, f"deflate chunk at {offset} inflates past its declared {chunk_bytes} bytes (a bomb)"
            )


def _check_dataset(dsid: Any, where: str, hpath: str, max_bytes: int) -> int:
    """Refuse unsafe storage; return the declared size in bytes."""
    plist = dsid.get_create_plist()
    if plist.get_layout() == _LAYOUT_VIRTUAL:
        raise _fail(where, hpath, "virtual dataset (its data comes from other files); NIR writes none")
    if plist.get_external_count() > 0:
        raise _fail(where, hpath, "external storage (its data lives in another local file); NIR writes none")
    dt = dsid.dtype
    _check_dtype(dt, where, hpath)
    shape = dsid.shape or ()  # None: a null dataspace (no data)
    size = dt.itemsize
    for n in shape:
        size *= int(n)
    if size > max_bytes:
        raise _fail(where, hpath, f"declares {size} bytes (shape {tuple(shape)}, {dt}), {_cap_hint(max_bytes)}")
    filters = [int(plist.get_filter(i)[0]) for i in range(plist.get_nfilters())]
    bad = [f"{_FILTER_NAMES.get(f, 'unknown')} ({f})" for f in filters if f not in (_DEFLATE, _SHUFFLE, _FLETCHER32)]
    if bad:
        raise _fail(where, hpath, f"HDF5 filter {', '.join(bad)} is not read; re-save the graph with nir.write (gzip)")
    if plist.get_layout() == _LAYOUT_CHUNKED:
        chunk_bytes = dt.itemsize
        for n in plist.get_chunk():
            chunk_bytes *= int(n)
        if chunk_bytes > max_bytes:
            raise _fail(where, hpath, f"declares chunks of {chunk_bytes} bytes, {_cap_hint(max_bytes)}")
        _check_chunks(dsid, filters, chunk_bytes, where, hpath)
    return size


def check_hdf5(file: Any, where: str, *, max_bytes: int = MAX_NIR_BYTES) -> int:
    """Walk every link of an open ``h5py.File`` without reading data; refuse what the module docstring lists.

    Returns:
        The declared data size of the file in bytes (at most ``max_bytes``).
    """
    from h5py import h5o

    root = h5o.get_info(file.id)
    seen: set[tuple[int, int]] = {(int(root.fileno), int(root.addr))}  # a link back to the root is a loop too
    total, links = 0, 0
    stack: list[tuple[Any, str, int]] = [(file.id, "", 0)]
    while stack:
        gid, prefix, depth = stack.pop()
        if depth > MAX_NIR_DEPTH:
            raise _fail(where, prefix, f"groups nested deeper than {MAX_NIR_DEPTH} levels")
        names: list[bytes] = []
        gid.links.iterate(names.append)
        for name in names:
            hpath = f"{prefix}/{name.decode('utf8', 'replace')}"
            links += 1
            if links > MAX_NIR_OBJECTS:
                raise _fail(where, "", f"more than {MAX_NIR_OBJECTS} HDF5 objects")
            kind = gid.links.get_info(name).type
            if kind != _LINK_HARD:
                what = {1: "soft link", 64: "external link (to another file)"}.get(kind, f"link of type {kind}")
                raise _fail(where, hpath, f"{what}; NIR files hold only plain groups and datasets")
            oid = h5o.open(gid, name)
            info = h5o.get_info(oid)
            key = (int(info.fileno), int(info.addr))
            if key in seen:
                raise _fail(where, hpath, "an object reached by two paths (hard-link loop or alias); NIR writes none")
            seen.add(key)
            if info.type == _OBJ_GROUP:
                stack.append((oid, hpath, depth + 1))
            elif info.type == _OBJ_DATASET:
                total += _check_dataset(oid, where, hpath, max_bytes)
                if total > max_bytes:
                    raise _fail(where, hpath, f"datasets declare {total} bytes so far, {_cap_hint(max_bytes)}")
            else:
                raise _fail(where, hpath, "a committed datatype; NIR files hold only plain groups and datasets")
    return total


def _open_regular(path: Path, max_bytes: int) -> Any:
    """Open ``path`` without blocking on a FIFO; refuse anything but a regular file within the cap."""
    try:
        fh = open_regular(path, f"{path}: refused NIR file: not a regular file; pass the path of a .nir file")
    except ValueError as err:
        raise NIRFileError(str(err)) from None
    size = os.fstat(fh.fileno()).st_size
    if size > max_bytes:
        fh.close()
        raise NIRFileError(f"{path}: refused NIR file: {size} bytes on disk, {_cap_hint(max_bytes)}")
    return fh


def read_nir(path: str | os.PathLike[str], *, max_bytes: int = MAX_NIR_BYTES) -> Any:
    """Read a ``nir.NIRGraph`` from a file that may be hostile (checked first, see the module docstring).

    Args:
        path: The ``.nir`` (HDF5) file.
        max_bytes: Cap on the file's size and on its declared data, in bytes (default :data:`MAX_NIR_BYTES`,
            256 MiB). Raise it only for a file you trust.

    Returns:
        The graph, as ``nir.read`` would return it.

    Raises:
        ImportError: the ``nir`` extra is not installed.
        FileNotFoundError: no such file.
        NIRFileError: the file uses an unsafe HDF5 feature or exceeds ``max_bytes`` (nothing was read).
        NIRImportError: the file is not a readable NIR graph (the message names the bad nodes).
    """
    nir = require_nir()
    import h5py

    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        raise ValueError(f"max_bytes must be a positive int (bytes), got {max_bytes!r}")
    path = Path(path)
    try:
        fh = _open_regular(path, max_bytes)
    except FileNotFoundError:
        raise FileNotFoundError(f"NIR file {str(path)!r} does not exist") from None
    with fh:
        try:
            f = h5py.File(fh, "r")
        except Exception as err:
            raise NIRImportError(
                f"{str(path)!r} is not a readable NIR graph (not an HDF5 file: {type(err).__name__}: {err}); "
                f"write one with nir.write(path, graph)"
            ) from err
        with f:
            check_hdf5(f, str(path), max_bytes=max_bytes)
            try:
                if "node" not in f:
                    raise KeyError("no 'node' group")
                data = _as_dict(f["node"])
                if "type_check" in data:
                    raise KeyError("a node field named 'type_check' (it clashes with nir's reader option)")
                data["type_check"] = True
                return nir.dict2NIRNode(data)
            except Exception as err:
                raise NIRImportError(
                    f"{str(path)!r} is not a readable NIR graph ({type(err).__name__}: {err}){_diagnose(f)}; "
                    f"supported nodes: {', '.join(SUPPORTED_NODES)}"
                ) from err


def _as_dict(group: Any) -> dict[str, Any]:
    """A checked HDF5 group as the nested dict ``nir.dict2NIRNode`` takes (byte strings decoded as UTF-8)."""
    import h5py

    out: dict[str, Any] = {}
    for name, item in group.items():
        if isinstance(item, h5py.Group):
            out[name] = _as_dict(item)
        else:
            value = item[()]
            out[name] = value.decode("utf8") if isinstance(value, bytes) else value
    return out


def _diagnose(file: Any) -> str:
    """Name the nodes of a checked NIR file that ``nir`` rejected: unknown types, or missing fields."""
    import h5py

    nir = require_nir()
    known = set(nir.ir.__all__) - {"NIRNode", "str2NIRNode", "dict2NIRNode"}
    found: list[str] = []

    def walk(group: Any, prefix: str) -> None:
        for name, node in group.items():
            raw = node["type"][()] if isinstance(node, h5py.Group) and "type" in node else None
            kind = raw.decode("utf8") if isinstance(raw, bytes) else raw
            if kind is None:
                found.append(f"{prefix}{name!r} has no 'type' field")
            elif kind not in known:
                found.append(f"{prefix}{name!r} has unknown type {kind!r}")
            elif kind == "NIRGraph" and "nodes" in node:
                walk(node["nodes"], f"{prefix}{name}.")

    try:
        walk(file["node"]["nodes"], "")
    except Exception:
        return ""
    return ("; node " + "; node ".join(found)) if found else ""
