"""Where the conv config's forward and backward time goes (issue 20): torch.profiler over spikeforge's conv net.

The net, weights and input are ``benchmarks/peers.py``'s ``conv`` config (1x28x28 -> c16k5 -> LIF -> pool ->
c32k5 -> LIF -> pool -> 512 -> 128 -> LIF -> 10 -> LIF, T = 25, B = 32, input spikes p = 0.2), built by the
same adapter (``backend="auto"``). After warm-up, ``--runs`` forward+backward passes run under
``torch.profiler``; each op's *self* CPU time is put in one group (convolution, pooling, LIF kernel, GEMM,
layout copies, fills/allocations, elementwise, reductions, other) and the table prints, for the forward and the
backward separately, ms per pass and the share of that phase. Forward and backward are told apart by the
profiler's record_function ranges ("forward" around the net's call, "backward" around ``.backward()``; autograd
ops run in the backward range). It also prints the wall time per phase (without the profiler) and the peak
resident memory of one fwd+bwd measured the way ``peers.py`` does (VmHWM - VmRSS, glibc returning freed memory).

    PYTHONPATH=src python benchmarks/conv_profile.py --threads 2 --runs 5
    PYTHONPATH=src python benchmarks/conv_profile.py --threads 2 --libs snntorch   # a peer, same table
    PYTHONPATH=src python benchmarks/conv_profile.py --threads 2 --libs spikeforge spikeforge_unfused snntorch \\
        --compare 15     # interleaved fwd+bwd timing (wall and CPU) and peak memory, side by side

``trainer`` is the model ``spikeforge train --dataset fashion_mnist --model conv --channels 16 32 --hidden 128
--time-steps 4 --batch-size 128`` trains (conv3 + BatchNorm + LIF + max pool blocks, a LIF hidden layer, LI readout,
max-membrane decoding; ``build_model`` of that ``TrainConfig``, in training mode), on a random image batch
``[128, 1, 28, 28]`` under the constant code (``[4, 128, 1, 28, 28]``); its backward is that of the summed logits.

    PYTHONPATH=src python benchmarks/conv_profile.py --threads 1 --libs trainer

``spikeforge_unfused`` is spikeforge with each ``AvgPool2d`` wrapped in ``SeqToBatch``, which is never fused with
the neuron layer before it: the path spikeforge took before the fused neuron + pool (issue 20).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections import defaultdict

import torch
from torch import nn
from torch.profiler import ProfilerActivity
from torch.profiler import profile
from torch.profiler import record_function

from _peers.adapters import get_adapter
from _peers.base import Net
from _peers.nets import get_config
from _peers.nets import make_data
from _peers.nets import make_seq

GROUPS = (  # (group, substrings of the op name), first match wins
    ("LIF + pool (fused)", ("FusedPool",)),
    ("BatchNorm", ("batch_norm",)),
    ("convolution", ("conv", "mkldnn_convolution", "convolution_backward")),
    ("pooling", ("pool", "TilingAvgPool")),
    ("LIF kernel", ("FusedFunction",)),
    ("GEMM (Linear)", ("linear", "addmm", "aten::mm", "matmul", "OneDNNLinear", "_linear_pointwise")),
    ("layout copies", ("copy_", "contiguous", "clone", "permute", "to_dense", "to_mkldnn", "expand", "reshape")),
    ("alloc / fill", ("empty", "zero", "fill_", "ones", "new_", "resize")),
    ("reductions", ("sum",)),
    ("elementwise", ("mul", "add", "div", "sub", "where", "gt", "threshold", "clamp", "abs")),
)


def group_of(name: str) -> str:
    low = name.lower()
    for g, keys in GROUPS:
        if any(k.lower() in low for k in keys):
            return g
    return "other"


def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    raise RuntimeError(key)


UNFUSED = "spikeforge_unfused"  # spikeforge with each pool in SeqToBatch: the path before the fused neuron + pool
TRAINER = "trainer"  # the Fashion-MNIST conv model of the trainer (see the module docstring)


def _build_trainer() -> tuple[Net, torch.Tensor]:
    from spikeforge.data import dataset_info
    from spikeforge.training.config import TrainConfig
    from spikeforge.training.models import build_model

    cfg = TrainConfig(dataset="fashion_mnist", model="conv", channels=(16, 32), hidden=(128,), time_steps=4,
                      batch_size=128)  # fmt: skip
    torch.manual_seed(0)
    model = build_model(cfg, dataset_info(cfg.dataset)).train()
    x = model.encode(torch.rand(cfg.batch_size, 1, 28, 28, generator=torch.Generator().manual_seed(0)))
    return Net(lambda xs: model(xs, encoded=True), list(model.parameters())), x


def _build(lib: str) -> tuple[Net, torch.Tensor]:
    if lib == TRAINER:
        return _build_trainer()
    cfg = get_config("conv", smoke=False)
    ws, x_np = make_data(cfg)
    if lib != UNFUSED:
        return get_adapter(lib).build(cfg, ws), torch.from_numpy(x_np)
    import spikeforge as sf
    from spikeforge.surrogate import FastSigmoid

    seq, params = make_seq(cfg, ws)
    layers = [
        sf.LIF(beta=0.9, input_scaling="none", reset="subtract", surrogate=FastSigmoid(25.0), detach_reset=False)
        if m is None
        else sf.SeqToBatch(m)
        if isinstance(m, nn.AvgPool2d)
        else m
        for m in seq
    ]
    net = sf.SNNSequential(*layers)
    return Net(lambda x: net(x)[0], params), torch.from_numpy(x_np)


def compare(libs: list[str], rounds: int) -> None:
    """Interleaved fwd+bwd of each library's net, ``rounds`` times (one run of each per round, so every
    library sees the same machine state): median wall and process-CPU ms, the CPU time less sensitive to
    other jobs' load; ratios against the first library."""
    nets = {lib: _build(lib) for lib in libs}

    def fwd_bwd(net: Net, x: torch.Tensor) -> None:
        for p in net.params:
            p.grad = None
        net.run(x).sum().backward()

    for net, x in nets.values():
        for _ in range(2):
            fwd_bwd(net, x)
    wall: dict[str, list[float]] = {lib: [] for lib in libs}
    cpu: dict[str, list[float]] = {lib: [] for lib in libs}
    for _ in range(rounds):
        for lib, (net, x) in nets.items():
            w0, c0 = time.perf_counter(), time.process_time()
            fwd_bwd(net, x)
            wall[lib].append((time.perf_counter() - w0) * 1e3)
            cpu[lib].append((time.process_time() - c0) * 1e3)
    med = lambda v: sorted(v)[len(v) // 2]
    first = libs[0]
    print(f"| library | fwd+bwd wall ms (median of {rounds}) | CPU ms | wall vs {first} | CPU vs {first} | peak MB |")
    print("|---|---:|---:|---:|---:|---:|")
    for lib in libs:
        print(
            f"| {lib} | {med(wall[lib]):.1f} | {med(cpu[lib]):.1f} | {med(wall[lib]) / med(wall[first]):.2f}x | "
            f"{med(cpu[lib]) / med(cpu[first]):.2f}x | {peak_memory(lib):.1f} |"
        )


def memory_child(lib: str) -> None:
    """Peak resident memory of one fwd+bwd, measured as ``peers.py``'s memory child does."""
    net, x = _build(lib)
    for _ in range(2):
        net.run(x).sum().backward()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = _status("VmRSS")
    net.run(x).sum().backward()
    print(f"PEAK {(_status('VmHWM') - base) / 1e6}")


def peak_memory(lib: str) -> float:
    """Run :func:`memory_child` in a fresh process with glibc returning freed memory (``peers.py``'s setting)."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    cmd = [sys.executable, __file__, "--threads", str(torch.get_num_threads()), "--_memory", lib]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    return float(next(ln for ln in out.splitlines() if ln.startswith("PEAK ")).split()[1])


def profile_lib(lib: str, runs: int) -> None:
    net, x = _build(lib)

    def fwd_bwd() -> None:
        for p in net.params:
            p.grad = None
        with record_function("forward"):
            out = net.run(x)
        with record_function("backward"):
            out.sum().backward()

    for _ in range(3):
        fwd_bwd()
    # wall times without the profiler
    ts_f, ts_fb = [], []
    for _ in range(max(runs, 5)):
        for p in net.params:
            p.grad = None
        t0 = time.perf_counter()
        out = net.run(x)
        t1 = time.perf_counter()
        out.sum().backward()
        t2 = time.perf_counter()
        ts_f.append(t1 - t0)
        ts_fb.append(t2 - t0)
    ts_f.sort()
    ts_fb.sort()
    wall_f, wall_fb = ts_f[len(ts_f) // 2] * 1e3, ts_fb[len(ts_fb) // 2] * 1e3
    peak_mb = peak_memory(lib)

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        for _ in range(runs):
            fwd_bwd()
    # self CPU time per op, attributed to the phase whose range encloses it (autograd ops: backward)
    table: dict[str, dict[str, float]] = {"forward": defaultdict(float), "backward": defaultdict(float)}
    top: dict[str, dict[str, float]] = {"forward": defaultdict(float), "backward": defaultdict(float)}
    ranges = {"forward": [], "backward": []}
    events = prof.events()
    for e in events:
        if e.name in ranges:
            ranges[e.name].append((e.time_range.start, e.time_range.end))
    alloc = {"forward": 0, "backward": 0}
    for e in events:
        if e.name in ranges:
            continue
        start = e.time_range.start
        phase = next((p for p, rs in ranges.items() if any(a <= start <= b for a, b in rs)), None)
        if phase is None:
            continue
        if e.thread != events[0].thread and "backward" not in phase:  # autograd thread: backward
            phase = "backward"
        table[phase][group_of(e.name)] += e.self_cpu_time_total / 1e3 / runs
        top[phase][e.name] += e.self_cpu_time_total / 1e3 / runs
        alloc[phase] += max(0, e.self_cpu_memory_usage)
    what = "the trainer's Fashion-MNIST conv model, B = 128, T = 4" if lib == TRAINER else "conv config"
    print(f"## {lib}: {what}, {torch.get_num_threads()} threads, {runs} profiled runs")
    print(f"wall (no profiler, median): forward {wall_f:.2f} ms, fwd+bwd {wall_fb:.2f} ms; peak {peak_mb:.1f} MB")
    print(
        f"bytes allocated per pass: forward {alloc['forward'] / runs / 1e6:.1f} MB, "
        f"backward {alloc['backward'] / runs / 1e6:.1f} MB\n"
    )
    print("| phase | op group | self CPU ms / pass | % of phase |")
    print("|---|---|---:|---:|")
    for phase in ("forward", "backward"):
        total = sum(table[phase].values())
        for g, ms in sorted(table[phase].items(), key=lambda kv: -kv[1]):
            print(f"| {phase} | {g} | {ms:.2f} | {100 * ms / total:.1f} |")
        print(f"| {phase} | **total** | {total:.2f} | 100 |")
    for phase in ("forward", "backward"):
        print(f"\ntop ops, {phase} (self CPU ms / pass):")
        for name, ms in sorted(top[phase].items(), key=lambda kv: -kv[1])[:12]:
            print(f"  {ms:8.2f}  {name}")
    print()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--libs", nargs="+", default=["spikeforge"])
    ap.add_argument(
        "--compare",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="instead of profiling, time --libs interleaved for ROUNDS rounds (e.g. --libs spikeforge "
        f"{UNFUSED} snntorch) and print medians, ratios and peak memory",
    )
    ap.add_argument("--_memory", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args._memory:
        memory_child(args._memory)
        return 0
    if args.compare:
        compare(args.libs, args.compare)
        return 0
    with open("/proc/loadavg") as f:
        print("load:", f.read().strip())
    for lib in args.libs:
        profile_lib(lib, args.runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
