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
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class Config:
    """One benchmark network: ``kind`` is "linear" (``layers`` x (Linear n->n + LIF)), "lif" or "conv"."""

    kind: str
    T: int
    B: int
    layers: int = 1
    n: int = 0
    p_in: float = 0.1
    warmup: int = 3
    repeats: int = 7

    def describe(self) -> str:
        if self.kind == "conv":
            return f"conv 1x28x28 -> c16k5 -> pool -> c32k5 -> pool -> 512 -> 128 -> 10, T={self.T}, B={self.B}"
        body = "LIF only" if self.kind == "lif" else f"{self.layers} x (Linear {self.n}->{self.n} + LIF)"
        return f"{body}, n={self.n}, T={self.T}, B={self.B}"


CONFIGS = {
    "A": Config("linear", T=100, B=32, n=512),
    "A_lif": Config("lif", T=100, B=32, n=512),
    "B": Config("linear", T=50, B=64, layers=3, n=256),
    "ON_cpu": Config("linear", T=500, B=16, n=4096, warmup=1, repeats=5),  # Open Neuromorphic, CPU size
    "conv": Config("conv", T=25, B=32, p_in=0.2),
}
LIBS = ["spikeforge", "spikeforge_reference", "snntorch", "spikingjelly", "norse", "sinabs"]
CONV_GAINS = (2.0, 2.0, 2.0, 2.0)  # weight std = gain / sqrt(fan_in): each LIF layer fires ~10% of (t, neuron)


