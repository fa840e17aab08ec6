"""Quick timing of the streaming engine alone, for before/after comparisons of engine changes.

The network of ``benchmarks/events.py``'s sweep (3 x Linear 1024 -> 1024 without bias + LIF, beta 0.9, reset by
subtraction, fixed seed), batch 1, T = 100; for each input density the median of 15 ``eng.run(x)`` calls after
one warm-up call, plus the per-call cost on an all-zero one-step input (median of 200 calls). One torch and
one Numba thread. Run the code before and after a change alternately (e.g. an old commit checked out with
``git worktree add`` and run with ``PYTHONPATH=src``) and compare medians over several runs: single runs on a
shared VM move by tens of percent.

Run: ``.venv/bin/python benchmarks/engine_quick.py [LABEL]``.
"""

from __future__ import annotations

import math
import os
import sys
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from spikeforge.events import StreamingEngine  # noqa: E402
from spikeforge.layers import SNNSequential  # noqa: E402
from spikeforge.neurons import LIF  # noqa: E402

DENSITIES = (0.002, 0.02, 0.05, 0.2)


def network(gen: torch.Generator) -> SNNSequential:
    mods: list[nn.Module] = []
    for _ in range(3):
        lin = nn.Linear(1024, 1024, bias=False)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(1024, 1024, generator=gen) * (2 / math.sqrt(1024)))
        mods += [lin, LIF(beta=0.9, input_scaling="none", reset="subtract")]
    return SNNSequential(*mods).eval()


def median_ms(fn, calls: int) -> float:  # type: ignore[no-untyped-def]
    fn()
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1e3


def main() -> None:
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    eng = StreamingEngine(network(gen), (1024,))
    parts = []
    for d in DENSITIES:
        x = (torch.rand(100, 1, 1024, generator=gen) < d).float()
        parts.append(f"{d * 100:g}%={median_ms(lambda: eng.run(x), 15):.2f}ms")
    zero = torch.zeros(1, 1, 1024)
    parts.append(f"per_call={median_ms(lambda: eng.run(zero), 200) * 1e3:.0f}us")
    print(sys.argv[1] if len(sys.argv) > 1 else "engine", " ".join(parts))


if __name__ == "__main__":
    main()
