"""The one way spikeforge writes a file: atomically, and never through a planted link.

:func:`atomic_write` writes to a fresh temporary file in the target's folder (created with ``O_EXCL`` under a
random name by :func:`tempfile.mkstemp`, so a symlink planted at a predictable temporary name is never
followed), fsyncs it, then ``os.replace``-s it over the target. ``os.replace`` renames over a symlink at the
target path itself instead of writing to where it points, so a link planted in a run directory is replaced,
never its target. An interrupted write leaves the old file whole and no temporary file behind.
"""

from __future__ import annotations

import io
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO
from typing import Any

__all__ = ["atomic_write", "atomic_write_bytes", "save_figure", "open_regular"]


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(f)`` on a new temporary file next to ``path``, then move it to ``path`` in one step."""
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:  # including KeyboardInterrupt: never leave the temporary file behind
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` with :func:`atomic_write`."""
    return atomic_write(path, lambda f: f.write(data))


def save_figure(fig: Any, path: str | os.PathLike[str], **savefig_kwargs: Any) -> Path:
    """Render a matplotlib figure into memory, then write it with :func:`atomic_write_bytes`."""
    buf = io.BytesIO()
    fig.savefig(buf, **savefig_kwargs)
    return atomic_write_bytes(path, buf.getvalue())


def open_regular(path: str | os.PathLike[str], not_regular: str) -> io.BufferedReader:
    """Open ``path`` for reading without blocking on a FIFO; refuse anything but a regular file.

    ``not_regular`` is the message (naming the fix) of the ``ValueError`` raised for a device, a pipe or a folder.
    The caller checks the size on the returned file (``os.fstat(f.fileno()).st_size``), never on a second lookup
    of the path, so the file checked is the file read.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(not_regular)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
