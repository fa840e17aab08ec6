"""Where the fused LIF + 2x2 max pool forward spends its time (issue 20): the package's kernel against its parts.

Shape: the first LIF layer of the trainer's Fashion-MNIST conv model (``--channels 16 32 --time-steps 4
--batch-size 128``): ``x [T=4, M = 128 * 16 * 28 * 28]`` float32, a plain LIF (beta 0.8 via ``tau_mem=5``, raw
input, reset by subtraction), random input ``N(0.3, 0.5^2)``. One thread; medians of 7 calls. Timed:

* ``forward_pool``: :meth:`spikeforge.backends.numba_kernel.NumbaKernel.forward_pool` (what training runs);
* ``fwd_pool`` at other chunk widths (the package picks ``_pool_width``);
* the recurrence alone (``_numba_loops._chunk_fwd``) over the whole ``[T, M]`` in one call, spikes written to a
  full-size buffer, and the same recurrence chunk by chunk at the package's width with no pooling;
* the pooling alone (``_numba_tiles.pool_tiles``) over a full-size spike buffer.

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/fused_pool_parts.py
"""

from __future__ import annotations


import numba
import numpy as np
import torch

from _timing import median_time

from spikeforge.backends import numba_kernel as NK
from spikeforge.backends._numba_loops import _chunk_fwd
from spikeforge.backends._numba_pool import fwd_pool
from spikeforge.backends._numba_tiles import pool_tiles
from spikeforge.neurons import LIF

T, B, C, H, W = 4, 128, 16, 28, 28
M = B * C * H * W
REPEATS = 7


@numba.njit(cache=False, nogil=True, error_model="numpy")
def chunked_recurrence(x, v0, p, f, w):  # fwd_pool's loop without the pooling and the per-chunk state copies
    T, M = x.shape
    zb = np.empty((T, w), x.dtype)
    hrow = np.empty((1, w), x.dtype)
    arow = np.empty((1, w), x.dtype)
    u = np.empty(w, x.dtype)
    vp = np.empty(w, x.dtype)
    th = np.empty(w, x.dtype)
    v = np.empty(w, x.dtype)
    i = np.zeros(w, x.dtype)
    a = np.zeros(w, x.dtype)
    nbad = 0
    for c in range((M + w - 1) // w):
        lo = c * w
        n = min(M, lo + w) - lo
        v[:n] = v0[lo : lo + n]
        nbad += _chunk_fwd(x, lo, n, zb, 0, hrow, 0, arow, 0, v[:n], i[:n], a[:n], u, vp, th, p, f)
    return nbad


@numba.njit(cache=False, nogil=True, error_model="numpy")
def whole_recurrence(x, z, hrow, arow, v, i, a, u, vp, th, p, f):
    return _chunk_fwd(x, 0, x.shape[1], z, 0, hrow, 0, arow, 0, v, i, a, u, vp, th, p, f)


def main() -> None:
    torch.set_num_threads(1)
    spec = LIF(5.0, input_scaling="none").fused_spec()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(T, M, generator=gen) * 0.5 + 0.3
    v0, i0, a0 = torch.zeros(M), torch.zeros(M), torch.zeros(M)
    p, fl = NK._consts(spec, x.dtype)
    w0 = NK._pool_width(T, x.dtype, 2 * W)
    n = T * M
    xn, vn = x.numpy(), v0.numpy()
    rows: list[tuple[str, float]] = []
    rows.append(("forward_pool (the package, max pool)", median_time(lambda: NK.NumbaKernel.forward_pool(x, v0, i0, a0, spec, 2, W, True), REPEATS)))
    pooled = np.empty((T, M // 4), np.float32)
    outs = [np.empty(M, np.float32) for _ in range(3)]
    for w in (w0, 8 * w0, 64 * w0):
        args = (xn, vn, i0.numpy(), a0.numpy(), pooled, *outs, p, fl, 2, W, True, w, 0, (M + w - 1) // w)
        rows.append((f"fwd_pool, chunk width {w}", median_time(lambda args=args: fwd_pool(*args), REPEATS)))
    rows.append((f"recurrence only, chunk width {w0}", median_time(lambda: chunked_recurrence(xn, vn, p, fl, w0), REPEATS)))
    z = np.empty((T, M), np.float32)
    scratch = [np.empty((1, M), np.float32) for _ in range(2)]
    state = [np.zeros(M, np.float32) for _ in range(6)]
    rows.append(("recurrence only, whole [T, M] in one call", median_time(lambda: whole_recurrence(xn, z, *scratch, *state, p, fl), REPEATS)))
    rows.append(("max pooling only, whole [T, M]", median_time(lambda: pool_tiles(z, M, pooled, 0, 2, W, True), REPEATS)))
    print(f"LIF layer [T={T}, M={M}] ({n / 1e6:.1f} M neuron-steps), 1 thread, medians of 7; package chunk width {w0}\n")
    print("| what | ms | ns per neuron-step |")
    print("|---|---|---|")
    for name, t in rows:
        print(f"| {name} | {t * 1e3:.2f} | {t / n * 1e9:.2f} |")


if __name__ == "__main__":
    main()
