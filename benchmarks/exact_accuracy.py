"""Yin-Yang accuracy of the exact-gradient recipes (issue 15): EventProp and analytic TTFS, several seeds.

Each seed is one call of :func:`spikeforge.training.exact_eventprop.fit_eventprop` or
:func:`spikeforge.training.exact_ttfs.fit_ttfs` with the recipe's default configuration (the published Yin-Yang
splits: 5000 train / 1000 test), only ``seed`` (and ``epochs`` with ``--epochs``) changed. Reported per seed: the
final-epoch test accuracy (no early stopping, no model selection on the test set), the best epoch's for reference,
the returned model's accuracy on the published *validation* split (1000 samples, seed 41: recipe variants are
compared on it, never on the test split), epochs, wall time, CPU time of the process (the machine may be shared: wall time depends on the load, CPU time
much less) and the load average at start and end. Targets (issue 15): EventProp >= 98.0 %, TTFS >= 96.0 % mean
over 3 seeds; EventProp <= 15 min per run on 2 CPU cores.

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/exact_accuracy.py --method eventprop \\
        --seeds 0 1 2 --json eventprop.json

The JSON file is rewritten after every seed (a partial result survives an interrupted run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from spikeforge._core.files import atomic_write_bytes
from spikeforge.data.yinyang import YINYANG_SPLITS
from spikeforge.data.yinyang import make_yinyang
from spikeforge.training.exact_common import ExactFitResult
from spikeforge.training.exact_eventprop import EventPropTrainConfig
from spikeforge.training.exact_eventprop import fit_eventprop
from spikeforge.training.exact_eventprop import predict
from spikeforge.training.exact_ttfs import TTFSTrainConfig
from spikeforge.training.exact_ttfs import fit_ttfs
from spikeforge.training.exact_ttfs import ttfs_accuracy
from spikeforge.training.exact_ttfs import ttfs_encode

TARGETS = {"eventprop": 0.980, "ttfs": 0.960}


def _validation() -> tuple[torch.Tensor, torch.Tensor]:
    """The published Yin-Yang validation split (features float64 ``[1000, 4]``, labels int64)."""
    size, seed = YINYANG_SPLITS["validation"]
    feats, labels = make_yinyang(size, seed)
    return torch.from_numpy(feats).double(), torch.from_numpy(labels)


def _run(method: str, seed: int, epochs: int | None, verbose: bool, overrides: dict[str, Any]) -> dict[str, Any]:
    def show(row: dict[str, float]) -> None:
        if verbose:
            print(f"  seed {seed} " + " ".join(f"{k}={v:.4g}" for k, v in row.items()), flush=True)

    load0 = os.getloadavg()[0]
    wall0, cpu0 = time.perf_counter(), time.process_time()
    result: ExactFitResult[Any]
    if method == "eventprop":
        ecfg = EventPropTrainConfig(seed=seed)
        ecfg = replace(ecfg, epochs=epochs) if epochs is not None else ecfg
        ecfg = replace(ecfg, **overrides)
        result = fit_eventprop(ecfg, on_epoch=show)
        v_feats, v_labels = _validation()
        val_acc = float((predict(result.model, v_feats, ecfg) == v_labels).double().mean())
    else:
        tcfg = TTFSTrainConfig(seed=seed)
        tcfg = replace(tcfg, epochs=epochs) if epochs is not None else tcfg
        tcfg = replace(tcfg, **overrides)
        result = fit_ttfs(tcfg, on_epoch=show)
        v_feats, v_labels = _validation()
        val_acc = ttfs_accuracy(result.model, ttfs_encode(v_feats, tcfg), v_labels)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    best = max(result.history, key=lambda r: r["test_acc"]) if result.history else {"test_acc": 0.0}
    return {
        "seed": seed, "epochs": len(result.history), "test_acc": result.test_acc, "val_acc": val_acc,
        "best_epoch_test_acc": best["test_acc"], "wall_s": wall, "cpu_s": cpu,
        "load_start": load0, "load_end": os.getloadavg()[0], "history": result.history, "config": result.config,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", choices=("eventprop", "ttfs"), required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None, help="override the recipe's epoch count")
    parser.add_argument("--json", type=Path, default=None, help="write every run (with its history) here")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    parser.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE",
        help="override a recipe field, e.g. --set bump_outputs=label or --set input_noise=0.2 (value read as JSON, "
        "else as a string)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {}
    for item in args.set:
        field_name, sep, text = item.partition("=")
        if not sep:
            parser.error(f"--set needs FIELD=VALUE, got {item!r}")
        try:
            overrides[field_name] = json.loads(text)
        except json.JSONDecodeError:
            overrides[field_name] = text
    print(f"torch threads: {torch.get_num_threads()}, load average: {os.getloadavg()}", flush=True)
    runs: list[dict[str, Any]] = []
    for seed in args.seeds:
        runs.append(_run(args.method, seed, args.epochs, not args.quiet, overrides))
        run = runs[-1]
        print(
            f"seed {seed}: validation {100 * run['val_acc']:.2f} %, test {100 * run['test_acc']:.2f} % after {run['epochs']} epochs "
            f"(best epoch {100 * run['best_epoch_test_acc']:.2f} %), wall {run['wall_s'] / 60:.1f} min, "
            f"CPU {run['cpu_s'] / 60:.1f} min, load {run['load_start']:.1f} -> {run['load_end']:.1f}",
            flush=True,
        )
        if args.json is not None:
            payload = {"method": args.method, "target": TARGETS[args.method], "overrides": overrides, "runs": runs}
            atomic_write_bytes(args.json, json.dumps(payload, indent=1).encode())
    accs = [100 * r["test_acc"] for r in runs]
    spread = statistics.stdev(accs) if len(accs) > 1 else 0.0
    vals = [100 * r["val_acc"] for r in runs]
    print(f"validation (choose variants on this): {statistics.mean(vals):.2f} % mean, per seed "
          + ", ".join(f"{v:.1f}" for v in vals))
    print("\n| method | seeds | epochs | test accuracy (mean ± std) | per seed | wall min/run | CPU min/run |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {args.method} | {len(runs)} | {runs[0]['epochs']} | {statistics.mean(accs):.2f} ± {spread:.2f} % | "
        + ", ".join(f"{a:.1f}" for a in accs)
        + f" | {statistics.mean(r['wall_s'] for r in runs) / 60:.1f} | {statistics.mean(r['cpu_s'] for r in runs) / 60:.1f} |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
