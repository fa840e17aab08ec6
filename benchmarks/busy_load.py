"""Wall time of ``spikeforge train`` on a busy machine: torch's default threading against spikeforge's choice.

Jobs (each a fresh ``python -m spikeforge train ... --quiet --json`` process in a new run directory):

* ``main``: the main job, ``spikeforge train`` with its defaults (Yin-Yang, 120 epochs; ``--epochs N`` for
  fewer);
* ``fashion``: one Fashion-MNIST epoch, ``spikeforge train --dataset fashion_mnist --epochs 1`` (skipped,
  and said so, when neither ``/usr/share/datasets/fashion-mnist`` nor ``--data-dir`` has the files).

Each job runs four times, one run each: quiet (nothing else started) and under load (``--busy`` processes,
default 2, each ``python -c "while True: pass"``, started before the two loaded runs and killed after them),
each once with the old default (``--threads D``, D = ``torch.get_num_threads()`` of a fresh process: what
every run used before spikeforge chose) and once with the new policy (no ``--threads``). The runs'
environment has no ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``, so the policy decides from the work size.
``--one-thread`` adds a third setting, ``--threads 1``, for tuning ``MACS_PER_THREAD`` (spikeforge.training.threads).

Prints a markdown table (train time from the run's own ``wall_time_s``, the whole process's wall time, the
threads used, load averages before and after each run), the loaded/quiet ratios, and the command. The target
of issue 14: under two busy processes the main job's wall time within 1.5x of its quiet time.

Run on an otherwise quiet machine::

    .venv/bin/python benchmarks/busy_load.py                 # full main job + one Fashion-MNIST epoch
    .venv/bin/python benchmarks/busy_load.py --epochs 1 --skip-fashion   # smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
BUSY_CODE = "while True: pass"
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def child_env() -> dict[str, str]:
    """The runs' environment: this one without the thread-count variables (the policy then decides)."""
    return {k: v for k, v in os.environ.items() if k not in THREAD_ENV}


def torch_default_threads() -> int:
    """``torch.get_num_threads()`` of a fresh process in the runs' environment: the old default."""
    code = "import torch; print(torch.get_num_threads())"
    out = subprocess.run([sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def jobs(args: argparse.Namespace) -> dict[str, list[str] | None]:
    """Job name -> ``spikeforge train`` arguments (None = skipped)."""
    extra = shlex.split(args.extra)
    main = ([] if args.epochs is None else ["--epochs", str(args.epochs)]) + extra
    data_dir = ["--data-dir", args.data_dir] if args.data_dir else []
    has_fashion = bool(args.data_dir) or FASHION_DIR.is_dir()
    fashion = ["--dataset", "fashion_mnist", "--epochs", "1", *data_dir, *extra]
    return {"main": main, "fashion": None if args.skip_fashion or not has_fashion else fashion}


def run_train(train_args: list[str], threads: int | None, out_root: Path) -> dict[str, Any]:
    """One ``spikeforge train`` process: its summary's threads and wall time, the process wall time, load."""
    out = Path(tempfile.mkdtemp(dir=out_root)) / "run"
    cmd = [sys.executable, "-m", "spikeforge", "train", *train_args, "--out", str(out), "--quiet", "--json"]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=child_env(), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    load_after = os.getloadavg()
    if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    result = json.loads(proc.stdout)["result"]
    return {
        "threads": result["threads"],
        "threads_source": result["threads_source"],
        "train_s": result["wall_time_s"],
        "process_s": wall,
        "test_acc": result["test_acc"],
        "load_before": load_before[0],
        "load_after": load_after[0],
    }


def start_busy(n: int) -> list[subprocess.Popen[bytes]]:
    procs = [subprocess.Popen([sys.executable, "-c", BUSY_CODE]) for _ in range(n)]
    time.sleep(1.0)  # let them reach the run queue before the first loaded run starts
    return procs


def stop_busy(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


def measure(args: argparse.Namespace, default_threads: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    settings = [("old default", default_threads), ("policy", None)] + ([("1 thread", 1)] if args.one_thread else [])
    with tempfile.TemporaryDirectory(prefix="busy_load-") as tmp:
        for job, train_args in jobs(args).items():
            if train_args is None:
                rows.append({"job": job, "skipped": True})
                continue
            for background in ("quiet", "loaded"):
                busy = start_busy(args.busy) if background == "loaded" else []
                try:
                    for label, threads in settings:
                        r = run_train(train_args, threads, Path(tmp))
                        rows.append({"job": job, "background": background, "setting": label, **r})
                        print(f"# {job} {background} {label}: {r['process_s']:.1f} s", file=sys.stderr, flush=True)
                finally:
                    stop_busy(busy)
    return rows


def report(args: argparse.Namespace, rows: list[dict[str, Any]], default_threads: int, total_s: float) -> str:
    import torch

    lines = [
        "## Training under background load",
        "",
        f"Command: `{shlex.join(['.venv/bin/python', f'benchmarks/{Path(__file__).name}', *args.argv])}`",
        f"torch {torch.__version__}, {platform.machine()}, {len(os.sched_getaffinity(0))} CPUs available, "
        f'old default = {default_threads} torch thread(s); loaded = {args.busy} busy `python -c "{BUSY_CODE}"` '
        f"processes; one run each; total {total_s:.0f} s.",
        "",
        "| job | background | threading | threads used | train wall (s) | process wall (s) | test acc | "
        "load 1 min before / after |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        if r.get("skipped"):
            why = "--skip-fashion" if args.skip_fashion else f"no Fashion-MNIST files (`{FASHION_DIR}` or `--data-dir`)"
            lines.append(f"| {r['job']} | skipped: {why} |||||||")
            continue
        lines.append(
            f"| {r['job']} | {r['background']} | {r['setting']} | {r['threads']} ({r['threads_source']}) | "
            f"{r['train_s']:.1f} | {r['process_s']:.1f} | {r['test_acc'] * 100:.2f} % | "
            f"{r['load_before']:.2f} / {r['load_after']:.2f} |"
        )
    lines += ["", "Loaded / quiet wall time, train (process) (issue 14's target for the main job: <= 1.5):", ""]
    timed = {(r["job"], r["background"], r["setting"]): r for r in rows if not r.get("skipped")}
    for (job, background, setting), loaded in timed.items():
        quiet = timed.get((job, "quiet", setting))
        if background == "loaded" and quiet is not None:
            train, process = (loaded[k] / quiet[k] for k in ("train_s", "process_s"))
            lines.append(f"* {job}, {setting}: {train:.2f}x ({process:.2f}x)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=None, help="epochs of the main job (default: train's default)")
    ap.add_argument("--busy", type=int, default=2, help="busy background processes of the loaded runs")
    ap.add_argument("--skip-fashion", action="store_true", help="measure the main job only")
    ap.add_argument("--data-dir", default=None, help="folder with the Fashion-MNIST IDX files")
    ap.add_argument("--extra", default="", help='more train options for every job, e.g. "--hidden 16" (smoke tests)')
    ap.add_argument("--one-thread", action="store_true", help="a third setting per job: --threads 1 (to tune)")
    ap.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = ap.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.busy < 0 or (args.epochs is not None and args.epochs < 1):
        ap.error("--busy must be >= 0 and --epochs >= 1")
    t0 = time.perf_counter()
    default_threads = torch_default_threads()
    rows = measure(args, default_threads)
    text = report(args, rows, default_threads, time.perf_counter() - t0)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps({"argv": args.argv, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
