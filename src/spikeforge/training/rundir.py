"""The run directory of :func:`spikeforge.train.train`: its checks, its start, and the lock that keeps a second
training out of it.

A run directory holds :data:`RUN_FILES`. :func:`check_out_dir` decides, without changing anything, whether a
run is to be started or resumed there; :func:`start_out_dir` creates it only once the data and the model are
ready (so a failed start leaves nothing on disk). While a training runs, :class:`RunLock` holds an exclusive
``flock`` on the directory itself: a second training of the same directory (a second ``--overwrite`` or
``--resume``) is refused at once instead of mixing its files with the first one's. The lock belongs to the
open file description, so the kernel releases it when the process exits, is killed or crashes; nothing is
left on disk (no lock file that a crash could leave behind or that a planted symlink could redirect).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from types import TracebackType
from typing import Any
from typing import TypeVar

__all__ = ["RUN_FILES", "RunLock", "RunDirBusyError", "check_out_dir", "start_out_dir", "check_resumable"]

#: Files :func:`spikeforge.train.train` writes into its output directory.
RUN_FILES = ("config.json", "metrics.json", "checkpoint.pt", "best.pt")
#: The lock file, used only where the file system cannot lock a directory (e.g. some network file systems).
LOCK_FILE = ".spikeforge.lock"
_BUSY = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
E = TypeVar("E", bound=OSError)


def _with_errno(error: E, code: int | None) -> E:
    """``error`` (built from a message alone, so ``str()`` has no ``[Errno N]`` prefix) with ``errno`` set."""
    error.errno = code
    return error


class RunDirBusyError(BlockingIOError):
    """Another process is training in this run directory (exit code 1 on the command line)."""


class RunLock:
    """An exclusive, non-blocking ``flock`` on a run directory, held until :meth:`release` (or the process ends).

    ``RunLock(path).acquire()`` raises :class:`RunDirBusyError` naming the directory when another process holds
    it. Usable as a context manager. Locks are per open file: a second ``RunLock`` on the same directory in the
    same process is refused too (two trainings of one directory in one process mix files just as well).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunLock:
        """Take the lock (idempotent); :class:`RunDirBusyError` when another holder has it. Without ``fcntl``
        (Windows) there is no lock and this does nothing."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return self
        if self._fd is not None:
            return self
        fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno in _BUSY:
                raise self._busy() from None
            fd = self._lock_file()  # this file system cannot lock a directory: lock a file in it instead
        self._fd = fd
        return self

    def _lock_file(self) -> int:
        import fcntl

        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC
        try:
            fd = os.open(self.path / LOCK_FILE, flags, 0o644)
        except OSError as err:  # e.g. ELOOP: a symbolic link planted at the lock file's name, never followed
            message = f"{str(self.path / LOCK_FILE)!r} cannot be opened ({err.strerror}); remove it"
            raise _with_errno(
                OSError(f"cannot lock the run directory {str(self.path)!r}: {message}"), err.errno
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno in _BUSY:
                raise self._busy() from None
            raise _with_errno(
                OSError(f"cannot lock the run directory {str(self.path)!r}: {err.strerror}"), err.errno
            ) from None
        return fd

    def _busy(self) -> RunDirBusyError:
        return _with_errno(
            RunDirBusyError(
                f"another training is running in {str(self.path)!r} (it holds the run directory's lock); wait for "
                "it to finish or stop it, or train into another --out"
            ),
            errno.EWOULDBLOCK,
        )

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the descriptor releases the flock

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def _run_entries(out_dir: Path) -> list[Path]:
    return [p for p in out_dir.iterdir() if p.name != LOCK_FILE]


def check_out_dir(out_dir: Path, resume: bool, overwrite: bool) -> bool:
    """Check the run directory without changing it; returns True if a checkpoint is to be resumed."""
    if out_dir.is_symlink() and not out_dir.is_dir():
        raise NotADirectoryError(f"out_dir {str(out_dir)!r} is a dangling symbolic link; give a directory")
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"out_dir {str(out_dir)!r} is a file; give a directory")
    if resume and (out_dir / "checkpoint.pt").exists():
        return True
    if out_dir.is_dir() and _run_entries(out_dir):
        unstarted = (out_dir / "config.json").exists() and not (out_dir / "checkpoint.pt").exists()
        if unstarted and not overwrite:
            raise FileExistsError(
                f"the run in {str(out_dir)!r} stopped before its first checkpoint (it has config.json but no "
                "checkpoint.pt), so there is nothing to resume; start it again with overwrite=True (--overwrite), "
                "or choose a new directory"
            )
        if resume and not overwrite:
            raise FileExistsError(
                f"cannot resume: {str(out_dir)!r} is not empty but has no checkpoint.pt; "
                "pass overwrite=True (--overwrite) to start over there, or choose a new directory"
            )
        if not overwrite:
            raise FileExistsError(
                f"output directory {str(out_dir)!r} exists and is not empty; pass overwrite=True (--overwrite) "
                "to replace the run in it, or resume=True (--resume) to continue it"
            )
    return False


def start_out_dir(out_dir: Path, config_dict: dict[str, Any], resuming: bool, overwrite: bool, lock: RunLock) -> None:
    """Create the run directory (after the data and model are ready, so a failed start leaves nothing on disk),
    take its lock if not held yet (checking the directory again under the lock: another run may have started
    there meanwhile), clear an overwritten run's files and write ``config.json``."""
    from spikeforge.training.checkpoint import atomic_write_json

    out_dir.mkdir(parents=True, exist_ok=True)
    if not lock.held:
        lock.acquire()
        if check_out_dir(out_dir, resuming, overwrite) != resuming:  # pragma: no cover - a race lost
            raise FileExistsError(f"{str(out_dir)!r} changed while this run started; start it again")
    if not resuming:
        for name in RUN_FILES:
            (out_dir / name).unlink(missing_ok=True)
    for tmp in out_dir.glob(".*.tmp"):  # left by a writer that was killed (SIGKILL) mid-write
        if tmp.is_file() or tmp.is_symlink():
            tmp.unlink(missing_ok=True)
    atomic_write_json(config_dict, out_dir / "config.json")


def check_resumable(saved: Any, current: dict[str, Any], path: Path, resumable_changes: tuple[str, ...]) -> None:
    """Refuse to resume ``path`` (whose config is ``saved``) with a config that differs in a field that changes
    the result."""
    if not isinstance(saved, dict):
        raise ValueError(
            f"cannot resume {str(path)!r}: its 'config' is a {type(saved).__name__}, not a dict; the file is damaged "
            "or not from spikeforge: start the run again with --overwrite (overwrite=True)"
        )
    diff = sorted(k for k in current if k not in resumable_changes and saved.get(k) != current[k])
    if diff:
        detail = ", ".join(f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in diff)
        raise ValueError(
            f"cannot resume {str(path)!r} with a different configuration ({detail}); "
            "use the saved config.json, or start a new run"
        )
