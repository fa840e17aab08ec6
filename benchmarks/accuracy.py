"""Accuracy benchmark: train the reference configurations and print a markdown table.

Each run is :func:`spikeforge.train.train` with the configuration below (test accuracy is that of the
reported epoch: the last, ``select="last"``), on ``--threads`` CPU threads (2 by default). Columns: epochs run,
best epoch, test accuracy, mean wall time per epoch (training + validation and test evaluation) and total wall
time. The machine may be shared: wall times are what was measured, with whatever else was running.

Run everything (Fashion-MNIST needs its IDX files; see ``spikeforge info``)::

    .venv/bin/python benchmarks/accuracy.py --threads 2

A subset, or fewer epochs (marked ``(capped)`` in the table)::

    .venv/bin/python benchmarks/accuracy.py --only yinyang-mlp digits-mlp
    .venv/bin/python benchmarks/accuracy.py --only fmnist-mlp --max-epochs 2

Only time the training step of a configuration (no accuracy): ``--probe-batches N`` runs N optimiser
steps of the configured model on real batches and reports seconds per batch and the implied seconds
per epoch (training only, no evaluation), for runs too long to do on a shared CPU::

    .venv/bin/python benchmarks/accuracy.py --only fmnist-conv --probe-batches 20
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from spikeforge.train import TrainConfig
from spikeforge.train import train
from spikeforge.training.image_recipes import image_defaults

# name -> (config, target test accuracy)
CONFIGS: dict[str, tuple[TrainConfig, float]] = {
    "yinyang-mlp": (TrainConfig(), 0.975),
    "digits-mlp": (TrainConfig(dataset="digits", hidden=(256,), epochs=40), 0.97),
    "digits-conv": (
        TrainConfig(dataset="digits", model="conv", channels=(16, 32), hidden=(128,), epochs=30, lr=2e-3), 0.97
    ),
    # the recipes of `spikeforge train --dataset fashion_mnist --model mlp|conv` (issue 20's targets)
    "fmnist-mlp": (TrainConfig(dataset="fashion_mnist", model="mlp", **image_defaults("fashion_mnist", "mlp")), 0.885),
    "fmnist-conv": (TrainConfig(dataset="fashion_mnist", model="conv", **image_defaults("fashion_mnist", "conv")), 0.92),
}


def run_one(name: str, config: TrainConfig, target: float, out_root: Path, max_epochs: int | None) -> dict[str, Any]:
    capped = max_epochs is not None and max_epochs < config.epochs
    if capped:
        # Same schedule shape over fewer epochs: the cosine schedule spans the capped run.
        config = replace(config, epochs=max_epochs)
    t0 = time.perf_counter()
    result = train(config, out_root / name)
    wall = time.perf_counter() - t0
    per_epoch = [h["epoch_time_s"] for h in result.history]
    return {
        "name": name,
        "dataset": config.dataset,
        "model": config.model,
        "seed": config.seed,
        "epochs_run": len(result.history),
        "capped": capped,
        "best_epoch": result.best_epoch,
        "test_acc": result.test_acc,
        "val_acc": result.val_acc,
        "target": target,
        "epoch_time_s": sum(per_epoch) / len(per_epoch),
        "wall_time_s": wall,
        "config": config.to_dict(),
    }


def probe(name: str, config: TrainConfig, n_batches: int) -> dict[str, Any]:
    """Time ``n_batches`` training steps (encode, forward, loss, backward, clip, AdamW) after one warm-up step."""
    import math

    import torch.nn.functional as F

    from spikeforge.data import dataset_info
    from spikeforge.models import build_model
    from spikeforge.train import load_splits

    x, y = load_splits(config)["train"]
    torch.manual_seed(config.seed)
    model = build_model(config, dataset_info(config.dataset))
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(config.seed)
    perm = torch.randperm(len(y), generator=gen)
    bs = config.batch_size
    times = []
    for b in range(n_batches + 1):
        idx = perm[b * bs : (b + 1) * bs]
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(x[idx], generator=gen), y[idx])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip or math.inf)
        opt.step()
        if b > 0:
            times.append(time.perf_counter() - t0)
    per_batch = sum(times) / len(times)
    batches = math.ceil(len(y) / bs)
    return {"name": name, "batch_size": bs, "probe_batches": n_batches, "s_per_batch": per_batch,
            "batches_per_epoch": batches, "train_s_per_epoch_implied": per_batch * batches}


def markdown(rows: list[dict[str, Any]], threads: int) -> str:
    lines = [
        f"| run | dataset | model | seed | epochs | best epoch | test acc | target | s / epoch ({threads} threads) | total s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        met = "met" if r["test_acc"] >= r["target"] else "not met"
        epochs = f"{r['epochs_run']}{' (capped)' if r['capped'] else ''}"
        lines.append(
            f"| {r['name']} | {r['dataset']} | {r['model']} | {r['seed']} | {epochs} | {r['best_epoch']} | "
            f"{100 * r['test_acc']:.2f} % | {100 * r['target']:.1f} % ({met}) | {r['epoch_time_s']:.2f} | "
            f"{r['wall_time_s']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="+", choices=list(CONFIGS), default=list(CONFIGS), help="runs to do")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--max-epochs", type=int, default=None, help="cap every run at this many epochs")
    p.add_argument("--out", type=Path, default=None, help="keep the run directories here (default: temporary)")
    p.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    p.add_argument("--probe-batches", type=int, default=None, help="only time this many training steps per run")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.probe_batches is not None:
        print(f"| run | batch | timed steps | s / batch ({args.threads} threads) | batches / epoch | implied training s / epoch |")
        print("|---|---|---|---|---|---|")
        for name in args.only:
            config, _ = CONFIGS[name]
            r = probe(name, replace(config, seed=args.seed), args.probe_batches)
            print(f"| {name} | {r['batch_size']} | {r['probe_batches']} | {r['s_per_batch']:.3f} | "
                  f"{r['batches_per_epoch']} | {r['train_s_per_epoch_implied']:.0f} |", flush=True)
        return 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out if args.out is not None else Path(tmp)
        for name in args.only:
            config, target = CONFIGS[name]
            row = run_one(name, replace(config, seed=args.seed), target, root, args.max_epochs)
            rows.append(row)
            print(f"{name}: test {100 * row['test_acc']:.2f} % in {row['wall_time_s']:.1f} s", file=sys.stderr, flush=True)
    print(markdown(rows, args.threads))
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
