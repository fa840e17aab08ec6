"""The training loop: AdamW + per-batch cosine schedule + gradient clipping + early stopping,
atomic checkpoints, exact resumption, and data parallelism under ``torchrun``."""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from spikeforge.training import distributed as D
from spikeforge.training import resume as R
from spikeforge.training import threads as TH
from spikeforge.training.augment import augment_batch
from spikeforge.training.config import TrainConfig
from spikeforge.training.evaluate import evaluate_tensors
from spikeforge.training.memory import check_buildable
from spikeforge.training.models import SNNClassifier
from spikeforge.training.models import build_model
from spikeforge.training.rundir import RUN_FILES
from spikeforge.training.rundir import RunLock
from spikeforge.training.rundir import check_out_dir
from spikeforge.training.rundir import start_out_dir
from spikeforge.training.splits import check_input_shape
from spikeforge.training.splits import load_splits

__all__ = ["Callback", "TrainResult", "train", "load_splits", "RUN_FILES"]

log = logging.getLogger("spikeforge.train")


class Callback:
    """Hooks called by :func:`train` on rank 0. Override any subset; every method is a no-op here.

    Epochs are counted from 1; ``batch_idx`` from 0.
    """

    def on_train_start(self, config: TrainConfig, n_epochs: int, n_batches: int) -> None:
        """Before the first (or first resumed) epoch."""

    def on_batch_end(self, epoch: int, batch_idx: int, n_batches: int, loss: float) -> None:
        """After each optimiser step; ``loss`` is the batch's mean loss (this rank's share)."""

    def on_epoch_end(self, epoch: int, metrics: dict) -> None:
        """After the epoch's evaluation and checkpoint; ``metrics`` is the epoch's history entry."""

    def on_train_end(self, result: TrainResult) -> None:
        """After training, with the final result (best weights loaded)."""


