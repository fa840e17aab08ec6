"""Cross-library speed and memory benchmark: spikeforge vs snnTorch, SpikingJelly, Norse and Sinabs.

Same weights and inputs for every library; matched dynamics ``v <- 0.9 v + I; s = H(v - 1); v <- v - s``
(soft reset) with the fast-sigmoid surrogate (k = 25) where the library allows it. Each (library, config)
runs in a fresh subprocess: warm-up runs (3; 1 for the big ON_cpu config), then at least 7 timed runs
(5 for ON_cpu) and at least 1 s of runs (median), for three phases: ``infer`` (no_grad forward), ``fwd``
(forward building the graph) and ``fwd_bwd`` (forward + backward of the sum of output spikes). Peak
memory of one fwd+bwd is measured in another fresh subprocess (VmHWM - VmRSS after resetting the
high-water mark). Floors (GEMM rate, memory bandwidth) are measured in the same run.

Configs (time-major ``[T, B, ...]``; Bernoulli input spikes):

* ``A``: Linear 512->512 (no bias) + LIF, T=100, B=32, input p=0.1. ``A_lif``: the LIF layer alone on
  the same currents. ``B``: 3 x (Linear 256->256 + LIF), T=50, B=64.
* ``ON_cpu``: the Open Neuromorphic benchmark at CPU size, Linear 4096->4096 + LIF, T=500, B=16.
* ``conv``: 28x28x1 input (p=0.2), T=25, B=32: Conv2d(1,16,5) -> LIF -> AvgPool2d(2) -> Conv2d(16,32,5)
  -> LIF -> AvgPool2d(2) -> Flatten -> Linear(512,128) -> LIF -> Linear(128,10) -> LIF, all without bias.

How each library runs a net: spikeforge ``SNNSequential`` (stateless layers once on ``[T*B, ...]``);
SpikingJelly multi-step ``LIFNode(step_mode="m")`` with stateless layers in ``layer.SeqToANNContainer``
(its CPU path is the torch one); Norse and Sinabs fold the stateless layers over ``T*B`` too and run
``LIFBoxCell`` per step / Sinabs ``LIF`` on ``[B, T, ...]``; snnTorch runs ``Leaky`` per step, with
the Linear folded over ``T*B`` in the Linear configs and the whole net per step in ``conv`` (as in its
tutorials). snnTorch's ``Leaky`` applies the reset one step late, so its spikes differ by design.

Spike agreement (checked on the untimed first forward): each child saves its whole output spike train
(1 bit per entry) and ``spikes_differ`` counts the entries that differ from the reference's
(``spikeforge_reference``, else ``spikeforge``); ``spikes`` is the total count and ``spike_sig`` the
sum over output spikes of (t + 1). In ``ON_cpu`` (K = 4096) a handful of entries can differ because
spikeforge's oneDNN GEMM rounds the currents differently from ``nn.Linear`` (MKL): with ``nn.Linear``
the trains are identical.

Floor for fwd+bwd (``floors``): GEMM FLOPs / best measured GEMM rate + neuron bytes / measured copy
bandwidth, with GEMM FLOPs = forward (2 * T*B * fan_in * out elements per Linear/Conv layer) + weight
gradient (same again) + input gradient (same again, all layers except the first), and neuron bytes =
24 bytes per neuron element per time step (forward: read I, write s and saved v; backward: read v and
dL/ds, write dL/dI). Pooling/flatten traffic is ignored, and convolutions are priced at the GEMM
rate, so the conv floor is optimistic. The GEMM rate is measured with a ``[min(T*B, 2048), n] x [n, n]``
product (n = 512 for conv) through MKL and oneDNN.

Peers are optional (``pip install -c constraints.txt --no-deps -r benchmarks/requirements-peers.txt``;
a plain install would replace torch with a CUDA build). Missing peers are reported and skipped.

    python benchmarks/peers.py --configs A A_lif B ON_cpu conv --out benchmarks/peers.json
    python benchmarks/peers.py --smoke --configs conv --no-memory      # quick end-to-end check
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

# The networks and one adapter per library live in benchmarks/_peers/ (this script's directory is sys.path[0]).
from _peers.adapters import ADAPTERS, get_adapter
from _peers.base import Net, PeerAdapter
from _peers.nets import CONFIGS, Config, get_config, make_data, make_seq

LIBS = list(ADAPTERS)
__all__ = [  # the nets are re-exported for tests/test_peers_harness.py
    "CONFIGS", "LIBS", "Config", "build", "floor_terms", "floors", "get_config", "main", "make_data", "make_seq",
]


def build(lib: str, cfg: Config, ws: list[np.ndarray]) -> Net:
    """``lib``'s net for ``cfg`` with weights ``ws``: ``(run, params)``, ``run(x)`` -> spikes ``[T, B, ...]``."""
    return get_adapter(lib).build(cfg, ws)