def get_config(name: str, smoke: bool) -> Config:
    """The config ``name``; ``smoke`` shrinks T, B and n for a quick end-to-end correctness check."""
    cfg = CONFIGS[name]
    if not smoke:
        return cfg
    return dataclasses.replace(cfg, T=min(cfg.T, 25), B=max(2, cfg.B // 8), n=min(cfg.n, 256), warmup=1, repeats=5)


def make_data(cfg: Config) -> tuple[list[np.ndarray], np.ndarray]:
    """Weights (Linear ``[out, in]``, Conv ``[out, in, k, k]``) and input spikes ``[T, B, ...]``."""
    rng = np.random.default_rng(0)
    if cfg.kind == "conv":
        shapes = [(16, 1, 5, 5), (32, 16, 5, 5), (128, 512), (10, 128)]
        ws = [
            rng.normal(0.0, g / math.sqrt(int(np.prod(s[1:]))), size=s).astype(np.float32)
            for g, s in zip(CONV_GAINS, shapes)
        ]
        x = (rng.random((cfg.T, cfg.B, 1, 28, 28)) < cfg.p_in).astype(np.float32)
        return ws, x
    n = cfg.n
    ws = [rng.normal(0.0, 2.0 / math.sqrt(n), size=(n, n)).astype(np.float32) for _ in range(cfg.layers)]
    x = (rng.random((cfg.T, cfg.B, n)) < cfg.p_in).astype(np.float32)
    return ws, x


def make_seq(cfg: Config, ws: list[np.ndarray]) -> tuple[list[nn.Module | None], list[torch.Tensor]]:
    """The net as a list of stateless torch layers, ``None`` marking a LIF layer; and the weights."""
    mods: list[nn.Module] = []
    for w in ws:
        m: nn.Module = nn.Conv2d(w.shape[1], w.shape[0], w.shape[2], bias=False) if w.ndim == 4 else nn.Linear(w.shape[1], w.shape[0], bias=False)
        with torch.no_grad():
            m.weight.copy_(torch.from_numpy(w))
        mods.append(m)
    params = [m.weight for m in mods]
    if cfg.kind == "lif":
        return [None], params
    if cfg.kind == "linear":
        return [x for m in mods for x in (m, None)], params
    c1, c2, f1, f2 = mods
    return [c1, None, nn.AvgPool2d(2), c2, None, nn.AvgPool2d(2), nn.Flatten(), f1, None, f2, None], params


def _fold(layer: nn.Module, h: torch.Tensor, batch_major: bool = False) -> torch.Tensor:
    """Run ``layer`` once on ``[T*B, ...]`` (or ``[B*T, ...]``)."""
    a, b = h.shape[:2]
    y = layer(h.reshape(a * b, *h.shape[2:]))
    return y.reshape(a, b, *y.shape[1:])


# ---------------------------------------------------------------- builders: each returns run(x) -> spikes [T, B, ...]
def build(lib: str, cfg: Config, ws: list[np.ndarray]) -> tuple[Callable[[torch.Tensor], torch.Tensor], list[torch.Tensor]]:
    seq, params = make_seq(cfg, ws)
    n_neurons = sum(m is None for m in seq)

    if lib in ("spikeforge", "spikeforge_reference"):
        import spikeforge as sf
        from spikeforge.surrogate import FastSigmoid

        backend = "auto" if lib == "spikeforge" else "reference"
        mk = lambda: sf.LIF(beta=0.9, input_scaling="none", reset="subtract", surrogate=FastSigmoid(25.0), detach_reset=False, backend=backend)
        if cfg.kind == "lif":
            neuron = mk()
            return (lambda x: neuron(x)[0]), params
        net = sf.SNNSequential(*[mk() if m is None else m for m in seq])
        return (lambda x: net(x)[0]), params

    if lib == "snntorch":
        import snntorch as snn
        from snntorch import surrogate

        neurons = [snn.Leaky(beta=0.9, spike_grad=surrogate.fast_sigmoid(25), reset_mechanism="subtract") for _ in range(n_neurons)]

        def run_folded(x: torch.Tensor) -> torch.Tensor:  # Linear configs: Linear once on [T*B, N]
            h, k = x, 0
            for m in seq:
                if m is not None:
                    h = m(h)
                    continue
                neu, k = neurons[k], k + 1
                mem = neu.init_leaky()
                outs = []
                for h_t in h.unbind(0):  # unbind, not h[t]: T select-backwards would each zero-fill [T, B, N]
                    spk, mem = neu(h_t, mem)
                    outs.append(spk)
                h = torch.stack(outs)
            return h

        def run_per_step(x: torch.Tensor) -> torch.Tensor:  # conv: the whole net per time step
            mems = [neu.init_leaky() for neu in neurons]
            outs = []
            for t in range(x.shape[0]):
                h, k = x[t], 0
                for m in seq:
                    if m is not None:
                        h = m(h)
                    else:
                        h, mems[k] = neurons[k](h, mems[k])
                        k += 1
                outs.append(h)
            return torch.stack(outs)

        return (run_per_step if cfg.kind == "conv" else run_folded), params

    if lib == "spikingjelly":
        from spikingjelly.activation_based import functional, layer, neuron, surrogate

        sj_layers = [
            neuron.LIFNode(tau=10.0, decay_input=False, v_reset=None, surrogate_function=surrogate.SoftSign(alpha=25.0), step_mode="m")
            if m is None else layer.SeqToANNContainer(m)
            for m in seq
        ]
        sj_net = nn.Sequential(*sj_layers)

        def run_sj(x: torch.Tensor) -> torch.Tensor:
            functional.reset_net(sj_net)
            return sj_net(x)

        return run_sj, params

    if lib == "norse":
        import norse.torch as nt
        from norse.torch.functional.reset import reset_subtract

        p = nt.LIFBoxParameters(
            tau_mem_inv=torch.tensor(100.0), v_leak=torch.tensor(0.0), v_th=torch.tensor(1.0), v_reset=torch.tensor(0.0),
            method="super", alpha=torch.tensor(25.0), reset_method=reset_subtract,
        )
        cells = [nt.LIFBoxCell(p, dt=1e-3) for _ in range(n_neurons)]

        def run_norse(x: torch.Tensor) -> torch.Tensor:
            h, k = x, 0
            for m in seq:
                if m is not None:
                    h = _fold(m, h)
                    continue
                cell, k = cells[k], k + 1
                cur = 10.0 * h  # dt * tau_mem_inv = 0.1: scale input by 10
                s = None
                outs = []
                for cur_t in cur.unbind(0):  # unbind, not cur[t] (see snnTorch above)
                    z, s = cell(cur_t, s)
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
            for _ in range(n_neurons)
        ]

        def run_sinabs(x: torch.Tensor) -> torch.Tensor:  # sinabs is batch-major [B, T, ...]
            h, k = x.transpose(0, 1).contiguous(), 0
            for m in seq:
                if m is not None:
                    h = _fold(m, h)  # = sinabs FlattenTime -> layer -> UnflattenTime
                    continue
                neurons[k].reset_states()
                h, k = neurons[k](h), k + 1
            return h.transpose(0, 1)

        return run_sinabs, params

    raise ValueError(f"unknown library {lib!r}; choose from {LIBS}")


# ---------------------------------------------------------------- one subprocess = one (lib, config)
def _median_time(fn: Callable[[], Any], warmup: int = 3, min_runs: int = 7, min_time: float = 1.0, max_runs: int = 100) -> tuple[float, int]:
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


def _setup(lib: str, cfg: Config) -> tuple[Callable[[torch.Tensor], torch.Tensor], list[torch.Tensor], torch.Tensor]:
    torch.manual_seed(0)
    ws, x_np = make_data(cfg)
    run, params = build(lib, cfg, ws)
    x = torch.from_numpy(x_np)
    if cfg.kind == "lif":  # currents given; BPTT must produce dL/dI
        x = (x.reshape(cfg.T * cfg.B, cfg.n) @ torch.from_numpy(ws[0]).t()).reshape(cfg.T, cfg.B, cfg.n).requires_grad_()
    return run, params, x


def child_time(lib: str, cfg: Config, min_time: float, spikes_path: str | None = None) -> dict[str, Any]:
    run, params, x = _setup(lib, cfg)
    out: dict[str, Any] = {"lib": lib, "load1_before": _cpu_others()}
    with torch.no_grad():
        s = run(x)
    if spikes_path:  # the whole spike train, 1 bit per entry, for the element-wise agreement check
        np.save(spikes_path, np.packbits(s.detach().numpy().astype(bool)))
    out["spikes"] = float(s.sum())
    steps = torch.arange(1, s.shape[0] + 1, dtype=torch.float64).reshape(-1, *([1] * (s.dim() - 1)))
    out["spike_sig"] = float((s.double() * steps).sum())

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
        out[name + "_ms"], out[name + "_runs"] = _median_time(fn, cfg.warmup, cfg.repeats, min_time)
    out["load1_after"] = _cpu_others()
    return out


def child_memory(lib: str, cfg: Config) -> dict[str, Any]:
    run, _, x = _setup(lib, cfg)
    for _ in range(max(1, min(2, cfg.warmup))):
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


def floor_terms(cfg: Config) -> tuple[float, float]:
    """(GEMM FLOPs, neuron bytes) of one forward+backward; see the module docstring."""
    tb = cfg.T * cfg.B
    if cfg.kind == "lif":
        return 0.0, 24.0 * tb * cfg.n
    if cfg.kind == "linear":
        layer_flops = [2.0 * tb * cfg.n * cfg.n] * cfg.layers
        neurons = cfg.layers * cfg.n
    else:  # conv: out elements x fan_in per layer; LIF sizes 16*24*24, 32*8*8, 128, 10
        layer_flops = [2.0 * tb * n_out * fan_in for n_out, fan_in in ((16 * 24 * 24, 25), (32 * 8 * 8, 400), (128, 512), (10, 128))]
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="+", default=["A", "A_lif", "B"], choices=sorted(CONFIGS))
    ap.add_argument("--libs", nargs="+", default=LIBS, choices=LIBS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="write all results as JSON here")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="shrink T, B and n (and repeats) for a quick correctness check")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up runs per phase (default: per config, 3 or 1); >= 1")
    ap.add_argument("--repeats", type=int, default=None, help="minimum timed runs per phase (default: per config, 7 or 5); >= 5")
    ap.add_argument(
        "--malloc", choices=["default", "steady"], default="default",
        help="steady: run every library's timing child with glibc's MALLOC_MMAP_THRESHOLD_=32 MiB and "
        "MALLOC_TRIM_THRESHOLD_=2 GiB, so freed [T, B, N] buffers are reused instead of being returned to "
        "the OS and faulted in again on every step (the same setting for every library)",
    )
    ap.add_argument("--min-time", type=float, default=1.0, help="keep timing until this many seconds have passed (max 100 runs)")
    ap.add_argument("--_child", nargs=3, metavar=("MODE", "LIB", "CONFIG"), help=argparse.SUPPRESS)
    ap.add_argument("--_spikes", default=None, help=argparse.SUPPRESS)
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
        res = child_time(lib, config(name), args.min_time, args._spikes) if mode == "time" else child_memory(lib, config(name))
        print("RESULT " + json.dumps(res))
        return 0

    passthrough = ["--threads", str(args.threads), "--min-time", str(args.min_time)] + (["--smoke"] if args.smoke else [])
    passthrough += [a for k in ("warmup", "repeats") if getattr(args, k) is not None for a in (f"--{k}", str(getattr(args, k)))]
    results: dict[str, Any] = {"torch": torch.__version__, "threads": args.threads, "smoke": args.smoke, "malloc": args.malloc, "configs": {}}
    tmp_dir = tempfile.TemporaryDirectory()
    tmp = tmp_dir.name
    for name in args.configs:
        cfg = config(name)
        rows = []
        fl = floors(cfg)
        for lib in args.libs:
            row: dict[str, Any] = {"lib": lib}
            t0 = time.perf_counter()
            for mode in ("time",) + (() if args.no_memory else ("memory",)):
                cmd = [sys.executable, __file__, *passthrough, "--_child", mode, lib, name]
                if mode == "time":
                    cmd += ["--_spikes", os.path.join(tmp, f"{name}_{lib}.npy")]
                env = dict(os.environ)
                if mode == "memory":  # freed memory returns to the OS, so VmHWM sees the step's own peak
                    env["MALLOC_MMAP_THRESHOLD_"] = "65536"
                elif args.malloc == "steady":
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
            rows.append(row)
            print(f"[{name}] {lib}: {row}", file=sys.stderr)
        _compare_spikes(tmp, name, rows)
        results["configs"][name] = {"config": dataclasses.asdict(cfg), "floors": fl, "rows": rows}
        print(table(name, cfg, fl, rows))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
    tmp_dir.cleanup()
    return 0


