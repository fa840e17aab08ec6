r"""Peak memory and wall time of one training step: EventProp vs discrete-time surrogate BPTT (issue 15 target:
"peak memory of an EventProp training step >= 10x below discrete-time surrogate BPTT at the time resolution that
gives the same spike times to 0.01 ms, measured in one run; and wall time per epoch of both").

Network, data and discretisation: those of :mod:`exact_vs_surrogate` (Yin-Yang latency code, ``5 - 120 - 3``
current-based LIF, max-membrane cross-entropy, 30 ms window). One training step = forward, loss, backward and an
Adam step, on a batch of ``--batch`` samples:

* ``eventprop``: :func:`spikeforge.exact.eventprop` (float64, the only precision it has);
* ``bptt``: the discretised network (``dt = --dt``, ``T = 30 ms / dt``) with the project's default backend
  (the fused Numba kernel: it saves only the input current ``[T, B, H]`` and recomputes the membrane in the
  backward), FastSigmoid surrogate, float32 (``--bptt-dtype``; float64 doubles its memory);
* ``bptt_reference`` (``--reference``): the same with ``backend="reference"`` (the per-step autograd graph).

The binned input ``[T, B, 5]`` of the BPTT paths is built before the measurement (it is data, not the step).

**How memory is measured.** Each path runs in its own fresh subprocess (``python exact_memory.py --child
PATH``), so nothing one path allocated or cached can hide the other's. PyTorch's CPU tensors do not go through
Python's allocator (``tracemalloc`` would miss them), so the child measures resident memory: after a warm-up step
on 2 samples (Numba compilation, lazy initialisation), it writes ``5`` to ``/proc/self/clear_refs`` (Linux: resets
the peak-RSS counter ``VmHWM`` to the current RSS), runs one step and reports ``VmHWM - VmRSS`` before the step.
The child runs with ``MALLOC_MMAP_THRESHOLD_=65536``: glibc then serves every block above 64 KiB by ``mmap`` and
returns it at ``free``, so a block freed during warm-up cannot be silently reused below the RSS radar (without it
glibc raises its mmap threshold after the first free and keeps large blocks in the heap). As a second, allocator-
independent count the child also reports the bytes saved for backward: the tensors autograd keeps
(``torch.autograd.graph.saved_tensors_hooks``, unique storages) for BPTT, the arrays EventProp keeps on its
context (input, weights, spike times and currents of the hidden layer) for EventProp.

**Wall time.** Median seconds per step over ``--steps`` steps after the measured one, and the epoch time that
implies for the Yin-Yang training set (5000 samples, ``ceil(5000 / batch)`` steps); ``--epoch [PATH ...]`` times
a real epoch of the paths named (all without names; slow for BPTT at small ``dt``).

**Spike-time agreement at that dt.** The BPTT child also runs the discretised network forward (float64, no
gradient) and reports the hidden spike times against the exact ones: median, 90th/99th percentile and max of
``|t_discrete - t_exact|`` (spikes matched in order per neuron where the counts agree; a discrete spike in step
``n`` at ``(n + 1) dt``), and the neurons whose counts differ.

Run (about 2-4 minutes on one core)::

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/exact_memory.py [--batch 150] [--dt 0.01] [--reference]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TRAIN_SIZE = 5000  # Yin-Yang training set (Kriener et al. 2022)
PATHS = ("eventprop", "bptt", "bptt_reference")


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        match = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"/proc/self/status has no {field} (Linux only)")
    return int(match.group(1))


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _child(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import torch

    sys.path.insert(0, str(HERE))
    import exact_vs_surrogate as ev
    from spikeforge.exact.eventprop import eventprop
    from spikeforge.exact.losses import max_voltage_cross_entropy
    from spikeforge.surrogate import FastSigmoid

    torch.set_num_threads(1)
    problem = ev.make_problem(args.batch, args.hidden, args.seed)
    dtype = torch.float64 if args.path == "eventprop" else getattr(torch, args.bptt_dtype)
    params = [w.to(dtype).clone().requires_grad_() for w in problem.weights]
    opt = torch.optim.Adam(params, lr=1e-3)
    backend = "reference" if args.path == "bptt_reference" else "auto"
    saved: dict[int, int] = {}
    counting = [False]

    def pack(t: torch.Tensor) -> torch.Tensor:
        if counting[0]:  # only the measured step (storages are unique per step, not across steps)
            storage = t.untyped_storage()
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    def step(idx: slice, count_saved: bool = False) -> float:
        opt.zero_grad(set_to_none=True)
        counting[0] = count_saved
        if args.path == "eventprop":
            out = eventprop(problem.input_times[idx], params, ev.event_config(args.max_spikes))
            if count_saved:
                fn: Any = out.grad_fn
                arrays = [fn.x, *fn.ws, *fn.times, *fn.currents]
                saved[0] = int(sum(a.nbytes for a in arrays))
        else:
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                out, _ = ev.discrete_forward(x_seq[:, idx], params, args.dt, FastSigmoid(), backend)
        loss = max_voltage_cross_entropy(out, problem.labels[idx])
        loss.backward()
        opt.step()
        return float(loss.detach())

    x_seq = ev.bin_inputs(problem.input_times, args.dt, dtype) if args.path != "eventprop" else None
    step(slice(0, 2))  # warm-up: compilation and lazy initialisation, on 2 samples
    gc.collect()
    rss0 = _status_kib("VmRSS")
    _reset_peak()
    loss = step(slice(None), count_saved=True)
    peak = _status_kib("VmHWM") - rss0
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step(slice(None))
        times.append(time.perf_counter() - start)
    result: dict[str, Any] = {
        "path": args.path,
        "peak_mib": peak / 1024,
        "saved_mib": sum(saved.values()) / 2**20,
        "loss": loss,
        "step_s": statistics.median(times),
        "dtype": str(dtype).replace("torch.", ""),
    }
    n_steps = math.ceil(TRAIN_SIZE / args.batch)
    result["epoch_s_est"] = result["step_s"] * n_steps
    if args.path in args.epoch:
        feats = ev.make_problem(TRAIN_SIZE, args.hidden, args.seed)  # same weights (same seed), 5000 samples
        start = time.perf_counter()
        for first in range(0, TRAIN_SIZE, args.batch):
            problem = ev.Problem(
                feats.input_times[first : first + args.batch], feats.labels[first : first + args.batch], problem.weights
            )
            if args.path != "eventprop":
                x_seq = ev.bin_inputs(problem.input_times, args.dt, dtype)
            step(slice(None))
        result["epoch_s"] = time.perf_counter() - start
    if args.path == "bptt":  # spike-time agreement of the discretised network, float64
        with torch.no_grad():
            x64 = ev.bin_inputs(problem.input_times, args.dt)
            z, _ = ev.hidden_layer(args.dt, FastSigmoid())(x64 @ (problem.weights[0].T / ev.TAU_SYN))
        errors, mismatch = ev.spike_time_errors(ev.exact_hidden_times(problem), z, args.dt)
        q = np.quantile(errors, [0.5, 0.9, 0.99, 1.0]) if errors.size else [math.nan] * 4
        result.update(
            spikes=int(errors.size),
            err_median=float(q[0]),
            err_p90=float(q[1]),
            err_p99=float(q[2]),
            err_max=float(q[3]),
            within_001=float((errors <= 0.01).mean()) if errors.size else math.nan,
            count_mismatch=mismatch,
            neurons=int(z.shape[1] * z.shape[2]),
        )
    return result


def run_path(path: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one path in a fresh subprocess (see the module docstring) and return its JSON result."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", path]
    for name in ("batch", "hidden", "dt", "steps", "seed", "max_spikes", "bptt_dtype"):
        cmd += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    if args.epoch:
        cmd += ["--epoch", *args.epoch]
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"child {path} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--batch", type=int, default=150)
    ap.add_argument("--hidden", type=int, default=120)
    ap.add_argument("--dt", type=float, default=0.01, help="BPTT time step in ms (T = 30 / dt)")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per path after the measured one")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-spikes", type=int, default=64)
    ap.add_argument("--bptt-dtype", default="float32", choices=("float32", "float64"))
    ap.add_argument("--reference", action="store_true", help="also measure BPTT on the per-step reference loop")
    ap.add_argument(
        "--epoch", nargs="*", choices=PATHS, default=None, help="time a real epoch (5000 samples) of these paths"
    )
    ap.add_argument("--child", choices=PATHS, dest="path", help=argparse.SUPPRESS)
    return ap


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    args.epoch = [] if args.epoch is None else (args.epoch or list(PATHS))
    if args.path is not None:
        print(json.dumps(_child(args)))
        return
    load = os.getloadavg()
    print("## EventProp vs surrogate BPTT: memory and time of one training step (issue 15)\n")
    print(
        f"batch {args.batch}, 5-{args.hidden}-3, window 30 ms, BPTT dt = {args.dt} ms (T = {round(30 / args.dt)}), "
        f"{args.bptt_dtype}; EventProp float64; OMP_NUM_THREADS=1; load average before: "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs (timings indicative)\n"
    )
    paths = ["eventprop", "bptt"] + (["bptt_reference"] if args.reference else [])
    results = {p: run_path(p, args) for p in paths}
    ep = results["eventprop"]
    print("| path | peak RSS of one step (MiB) | saved for backward (MiB) | s / step | s / epoch (5000) | loss |")
    print("|---|---:|---:|---:|---:|---:|")
    for p, r in results.items():
        epoch = f"{r['epoch_s']:.1f} (measured)" if "epoch_s" in r else f"{r['epoch_s_est']:.1f} (est.)"
        print(
            f"| {p} ({r['dtype']}) | {r['peak_mib']:.1f} | {r['saved_mib']:.2f} | {r['step_s']:.3f} | {epoch} | "
            f"{r['loss']:.4f} |"
        )
    for p in paths[1:]:
        r = results[p]
        print(
            f"\n{p} / eventprop: peak memory {r['peak_mib'] / max(ep['peak_mib'], 1e-9):.1f}x, saved-for-backward "
            f"{r['saved_mib'] / max(ep['saved_mib'], 1e-9):.0f}x, time per step {r['step_s'] / ep['step_s']:.1f}x"
        )
    b = results["bptt"]
    print(
        f"\nSpike-time agreement at dt = {args.dt} ms ({b['spikes']} hidden spikes, float64): |t_discrete - t_exact| "
        f"median {b['err_median']:.4f}, p90 {b['err_p90']:.4f}, p99 {b['err_p99']:.4f}, max {b['err_max']:.4f} ms; "
        f"{100 * b['within_001']:.1f} % of spikes within 0.01 ms; spike counts differ on {b['count_mismatch']} of "
        f"{b['neurons']} neurons"
    )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