# ---------------------------------------------------------------- one subprocess = one (lib, config)
def _median_time(
    fn: Callable[[], Any], warmup: int = 3, min_runs: int = 7, min_time: float = 1.0, max_runs: int = 100
) -> tuple[float, int]:
    for _ in range(warmup):
        fn()
    ts: list[float] = []
    start = time.perf_counter()
    while len(ts) < min_runs or (time.perf_counter() - start < min_time and len(ts) < max_runs):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts)) * 1e3, len(ts)


def _cpu_others() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def _setup(lib: str, cfg: Config) -> tuple[PeerAdapter, Net, torch.Tensor]:
    torch.manual_seed(0)
    ws, x_np = make_data(cfg)
    adapter = get_adapter(lib)
    net = adapter.build(cfg, ws)
    x = torch.from_numpy(x_np)
    if cfg.kind == "lif":  # currents given; BPTT must produce dL/dI
        x = (x.reshape(cfg.T * cfg.B, cfg.n) @ torch.from_numpy(ws[0]).t()).reshape(cfg.T, cfg.B, cfg.n)
        x.requires_grad_()
    return adapter, net, x


def child_time(lib: str, cfg: Config, min_time: float, spikes_path: str | None = None) -> dict[str, Any]:
    adapter, net, x = _setup(lib, cfg)
    out: dict[str, Any] = {"lib": lib, "load1_before": _cpu_others()}
    s = adapter.spike_train(adapter.infer(net, x))
    if spikes_path:  # the whole spike train, 1 bit per entry, for the element-wise agreement check
        np.save(spikes_path, np.packbits(s.detach().numpy().astype(bool)))
    out["spikes"] = float(s.sum())
    steps = torch.arange(1, s.shape[0] + 1, dtype=torch.float64).reshape(-1, *([1] * (s.dim() - 1)))
    out["spike_sig"] = float((s.double() * steps).sum())
    phases: tuple[tuple[str, Callable[[], Any]], ...] = (
        ("infer", lambda: adapter.infer(net, x)),  # no_grad forward
        ("fwd", lambda: adapter.forward(net, x)),  # forward building the graph
        ("fwd_bwd", lambda: adapter.forward_backward(net, x)),  # forward + backward of the spike sum
    )
    for name, fn in phases:
        out[name + "_ms"], out[name + "_runs"] = _median_time(fn, cfg.warmup, cfg.repeats, min_time)
    out["load1_after"] = _cpu_others()
    return out


def child_memory(lib: str, cfg: Config) -> dict[str, Any]:
    _, net, x = _setup(lib, cfg)
    for _ in range(max(1, min(2, cfg.warmup))):
        net.run(x).sum().backward()

    def status(key: str) -> int:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
        raise RuntimeError(key)

    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = status("VmRSS")
    net.run(x).sum().backward()  # gradients accumulate: no zeroing between the runs, as before
    return {"peak_mb": (status("VmHWM") - base) / 1e6}


def floor_terms(cfg: Config) -> tuple[float, float]:
    """(GEMM FLOPs, neuron bytes) of one forward+backward; see the module docstring."""
    tb = cfg.T * cfg.B
    if cfg.kind == "lif":
        return 0.0, 24.0 * tb * cfg.n
    if cfg.kind == "linear":
        layer_flops = [2.0 * tb * cfg.n * cfg.n] * cfg.layers
        neurons = cfg.layers * cfg.n
    else:  # conv: out elements x fan_in per layer; LIF sizes 16*24*24, 32*8*8, 128, 10
        shapes = ((16 * 24 * 24, 25), (32 * 8 * 8, 400), (128, 512), (10, 128))
        layer_flops = [2.0 * tb * n_out * fan_in for n_out, fan_in in shapes]
        neurons = 16 * 24 * 24 + 32 * 8 * 8 + 128 + 10
    return 2.0 * sum(layer_flops) + sum(layer_flops[1:]), 24.0 * tb * neurons


