"""The compiled forward of a LIF-family layer followed by ``k x k`` tiling average or max pooling (imported
only when Numba is installed): the spikes of each chunk go to a ``[T, w]`` scratch buffer that stays in cache and are
pooled from there, so the full-size spike tensor is never written to memory.

Layout: ``x`` is C-contiguous ``[T, M]`` with ``M = N * H * W`` (row-major ``(n, y, x)`` images); ``pooled``
is ``[T, M / k**2]``, row-major ``(n, y / k, x / k)``. Chunks are ``w`` columns wide with ``w`` a multiple of
``k * W``, so every chunk holds whole rows of tiles and the tile of a chunk's first column starts the pooled
row ``lo / k**2``. Each average-pooled entry is the sum of its tile's ``k * k`` spikes (an exact integer),
which the caller divides by ``k * k`` as ``avg_pool2d`` does: bit-identical to ``avg_pool2d(spikes)``; a
max-pooled entry is the max of the tile's spikes, as ``max_pool2d``'s. The recurrence is
:func:`spikeforge.backends._numba_loops._chunk_fwd` itself.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from spikeforge.backends._numba_loops import _chunk_fwd
from spikeforge.backends._numba_tiles import pool_tiles

_OPTS: dict[str, Any] = {"cache": True, "nogil": True, "error_model": "numpy"}


@numba.njit(**_OPTS)
def fwd_pool(x, v0, i0, a0, pooled, v_out, i_out, a_out, p, f, k, width, is_max, w, c_lo, c_hi):
    """Chunks ``[c_lo, c_hi)`` of width ``w``: the recurrence, then the tiles' pooled spikes (sums, or maxima
    when ``is_max``) into ``pooled``. Returns False on NaN/inf input."""
    T, M = x.shape
    zb = np.empty((T, w), x.dtype)
    hrow = np.empty((1, w), x.dtype)
    arow = np.empty((1, w), x.dtype)
    u = np.empty(w, x.dtype)
    vp = np.empty(w, x.dtype)
    th = np.empty(w, x.dtype)
    nbad = 0
    for c in range(c_lo, c_hi):
        lo = c * w
        n = min(M, lo + w) - lo
        v = v0[lo : lo + n].copy()
        i = i0[lo : lo + n].copy()
        a = a0[lo : lo + n].copy()
        nbad += _chunk_fwd(x, lo, n, zb, 0, hrow, 0, arow, 0, v, i, a, u, vp, th, p, f)
        pool_tiles(zb, n, pooled, lo, k, width, is_max)
        v_out[lo : lo + n] = v
        i_out[lo : lo + n] = i
        a_out[lo : lo + n] = a
    return nbad == 0
