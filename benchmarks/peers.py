"""Cross-library speed and memory benchmark: spikeforge vs snnTorch, SpikingJelly, Norse and Sinabs.

Same weights and inputs for every library; matched dynamics ``v <- 0.9 v + I; s = H(v - 1); v <- v - s``
(soft reset) with the fast-sigmoid surrogate (k = 25) where the library allows it. Each (library, config)
runs in a fresh subprocess: 3 warm-up runs, then at least 7 timed runs (median), for three phases:
``infer`` (no_grad forward), ``fwd`` (forward building the graph) and ``fwd_bwd`` (forward + backward of
the sum of output spikes). Peak memory of one fwd+bwd is measured in another fresh subprocess
(VmHWM - VmRSS after resetting the high-water mark). Floors (GEMM rate, memory bandwidth) are
measured in the same run.

Peers are optional (``pip install -c constraints.txt --no-deps -r benchmarks/requirements-peers.txt``;
a plain install would replace torch with a CUDA build). Missing peers are reported and skipped.

    python benchmarks/peers.py --configs A A_lif B --out benchmarks/peers.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

CONFIGS = {
    # name: (layers, n, T, B, lif_only)
    "A": (1, 512, 100, 32, False),
    "A_lif": (1, 512, 100, 32, True),
    "B": (3, 256, 50, 64, False),
    "ON_cpu": (1, 4096, 500, 16, False),  # Open Neuromorphic benchmark, CPU size
}
LIBS = ["spikeforge", "spikeforge_reference", "snntorch", "spikingjelly", "norse", "sinabs"]


def make_data(cfg: str) -> tuple[list[np.ndarray], np.ndarray]:
    layers, n, T, B, _ = CONFIGS[cfg]
    rng = np.random.default_rng(0)
    ws = [rng.normal(0.0, 2.0 / math.sqrt(n), size=(n, n)).astype(np.float32) for _ in range(layers)]
    x = (rng.random((T, B, n)) < 0.1).astype(np.float32)
    return ws, x


# ---------------------------------------------------------------- builders: each returns run(x) -> spikes [T, B, N]
def build(lib: str, ws: list[np.ndarray], lif_only: bool) -> tuple[Callable[[torch.Tensor], torch.Tensor], list[torch.Tensor]]:
    lins = []
    for w in ws:
        lin = nn.Linear(w.shape[1], w.shape[0], bias=False)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
        lins.append(lin)
    params = [lin.weight for lin in lins]

    if lib in ("spikeforge", "spikeforge_reference"):
        import spikeforge as sf
        from spikeforge.surrogate import FastSigmoid

        backend = "auto" if lib == "spikeforge" else "reference"
        mk = lambda: sf.LIF(beta=0.9, input_scaling="none", reset="subtract", surrogate=FastSigmoid(25.0), detach_reset=False, backend=backend)  # noqa: E731
        if lif_only:
            neuron = mk()
            return (lambda x: neuron(x)[0]), params
        layers: list[nn.Module] = []
        for lin in lins:
            layers += [lin, mk()]
        net = sf.SNNSequential(*layers)
        return (lambda x: net(x)[0]), params

    if lib == "snntorch":
        import snntorch as snn
        from snntorch import surrogate

        neurons = [snn.Leaky(beta=0.9, spike_grad=surrogate.fast_sigmoid(25), reset_mechanism="subtract") for _ in lins]

        def run_snn(x: torch.Tensor) -> torch.Tensor:
            h = x
            for lin, neu in zip(lins, neurons):
                cur = h if lif_only else lin(h)  # Linear once on [T, B, N]
                mem = neu.init_leaky()
                outs = []
                for t in range(cur.shape[0]):
                    spk, mem = neu(cur[t], mem)
                    outs.append(spk)
                h = torch.stack(outs)
            return h

        return run_snn, params

    if lib == "spikingjelly":
        from spikingjelly.activation_based import functional, neuron, surrogate

        neurons = [
            neuron.LIFNode(tau=10.0, decay_input=False, v_reset=None, surrogate_function=surrogate.SoftSign(alpha=25.0), step_mode="m")
            for _ in lins
        ]

        def run_sj(x: torch.Tensor) -> torch.Tensor:
            h = x
            for lin, neu in zip(lins, neurons):
                functional.reset_net(neu)
                h = neu(h if lif_only else lin(h))
            return h

        return run_sj, params

    if lib == "norse":
        import norse.torch as nt
        from norse.torch.functional.reset import reset_subtract

        p = nt.LIFBoxParameters(
            tau_mem_inv=torch.tensor(100.0), v_leak=torch.tensor(0.0), v_th=torch.tensor(1.0), v_reset=torch.tensor(0.0),
            method="super", alpha=torch.tensor(25.0), reset_method=reset_subtract,
        )
        cells = [nt.LIFBoxCell(p, dt=1e-3) for _ in lins]

        def run_norse(x: torch.Tensor) -> torch.Tensor:
            h = x
            for lin, cell in zip(lins, cells):
                cur = 10.0 * (h if lif_only else lin(h))  # dt * tau_mem_inv = 0.1: scale input by 10
                s = None
                outs = []
                for t in range(cur.shape[0]):
                    z, s = cell(cur[t], s)
                    outs.append(z)
                h = torch.stack(outs)
            return h

        return run_norse, params

    if lib == "sinabs":
        import sinabs.layers as sl
        from sinabs.activation import MembraneSubtract, SingleSpike

        class FastSig:
            def __call__(self, v_mem: torch.Tensor, spike_threshold: torch.Tensor) -> torch.Tensor:
                return 1.0 / (1.0 + 25.0 * (v_mem - spike_threshold).abs()) ** 2

        neurons = [
            sl.LIF(tau_mem=-1.0 / math.log(0.9), norm_input=False, spike_fn=SingleSpike, reset_fn=MembraneSubtract(), surrogate_grad_fn=FastSig())
            for _ in lins
        ]

        def run_sinabs(x: torch.Tensor) -> torch.Tensor:  # sinabs is batch-major [B, T, N]
            h = x.transpose(0, 1).contiguous()
            for lin, neu in zip(lins, neurons):
                neu.reset_states()
                h = neu(h if lif_only else lin(h))
            return h.transpose(0, 1)

        return run_sinabs, params

    raise ValueError(f"unknown library {lib!r}; choose from {LIBS}")


# ---------------------------------------------------------------- one subprocess = one (lib, config)
def _median_time(fn: Callable[[], Any], min_runs: int = 7, min_time: float = 1.0, max_runs: int = 100) -> tuple[float, int]:
    for _ in range(3):
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


def child_time(lib: str, cfg: str) -> dict[str, Any]:
    torch.manual_seed(0)
    _, n, T, B, lif_only = CONFIGS[cfg]
    ws, x_np = make_data(cfg)
    run, params = build(lib, ws, lif_only)
    x = torch.from_numpy(x_np)
    if lif_only:  # currents given; BPTT must produce dL/dI
        x = (x.reshape(T * B, n) @ torch.from_numpy(ws[0]).t()).reshape(T, B, n)
        x.requires_grad_()
    out: dict[str, Any] = {"lib": lib, "config": cfg, "load1_before": _cpu_others()}
    with torch.no_grad():
        out["spikes"] = float(run(x).sum())

    def infer() -> None:
        with torch.no_grad():
            run(x)

    def fwd() -> None:
        run(x)

    def fwd_bwd() -> None:
        for p in params:
            p.grad = None
        if x.requires_grad:
            x.grad = None
        run(x).sum().backward()

    for name, fn in (("infer", infer), ("fwd", fwd), ("fwd_bwd", fwd_bwd)):
        out[name + "_ms"], out[name + "_runs"] = _median_time(fn)
    out["load1_after"] = _cpu_others()
    return out


def child_memory(lib: str, cfg: str) -> dict[str, Any]:
    _, n, T, B, lif_only = CONFIGS[cfg]
    ws, x_np = make_data(cfg)
    run, params = build(lib, ws, lif_only)
    x = torch.from_numpy(x_np)
    if lif_only:
        x = (x.reshape(T * B, n) @ torch.from_numpy(ws[0]).t()).reshape(T, B, n).requires_grad_()
    for _ in range(2):
        run(x).sum().backward()

    def status(key: str) -> int:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
        raise RuntimeError(key)

    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = status("VmRSS")
    run(x).sum().backward()
    return {"peak_mb": (status("VmHWM") - base) / 1e6}


def floors(cfg: str) -> dict[str, float]:
    layers, n, T, B, lif_only = CONFIGS[cfg]
    a = torch.rand(T * B, n)
    w = torch.rand(n, n)
    gemm_mkl, _ = _median_time(lambda: a @ w.t(), min_time=0.5)
    am, wm = a.to_mkldnn(), w.to_mkldnn()
    gemm_dnnl, _ = _median_time(lambda: torch._C._nn.mkldnn_linear(am, wm, None), min_time=0.5)
    big = torch.empty(64 * 2**20 // 4)
    dst = torch.empty_like(big)
    copy_ms, _ = _median_time(lambda: dst.copy_(big), min_time=0.5)
    bw = 2 * big.numel() * 4 / (copy_ms / 1e3)  # bytes/s, read + write
    flops = 2 * T * B * n * n
    gemm_flops_fb = 0 if lif_only else layers * flops + layers * flops + (layers - 1) * flops  # fwd, dW, dX (layers 2..L)
    lif_bytes_fb = layers * T * B * n * 24
    best = max(flops / (gemm_mkl / 1e3), flops / (gemm_dnnl / 1e3))
    return {
        "gemm_mkl_gflops": flops / (gemm_mkl / 1e3) / 1e9,
        "gemm_onednn_gflops": flops / (gemm_dnnl / 1e3) / 1e9,
        "copy_gbps": bw / 1e9,
        "floor_fwd_bwd_ms": (gemm_flops_fb / best + lif_bytes_fb / bw) * 1e3,
        "floor_fwd_bwd_torch_gemm_ms": (gemm_flops_fb / (flops / (gemm_mkl / 1e3)) + lif_bytes_fb / bw) * 1e3,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="+", default=["A", "A_lif", "B"], choices=sorted(CONFIGS))
    ap.add_argument("--libs", nargs="+", default=LIBS, choices=LIBS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="write all results as JSON here")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--_child", nargs=3, metavar=("MODE", "LIB", "CONFIG"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("NUMBA_NUM_THREADS", str(args.threads))
    if args._child:
        mode, lib, cfg = args._child
        res = child_time(lib, cfg) if mode == "time" else child_memory(lib, cfg)
        print("RESULT " + json.dumps(res))
        return 0

    results: dict[str, Any] = {"torch": torch.__version__, "threads": args.threads, "configs": {}}
    for cfg in args.configs:
        rows = []
        fl = floors(cfg)
        for lib in args.libs:
            row: dict[str, Any] = {"lib": lib}
            for mode in ("time",) + (() if args.no_memory else ("memory",)):
                cmd = [sys.executable, __file__, "--threads", str(args.threads), "--_child", mode, lib, cfg]
                env = dict(os.environ)
                if mode == "memory":  # freed memory returns to the OS, so VmHWM sees the step's own peak
                    env["MALLOC_MMAP_THRESHOLD_"] = "65536"
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
                line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
                if proc.returncode != 0 or not line:
                    row["error"] = (proc.stderr.strip().splitlines() or ["failed"])[-1][:200]
                    break
                row.update(json.loads(line[0][7:]))
            rows.append(row)
            print(f"[{cfg}] {lib}: {row}", file=sys.stderr)
        results["configs"][cfg] = {"floors": fl, "rows": rows}
        print(table(cfg, fl, rows))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
    return 0


def table(cfg: str, fl: dict[str, float], rows: list[dict[str, Any]]) -> str:
    ok = [r for r in rows if "error" not in r]
    peers = [r for r in ok if not r["lib"].startswith("spikeforge")]
    fastest = min((r["fwd_bwd_ms"] for r in peers), default=float("nan"))
    ref_spikes = next((r["spikes"] for r in ok if r["lib"] == "spikeforge_reference"), None)
    lines = [
        f"### Config {cfg}: {CONFIGS[cfg]}  (floor fwd+bwd {fl['floor_fwd_bwd_ms']:.2f} ms; torch-GEMM floor {fl['floor_fwd_bwd_torch_gemm_ms']:.2f} ms; "
        f"GEMM MKL {fl['gemm_mkl_gflops']:.0f} / oneDNN {fl['gemm_onednn_gflops']:.0f} GFLOP/s; copy {fl['copy_gbps']:.0f} GB/s)",
        "",
        "| library | spikes (= ours?) | infer ms | fwd ms | fwd+bwd ms | vs fastest peer | vs floor | peak MB | load1 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['lib']} | error: {r['error']} | | | | | | | |")
            continue
        same = "yes" if ref_spikes is not None and r["spikes"] == ref_spikes else "no"
        lines.append(
            f"| {r['lib']} | {r['spikes']:.0f} ({same}) | {r['infer_ms']:.2f} | {r['fwd_ms']:.2f} | {r['fwd_bwd_ms']:.2f} | "
            f"{fastest / r['fwd_bwd_ms']:.2f}x | {r['fwd_bwd_ms'] / fl['floor_fwd_bwd_ms']:.2f}x | {r.get('peak_mb', float('nan')):.1f} | "
            f"{r['load1_before']:.1f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
