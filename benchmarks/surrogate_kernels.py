"""What each built-in surrogate costs in the Numba LIF kernel's backward (session 12).

Two measurements, one thread:

1. The surrogate row alone (``_surrogate_row`` of :mod:`spikeforge.backends._numba_loops`, 2048 float32 elements,
   the kernel's chunk width): every built-in surrogate, plus the sigmoid as the kernel computed it before
   session 12 (a scalar ``math.exp`` per element, compiled here from the same expression) for comparison.
2. A whole LIF (``backend="numba"``) forward and backward at ``T = 4`` over the element counts of the
   Spike-driven Transformer's layers at batch 64 (49 tokens x 64 and x 256 channels), median of ``--repeats``.

    PYTHONPATH=src .venv/bin/python benchmarks/surrogate_kernels.py --repeats 15
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numba
import numpy as np
import torch

from spikeforge._core.codes import SG_ATAN
from spikeforge._core.codes import SG_FAST_SIGMOID
from spikeforge._core.codes import SG_SIGMOID
from spikeforge._core.codes import SG_STRAIGHT_THROUGH
from spikeforge._core.codes import SG_TRIANGLE
from spikeforge.backends._numba_loops import _surrogate_row
from spikeforge.neurons import LIF
from spikeforge.surrogate import get_surrogate


@numba.njit(nogil=True, error_model="numpy")
def _sigmoid_row_libm(hr, n, st, sg_a, one):  # the pre-session-12 sigmoid row: scalar libm exp per element
    for k in range(n):
        q = one / (one + math.exp(-sg_a * hr[k]))
        st[k] = sg_a * q * (one - q)


def _per_element_ns(f, n: int, calls: int) -> float:
    f()
    best = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(calls):
            f()
        best.append((time.perf_counter() - t0) / calls / n * 1e9)
    return min(best)


def rows() -> None:
    n = 2048
    hr = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    st = np.empty_like(hr)
    one = np.float32(1.0)
    print(f"| surrogate row ({n} float32) | ns / element |\n|---|---|")
    codes = {"fast_sigmoid": SG_FAST_SIGMOID, "triangle": SG_TRIANGLE, "atan": SG_ATAN, "sigmoid": SG_SIGMOID,
             "straight_through": SG_STRAIGHT_THROUGH}  # fmt: skip
    for name, code in codes.items():
        _, a, b = get_surrogate(name).kernel_code()
        a32, b32 = np.float32(a), np.float32(b)
        ns = _per_element_ns(lambda c=code, a=a32, b=b32: _surrogate_row(hr, n, st, c, a, b, one), n, 2000)
        print(f"| {name} | {ns:.2f} |")
    a5 = np.float32(get_surrogate("sigmoid").kernel_code()[1])
    ns = _per_element_ns(lambda: _sigmoid_row_libm(hr, n, st, a5, one), n, 2000)
    print(f"| sigmoid, scalar libm exp (before session 12) | {ns:.2f} |")


def lif(repeats: int) -> None:
    print("\n| surrogate | elements M (T = 4) | forward ms | backward ms | backward ns / element |\n|---|---|---|---|---|")
    for name in ("fast_sigmoid", "sigmoid", "atan"):
        for m in (64 * 49 * 64, 64 * 49 * 256):
            neuron = LIF(surrogate=name, backend="numba")
            x = torch.randn(4, m, requires_grad=True)
            fwd, bwd = [], []
            for i in range(repeats + 2):
                t0 = time.perf_counter()
                z, _ = neuron(x)
                t1 = time.perf_counter()
                torch.autograd.grad(z, [x], torch.ones_like(z))
                t2 = time.perf_counter()
                if i >= 2:
                    fwd.append(t1 - t0)
                    bwd.append(t2 - t1)
            f, b = statistics.median(fwd), statistics.median(bwd)
            print(f"| {name} | {m} | {f * 1e3:.2f} | {b * 1e3:.2f} | {b * 1e9 / (4 * m):.2f} |", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=15)
    args = p.parse_args()
    torch.set_num_threads(1)
    rows()
    lif(args.repeats)


if __name__ == "__main__":
    main()
