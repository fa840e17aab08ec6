"""Atomic file writes and checkpoint (de)serialisation.

A checkpoint is a plain dict loadable with ``torch.load(weights_only=True)``: tensors, numbers,
strings, lists and dicts only. The configuration is stored as :meth:`TrainConfig.to_dict`, RNG states
as tensors. Files are written to a temporary sibling, flushed and fsync'ed, then renamed over the
target with :func:`os.replace` (atomic on POSIX and Windows), so a reader sees either the previous
complete file or the new complete file, never a partial one, even if the writer is interrupted.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spikeforge._core.files import atomic_write
from spikeforge._core.files import atomic_write_bytes

__all__ = [
    "FORMAT",
    "MAX_CHECKPOINT_BYTES",
    "check_archive",
    "atomic_save",
    "atomic_write_json",
    "load_weights_only",
    "read_checkpoint",
    "rng_state",
    "set_rng_state",
]

FORMAT = "spikeforge-checkpoint-v1"
#: Largest checkpoint read, on disk and unpacked (the sum of its archive members' sizes): 2 GiB. A checkpoint of
#: :data:`spikeforge.training.checked.MAX_PARAMETERS` float32 values with its optimizer state fits.
MAX_CHECKPOINT_BYTES = 2 * 2**30


def atomic_save(obj: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """``torch.save(obj)`` to ``path`` atomically (temporary file, fsync, ``os.replace``)."""
    atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_json(obj: Any, path: str | os.PathLike[str]) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    data = (json.dumps(obj, indent=2, allow_nan=False) + "\n").encode()
    atomic_write_bytes(path, data)


def check_archive(path: Path, what: str = "checkpoint") -> None:
    """Refuse, before ``torch.load`` reads it, a file that is not a zip-format PyTorch archive (what
    ``torch.save`` writes, and so every spikeforge checkpoint) or that is, or unpacks to, more than
    :data:`MAX_CHECKPOINT_BYTES` (a small compressed member declaring gigabytes: a zip bomb).

    Raises:
        ValueError: one line naming the problem.
    """
    import zipfile

    size = path.stat().st_size
    damaged = (
        f"{str(path)!r} could not be loaded as a spikeforge {what}: it is empty, cut short or not a PyTorch file; "
        "use a complete file written by spikeforge (or retrain)"
    )
    if size == 0 or not zipfile.is_zipfile(path):
        raise ValueError(damaged)
    if size > MAX_CHECKPOINT_BYTES:
        raise ValueError(
            f"{str(path)!r} is {size:,} bytes, more than MAX_CHECKPOINT_BYTES = {MAX_CHECKPOINT_BYTES:,} "
            "(spikeforge.training.checkpoint.MAX_CHECKPOINT_BYTES); it is not a spikeforge " + what
        )
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(max(0, info.file_size) for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise ValueError(damaged) from None
    if unpacked > MAX_CHECKPOINT_BYTES:
        raise ValueError(
            f"{str(path)!r} unpacks to {unpacked:,} bytes, more than MAX_CHECKPOINT_BYTES = "
            f"{MAX_CHECKPOINT_BYTES:,}; it is not a spikeforge {what} (refused before unpacking)"
        )


def load_weights_only(path: str | os.PathLike[str], what: str = "checkpoint") -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, with errors that name the fix.

    The file is first checked by :func:`check_archive` (zip format, at most :data:`MAX_CHECKPOINT_BYTES`). A
    file holding anything but tensors and plain values (a foreign pickle, or a file crafted to run code) is
    refused, never loaded unsafely; it is reported as not a spikeforge file, not as a damaged one.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        IsADirectoryError: ``path`` is a directory.
        ValueError: the file could not be loaded safely, is too large, or is empty, cut short or not a PyTorch file.
    """
    import pickle
    import warnings

    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(f"{what} {str(p)!r} is a directory; give the file (e.g. {str(p / 'best.pt')!r})")
    if not p.is_file():
        raise FileNotFoundError(f"{what} {str(p)!r} does not exist")
    check_archive(p, what)
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of files it then refuses
            warnings.simplefilter("ignore")
            return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's message would advise weights_only=False: never pass that on
        raise ValueError(
            f"{str(p)!r} is not a spikeforge {what} or could not be loaded safely: it holds objects other than "
            "tensors and plain values, and spikeforge never runs code from a file; use a file written by spikeforge"
        ) from None
    except Exception as err:  # RuntimeError, EOFError, OSError, zipfile errors...
        raise ValueError(
            f"{str(p)!r} could not be loaded as a spikeforge {what} ({type(err).__name__}): it is empty, cut short "
            "or not a PyTorch file; use a complete file written by spikeforge (or retrain)"
        ) from None


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint dict with :func:`load_weights_only` (``torch.load(weights_only=True)`` on the CPU).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file cannot be loaded safely, is cut short, or is not a spikeforge checkpoint.
    """
    p = Path(path)
    ckpt = load_weights_only(p)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{str(p)!r} is not a spikeforge checkpoint (expected format {FORMAT!r})")
    for key in ("config", "model", "epoch"):
        if key not in ckpt:
            raise ValueError(f"checkpoint {str(p)!r} lacks {key!r}; it is incomplete, retrain")
    for key, kind in (("config", dict), ("model", dict), ("epoch", int)):
        if not isinstance(ckpt[key], kind) or isinstance(ckpt[key], bool):
            raise ValueError(
                f"checkpoint {str(p)!r}: its {key!r} is a {type(ckpt[key]).__name__}, not a {kind.__name__}; "
                "the file is damaged or not from spikeforge; use a checkpoint written by spikeforge"
            )
    return ckpt


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    """The python, numpy, torch (CPU, and CUDA if initialised) and trainer-generator RNG states as tensors."""
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state(legacy=True)
    out: dict[str, Any] = {
        "python": torch.tensor(py_state, dtype=torch.int64),
        "python_version": int(py_version),
        "python_gauss": py_gauss,
        "numpy": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
        "numpy_name": str(np_name),
        "numpy_pos": int(np_pos),
        "numpy_has_gauss": int(np_has_gauss),
        "numpy_gauss": float(np_gauss),
        "torch": torch.get_rng_state(),
        "generator": generator.get_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    """Restore what :func:`rng_state` saved."""
    py = tuple(int(v) for v in state["python"].tolist())
    random.setstate((state["python_version"], py, state["python_gauss"]))
    np.random.set_state(
        (
            state["numpy_name"],
            state["numpy"].numpy().astype(np.uint32),
            state["numpy_pos"],
            state["numpy_has_gauss"],
            state["numpy_gauss"],
        )
    )
    torch.set_rng_state(state["torch"])
    generator.set_state(state["generator"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
