"""What :func:`spikeforge.train.train` reads from and writes to a run directory: resuming a run from its
``checkpoint.pt`` (checked, with advice that can be followed) and saving each epoch (a failed write names the
file, the reason and what is still saved)."""

from __future__ import annotations

import errno
import math
from pathlib import Path
from typing import Any
from typing import NamedTuple

import torch
from torch import Tensor
from torch import nn

from spikeforge.training.checked import check_state_dict
from spikeforge.training.checked import match_state_dict
from spikeforge.training.checkpoint import FORMAT
from spikeforge.training.checkpoint import atomic_save
from spikeforge.training.checkpoint import atomic_write_json
from spikeforge.training.checkpoint import read_checkpoint
from spikeforge.training.checkpoint import rng_state
from spikeforge.training.checkpoint import set_rng_state
from spikeforge.training.config import LEGACY_VALUES
from spikeforge.training.config import RESUMABLE_CHANGES
from spikeforge.training.config import TrainConfig
from spikeforge.training.rundir import check_resumable

__all__ = ["RunWriteError", "Restored", "read_resume_state", "restore", "save_epoch", "last_state", "write_metrics"]


class RunWriteError(OSError):
    """A run file could not be written; the message names the file, the reason and what is saved."""


def _start_over(out_dir: Path) -> str:
    return (
        f"start the run again with --overwrite (overwrite=True; copy {str(out_dir / 'best.pt')!r} away first to keep "
        "the best weights so far), or train into a new --out"
    )


def read_resume_state(out_dir: Path, config: TrainConfig) -> dict[str, Any]:
    """The checked ``checkpoint.pt`` of ``out_dir``, whose config must match ``config`` (except the fields of
    :data:`~spikeforge.training.config.RESUMABLE_CHANGES`)."""
    path = out_dir / "checkpoint.pt"
    try:
        state = read_checkpoint(path)
    except ValueError as err:  # keep the diagnosis, replace its generic advice with one that can be followed
        raise ValueError(f"cannot resume {str(out_dir)!r}: {str(err).split('; ')[0]}; {_start_over(out_dir)}") from None
    saved = state["config"]
    if isinstance(saved, dict):  # saved before a field existed: the value it was trained with
        saved = {**LEGACY_VALUES, **saved}
    check_resumable(saved, config.to_dict(), path, RESUMABLE_CHANGES)
    return state


class Restored(NamedTuple):
    """The loop's counters as saved in ``checkpoint.pt``."""

    history: list[dict[str, Any]]
    best_val: float
    best_epoch: int
    bad_epochs: int
    stopped: bool
    wall_before: float
    best_weights: dict[str, Tensor] | None


def restore(
    state: dict[str, Any], out_dir: Path, model: nn.Module, optimizer: Any, scheduler: Any, gen: torch.Generator
) -> Restored:
    """Load ``state`` (a checked ``checkpoint.pt``) into the model, optimizer, scheduler and generator; read the
    best weights from ``best.pt``. Anything missing or of the wrong type becomes one ``ValueError`` with advice."""
    where = f"checkpoint {str(out_dir / 'checkpoint.pt')!r}"
    try:
        weights = check_state_dict(state["model"], where)
        match_state_dict(model, weights, where)
        model.load_state_dict(weights)
        optimizer.load_state_dict(state["optimizer"])
        _check_optimizer_state(optimizer)
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"], gen)
        history = list(state["history"])
        for h in history:
            if not isinstance(h, dict) or not all(isinstance(h.get(k), (int, float)) for k in _HISTORY_NUMBERS):
                raise TypeError(f"each history entry must be a dict with numbers {', '.join(_HISTORY_NUMBERS)}")
        best_val, best_epoch = float(state["best_val_acc"]), int(state["best_epoch"])
        bad_epochs, stopped, wall = int(state["bad_epochs"]), bool(state["stopped"]), float(state["wall_time_s"])
        if not (0 <= best_epoch <= len(history) and math.isfinite(wall)):
            raise ValueError(f"best_epoch {best_epoch} of {len(history)} epochs")
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as err:
        message = " ".join(str(err).split())
        raise ValueError(
            f"cannot resume {str(out_dir)!r}: {where} is damaged or not from spikeforge "
            f"({type(err).__name__}: {message}); {_start_over(out_dir)}"
        ) from None
    best_weights = _best_weights(state, out_dir, model, best_epoch) if best_epoch > 0 else None
    return Restored(history, best_val, best_epoch, bad_epochs, stopped, wall, best_weights)


#: History entries the loop reads back after resuming.
_HISTORY_NUMBERS = ("epoch", "val_acc", "test_acc")


