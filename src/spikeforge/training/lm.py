"""Training recipe of the language models (``spikeforge train --dataset austen --model spikegpt|rwkv``).

A :class:`~spikeforge.training.config.TrainConfig` describes the run: ``hidden`` holds one width per block (all
equal: ``d_model`` and the number of blocks), ``time_steps`` is the context length in tokens, ``epochs`` x
``steps_per_epoch`` the optimiser steps (AdamW, ``lr`` with a linear warm-up (50 steps, at most a tenth of the run) then cosine to 0, ``weight_decay``
on the matrices only, ``grad_clip``), ``batch_size`` the windows per step (random windows of the training text,
fresh state), ``neuron``/``surrogate`` the spiking neuron and its surrogate (``spikegpt``), ``seed`` everything
random. :func:`lm_defaults` holds the values used for the options not given on the command line.

After every epoch the model is scored on the validation text in bits per character (:func:`evaluate_bpc`: the
text cut into ``eval_batch_size`` contiguous streams read with the state carried over, as generation reads) and
``checkpoint.pt`` (last) and ``best.pt`` (best validation) are written with the vocabulary
(:mod:`spikeforge.training.lm_checkpoint`). ``metrics.json`` holds the history.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from spikeforge.data.text import get_corpus
from spikeforge.lm import SpikeGPT
from spikeforge.training.config import TrainConfig
from spikeforge.training.lm_checkpoint import build_lm
from spikeforge.training.lm_checkpoint import save_lm

__all__ = ["lm_defaults", "train_lm", "evaluate_bpc", "LMResult", "DEFAULT_STEPS_PER_EPOCH", "WARMUP_STEPS"]

DEFAULT_STEPS_PER_EPOCH = 200
WARMUP_STEPS = 50
_LN2 = math.log(2.0)


def lm_defaults(model: str) -> dict[str, Any]:
    """The recipe's values of the options not given (``spikeforge train --model spikegpt|rwkv``): 4 blocks of
    width 128 (0.88 M parameters with the 81-character Austen vocabulary), 128-token context, batch 16, lr 2e-3,
    weight decay 0.01, 30 epochs of 200 steps (12.3 M tokens, 3.5 passes over the training text), the arctan
    surrogate of the paper. Sized for the issue's budget (<= 5 M parameters, <= 60 min on 2 CPU cores): one
    training step of 2048 tokens took about 0.6 CPU-seconds on one core of the development machine (both models)."""
    del model
    return {
        "hidden": (128, 128, 128, 128),
        "time_steps": 128,
        "batch_size": 16,
        "lr": 2e-3,
        "weight_decay": 0.01,
        "epochs": 30,
        "surrogate": "atan",
        "eval_batch_size": 64,
    }


@dataclass
class LMResult:
    """What :func:`train_lm` returns (and passes to ``on_train_end``)."""

    config: TrainConfig
    model: SpikeGPT
    history: list[dict[str, Any]]
    best_epoch: int
    val_bpc: float
    test_bpc: float | None
    out_dir: Path
    wall_time_s: float
    train_tokens_per_s: float
    params: int


@torch.no_grad()
def lm_threads(config: TrainConfig, weights: int) -> Any:
    """The thread choice of an LM run (:func:`~spikeforge.training.threads.choose_threads`): ``config.threads``,
    the environment, or the work of one step, ``weights x batch_size x time_steps`` multiply-accumulates."""
    import os

    from spikeforge.training import threads as TH

    work = weights * int(config.batch_size) * int(config.time_steps)
    requested = config.threads
    return TH.choose_threads(
        work, cpus=TH.available_cpus(), requested=requested, env=os.environ, current=torch.get_num_threads()
    )


def evaluate_bpc(model: SpikeGPT, ids: Tensor, *, context: int, streams: int, max_chars: int | None = None) -> float:
    """Bits per character of ``model`` on the token ids ``ids`` ``[N]``: the text is cut into ``streams``
    contiguous pieces read side by side ``context`` tokens at a time with the recurrent state carried over (the
    first character of each piece is not scored: it has no prediction)."""
    if max_chars is not None:
        ids = ids[:max_chars]
    streams = max(1, min(streams, (len(ids) - 1) // 2))
    n = (len(ids) // streams) * streams
    if n < 2:
        raise ValueError("evaluate_bpc needs at least 2 tokens")
    was_training = model.training
    model.eval()
    x = ids[:n].view(streams, -1).t().contiguous()  # [L, streams]
    total, count, state = 0.0, 0, None
    with torch.no_grad():
        for s in range(0, x.shape[0] - 1, context):
            inp, tgt = x[s : s + context], x[s + 1 : s + 1 + context]
            inp = inp[: tgt.shape[0]]
            logits, state = model(inp, state)
            total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), reduction="sum"))
            count += tgt.numel()
    model.train(was_training)
    return total / count / _LN2


def _param_groups(model: SpikeGPT, weight_decay: float) -> list[dict[str, Any]]:
    decay = [p for n, p in model.named_parameters() if p.dim() == 2 and not n.startswith("embedding")]
    rest = [p for n, p in model.named_parameters() if not (p.dim() == 2 and not n.startswith("embedding"))]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def _lr(step: int, total: int, base: float) -> float:
    """Linear warm-up over ``min(WARMUP_STEPS, total // 10)`` steps, then cosine to 0 at ``total``."""
    warm = max(1, min(WARMUP_STEPS, total // 10))
    if step < warm:
        return base * (step + 1) / warm
    return base * 0.5 * (1.0 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


def _batch(data: Tensor, context: int, batch: int, generator: torch.Generator) -> Tensor:
    starts = torch.randint(0, len(data) - context - 1, (batch,), generator=generator)
    return torch.stack([data[s : s + context + 1] for s in starts.tolist()], dim=1)  # [T + 1, B]


def train_lm(
    config: TrainConfig,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    callbacks: Sequence[Any] = (),
    test: bool = True,
    max_eval_chars: int | None = None,
    model_options: dict[str, Any] | None = None,
) -> LMResult:
    """Train ``config`` (a language model on a text corpus) into ``out_dir``; score the best model on the test
    book when ``test``. ``max_eval_chars`` caps the characters scored per evaluation (quick runs, tests);
    ``model_options``: other :class:`~spikeforge.lm.SpikeGPTConfig` fields (stored in the checkpoints)."""
    from spikeforge.training.checkpoint import atomic_write_json
    from spikeforge.training.rundir import RunLock
    from spikeforge.training.rundir import check_out_dir
    from spikeforge.training.rundir import start_out_dir
    from spikeforge.training.threads import use_threads

    out_dir = Path(out_dir)
    check_out_dir(out_dir, False, overwrite)
    corpus = get_corpus(config.dataset, data_dir=config.data_dir)
    torch.manual_seed(config.seed)
    model = build_lm(config, len(corpus.vocab), model_options)
    # one multiply-accumulate per weight per token: the work of a step that sizes the thread count
    threads = lm_threads(config, sum(p.numel() for p in model.parameters() if p.dim() > 1))
    device = torch.device(config.device)
    model.to(device)
    train_ids = corpus.vocab.encode(corpus.train).to(device)
    val_ids = corpus.vocab.encode(corpus.validation).to(device)
    steps = config.steps_per_epoch or DEFAULT_STEPS_PER_EPOCH
    total_steps, context = config.epochs * steps, config.time_steps
    if len(train_ids) <= context + 1:
        raise ValueError(f"--time-steps {context} is longer than the training text; use a shorter context")
    opt = torch.optim.AdamW(_param_groups(model, config.weight_decay), lr=config.lr, betas=(0.9, 0.99))
    gen = torch.Generator().manual_seed(config.seed)
    history: list[dict[str, Any]] = []
    best_bpc, best_epoch, tokens, train_time = math.inf, 0, 0, 0.0
    lock = RunLock(out_dir)
    start = time.perf_counter()
    try:
        with use_threads(threads.threads):
            start_out_dir(out_dir, config.to_dict(), False, overwrite, lock)
            for cb in callbacks:
                cb.on_train_start(config, config.epochs, steps)
            for epoch in range(1, config.epochs + 1):
                t0, losses = time.perf_counter(), []
                model.train()
                for b in range(steps):
                    step = (epoch - 1) * steps + b
                    for group in opt.param_groups:
                        group["lr"] = _lr(step, total_steps, config.lr)
                    batch = _batch(train_ids, context, config.batch_size, gen).to(device)
                    loss = model.loss(batch)
                    if not torch.isfinite(loss):
                        raise ValueError(f"the training loss became {float(loss)} at step {step}; lower --lr")
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    if config.grad_clip is not None:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                    opt.step()
                    losses.append(loss.item())
                    for cb in callbacks:
                        cb.on_batch_end(epoch, b, steps, losses[-1])
                epoch_time = time.perf_counter() - t0
                train_time += epoch_time
                tokens += steps * context * config.batch_size
                val_bpc = evaluate_bpc(
                    model, val_ids, context=context, streams=config.eval_batch_size, max_chars=max_eval_chars
                )
                entry = {
                    "epoch": epoch,
                    "loss": sum(losses) / len(losses),
                    "train_bpc": sum(losses) / len(losses) / _LN2,
                    "val_bpc": val_bpc,
                    "lr": _lr(epoch * steps - 1, total_steps, config.lr),
                    "epoch_time_s": epoch_time,
                    "tokens_seen": tokens,
                }
                history.append(entry)
                save_lm(out_dir / "checkpoint.pt", model, config, corpus.vocab, {"epoch": epoch, "val_bpc": val_bpc})
                if val_bpc < best_bpc:
                    best_bpc, best_epoch = val_bpc, epoch
                    save_lm(out_dir / "best.pt", model, config, corpus.vocab, {"epoch": epoch, "val_bpc": val_bpc})
                atomic_write_json({"history": history, "best_epoch": best_epoch}, out_dir / "metrics.json")
                for cb in callbacks:
                    cb.on_epoch_end(epoch, entry)
            from spikeforge.training.lm_checkpoint import load_lm

            best, _, _ = load_lm(out_dir / "best.pt")
            best.to(device)
            test_bpc = None
            if test:
                test_ids = corpus.vocab.encode(corpus.test).to(device)
                test_bpc = evaluate_bpc(
                    best, test_ids, context=context, streams=config.eval_batch_size, max_chars=max_eval_chars
                )
            result = LMResult(
                config=config, model=best, history=history, best_epoch=best_epoch, val_bpc=best_bpc,
                test_bpc=test_bpc, out_dir=out_dir, wall_time_s=time.perf_counter() - start,
                train_tokens_per_s=tokens / max(train_time, 1e-9), params=sum(p.numel() for p in model.parameters()),
            )  # fmt: skip
            metrics = {"history": history, "best_epoch": best_epoch, "val_bpc": best_bpc, "test_bpc": test_bpc}
            atomic_write_json(metrics, out_dir / "metrics.json")
            for cb in callbacks:
                cb.on_train_end(result)
            return result
    finally:
        lock.release()
