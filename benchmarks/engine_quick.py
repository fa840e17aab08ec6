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

import os
import sys

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import torch  # noqa: E402

from events import build  # noqa: E402  (benchmarks/events.py: the sweep network)
from events import median_time  # noqa: E402

from spikeforge.events import StreamingEngine  # noqa: E402

DENSITIES = (0.002, 0.02, 0.05, 0.2)


def main() -> None:
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    eng = StreamingEngine(build(1024, 3, gen), (1024,))
    parts = []
    for d in DENSITIES:
        x = (torch.rand(100, 1, 1024, generator=gen) < d).float()
        parts.append(f"{d * 100:g}%={median_time(lambda: eng.run(x), 15) * 1e3:.2f}ms")
    zero = torch.zeros(1, 1, 1024)
    parts.append(f"per_call={median_time(lambda: eng.run(zero), 200) * 1e6:.0f}us")
    print(sys.argv[1] if len(sys.argv) > 1 else "engine", " ".join(parts))


if __name__ == "__main__":
    main()
