"""GPU benchmark, Open Neuromorphic configuration: Linear n->n (no bias) + LIF, B = 16, T = 500, n = 16384.

Compares spikeforge (``backend="triton"`` and ``backend="torch"``) with SpikingJelly's multi-step LIF on
its fastest GPU implementation. Matched dynamics for every library::

    v <- 0.9 v + I;   z = H(v - 1);   v <- v - z          (soft reset, reset not detached)

with the fast-sigmoid surrogate ``1 / (1 + 25 |h|)^2`` (SpikingJelly: ``SoftSign(alpha=25)``, the same
shape up to a constant factor; see benchmarks/peers.py). Same weights and inputs for every library
(seeded on the device). Each library runs in a fresh subprocess. Per library:

1. **agreement first**: spike count of one no-grad forward; spikeforge's Triton and torch kernels must
   give bit-identical spikes (checked inside the child), SpikingJelly's count is compared and flagged;
2. phases ``infer`` (no_grad forward), ``fwd`` (forward building the graph), ``fwd_bwd`` (forward +
   backward of the spike sum, grads to the weight), for the whole layer and for the LIF alone (currents
   given, grads to the currents): warm-up, then the median of >= 5 timed runs, with
   ``torch.cuda.synchronize()`` before every timer read;
3. peak memory of one ``fwd_bwd`` via ``torch.cuda.max_memory_allocated`` (above the resting allocation).

SpikingJelly: 2.x picks its CUDA implementation from ``SJ_LIF_CUDA_IMPLEMENTATION`` (tried in the order
``triton``, ``cuda``, ``torch``); 0.0.0.0.14-style releases take ``backend=`` (``triton``, ``cupy``,
``torch``). The one that ran is recorded. The GPU model, torch/CUDA/Triton versions and TF32 setting are
recorded. Results are printed as a markdown table and written as JSON to ``--out``.

    python benchmarks/gpu_on.py --out gpu_on.json                      # one H200: well under 5 minutes
    python benchmarks/gpu_on.py --device cpu --n 256 --T 20            # smoke check without a GPU
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

LIBS = ("spikeforge_triton", "spikeforge_torch", "spikingjelly")
SJ_CANDIDATES = ("triton", "cuda", "torch")  # SpikingJelly 2.x names; 'cuda' is the old 'cupy' backend


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_data(n: int, T: int, B: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator(device=device).manual_seed(0)
    w = torch.randn(n, n, generator=g, device=device) * (2.0 / n**0.5)
    x = (torch.rand(T, B, n, generator=g, device=device) < 0.1).float()
    return w, x


# ------------------------------------------------------------------ builders: neuron(currents) -> spikes
def build_neuron(lib: str, sj_impl: str | None) -> tuple[Callable[[torch.Tensor], torch.Tensor], str]:
    if lib.startswith("spikeforge"):
        import spikeforge as sf
        from spikeforge.surrogate import FastSigmoid

        backend = lib.split("_", 1)[1]
        if backend == "triton" and os.environ.get("TRITON_INTERPRET") == "1":
            backend = "triton_interpret"  # this script's CPU smoke switch; spikeforge itself ignores the variable
        neuron = sf.LIF(beta=0.9, input_scaling="none", reset="subtract", surrogate=FastSigmoid(25.0), detach_reset=False, backend=backend)
        return (lambda cur: neuron(cur)[0]), backend

    from spikingjelly.activation_based import functional, neuron, surrogate

    kw: dict[str, Any] = dict(tau=10.0, decay_input=False, v_reset=None, surrogate_function=surrogate.SoftSign(alpha=25.0), step_mode="m")
    if "backend" in inspect.signature(neuron.LIFNode.__init__).parameters:  # old API: backend argument
        name = {"cuda": "cupy"}.get(sj_impl or "torch", sj_impl or "torch")
        node = neuron.LIFNode(backend=name, **kw)
        used = name
    else:  # 2.x: implementation chosen from SJ_LIF_CUDA_IMPLEMENTATION at import (set by the parent)
        node = neuron.LIFNode(**kw)
        used = "?"

    def run(cur: torch.Tensor) -> torch.Tensor:
        functional.reset_net(node)
        return node(cur)

    return run, used


def _sj_implementation(device: torch.device, used: str) -> str:
    if used != "?":
        return used
    from spikingjelly.activation_based.functional import neuron_implementation

    return str(neuron_implementation("lif", device)["implementation"])


# ------------------------------------------------------------------ one child process = one library
def _median_ms(fn: Callable[[], Any], device: torch.device, runs: int, warmup: int) -> tuple[float, list[float]]:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(runs):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        ts.append((time.perf_counter() - t0) * 1e3)
    return sorted(ts)[len(ts) // 2], ts


def _peak_mb(fn: Callable[[], Any], device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    _sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    fn()
    _sync(device)
    return (torch.cuda.max_memory_allocated(device) - base) / 2**20


def child(lib: str, args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    torch.manual_seed(0)
    w, x = make_data(args.n, args.T, args.B, device)
    lin = nn.Linear(args.n, args.n, bias=False).to(device)
    with torch.no_grad():
        lin.weight.copy_(w)
    del w
    neuron, used = build_neuron(lib, args.sj_impl)
    out: dict[str, Any] = {"lib": lib}
    with torch.no_grad():  # agreement first
        cur = lin(x)
        z = neuron(cur)
        _sync(device)
        out["spikes"] = int(z.sum().item())
        if lib == "spikeforge_triton":
            z_ref, _ = build_neuron("spikeforge_torch", None)
            out["bit_identical_to_torch_kernel"] = bool(torch.equal(z, z_ref(cur)))
        del z
    out["implementation"] = _sj_implementation(device, used) if lib == "spikingjelly" else used
    cur_g = cur.clone().requires_grad_()

    def infer() -> None:
        with torch.no_grad():
            neuron(lin(x))

    def fwd() -> None:
        neuron(lin(x))

    def fwd_bwd() -> None:
        lin.weight.grad = None
        neuron(lin(x)).sum().backward()

    def lif_infer() -> None:
        with torch.no_grad():
            neuron(cur)

    def lif_fwd() -> None:
        neuron(cur_g)

    def lif_fwd_bwd() -> None:
        cur_g.grad = None
        neuron(cur_g).sum().backward()

    for name, fn in (("infer", infer), ("fwd", fwd), ("fwd_bwd", fwd_bwd), ("lif_infer", lif_infer), ("lif_fwd", lif_fwd), ("lif_fwd_bwd", lif_fwd_bwd)):
        out[name + "_ms"], out[name + "_runs_ms"] = _median_ms(fn, device, args.runs, args.warmup)
    out["peak_mb_fwd_bwd"] = _peak_mb(fwd_bwd, device)
    out["peak_mb_lif_fwd_bwd"] = _peak_mb(lif_fwd_bwd, device)
    return out


# ------------------------------------------------------------------ parent
def _run_child(lib: str, args: argparse.Namespace, sj_impl: str | None = None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--_child", lib, "--device", args.device, "--n", str(args.n), "--T", str(args.T), "--B", str(args.B),
           "--runs", str(args.runs), "--warmup", str(args.warmup)] + (["--sj-impl", sj_impl] if sj_impl else []) + (["--tf32"] if args.tf32 else [])
    env = dict(os.environ)
    if sj_impl:
        env["SJ_LIF_CUDA_IMPLEMENTATION"] = sj_impl
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.child_timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"lib": lib, "error": f"timed out after {args.child_timeout} s"}
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not line:
        return {"lib": lib, "error": (proc.stderr.strip().splitlines() or ["failed"])[-1][:300]}
    return json.loads(line[-1][7:])


def environment(device: torch.device) -> dict[str, Any]:
    env: dict[str, Any] = {"torch": torch.__version__, "cuda": torch.version.cuda, "device": str(device), "tf32_matmul": torch.backends.cuda.matmul.allow_tf32}
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        env.update(gpu=p.name, capability=f"{p.major}.{p.minor}", gpu_memory_gib=round(p.total_memory / 2**30, 1), sms=p.multi_processor_count)
    from importlib.metadata import PackageNotFoundError, version

    for mod in ("spikeforge", "triton", "spikingjelly"):
        try:
            env[mod] = version(mod)
        except PackageNotFoundError:
            env[mod] = None
    return env


def _mem(row: dict[str, Any], key: str) -> str:
    return "n/a" if row.get(key) is None else f"{row[key]:.0f}"


def table(res: dict[str, Any]) -> str:
    rows = res["rows"]
    ref = next((r["spikes"] for r in rows if r["lib"] == "spikeforge_torch" and "spikes" in r), None)
    cfg = res["config"]
    e = res["env"]
    lines = [
        f"### Open Neuromorphic: Linear {cfg['n']}->{cfg['n']} + LIF, B={cfg['B']}, T={cfg['T']} on {e.get('gpu', e['device'])} "
        f"(torch {e['torch']}, CUDA {e['cuda']}, triton {e['triton']}, spikingjelly {e['spikingjelly']}, TF32 {e['tf32_matmul']})",
        "",
        "| library | implementation | spikes (vs spikeforge) | infer ms | fwd ms | fwd+bwd ms | LIF infer ms | LIF fwd ms | LIF fwd+bwd ms | peak MiB fwd+bwd | peak MiB LIF fwd+bwd |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['lib']} | error: {r['error']} | | | | | | | | | |")
            continue
        rel = "" if ref is None else f" ({(r['spikes'] - ref) / max(ref, 1):+.2%})"
        if "bit_identical_to_torch_kernel" in r:
            rel += ", bit-identical" if r["bit_identical_to_torch_kernel"] else ", NOT bit-identical"
        lines.append(
            f"| {r['lib']} | {r['implementation']} | {r['spikes']}{rel} | {r['infer_ms']:.2f} | {r['fwd_ms']:.2f} | {r['fwd_bwd_ms']:.2f} | "
            f"{r['lif_infer_ms']:.2f} | {r['lif_fwd_ms']:.2f} | {r['lif_fwd_bwd_ms']:.2f} | {_mem(r, 'peak_mb_fwd_bwd')} | {_mem(r, 'peak_mb_lif_fwd_bwd')} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=16384, help="neurons (Linear n->n)")
    ap.add_argument("--T", type=int, default=500)
    ap.add_argument("--B", type=int, default=16)
    ap.add_argument("--device", default="cuda", help="cuda (default), cuda:K, or cpu for a smoke check")
    ap.add_argument("--runs", type=int, default=7, help="timed runs per phase (median; at least 5)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--libs", nargs="+", default=list(LIBS), choices=LIBS)
    ap.add_argument("--tf32", action="store_true", help="allow TF32 matmuls (off by default, as in torch)")
    ap.add_argument("--child-timeout", type=float, default=150.0, help="seconds per library subprocess")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    ap.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--sj-impl", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.runs < 5:
        ap.error("--runs must be at least 5")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_on.py: no CUDA GPU is visible (torch.cuda.is_available() is False); run it on a GPU machine "
              "with a CUDA build of torch, or pass --device cpu --n 256 --T 20 for a smoke check.", file=sys.stderr)
        return 2
    if args.tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
    if args._child:
        print("RESULT " + json.dumps(child(args._child, args)))
        return 0

    res: dict[str, Any] = {"config": {"n": args.n, "T": args.T, "B": args.B, "runs": args.runs, "warmup": args.warmup}, "env": environment(device), "rows": []}
    t_start = time.perf_counter()
    for lib in args.libs:
        if lib == "spikeforge_triton" and device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
            res["rows"].append({"lib": lib, "error": "skipped: the Triton kernel needs CUDA (or TRITON_INTERPRET=1)"})
            continue
        if lib == "spikingjelly":
            row: dict[str, Any] = {}
            tried = []
            for impl in SJ_CANDIDATES if device.type == "cuda" else ("torch",):
                row = _run_child(lib, args, impl)
                tried.append(f"{impl}: {row.get('error', 'ok')}")
                if "error" not in row:
                    break
            row["tried"] = tried
        else:
            row = _run_child(lib, args)
        res["rows"].append(row)
        print(f"[{time.perf_counter() - t_start:6.1f} s] {lib}: {row.get('error') or {k: v for k, v in row.items() if not k.endswith('_runs_ms')}}", file=sys.stderr)
    sf_rows = {r["lib"]: r for r in res["rows"] if "spikes" in r}
    if "spikeforge_triton" in sf_rows and "spikeforge_torch" in sf_rows:
        ok = sf_rows["spikeforge_triton"]["spikes"] == sf_rows["spikeforge_torch"]["spikes"] and sf_rows["spikeforge_triton"]["bit_identical_to_torch_kernel"]
        res["spikeforge_kernels_agree"] = ok
        if not ok:
            print("WARNING: spikeforge's Triton and torch kernels disagree on the spikes", file=sys.stderr)
    res["total_s"] = time.perf_counter() - t_start
    print(table(res))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