def _check_optimizer_state(optimizer: Any) -> None:
    """Every saved per-parameter tensor (AdamW's moments) has its parameter's shape (a wrong one would fail only
    at the first step, deep inside the optimizer)."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            for name, value in optimizer.state.get(p, {}).items():
                if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != p.shape:
                    raise ValueError(
                        f"optimizer state {name!r} has shape {list(value.shape)}, its weight {list(p.shape)}"
                    )


def _best_weights(state: dict[str, Any], out_dir: Path, model: nn.Module, best_epoch: int) -> dict[str, Tensor]:
    """The best weights so far: ``checkpoint.pt``'s own copy (``best_model``), so a ``best.pt`` written ahead of
    a checkpoint that then failed (a kill or a full disk between the two writes) is never mixed in; checkpoints
    without that copy use ``best.pt`` if it holds exactly ``best_epoch``."""
    if "best_model" in state:
        where = f"checkpoint {str(out_dir / 'checkpoint.pt')!r} (best weights)"
        try:
            weights = check_state_dict(state["best_model"], where)
            match_state_dict(model, weights, where)
        except ValueError as err:
            raise ValueError(f"cannot resume {str(out_dir)!r}: {err}; {_start_over(out_dir)}") from None
        return weights
    best_path = out_dir / "best.pt"
    try:
        best = read_checkpoint(best_path)
        weights = check_state_dict(best["model"], f"checkpoint {str(best_path)!r}")
        match_state_dict(model, weights, f"checkpoint {str(best_path)!r}")
        if best["epoch"] != best_epoch:
            raise ValueError(f"it holds epoch {best['epoch']}, the checkpoint's best epoch is {best_epoch}")
    except (FileNotFoundError, ValueError) as err:
        raise ValueError(
            f"cannot resume {str(out_dir)!r}: its best.pt is missing, damaged or from another epoch "
            f"({str(err).split('; ')[0]}); start the run again with --overwrite (overwrite=True), or train into a "
            "new --out"
        ) from None
    return weights


def _write_error(path: Path, err: OSError, saved: str) -> RunWriteError:
    reason = "no space left on device" if err.errno == errno.ENOSPC else (err.strerror or str(err))
    error = RunWriteError(f"could not write {str(path)!r}: {reason}; {saved}")
    error.errno = err.errno
    return error


def _saved_note(out_dir: Path, saved_epoch: int) -> str:
    if saved_epoch < 1:
        return "no epoch is saved yet; free space and start again with --overwrite"
    return (
        f"{str(out_dir / 'checkpoint.pt')!r} still holds epoch {saved_epoch}: free space, then continue with "
        "--resume (resume=True)"
    )


def save_epoch(
    out_dir: Path,
    config: TrainConfig,
    epoch: int,
    metrics: dict[str, Any],
    *,
    best_weights: dict[str, Tensor] | None,
    improved: bool,
    last: dict[str, Any],
    saved_epoch: int,
) -> None:
    """Write ``best.pt`` (if ``improved``) and ``checkpoint.pt`` (``last``: model, optimizer, counters...) of
    ``epoch``, each atomically; ``saved_epoch`` is the epoch ``checkpoint.pt`` holds before this call."""
    base = {"format": FORMAT, "config": config.to_dict(), "epoch": epoch}
    best_path, ckpt_path = out_dir / "best.pt", out_dir / "checkpoint.pt"
    if improved:
        try:
            atomic_save({**base, "kind": "best", "model": best_weights, "metrics": metrics}, best_path)
        except OSError as err:
            raise _write_error(best_path, err, _saved_note(out_dir, saved_epoch)) from None
    try:
        atomic_save({**base, "kind": "last", "metrics": metrics, **last}, ckpt_path)
    except OSError as err:
        note = _saved_note(out_dir, saved_epoch)
        if improved:
            note += f" (best.pt already holds epoch {epoch})"
        raise _write_error(ckpt_path, err, note) from None


def last_state(
    model: nn.Module, optimizer: Any, scheduler: Any, gen: torch.Generator, history: list[dict[str, Any]],
    best: tuple[float, int, int, bool], best_weights: dict[str, Tensor] | None, wall_time_s: float,
) -> dict[str, Any]:  # fmt: skip
    """What ``checkpoint.pt`` holds besides the format, config, epoch and metrics (see :func:`save_epoch`),
    including its own copy of the best weights so far (``best_model``; resuming never depends on ``best.pt``)."""
    best_val, best_epoch, bad_epochs, stopped = best
    return {
        "model": model.state_dict(),
        "best_model": best_weights,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng_state(gen),
        "history": history,
        "best_val_acc": best_val,
        "best_epoch": best_epoch,
        "bad_epochs": bad_epochs,
        "stopped": stopped,
        "wall_time_s": wall_time_s,
    }


def write_metrics(out_dir: Path, history: list[dict[str, Any]], summary: dict[str, Any] | None, saved: int) -> None:
    """Write ``metrics.json`` (``{"history": [...], "summary": {...}}``) atomically."""
    path = out_dir / "metrics.json"
    try:
        atomic_write_json({"history": history, "summary": summary}, path)
    except OSError as err:
        raise _write_error(path, err, _saved_note(out_dir, saved)) from None
