"""Spiking transformers on Fashion-MNIST: Spikformer, the Spike-driven Transformer (SDT) and SDT's non-spiking twin.

For each model, in one run: test accuracy, training time, spikes and energy per inference (``cmos45`` and
``loihi`` presets, from :func:`spikeforge.energy.count` on the BatchNorm-folded network), and optionally the time
of one training step. Training mirrors :func:`spikeforge.train.train`'s recipe (cross-entropy of the decoded
logits, AdamW, the learning rate cosine-annealed per batch to 0, gradient-norm clipping), on an optional subset,
and reports the test accuracy after the last epoch (no validation-based model selection). The spiking models run
``T = --time-steps`` steps; the twin is trained with the same recipe (same ``T``: its body sees the same input at
every step) and priced on one step, the cost of the ANN it is. The full recorded run::

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/transformers.py --epochs 10 --threads 2 --json results/transformers.json

A smoke run (1 epoch on 2000 training images) and the training-step timing of SDT vs the twin at T = 4, B = 64::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/transformers.py --epochs 1 --train-subset 2000 --test-subset 1000
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/transformers.py --step-time 10 --models sdt vit-twin
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from spikeforge._core.files import atomic_write_bytes
from spikeforge.data import dataset_info
from spikeforge.energy import count
from spikeforge.energy import estimate
from spikeforge.models import build_model
from spikeforge.train import TrainConfig
from spikeforge.train import load_splits
from spikeforge.transformer import fold_batchnorm

MODELS = ("spikformer", "sdt", "vit-twin")
CHIPS = ("cmos45", "loihi")


def config_for(model: str, args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        dataset="fashion_mnist", model=model, time_steps=args.time_steps, batch_size=args.batch_size, lr=args.lr,
        epochs=args.epochs, weight_decay=args.weight_decay, seed=args.seed, data_dir=args.data_dir,
        surrogate=args.surrogate,
        transformer_kwargs=json.loads(args.transformer_kwargs) if args.transformer_kwargs else None,
        neuron_kwargs=json.loads(args.neuron_kwargs) if args.neuron_kwargs else None,
    )  # fmt: skip


def _subset(xy: tuple[torch.Tensor, torch.Tensor], n: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = xy
    if n is None or n >= len(y):
        return x, y
    idx = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:n]
    return x[idx], y[idx]


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 500) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            correct += int((model(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum())
    return correct / len(y)


def fit(
    model: torch.nn.Module, config: TrainConfig, x: torch.Tensor, y: torch.Tensor, *, minutes: float | None = None,
    test: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[list[float], list[dict[str, float]]]:
    """Train in place with the trainer's recipe; returns the mean loss per epoch and a log per epoch.

    ``minutes``: a wall-clock budget of training (evaluation excluded): the learning rate follows the cosine of the
    elapsed fraction of the budget, and training stops at the first step past it (``config.epochs`` is then only
    an upper bound). ``test``: evaluate on it after every epoch, the clock paused (a learning curve; the reported
    accuracy is still the one after the last step, never a selected epoch)."""
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    bs = config.batch_size
    n_batches = math.ceil(len(y) / bs)
    total, k = config.epochs * n_batches, 0
    budget = None if minutes is None else minutes * 60.0
    gen = torch.Generator().manual_seed(config.seed)
    losses: list[float] = []
    log: list[dict[str, float]] = []
    train_s, done = 0.0, False
    for epoch in range(config.epochs):
        model.train()
        perm = torch.randperm(len(y), generator=gen)
        run, n = 0.0, 0
        t0 = time.perf_counter()
        for b in range(n_batches):
            idx = perm[b * bs : (b + 1) * bs]
            loss = F.cross_entropy(model(x[idx], generator=gen), y[idx])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip or math.inf)
            opt.step()
            k += 1
            elapsed = train_s + time.perf_counter() - t0
            frac = k / total if budget is None else min(1.0, elapsed / budget)
            for g in opt.param_groups:
                g["lr"] = config.lr * (1 + math.cos(math.pi * frac)) / 2
            run += float(loss.detach())
            n += 1
            if budget is not None and elapsed >= budget:
                done = True
                break
        train_s += time.perf_counter() - t0
        losses.append(run / max(n, 1))
        entry = {"epoch": epoch + 1, "steps": k, "train_s": train_s, "loss": losses[-1]}
        if test is not None:
            entry["test_acc"] = accuracy(model, *test)
            print(f"  epoch {epoch + 1}: {k} steps, {train_s:.0f} s, loss {losses[-1]:.4f}, test {100 * entry['test_acc']:.2f} %",
                  file=sys.stderr, flush=True)  # fmt: skip
        log.append(entry)
        if done:
            break
    return losses, log


def energy(model: Any, x: torch.Tensor, *, steps: int | None) -> dict[str, Any]:
    """Counts of the BN-folded network on encoded ``x`` (first ``steps`` steps if given), priced per chip."""
    model.eval()
    x_seq = model.encode(x)
    if steps is not None:
        x_seq = x_seq[:steps]
    counts = count(fold_batchnorm(model.network), x_seq)
    reports = {chip: estimate(counts, chip) for chip in CHIPS}
    return {
        "time_steps": int(x_seq.shape[0]),
        "spikes": counts.per_inference("spikes"),
        "synops": counts.per_inference("synops"),
        "macs": counts.per_inference("macs"),
        **{f"energy_{chip}_j": r.total_j for chip, r in reports.items()},
    }


def step_time(model_name: str, args: argparse.Namespace, n: int, time_steps: int) -> float:
    """Median seconds of one training step (forward, loss, backward, AdamW) at ``B = --batch-size``, after 2
    warm-up steps (the first compiles the Numba kernels)."""
    config = replace(config_for(model_name, args), time_steps=time_steps)
    torch.manual_seed(0)
    model = build_model(config, dataset_info("fashion_mnist")).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    x, y = (
        torch.rand(config.batch_size, 1, 28, 28, generator=gen),
        torch.randint(0, 10, (config.batch_size,), generator=gen),
    )
    times = []
    for i in range(n + 2):
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run_model(name: str, args: argparse.Namespace, splits: dict[str, Any]) -> dict[str, Any]:
    config = config_for(name, args)
    torch.manual_seed(config.seed)
    model = build_model(config, dataset_info("fashion_mnist"))
    x, y = _subset(splits["train"], args.train_subset, config.seed)
    xt, yt = _subset(splits[args.eval_split], args.test_subset, 1)
    losses, log = fit(model, config, x, y, minutes=args.minutes, test=(xt, yt) if args.eval_each_epoch else None)
    train_s = log[-1]["train_s"]
    acc = accuracy(model, xt, yt)
    e = energy(model, xt[: args.energy_samples], steps=1 if name == "vit-twin" else None)
    return {"model": name, "train_images": len(y), "test_images": len(yt), "eval_split": args.eval_split, "epochs": len(log), "steps": log[-1]["steps"],
            "minutes": args.minutes, "log": log, "losses": losses, "test_acc": acc, "train_s": train_s, **e, "config": config.to_dict()}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--minutes", type=float, default=None,
                   help="training wall-clock budget per model: cosine learning rate over the budget, stop when spent "
                   "(--epochs is then an upper bound)")  # fmt: skip
    p.add_argument("--eval-each-epoch", action="store_true",
                   help="test accuracy after every epoch (clock paused; the last one is reported)")  # fmt: skip
    p.add_argument("--eval-split", choices=("test", "validation"), default="test",
                   help="the split scored (validation: 5000 images held out of training, for choosing settings)")  # fmt: skip
    p.add_argument("--train-subset", type=int, default=None, help="train on this many images (default: all)")
    p.add_argument("--test-subset", type=int, default=None, help="test on this many images (default: all 10000)")
    p.add_argument("--energy-samples", type=int, default=200, help="test images counted for spikes and energy")
    p.add_argument("--time-steps", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--transformer-kwargs", default=None, help='JSON, e.g. {"dim": 64, "depth": 2}')
    p.add_argument(
        "--neuron-kwargs", default=None, help='JSON LIF options over the papers\' defaults, e.g. {"v_th": 0.5}'
    )
    p.add_argument("--surrogate", default="fast_sigmoid", help="surrogate gradient of every LIF (a registered name)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--step-time", type=int, default=None, metavar="N",
                   help="only time N training steps per model at T = --time-steps (and the twin at T = 1)")  # fmt: skip
    p.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    args = p.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}", file=sys.stderr)
    rows: list[dict[str, Any]] = []
    if args.step_time is not None:
        print(f"| model | T | B | s / training step (median of {args.step_time}) |\n|---|---|---|---|")
        for name in args.models:
            for t in (args.time_steps, 1) if name == "vit-twin" else (args.time_steps,):
                s = step_time(name, args, args.step_time, t)
                rows.append({"model": name, "time_steps": t, "batch_size": args.batch_size, "step_s": s})
                print(f"| {name} | {t} | {args.batch_size} | {s:.3f} |", flush=True)
        by = {(r["model"], r["time_steps"]): r["step_s"] for r in rows}
        if ("sdt", args.time_steps) in by and ("vit-twin", args.time_steps) in by:
            ratio = by[("sdt", args.time_steps)] / by[("vit-twin", args.time_steps)]
            print(f"\nSDT / twin step time at T = {args.time_steps}: {ratio:.2f}x (target <= 1.5x)")
    else:
        splits = load_splits(config_for(args.models[0], args))
        print("| model | train images | epochs | test acc | train s | spikes / inf | SynOps / inf | MACs / inf | "
              "cmos45 / inf | loihi / inf |\n|---|---|---|---|---|---|---|---|---|---|")  # fmt: skip
        for name in args.models:
            r = run_model(name, args, splits)
            rows.append(r)
            print(f"| {name} | {r['train_images']} | {r['epochs']} | {100 * r['test_acc']:.2f} % | {r['train_s']:.0f} | "
                  f"{r['spikes']:.4g} | {r['synops']:.4g} | {r['macs']:.4g} | {r['energy_cmos45_j'] * 1e6:.3g} uJ | "
                  f"{r['energy_loihi_j'] * 1e6:.3g} uJ |", flush=True)  # fmt: skip
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(args.json, (json.dumps(rows, indent=2) + "\n").encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
