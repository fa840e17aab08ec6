"""Training steps on time-constant inputs: the leading per-step layers run once vs once per time step.

With the ``"constant"`` code every step of ``x_seq`` is the same image, so ``SNNSequential`` runs the leading
Linear/Conv/BatchNorm layers on one step and broadcasts the result over time (and the transformers' patch splitting
runs its pixel conv once and fuses its first LIF with the max pool). The "off" path is forced the public way: a
no-op forward hook on the first layer (hooks must see every step), and for the transformers on the stem's conv
and first LIF as well. Each round times ``--steps`` training steps (forward, cross-entropy, backward, AdamW) of each
path in alternation; the table gives the median over rounds::

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/constant_input.py --threads 1

Models (Fashion-MNIST shapes, random images and labels): the MLP of the Fashion-MNIST recipe (784-1024-10, T = 8,
B = 128), the conv recipe (16-32 channels, hidden 128, T = 4, B = 128), SDT and its twin (defaults, T = 4, B = 64).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import torch
import torch.nn.functional as F

from spikeforge.data import dataset_info
from spikeforge.models import build_model
from spikeforge.train import TrainConfig

CONFIGS: dict[str, dict[str, Any]] = {
    "mlp": dict(model="mlp", hidden=(1024,), time_steps=8, batch_size=128),
    "conv": dict(model="conv", channels=(16, 32), hidden=(128,), time_steps=4, batch_size=128),
    "sdt": dict(model="sdt", time_steps=4, batch_size=64),
    "vit-twin": dict(model="vit-twin", time_steps=4, batch_size=64),
}


def _hook_points(model: torch.nn.Module) -> list[torch.nn.Module]:
    net = model.network  # type: ignore[attr-defined]
    first = net.layers[0]
    stem = getattr(first, "conv1", None)
    if stem is not None:  # PatchSplit: its pixel conv and its first LIF
        return [stem.conv, first.act1]
    return [first]


def run(name: str, rounds: int, steps: int) -> dict[str, Any]:
    cfg = TrainConfig(dataset="fashion_mnist", lr=1e-3, **CONFIGS[name])
    info = dataset_info("fashion_mnist")
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(cfg.batch_size, *info.input_shape, generator=gen)
    y = torch.randint(0, info.num_classes, (cfg.batch_size,), generator=gen)
    models, opts = {}, {}
    for path in ("on", "off"):
        torch.manual_seed(0)
        models[path] = build_model(cfg, info).train()
        opts[path] = torch.optim.AdamW(models[path].parameters(), lr=1e-3)
    for m in _hook_points(models["off"]):
        m.register_forward_hook(lambda mod, inp, out: None)

    def step(path: str) -> None:
        loss = F.cross_entropy(models[path](x), y)
        opts[path].zero_grad()
        loss.backward()
        opts[path].step()

    times: dict[str, list[float]] = {"on": [], "off": []}
    for path in ("on", "off"):
        step(path)  # warm-up (compiles the Numba kernels)
        step(path)
    for _ in range(rounds):
        for path in ("on", "off"):
            t0 = time.perf_counter()
            for _ in range(steps):
                step(path)
            times[path].append((time.perf_counter() - t0) / steps)
    on, off = statistics.median(times["on"]), statistics.median(times["off"])
    return {"model": name, "on_s": on, "off_s": off, "speedup": off / on, "rounds": rounds, "steps": steps}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=3, help="training steps per path and round")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}", file=sys.stderr)
    print(f"| model | once per input (s / step) | once per step (s / step) | speed-up |\n|---|---|---|---|")
    for name in args.models:
        r = run(name, args.rounds, args.steps)
        print(f"| {name} | {r['on_s']:.4f} | {r['off_s']:.4f} | {r['speedup']:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
