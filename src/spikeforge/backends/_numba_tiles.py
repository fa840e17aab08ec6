"""Compiled helpers of the fused neuron + tiling pool kernels (imported only when Numba is installed).

A chunk holds ``n`` columns ``[lo, lo + n)`` of ``[T, M]`` (``M = N * H * W``, row-major images ``width``
wide), with ``n`` and ``lo`` multiples of ``k * width``: whole rows of ``k x k`` tiles, so the tile of the
chunk's first column is pooled entry ``lo / k**2`` and tile ``j`` of tile-row ``r`` is entry
``(lo + r k width) / k**2 + j``.

* :func:`pool_tiles`: each tile's pooled value from the chunk's spikes ``z [T, >= n]``: the sum of its
  ``k * k`` spikes (average pooling; the caller divides by ``k * k`` as ``avg_pool2d`` does) or their max.
* :func:`expand_tiles`: the spikes' gradient from the pooled gradient of one step: every element of a tile
  gets the tile's entry divided by ``k * k`` (average pooling); for max pooling only the
  element that ``max_pool2d`` picks does (its first maximum in row-major order: the first spike, ``h > 0``,
  or the tile's first element when none spiked), the others get 0.
"""

from __future__ import annotations

from typing import Any

import numba

_OPTS: dict[str, Any] = {"cache": True, "nogil": True, "error_model": "numpy"}


@numba.njit(**_OPTS)
def pool_tiles(zb, n, pooled, lo, k, width, is_max):
    """Pooled values of the chunk's spikes ``zb[:, :n]`` (columns ``[lo, lo + n)``) into ``pooled [T, ...]``."""
    kw = k * width
    wk = width // k
    for t in range(zb.shape[0]):
        zr = zb[t]
        pr = pooled[t]
        if k == 2 and not is_max:  # the common case, unrolled (the generic loops run about 2x slower)
            for r in range(n // kw):
                pb = (lo + r * kw) // 4
                top = r * kw
                bot = top + width
                for j in range(wk):
                    pr[pb + j] = (zr[top + 2 * j] + zr[top + 2 * j + 1]) + (zr[bot + 2 * j] + zr[bot + 2 * j + 1])
            continue
        if k == 2:  # max pooling of 2 x 2 tiles, unrolled likewise
            for r in range(n // kw):
                pb = (lo + r * kw) // 4
                top = r * kw
                bot = top + width
                for j in range(wk):
                    m0 = max(zr[top + 2 * j], zr[top + 2 * j + 1])
                    pr[pb + j] = max(m0, max(zr[bot + 2 * j], zr[bot + 2 * j + 1]))
            continue
        for r in range(n // kw):
            pb = (lo + r * kw) // (k * k)
            base = r * kw
            for j in range(wk):
                acc = zr[base + j * k]
                for dy in range(k):
                    col = base + dy * width + j * k
                    for dx in range(k):
                        if dy == 0 and dx == 0:
                            continue
                        acc = max(acc, zr[col + dx]) if is_max else acc + zr[col + dx]
                pr[pb + j] = acc


@numba.njit(**_OPTS)
def expand_tiles(gyr, hr, lo, n, gzbuf, k, width, is_max, div):
    """dL/dz of the chunk's ``n`` columns at one step into ``gzbuf`` from the pooled gradient row ``gyr``
    (average pooling: each entry divided by ``div = k * k`` here, the division ``avg_pool2d``'s backward does);
    ``hr`` is the step's ``h`` (a spike iff ``h > 0``), read for max pooling only."""
    kw = k * width
    wk = width // k
    if k == 2 and not is_max:
        for r in range(n // kw):
            pb = (lo + r * kw) // 4
            top = r * kw
            for j in range(wk):
                g = gyr[pb + j] / div
                gzbuf[top + 2 * j] = g
                gzbuf[top + 2 * j + 1] = g
                gzbuf[top + width + 2 * j] = g
                gzbuf[top + width + 2 * j + 1] = g
        return
    if k == 2:  # max pooling of 2 x 2 tiles: the gradient goes to the first spike in row-major order, else to the
        for r in range(n // kw):  # tile's first element (max_pool2d's choice), 0 to the other three
            pb = (lo + r * kw) // 4
            top = r * kw
            for j in range(wk):
                g = gyr[pb + j]
                c0 = top + 2 * j
                c2 = c0 + width
                gzbuf[c0] = 0.0
                gzbuf[c0 + 1] = 0.0
                gzbuf[c2] = 0.0
                gzbuf[c2 + 1] = 0.0
                if hr[c0] > 0 or not (hr[c0 + 1] > 0 or hr[c2] > 0 or hr[c2 + 1] > 0):
                    gzbuf[c0] = g
                elif hr[c0 + 1] > 0:
                    gzbuf[c0 + 1] = g
                elif hr[c2] > 0:
                    gzbuf[c2] = g
                else:
                    gzbuf[c2 + 1] = g
        return
    for r in range(n // kw):
        pb = (lo + r * kw) // (k * k)
        base = r * kw
        for j in range(wk):
            g = gyr[pb + j] if is_max else gyr[pb + j] / div
            first = base + j * k
            won = -1
            for dy in range(k):
                col = base + dy * width + j * k
                for dx in range(k):
                    if not is_max:
                        gzbuf[col + dx] = g
                        continue
                    gzbuf[col + dx] = 0.0
                    if won < 0 and hr[col + dx] > 0:
                        won = col + dx
            if is_max:
                gzbuf[first if won < 0 else won] = g
