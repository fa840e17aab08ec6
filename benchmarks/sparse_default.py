"""Sparse Linear by default (issue 20): where does ``SparseLinear`` pay in the trainer's own models?

For each Linear of the trainer's default models that is fed by spikes, at the row count training uses
(``T * batch``), times

* ``dense``: the GEMM :class:`spikeforge.layers.SNNSequential` runs for a plain ``nn.Linear`` today
  (:func:`spikeforge.backends.gemm.linear`, oneDNN on this CPU), and ``F.linear`` (MKL) for reference;
* ``sparse``: :func:`spikeforge.events.sparse_linear` forced onto the sparse path (``crossover=1``);
* ``auto``: a :class:`spikeforge.events.SparseLinear` with its default crossover (it measures the density
  on every call and falls back to the dense path above it): what the trainer would run;
* ``check``: the exact density measurement alone (the CSR pass of the Numba kernel; ``spike_density`` without
  it), and ``estimate``: the sampled estimate (64 rows) that lets a clearly dense input skip it,

forward + backward (training: the input spikes need their gradient for the surrogate chain, the weight its
gradient) and forward alone under ``no_grad`` (evaluation), at the spike densities measured in a real
forward pass of the model (at initialisation and after ``--train-steps`` AdamW steps on its dataset) and
at a density sweep. Also the conv model's second convolution, dense against ``sparse_conv2d``, at its
measured input density. Cases:

* ``yinyang``: ``spikeforge train`` defaults, 4-256-3 MLP, T = 10, batch 64: the 256 -> 3 layer, 640 rows;
* ``fmnist``: Fashion-MNIST MLP 784-1024-10, T = 8, batch 128: 1024 -> 10, 1024 rows;
* ``conv``: ``--model conv --channels 16 32 --hidden 128 --time-steps 4 --batch-size 128`` on Fashion-MNIST:
  1568 -> 128 and 128 -> 10, 512 rows (and conv 16 -> 32 on ``[512, 16, 14, 14]``);
* ``wide``: 1024 -> 1024, 3200 rows (no model; sweep only).

Times are medians of ``--repeats`` runs (small layers get 5x as many). One torch thread.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sparse_default.py [--quick] [--out R.json]``;
prints a markdown table. ``--conv-steps`` instead times whole training steps of the conv model, sparse
``auto`` against ``off``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # see benchmarks/events.py: no idle Numba pool next to torch's

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from _timing import median_time as _median_time

from spikeforge.backends.gemm import linear as fast_linear
from spikeforge.data import dataset_info
from spikeforge.data import get_dataset
from spikeforge.events import SparseLinear
from spikeforge.events import sparse_conv2d
from spikeforge.events import sparse_linear
from spikeforge.events._sparse_fn import _kernel_csr
from spikeforge.events.sparse import _sampled_density
from spikeforge.events.sparse import spike_density
from spikeforge.models import build_model
from spikeforge.train import TrainConfig

SWEEP = [0.01, 0.02, 0.05, 0.1, 0.2, 0.4]

#: name -> (TrainConfig kwargs, spike-fed Linear layers as (in, out) in network order, rows = T * batch)
CASES: dict[str, dict[str, Any]] = {
    "yinyang": {"config": {}, "rows": 640},
    "fmnist": {"config": {"dataset": "fashion_mnist", "hidden": (1024,), "time_steps": 8, "batch_size": 128,
                          "lr": 2e-3}, "rows": 1024},
    "conv": {"config": {"dataset": "fashion_mnist", "model": "conv", "channels": (16, 32), "hidden": (128,),
                        "time_steps": 4, "batch_size": 128, "lr": 2e-3}, "rows": 512},
    "wide": {"layers": [(1024, 1024)], "rows": 3200},
}  # fmt: skip


def median_time(fn: Callable[[], Any], repeats: int, warmup: int = 2) -> float:
    return _median_time(fn, repeats, warmup)  # two warm-up calls here (the shared default is one)


def spike_fed(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """The Linear/Conv2d layers of the network whose input comes from a spiking neuron (possibly through
    Dropout/Flatten/pooling/BatchNorm-free stateless layers)."""
    from spikeforge.neurons import Neuron

    out: list[tuple[str, nn.Module]] = []
    after_spikes = False
    for k, m in enumerate(net.layers):
        if isinstance(m, Neuron):
            after_spikes = m.spiking
        elif isinstance(m, (nn.Linear, nn.Conv2d)):
            if after_spikes:
                out.append((f"layers.{k}", m))
            after_spikes = False
    return out


def measure_densities(name: str, steps: int, seed: int = 0) -> dict[str, Any]:
    """Input spike density of every spike-fed Linear/Conv2d at init and after ``steps`` AdamW steps."""
    cfg = TrainConfig(**CASES[name]["config"], seed=seed)
    torch.manual_seed(seed)
    info = dataset_info(cfg.dataset)
    model = build_model(cfg, info)
    ds = get_dataset(cfg.dataset, "train")
    layers = spike_fed(model.network)
    seen: dict[str, list[float]] = {}

    def hook(key: str) -> Callable[..., None]:
        def run(module: nn.Module, args: tuple[Any, ...]) -> None:
            d = spike_density(args[0])
            seen.setdefault(key, []).append(float("nan") if d is None else d)

        return run

    def probe() -> dict[str, float]:
        seen.clear()
        handles = [m.register_forward_pre_hook(hook(k)) for k, m in layers]
        gen = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for _ in range(4):
                idx = torch.randint(len(ds), (cfg.batch_size,), generator=gen)
                model(ds.x[idx])
        for h in handles:
            h.remove()
        return {k: float(np.mean(v)) for k, v in seen.items()}

    model.train()
    at_init = probe()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(len(ds), (cfg.batch_size,), generator=gen)
        loss = F.cross_entropy(model(ds.x[idx]), ds.y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    t_train = time.perf_counter() - t0
    trained = probe()
    shapes = {k: (m.in_features, m.out_features) if isinstance(m, nn.Linear) else tuple(m.weight.shape)
              for k, m in layers}  # fmt: skip
    return {"init": at_init, "trained": trained, "steps": steps, "train_s": t_train, "shapes": shapes,
            "loss": float(loss.detach())}  # fmt: skip


def time_linear(
    n_in: int, n_out: int, rows: int, density: float, repeats: int, gen: torch.Generator
) -> dict[str, float]:
    w = (torch.randn(n_out, n_in, generator=gen) / math.sqrt(n_in)).requires_grad_(True)
    b = torch.zeros(n_out).requires_grad_(True)
    x = (torch.rand(rows, n_in, generator=gen) < density).float().requires_grad_(True)
    g = torch.randn(rows, n_out, generator=gen)
    auto = SparseLinear(n_in, n_out)
    auto.weight, auto.bias = nn.Parameter(w.detach().clone()), nn.Parameter(b.detach().clone())
    wt = w.detach().t().contiguous()

    def train(fn: Callable[[], torch.Tensor], params: tuple[torch.Tensor, ...]) -> Callable[[], None]:
        def run() -> None:
            for p in (x, *params):
                p.grad = None
            fn().backward(g)

        return run

    res: dict[str, float] = {}
    res["dense_fb"] = median_time(train(lambda: fast_linear(x, w, b), (w, b)), repeats)
    res["flinear_fb"] = median_time(train(lambda: F.linear(x, w, b), (w, b)), repeats)
    res["sparse_fb"] = median_time(train(lambda: sparse_linear(x, w, b, crossover=1.0, weight_t=wt), (w, b)), repeats)
    res["auto_fb"] = median_time(train(lambda: auto(x), (auto.weight, auto.bias)), repeats)
    with torch.no_grad():
        xe = x.detach()
        res["dense_f"] = median_time(lambda: fast_linear(xe, w, b), repeats)
        res["flinear_f"] = median_time(lambda: F.linear(xe, w, b), repeats)
        res["sparse_f"] = median_time(lambda: sparse_linear(xe, w, b, crossover=1.0, weight_t=wt), repeats)
        res["auto_f"] = median_time(lambda: auto(xe), repeats)
        res["check"] = median_time(lambda: _kernel_csr(xe, w), repeats)
        res["check_torch"] = median_time(lambda: spike_density(xe), repeats)
        res["estimate"] = median_time(lambda: _sampled_density(xe), repeats)
    res["density"] = float(x.detach().mean())
    return res


def time_conv(x_shape: tuple[int, ...], w_shape: tuple[int, ...], density: float, repeats: int,
              gen: torch.Generator) -> dict[str, float]:  # fmt: skip
    w = torch.randn(*w_shape, generator=gen).requires_grad_(True)
    x = (torch.rand(*x_shape, generator=gen) < density).float().requires_grad_(True)
    pad = w_shape[-1] // 2

    def train(fn: Callable[[], torch.Tensor]) -> Callable[[], None]:
        def run() -> None:
            x.grad = w.grad = None
            fn().sum().backward()

        return run

    res = {
        "dense_fb": median_time(train(lambda: F.conv2d(x, w, None, 1, pad)), repeats),
        "sparse_fb": median_time(train(lambda: sparse_conv2d(x, w, None, 1, pad, crossover=1.0)), repeats),
    }
    with torch.no_grad():
        xe = x.detach()
        res["dense_f"] = median_time(lambda: F.conv2d(xe, w, None, 1, pad), repeats)
        res["sparse_f"] = median_time(lambda: sparse_conv2d(xe, w, None, 1, pad, crossover=1.0), repeats)
        res["check"] = median_time(lambda: spike_density(xe), repeats)
    res["density"] = float(x.detach().mean())
    return res


def conv_train_steps(rounds: int, steps: int) -> dict[str, float]:
    """Whole training steps of the conv model, ``sparse="auto"`` against ``"off"`` (same seed, rounds alternated):
    median seconds per step."""
    ds = get_dataset("fashion_mnist", "train")
    runs: dict[str, Any] = {}
    for mode in ("auto", "off"):
        cfg = TrainConfig(**CASES["conv"]["config"], sparse=mode)
        torch.manual_seed(0)
        model = build_model(cfg, dataset_info(cfg.dataset))
        runs[mode] = (model, torch.optim.AdamW(model.parameters(), lr=cfg.lr), [])
    for rnd in range(rounds):
        for mode in ("auto", "off") if rnd % 2 == 0 else ("off", "auto"):
            model, opt, times = runs[mode]
            gen = torch.Generator().manual_seed(rnd)
            t = time.perf_counter()
            for _ in range(steps):
                idx = torch.randint(len(ds), (128,), generator=gen)
                loss = F.cross_entropy(model(ds.x[idx]), ds.y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            times.append((time.perf_counter() - t) / steps)
    return {mode: float(np.median(r[2])) for mode, r in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="repeats per timing (small layers get 5x)")
    parser.add_argument("--train-steps", type=int, default=150, help="AdamW steps before the trained densities")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--quick", action="store_true", help="3 repeats, 30 training steps")
    parser.add_argument("--out", type=Path, default=None, help="write all numbers as JSON here")
    parser.add_argument(
        "--conv-steps", action="store_true", help="only: conv model training steps, sparse auto vs off (6 x 8 steps)"
    )
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.train_steps = 3, 30
    torch.set_num_threads(1)
    if args.conv_steps:
        t = conv_train_steps(6, 8)
        print(f"conv model training step (median of 6 rounds of 8 steps): sparse auto {t['auto'] * 1e3:.1f} ms, "
              f"off {t['off'] * 1e3:.1f} ms; load average {os.getloadavg()[0]:.2f}")  # fmt: skip
        return
    gen = torch.Generator().manual_seed(0)
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    sparse_linear(torch.ones(2, 4), torch.ones(3, 4), crossover=1.0)  # compile / load the Numba kernels first
    results: dict[str, Any] = {}
    for name in args.cases:
        case = CASES[name]
        entry: dict[str, Any] = {"rows": case["rows"]}
        if "config" in case:
            dens = measure_densities(name, args.train_steps)
            entry["densities"] = dens
            layers = [(k, s) for k, s in dens["shapes"].items() if len(s) == 2]
            convs = [(k, s) for k, s in dens["shapes"].items() if len(s) == 4]
            print(f"{name}: densities at init {dens['init']}, after {dens['steps']} steps {dens['trained']} "
                  f"(loss {dens['loss']:.3f}, {dens['train_s']:.0f} s)", flush=True)  # fmt: skip
        else:
            layers, convs, dens = [("wide", s) for s in case["layers"]], [], None
        entry["linear"] = {}
        for key, (n_in, n_out) in layers:
            grid = sorted(
                set(SWEEP) | ({round(dens["init"][key], 4), round(dens["trained"][key], 4)} if dens else set())
            )
            rep = args.repeats * (5 if n_in * n_out * case["rows"] < 2e7 else 1)
            rows_ = []
            for d in grid:
                r = time_linear(n_in, n_out, case["rows"], d, rep, gen)
                r["target"] = d
                rows_.append(r)
                print(f"  {name} {key} {n_in}->{n_out} d={d:.4f}: dense {r['dense_fb'] * 1e3:.3f} sparse "
                      f"{r['sparse_fb'] * 1e3:.3f} auto {r['auto_fb'] * 1e3:.3f} ms fwd+bwd; check "
                      f"{r['check'] * 1e3:.3f} ms", flush=True)  # fmt: skip
            entry["linear"][f"{key} {n_in}->{n_out}"] = rows_
        entry["conv"] = {}
        for key, shape in convs:
            if shape[1] == 1:
                continue
            c_in = shape[1]
            hw = 14 if c_in == 16 else 7
            x_shape = (case["rows"], c_in, hw, hw)
            rows_ = []
            for d in sorted({0.001, 0.01, round(dens["init"][key], 4), round(dens["trained"][key], 4)}):
                r = time_conv(x_shape, shape, d, max(3, args.repeats // 2), gen)
                r["target"] = d
                rows_.append(r)
                print(f"  {name} {key} conv {shape} d={d:.4f}: dense {r['dense_fb'] * 1e3:.1f} sparse "
                      f"{r['sparse_fb'] * 1e3:.1f} ms fwd+bwd", flush=True)  # fmt: skip
            entry["conv"][f"{key} conv{tuple(shape)}"] = rows_
        results[name] = entry
    total = time.perf_counter() - t0
    load1 = os.getloadavg()
    meta = {
        "command": "OMP_NUM_THREADS=1 python benchmarks/sparse_default.py " + " ".join(sys.argv[1:]),
        "torch": torch.__version__, "cpu": platform.processor() or platform.machine(), "threads": 1,
        "load_before": load0, "load_after": load1, "total_s": total,
    }  # fmt: skip
    print_tables(results, meta)
    if args.out is not None:
        args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=1))


def print_tables(results: dict[str, Any], meta: dict[str, Any]) -> None:
    print(
        f"\nCommand: `{meta['command']}`; torch {meta['torch']}, {meta['cpu']}, 1 torch thread; load average "
        f"(1 min) before {meta['load_before'][0]:.2f}, after {meta['load_after'][0]:.2f}; total {meta['total_s']:.0f} s.\n"
    )
    print(
        "| case | layer | rows | density | fwd+bwd dense / F.linear / sparse / auto (ms) | fwd dense / sparse / "
        "auto (ms) | check / estimate (ms) | sparse/dense fwd+bwd |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, entry in results.items():
        dens = entry.get("densities")
        for layer, rows_ in entry["linear"].items():
            key = layer.split()[0]
            marks = (
                {round(dens["init"][key], 4): " (init)", round(dens["trained"][key], 4): " (trained)"} if dens else {}
            )
            for r in rows_:
                mark = marks.get(r["target"], "")
                print(
                    f"| {name} | {layer} | {entry['rows']} | {100 * r['density']:.1f} %{mark} | "
                    f"{r['dense_fb'] * 1e3:.3f} / {r['flinear_fb'] * 1e3:.3f} / {r['sparse_fb'] * 1e3:.3f} / "
                    f"{r['auto_fb'] * 1e3:.3f} | {r['dense_f'] * 1e3:.3f} / {r['sparse_f'] * 1e3:.3f} / "
                    f"{r['auto_f'] * 1e3:.3f} | {r['check'] * 1e3:.3f} / {r['estimate'] * 1e3:.3f} | "
                    f"{r['sparse_fb'] / r['dense_fb']:.2f} |"
                )
        for layer, rows_ in entry.get("conv", {}).items():
            for r in rows_:
                print(
                    f"| {name} | {layer} | {entry['rows']} | {100 * r['density']:.2f} % | {r['dense_fb'] * 1e3:.1f} / - / "
                    f"{r['sparse_fb'] * 1e3:.1f} / - | {r['dense_f'] * 1e3:.1f} / {r['sparse_f'] * 1e3:.1f} / - | "
                    f"{r['check'] * 1e3:.3f} | {r['sparse_fb'] / r['dense_fb']:.2f} |"
                )


if __name__ == "__main__":
    main()