def _compare_spikes(tmp: str, name: str, rows: list[dict[str, Any]]) -> None:
    """Set ``spikes_differ`` on each row: entries of its spike train that differ from the reference's."""
    ok = {r["lib"]: r for r in rows if "error" not in r}
    ref = "spikeforge_reference" if "spikeforge_reference" in ok else "spikeforge"
    path = lambda lib: os.path.join(tmp, f"{name}_{lib}.npy")
    if ref not in ok or not os.path.exists(path(ref)):
        return
    want = np.load(path(ref))
    for lib, r in ok.items():
        if os.path.exists(path(lib)):
            got = np.load(path(lib))
            r["spikes_differ"] = int(np.unpackbits(got ^ want).sum()) if got.shape == want.shape else -1


def table(name: str, cfg: Config, fl: dict[str, float], rows: list[dict[str, Any]]) -> str:
    ok = [r for r in rows if "error" not in r]
    peers = [r for r in ok if not r["lib"].startswith("spikeforge")]
    fastest = min((r["fwd_bwd_ms"] for r in peers), default=float("nan"))
    ref = next((r for r in ok if r["lib"] == "spikeforge_reference"), next((r for r in ok if r["lib"] == "spikeforge"), None))
    lines = [
        (
            f"### Config {name}: {cfg.describe()}  (floor fwd+bwd {fl['floor_fwd_bwd_ms']:.2f} ms; torch-GEMM floor "
            f"{fl['floor_fwd_bwd_torch_gemm_ms']:.2f} ms; GEMM MKL {fl['gemm_mkl_gflops']:.0f} / oneDNN "
            f"{fl['gemm_onednn_gflops']:.0f} GFLOP/s; copy {fl['copy_gbps']:.0f} GB/s)"
        ),
        "",
        "| library | spikes (= ours?) | infer ms | fwd ms | fwd+bwd ms | vs fastest peer | vs floor | peak MB | load1 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['lib']} | error: {r['error']} | | | | | | | |")
            continue
        if ref is None:
            same = "?"
        elif r.get("spikes_differ") is not None:  # element-wise comparison of the whole spike trains
            same = "yes" if r["spikes_differ"] == 0 else f"no: {r['spikes_differ']} entries differ"
        else:
            same = "yes" if r["spikes"] == ref["spikes"] and r.get("spike_sig") == ref.get("spike_sig") else "no"
        lines.append(
            f"| {r['lib']} | {r['spikes']:.0f} ({same}) | {r['infer_ms']:.2f} | {r['fwd_ms']:.2f} | {r['fwd_bwd_ms']:.2f} | "
            f"{fastest / r['fwd_bwd_ms']:.2f}x | {r['fwd_bwd_ms'] / fl['floor_fwd_bwd_ms']:.2f}x | {r.get('peak_mb', float('nan')):.1f} | "
            f"{r['load1_before']:.1f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
