"""Fused CPU loops of the SRM layer, compiled by Numba (imported only when Numba is installed and asked for).

Layout: ``x, u, g`` are C-contiguous ``[T, M]`` arrays; the loop runs over time outside and over the ``M``
neurons inside (vectorised). Every constant arrives in the array's dtype, so float32 stays float32 and the
spike decision ``u - v_th > 0`` is made on the very value that is stored in ``u``.
"""

from __future__ import annotations

import math
from typing import Any

import numba

_OPTS: dict[str, Any] = {"cache": True, "nogil": True, "error_model": "numpy"}


@numba.njit(**_OPTS)
def membrane(x, ps, qs, pr, qr, u, zout, a_s, c_s, a_r, c_r, v_th, zero, one):  # pragma: no cover - compiled
    """``u[t] = c_s qs + c_r qr`` (the PSP by the alpha recurrence, the refractory response of own spikes);
    a spike iff ``u[t] - v_th > 0``, written to ``zout`` unless it has one row only; the four state rows are
    updated in place."""
    keep = zout.shape[0] == x.shape[0]
    n_t, n_m = x.shape
    for t in range(n_t):
        for m in range(n_m):
            r = qr[m] * c_r
            v = qs[m] * c_s + r
            u[t, m] = v
            z = one if (v - v_th) > zero else zero
            if keep:
                zout[t, m] = z
            s = ps[m] + x[t, m]
            qs[m] = (qs[m] + s) * a_s
            ps[m] = s * a_s
            o = pr[m] + z
            qr[m] = (qr[m] + o) * a_r
            pr[m] = o * a_r


@numba.njit(**_OPTS)
def reverse_scan(g, out, p, q, a, c):  # pragma: no cover - compiled
    """``out[s] = c sum_{t >= s} (t - s) a^(t-s) g[t]``: the transposed alpha filter, from ``t = T-1`` down."""
    n_t, n_m = g.shape
    for t in range(n_t - 1, -1, -1):
        for m in range(n_m):
            out[t, m] = q[m] * c
            s = p[m] + g[t, m]
            q[m] = (q[m] + s) * a
            p[m] = s * a


@numba.njit(**_OPTS)
def reverse_scan_pdf(gz, gu, has_gu, u, out, p, q, a, c, v_th, alpha, beta):  # pragma: no cover - compiled
    """:func:`reverse_scan` of ``delta = gz alpha exp(-beta |u - v_th|) (+ gu)``: SLAYER's error signal (the
    :class:`~spikeforge.synapses.SlayerPDF` spike derivative) reassigned through the transposed PSP kernel."""
    n_t, n_m = gz.shape
    for t in range(n_t - 1, -1, -1):
        for m in range(n_m):
            out[t, m] = q[m] * c
            d = gz[t, m] * (alpha * math.exp(-beta * abs(u[t, m] - v_th)))
            if has_gu:
                d = d + gu[t, m]
            s = p[m] + d
            q[m] = (q[m] + s) * a
            p[m] = s * a
