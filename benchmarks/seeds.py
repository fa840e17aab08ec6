"""Seed robustness of the main job: ``spikeforge train`` (Yin-Yang defaults) for seeds 0-9, one after another.

Each run is the command line itself, ``python -m spikeforge train --out DIR --quiet --json --no-plots --seed S``
(plus any options after ``--``, to compare a candidate recipe with the defaults), in a child process whose
``OMP_NUM_THREADS`` is ``--threads`` (the trainer then uses that many torch threads). Printed: one row per seed with
the validation and test accuracy of the best-validation epoch (what the command reports), the best epoch, the
wall time and the CPU time of the child (user + system; on a shared machine the CPU time is the fairer measure of
the work done), then the minimum and mean. ``--out`` gets the rows (with each epoch's validation and test
accuracy) and the summary as JSON. Runs are deterministic for a given
seed, machine and thread count, so a row can be checked by running its seed again.

    PYTHONPATH=src .venv/bin/python benchmarks/seeds.py --out benchmarks/results/seeds.json
    PYTHONPATH=src .venv/bin/python benchmarks/seeds.py --seeds 7 --threads 1 -- --epochs 80   # a candidate recipe
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from spikeforge._core.files import atomic_write_bytes

#: The checkout whose ``src`` the runs use (first on the children's ``PYTHONPATH``).
ROOT = Path(__file__).resolve().parents[1]


def _child_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_seed(seed: int, threads: int, extra: list[str], scratch: Path) -> dict[str, Any]:
    """One ``spikeforge train`` run; returns its row (accuracies in percent)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    out_dir = scratch / f"seed{seed}"
    cmd = [sys.executable, "-m", "spikeforge", "train", "--out", str(out_dir), "--quiet", "--json", "--no-plots"]
    cmd += ["--seed", str(seed), *extra]
    cpu0, t0 = _child_cpu_s(), time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall, cpu = time.perf_counter() - t0, _child_cpu_s() - cpu0
    if proc.returncode != 0:
        raise SystemExit(f"seed {seed}: spikeforge train failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout)["result"]
    history = json.loads((out_dir / "metrics.json").read_text())["history"]
    return {
        "seed": seed,
        "val_acc": round(100 * result["val_acc"], 2),
        "test_acc": round(100 * result["test_acc"], 2),
        "train_acc": round(100 * result["train_acc"], 2),
        "best_epoch": result["best_epoch"],
        "epochs_run": result["epochs_run"],
        "threads": result["threads"],
        "train_wall_s": round(result["wall_time_s"], 1),
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "val_curve": [h["val_acc"] for h in history],
        "test_curve": [h["test_acc"] for h in history],
    }


def _row_line(row: dict[str, Any]) -> str:
    return (
        f"| {row['seed']} | {row['val_acc']:.2f} % | {row['test_acc']:.2f} % | {row['best_epoch']} | "
        f"{row['wall_s']:.1f} | {row['cpu_s']:.1f} |"
    )


def summarize(rows: list[dict[str, Any]], options: list[str], threads: int, target: float) -> dict[str, Any]:
    """Minimum and mean accuracies (percent), whether every seed reached ``target``, mean wall and CPU seconds."""
    if not rows:
        raise ValueError("no runs to summarize; give at least one seed")
    tests, vals = [r["test_acc"] for r in rows], [r["val_acc"] for r in rows]
    return {
        "options": options,
        "threads": threads,
        "seeds": [r["seed"] for r in rows],
        "min_val_acc": min(vals),
        "mean_val_acc": round(sum(vals) / len(vals), 3),
        "min_test_acc": min(tests),
        "mean_test_acc": round(sum(tests) / len(tests), 3),
        "target": target,
        "met": all(t >= target for t in tests),
        "mean_wall_s": round(sum(r["wall_s"] for r in rows) / len(rows), 1),
        "mean_cpu_s": round(sum(r["cpu_s"] for r in rows) / len(rows), 1),
    }


def _write(
    path: Path | None, options: list[str], threads: int, rows: list[dict[str, Any]], summary: dict[str, Any] | None
) -> None:
    if path is not None:
        data = {"options": options, "threads": threads, "runs": rows, "summary": summary}
        text = json.dumps(data, indent=2) + "\n"
        atomic_write_bytes(path, text.encode())


def _merge(paths: list[Path]) -> tuple[list[dict[str, Any]], list[str], int]:
    """Rows of several ``--out`` files of one recipe (e.g. seeds run in parallel), sorted by seed."""
    rows: dict[int, dict[str, Any]] = {}
    settings: set[tuple[tuple[str, ...], int]] = set()
    for path in paths:
        data = json.loads(path.read_text())
        for row in data["runs"]:
            if row["seed"] in rows:
                raise SystemExit(f"seed {row['seed']} is in two of the merged files; merge each seed once")
            rows[row["seed"]] = row
        settings.add((tuple(data["options"]), data["threads"]))
    if len(settings) != 1:
        raise SystemExit(f"the merged files ran different options or threads {sorted(settings)}; merge one recipe")
    ((options, threads),) = settings
    return [rows[s] for s in sorted(rows)], list(options), threads


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(10)), help="seeds to run (default 0-9)")
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of each run (default 1)")
    p.add_argument("--out", type=Path, default=None, help="write the rows (after each seed) and the summary as JSON")
    p.add_argument("--target", type=float, default=98.0, help="test accuracy (%%) every seed must reach")
    p.add_argument(
        "--merge", type=Path, nargs="+", default=None, metavar="JSON",
        help="run nothing: merge these --out files of one recipe (seeds run in parallel) into --out and the table",
    )  # fmt: skip
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error("--threads must be >= 1")
    if any(s < 0 for s in args.seeds):
        p.error("--seeds must be non-negative")
    if args.merge is not None:
        rows, extra, threads = _merge(args.merge)
    else:
        rows, threads = [], args.threads
    print(f"spikeforge train {' '.join(extra) or '(defaults)'}, OMP_NUM_THREADS={threads}", flush=True)
    print("| seed | val acc | test acc | best epoch | wall s | CPU s |\n|---|---|---|---|---|---|", flush=True)
    if args.merge is None:
        with tempfile.TemporaryDirectory(prefix="spikeforge_seeds_") as tmp:
            for seed in args.seeds:
                rows.append(run_seed(seed, threads, extra, Path(tmp)))
                print(_row_line(rows[-1]), flush=True)
                _write(args.out, extra, threads, rows, None)
    else:
        for row in rows:
            print(_row_line(row), flush=True)
    summary = summarize(rows, extra, threads, args.target)
    print(
        f"val min {summary['min_val_acc']:.2f} % mean {summary['mean_val_acc']:.2f} %; "
        f"test min {summary['min_test_acc']:.2f} % mean {summary['mean_test_acc']:.2f} % "
        f"(target {args.target} % on every seed: {'met' if summary['met'] else 'not met'}); "
        f"mean wall {summary['mean_wall_s']} s, mean CPU {summary['mean_cpu_s']} s",
        flush=True,
    )
    _write(args.out, extra, threads, rows, summary)


if __name__ == "__main__":
    main()