def floors(cfg: Config) -> dict[str, float]:
    n = 512 if cfg.kind == "conv" else cfg.n
    m = min(cfg.T * cfg.B, 2048)
    a, w = torch.rand(m, n), torch.rand(n, n)
    kw: dict[str, Any] = {"warmup": min(cfg.warmup, 3), "min_runs": 5, "min_time": 0.5}
    gemm_mkl, _ = _median_time(lambda: a @ w.t(), **kw)
    am, wm = a.to_mkldnn(), w.to_mkldnn()
    gemm_dnnl, _ = _median_time(lambda: torch._C._nn.mkldnn_linear(am, wm, None), **kw)
    big = torch.empty(64 * 2**20 // 4)
    dst = torch.empty_like(big)
    copy_ms, _ = _median_time(lambda: dst.copy_(big), min_time=0.5)
    bw = 2 * big.numel() * 4 / (copy_ms / 1e3)  # bytes/s, read + write
    flops = 2.0 * m * n * n
    rate_mkl, rate_dnnl = flops / (gemm_mkl / 1e3), flops / (gemm_dnnl / 1e3)
    gemm_flops_fb, neuron_bytes_fb = floor_terms(cfg)
    return {
        "gemm_mkl_gflops": rate_mkl / 1e9,
        "gemm_onednn_gflops": rate_dnnl / 1e9,
        "copy_gbps": bw / 1e9,
        "floor_fwd_bwd_ms": (gemm_flops_fb / max(rate_mkl, rate_dnnl) + neuron_bytes_fb / bw) * 1e3,
        "floor_fwd_bwd_torch_gemm_ms": (gemm_flops_fb / rate_mkl + neuron_bytes_fb / bw) * 1e3,
    }


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="+", default=["A", "A_lif", "B"], choices=sorted(CONFIGS))
    ap.add_argument("--libs", nargs="+", default=LIBS, choices=LIBS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="write all results as JSON here")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument(
        "--smoke", action="store_true", help="shrink T, B and n (and repeats) for a quick correctness check"
    )
    ap.add_argument(
        "--warmup", type=int, default=None, help="warm-up runs per phase (default: per config, 3 or 1); >= 1"
    )
    ap.add_argument(
        "--repeats", type=int, default=None, help="minimum timed runs per phase (default: per config, 7 or 5); >= 5"
    )
    ap.add_argument(
        "--malloc", choices=["default", "steady"], default="default",
        help="steady: run every library's timing child with glibc's MALLOC_MMAP_THRESHOLD_=32 MiB and "
        "MALLOC_TRIM_THRESHOLD_=2 GiB, so freed [T, B, N] buffers are reused instead of being returned to "
        "the OS and faulted in again on every step (the same setting for every library)",
    )
    ap.add_argument(
        "--min-time", type=float, default=1.0, help="keep timing until this many seconds have passed (max 100 runs)"
    )
    ap.add_argument("--_child", nargs=3, metavar=("MODE", "LIB", "CONFIG"), help=argparse.SUPPRESS)
    ap.add_argument("--_spikes", default=None, help=argparse.SUPPRESS)
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = _parser()
    args = ap.parse_args(argv)
    if args.warmup is not None and args.warmup < 1:
        ap.error("--warmup must be >= 1")
    if args.repeats is not None and args.repeats < 5:
        ap.error("--repeats must be >= 5 (the median of fewer runs is too noisy)")
    torch.set_num_threads(args.threads)
    os.environ.setdefault("NUMBA_NUM_THREADS", str(args.threads))

    def config(name: str) -> Config:
        cfg = get_config(name, args.smoke)
        over = {k: v for k, v in (("warmup", args.warmup), ("repeats", args.repeats)) if v is not None}
        return dataclasses.replace(cfg, **over)

    if args._child:
        mode, lib, name = args._child
        if mode == "time":
            res = child_time(lib, config(name), args.min_time, args._spikes)
        else:
            res = child_memory(lib, config(name))
        print("RESULT " + json.dumps(res))
        return 0

    passthrough = ["--threads", str(args.threads), "--min-time", str(args.min_time)]
    passthrough += ["--smoke"] if args.smoke else []
    passthrough += [
        a for k in ("warmup", "repeats") if getattr(args, k) is not None for a in (f"--{k}", str(getattr(args, k)))
    ]
    results: dict[str, Any] = {
        "torch": torch.__version__, "threads": args.threads, "smoke": args.smoke, "malloc": args.malloc,
        "versions": {lib: ADAPTERS[lib].version() for lib in args.libs}, "configs": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.configs:
            cfg = config(name)
            fl = floors(cfg)
            rows = []
            for lib in args.libs:
                rows.append(measure(lib, name, passthrough, tmp, memory=not args.no_memory, malloc=args.malloc))
                print(f"[{name}] {lib}: {rows[-1]}", file=sys.stderr)
            _compare_spikes(tmp, name, rows)
            results["configs"][name] = {"config": dataclasses.asdict(cfg), "floors": fl, "rows": rows}
            print(table(name, cfg, fl, rows))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
    return 0


def measure(lib: str, name: str, passthrough: list[str], tmp: str, memory: bool, malloc: str) -> dict[str, Any]:
    """One table row: ``lib`` on config ``name``, timed in one fresh subprocess and (``memory``) sized in another.

    A library that is not installed is skipped (the row says why); a child that fails gives an ``error`` row.
    """
    reason = ADAPTERS[lib].skip_reason()
    if reason is not None:
        return {"lib": lib, "skipped": reason}
    row: dict[str, Any] = {"lib": lib}
    t0 = time.perf_counter()
    for mode in ("time",) + (("memory",) if memory else ()):
        cmd = [sys.executable, __file__, *passthrough, "--_child", mode, lib, name]
        if mode == "time":
            cmd += ["--_spikes", os.path.join(tmp, f"{name}_{lib}.npy")]
        env = dict(os.environ)
        if mode == "memory":  # freed memory returns to the OS, so VmHWM sees the step's own peak
            env["MALLOC_MMAP_THRESHOLD_"] = "65536"
        elif malloc == "steady":
            env["MALLOC_MMAP_THRESHOLD_"] = str(32 * 2**20)  # glibc's maximum
            env["MALLOC_TRIM_THRESHOLD_"] = str(2**31 - 1)
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode != 0 or not line:
            err = proc.stderr.strip().splitlines() or ["failed"]
            row["error"] = next((ln for ln in reversed(err) if "Error" in ln or "Exception" in ln), err[-1])[:200]
            break
        row.update(json.loads(line[0][7:]))
    row["wall_s"] = time.perf_counter() - t0
    return row


def _measured(row: dict[str, Any]) -> bool:
    return "error" not in row and "skipped" not in row


def _compare_spikes(tmp: str, name: str, rows: list[dict[str, Any]]) -> None:
    """Set ``spikes_differ`` on each row: entries of its spike train that differ from the reference's."""
    ok = {r["lib"]: r for r in rows if _measured(r)}
    ref = "spikeforge_reference" if "spikeforge_reference" in ok else "spikeforge"

    def path(lib: str) -> str:
        return os.path.join(tmp, f"{name}_{lib}.npy")

    if ref not in ok or not os.path.exists(path(ref)):
        return
    want = np.load(path(ref))
    for lib, r in ok.items():
        if os.path.exists(path(lib)):
            got = np.load(path(lib))
            r["spikes_differ"] = int(np.unpackbits(got ^ want).sum()) if got.shape == want.shape else -1


def table(name: str, cfg: Config, fl: dict[str, float], rows: list[dict[str, Any]]) -> str:
    ok = [r for r in rows if _measured(r)]
    peers = [r for r in ok if not r["lib"].startswith("spikeforge")]
    fastest = min((r["fwd_bwd_ms"] for r in peers), default=float("nan"))
    by_lib = {r["lib"]: r for r in ok}
    ref = by_lib.get("spikeforge_reference", by_lib.get("spikeforge"))
    lines = [
        (
            f"### Config {name}: {cfg.describe()}  (floor fwd+bwd {fl['floor_fwd_bwd_ms']:.2f} ms; "
            f"torch-GEMM floor {fl['floor_fwd_bwd_torch_gemm_ms']:.2f} ms; "
            f"GEMM MKL {fl['gemm_mkl_gflops']:.0f} / oneDNN {fl['gemm_onednn_gflops']:.0f} GFLOP/s; "
            f"copy {fl['copy_gbps']:.0f} GB/s)"
        ),
        "",
        (
            "| library | spikes (= ours?) | infer ms | fwd ms | fwd+bwd ms | vs fastest peer | vs floor | peak MB "
            "| load1 |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if not _measured(r):
            why = f"error: {r['error']}" if "error" in r else f"skipped: {r['skipped']}"
            lines.append(f"| {r['lib']} | {why} | | | | | | | |")
            continue
        if ref is None:
            same = "?"
        elif r.get("spikes_differ") is not None:  # element-wise comparison of the whole spike trains
            same = "yes" if r["spikes_differ"] == 0 else f"no: {r['spikes_differ']} entries differ"
        else:
            same = "yes" if r["spikes"] == ref["spikes"] and r.get("spike_sig") == ref.get("spike_sig") else "no"
        fb = r["fwd_bwd_ms"]
        lines.append(
            f"| {r['lib']} | {r['spikes']:.0f} ({same}) | {r['infer_ms']:.2f} | {r['fwd_ms']:.2f} | {fb:.2f} | "
            f"{fastest / fb:.2f}x | {fb / fl['floor_fwd_bwd_ms']:.2f}x | {r.get('peak_mb', float('nan')):.1f} | "
            f"{r['load1_before']:.1f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