@dataclass
class TrainResult:
    """Outcome of :func:`train`.

    Attributes:
        config: the run's configuration.
        out_dir: the run directory.
        history: one metrics dict per epoch (see :func:`train`).
        best_epoch: the epoch (from 1) whose weights the run reports (``config.select``: the last epoch, or the
            first epoch with the best validation accuracy).
        test_acc / val_acc: accuracies of those weights.
        wall_time_s: total wall time of the run, summed over resumptions.
        threads: torch's CPU thread count during the run and what set it (a ``ThreadChoice``).
        model: the trained classifier with the selected weights, in eval mode.
        stopped_early: True if early stopping ended the run before ``config.epochs``.
    """

    config: TrainConfig
    out_dir: Path
    history: list[dict[str, Any]]
    best_epoch: int
    test_acc: float
    val_acc: float
    wall_time_s: float
    threads: TH.ThreadChoice
    model: SNNClassifier = field(repr=False)
    stopped_early: bool = False


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(
    config: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    callbacks: Sequence[Callback] = (),
) -> TrainResult:
    """Train ``build_model(config)`` on ``config.dataset`` and write the run into ``out_dir``.

    Per batch: encode the global batch with the run's generator, forward (each rank its strided share
    under ``torchrun``), cross-entropy of the decoded logits, backward (DDP averages gradients),
    clip the global gradient norm to ``grad_clip``, AdamW step, cosine learning-rate step
    (``lr_k = lr (1 + cos(pi k / K)) / 2`` over all ``K = epochs * n_batches`` steps). Per epoch:
    evaluate validation and test, then write ``best.pt`` (the selected weights: every epoch under
    ``config.select="last"``, when validation accuracy improved under ``"best_val"``),
    ``checkpoint.pt`` and ``metrics.json``, each atomically. Stop early after ``patience`` epochs
    without a better validation accuracy.

    Threads: ``config.threads``, or if None the count :func:`spikeforge.training.threads.threads_for` chooses
    (one for small models), for the duration of the call.

    Seeding: python, numpy and torch are seeded with ``config.seed`` (model initialisation, dropout);
    shuffling and random encoders use a dedicated ``torch.Generator`` seeded with ``config.seed``. The
    same config on the same machine and thread count gives bit-identical weights and metrics, and
    ``resume=True`` continues a stopped run to the same result as an uninterrupted one.

    Args:
        config: the run's configuration.
        out_dir: run directory; created if missing. Files: ``config.json``, ``metrics.json``
            (``{"history": [...], "summary": {...}}``), ``checkpoint.pt`` (latest, resumable) and
            ``best.pt`` (the weights ``config.select`` chooses).
        resume: continue from ``out_dir/checkpoint.pt`` (the config must match, except
            ``data_dir``, ``device``, ``num_workers``); starts fresh if there is none and the directory is empty.
        overwrite: replace the run files in a non-empty ``out_dir``.
        callbacks: :class:`Callback` objects, called on rank 0.
    Returns:
        A :class:`TrainResult` with the selected weights loaded. History entries hold
        ``epoch``, ``loss`` (mean training loss), ``train_acc`` (running accuracy over the epoch's
        batches), ``val_loss``, ``val_acc``, ``test_loss``, ``test_acc``, ``lr`` (after the epoch),
        ``firing_rates`` / ``spikes_per_sample`` (on the validation split), ``train_time_s`` and
        ``epoch_time_s`` (training plus evaluation).
    Raises:
        FileExistsError: ``out_dir`` is not empty and neither ``resume`` nor ``overwrite`` is set.
        RunDirBusyError: another training holds ``out_dir`` (:class:`~spikeforge.training.rundir.RunLock`: the
            run directory is locked from the first check until this call returns).
        RunWriteError: a run file could not be written (e.g. a full disk); the message says what is saved.
        ValueError: bad names or values (an invalid ``neuron_kwargs``, a model or batch too large for the
            memory), a damaged checkpoint, or a config that differs from the one being resumed; all found
            before anything is written.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if isinstance(callbacks, Callback) or not isinstance(callbacks, Sequence):
        raise TypeError("callbacks must be a sequence of Callback objects, e.g. [ProgressCallback()]")
    from spikeforge.data import dataset_info

    check_buildable(config, dataset_info(config.dataset))  # neuron_kwargs, sizes: before anything is written
    ctx = D.setup(config.device)
    lock = RunLock(out_dir)
    try:
        choice = TH.threads_for(config)
        with TH.use_threads(choice.threads):
            return _train(config, Path(out_dir), resume, overwrite, list(callbacks), ctx, choice, lock)
    finally:
        lock.release()
        D.cleanup(ctx)


def _train(
    config: TrainConfig, out_dir: Path, resume: bool, overwrite: bool, callbacks: list[Callback], ctx: D.DistContext,
    threads: TH.ThreadChoice, lock: RunLock,
) -> TrainResult:  # fmt: skip
    from spikeforge.data import dataset_info

    t_call = time.perf_counter()
    ckpt_path = out_dir / "checkpoint.pt"
    if ctx.is_main and out_dir.is_dir():
        lock.acquire()  # a second training of this directory is refused here, before it reads anything
    resuming = check_out_dir(out_dir, resume, overwrite)
    state = R.read_resume_state(out_dir, config) if resuming else None

    data = load_splits(config)
    (x_tr, y_tr), (x_val, y_val), (x_te, y_te) = data["train"], data["validation"], data["test"]
    check_input_shape(x_tr, config, "training")  # before a layer fails with a backend's error
    n_train, bs, dev = len(y_tr), config.batch_size, ctx.device
    n_batches = math.ceil(n_train / bs)

    _seed_everything(config.seed)
    model = build_model(config, dataset_info(config.dataset)).to(dev)
    gen = torch.Generator().manual_seed(config.seed)  # shuffling and random encoders
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * n_batches)

    history: list[dict[str, Any]] = []
    best_val, best_epoch, bad_epochs, stopped, wall_before = -1.0, 0, 0, False, 0.0
    best_weights: dict[str, Tensor] | None = None
    if state is not None:
        history, best_val, best_epoch, bad_epochs, stopped, wall_before, best_weights = R.restore(
            state, out_dir, model, optimizer, scheduler, gen
        )
    saved_epoch = len(history)
    D.barrier(ctx)  # every rank has checked the directory before rank 0 changes it
    if ctx.is_main:
        start_out_dir(out_dir, config.to_dict(), resuming, overwrite, lock)
    D.barrier(ctx)
    start_epoch = len(history) + 1
    net = D.wrap_model(model, ctx)
    main_cbs = callbacks if ctx.is_main else []
    for cb in main_cbs:
        cb.on_train_start(config, config.epochs, n_batches)

    def evaluate_split(x: Tensor, y: Tensor, activity: bool = True) -> dict[str, Any]:
        return evaluate_tensors(model, x, y, batch_size=config.eval_batch_size, device=dev, ctx=ctx, activity=activity)

    epoch = start_epoch
    while epoch <= config.epochs and not stopped:
        t0 = time.perf_counter()
        net.train()
        sums = torch.zeros(2, dtype=torch.float64)  # loss sum, correct
        perm = torch.randperm(n_train, generator=gen)
        for b in range(n_batches):
            idx = perm[b * bs : (b + 1) * bs]
            xb = augment_batch(x_tr[idx], config.augment, config.augment_shift, gen)  # identity for "none"
            x_seq = model.encode(xb, generator=gen)  # whole global batch: same draws on every rank
            x_seq, yb = x_seq[:, ctx.rank :: ctx.world_size].to(dev), D.shard(y_tr[idx], ctx).to(dev)
            logits = net(x_seq, encoded=True)
            loss_sum = F.cross_entropy(logits, yb, reduction="sum")
            # DDP averages gradients over ranks: scale so the result is the mean over the global batch.
            loss = loss_sum * (ctx.world_size / len(idx))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            scheduler.step()
            sums[0] += float(loss_sum.detach())
            sums[1] += float((logits.detach().argmax(dim=1) == yb).sum())
            for cb in main_cbs:
                cb.on_batch_end(epoch, b, n_batches, float(loss_sum.detach()) / max(1, yb.numel()))
        sums = D.all_reduce_sum(sums, ctx)
        D.sync_buffers(model, ctx)
        t_train = time.perf_counter() - t0
        # spike counts on validation only (the metrics report those); the test pass keeps the fused kernels
        val, test = evaluate_split(x_val, y_val), evaluate_split(x_te, y_te, activity=False)
        metrics: dict[str, Any] = {
            "epoch": epoch,
            "loss": float(sums[0]) / n_train,
            "train_acc": float(sums[1]) / n_train,
            "val_loss": val["loss"],
            "val_acc": val["accuracy"],
            "test_loss": test["loss"],
            "test_acc": test["accuracy"],
            "lr": float(scheduler.get_last_lr()[0]),
            "firing_rates": val["firing_rates"],
            "spikes_per_sample": val["spikes_per_sample"],
            "train_time_s": t_train,
            "epoch_time_s": time.perf_counter() - t0,
        }
        if not math.isfinite(metrics["loss"]):
            raise ValueError(
                f"training diverged: the loss is {metrics['loss']} in epoch {epoch}; lower lr or set grad_clip"
            )
        history.append(metrics)
        val_better = metrics["val_acc"] > best_val  # patience counts on validation under either rule
        if val_better:
            best_val, bad_epochs = metrics["val_acc"], 0
        else:
            bad_epochs += 1
        improved = val_better if config.select == "best_val" else True  # the selected weights changed
        if improved:
            best_epoch = epoch
            best_weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        stopped = config.patience is not None and bad_epochs >= config.patience and epoch < config.epochs
        if ctx.is_main:
            wall = wall_before + time.perf_counter() - t_call
            last = R.last_state(
                model,
                optimizer,
                scheduler,
                gen,
                history,
                (best_val, best_epoch, bad_epochs, stopped),
                best_weights,
                wall,
            )
            R.save_epoch(
                out_dir, config, epoch, metrics, best_weights=best_weights, improved=improved, last=last,
                saved_epoch=saved_epoch,
            )  # fmt: skip
            saved_epoch = epoch
            R.write_metrics(out_dir, history, None, saved_epoch)
            log.info(
                "epoch %d/%d loss %.4f val %.4f test %.4f",
                epoch,
                config.epochs,
                metrics["loss"],
                metrics["val_acc"],
                metrics["test_acc"],
            )
        D.barrier(ctx)
        for cb in main_cbs:
            cb.on_epoch_end(epoch, metrics)
        epoch += 1

    if best_weights is None:
        raise ValueError(f"{str(ckpt_path)!r} holds no finished epoch; start a new run")
    model.load_state_dict(best_weights)
    model.eval()
    best = history[best_epoch - 1]
    wall = wall_before + time.perf_counter() - t_call
    result = TrainResult(
        config=config,
        out_dir=out_dir,
        history=history,
        best_epoch=best_epoch,
        test_acc=float(best["test_acc"]),
        val_acc=float(best["val_acc"]),
        wall_time_s=wall,
        model=model,
        stopped_early=stopped,
        threads=threads,
    )
    if ctx.is_main:
        summary = {
            "best_epoch": best_epoch,
            "val_acc": result.val_acc,
            "test_acc": result.test_acc,
            "epochs_run": len(history),
            "stopped_early": stopped,
            "wall_time_s": wall,
            "world_size": ctx.world_size,
            "threads": threads.threads,
        }
        R.write_metrics(out_dir, history, summary, saved_epoch)
        for cb in main_cbs:
            cb.on_train_end(result)
    return result
