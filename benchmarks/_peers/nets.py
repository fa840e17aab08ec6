"""The benchmark networks: configs, the weights and inputs every library gets, the net as torch layers."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

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
    mods: list[nn.Conv2d | nn.Linear] = []
    for w in ws:
        m: nn.Conv2d | nn.Linear
        if w.ndim == 4:
            m = nn.Conv2d(w.shape[1], w.shape[0], w.shape[2], bias=False)
        else:
            m = nn.Linear(w.shape[1], w.shape[0], bias=False)
        with torch.no_grad():
            m.weight.copy_(torch.from_numpy(w))
        mods.append(m)
    params: list[torch.Tensor] = [m.weight for m in mods]
    if cfg.kind == "lif":
        return [None], params
    if cfg.kind == "linear":
        return [x for m in mods for x in (m, None)], params
    c1, c2, f1, f2 = mods
    return [c1, None, nn.AvgPool2d(2), c2, None, nn.AvgPool2d(2), nn.Flatten(), f1, None, f2, None], params


def fold(layer: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """Run ``layer`` once on ``[T*B, ...]`` (or ``[B*T, ...]``)."""
    a, b = h.shape[:2]
    y = layer(h.reshape(a * b, *h.shape[2:]))
    return y.reshape(a, b, *y.shape[1:])
