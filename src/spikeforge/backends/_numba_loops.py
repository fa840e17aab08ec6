"""The compiled loops behind :mod:`spikeforge.backends.numba_kernel` (imported only when Numba is installed).

Layout: ``x, z, h, gz, gx`` are C-contiguous ``[T, M]``; elements are processed in chunks of ``w``
contiguous columns; inside a chunk the loop runs over time, then over the chunk's columns. Every branch
on the neuron kind, reset rule or surrogate is taken once per row (per time step), never per element,
so the inner loops are branch-free and LLVM vectorises them. The arithmetic and its order are those of
the reference step functions (and of :mod:`spikeforge.backends.torch_kernel`), with every constant in
the tensor dtype, so the forward spikes are bit-identical to the reference loop.

Scalars arrive as one tuple ``p = (beta, v_rest, gain, v_th, v_reset, alpha, adapt, rho, 1 - rho,
v_th - v_reset, 1)`` in the tensor dtype and flags ``f = (reset, has_syn, has_adapt, is_if)``.

*Recomputation.* The backward needs ``h[t] = v'[t] - th[t]`` at every step. Instead of saving it
(``[T, M]`` written in the forward, read in the backward), :func:`bwd` can recompute it chunk by chunk
from the saved input ``x`` and initial state into a ``[T, w]`` scratch buffer that stays in cache, then
run the reverse-time recurrence over that chunk. The recomputed ``h`` is bit-identical (same code).
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from spikeforge._core.codes import SG_ATAN  # Numba freezes module-level ints into the compiled code as constants
from spikeforge._core.codes import SG_CUSTOM  # Numba freezes module-level ints into the compiled code as constants
from spikeforge._core.codes import (  # Numba freezes module-level ints into the compiled code as constants
    SG_FAST_SIGMOID,
)
from spikeforge._core.codes import SG_SIGMOID  # Numba freezes module-level ints into the compiled code as constants
from spikeforge._core.codes import (  # Numba freezes module-level ints into the compiled code as constants
    SG_STRAIGHT_THROUGH,
)
from spikeforge._core.codes import SG_TRIANGLE  # Numba freezes module-level ints into the compiled code as constants
from spikeforge._core.codes import SUBTRACT  # Numba freezes module-level ints into the compiled code as constants
from spikeforge._core.codes import TO_VALUE  # Numba freezes module-level ints into the compiled code as constants
from spikeforge.backends._numba_tiles import expand_tiles

_OPTS: dict[str, Any] = {"cache": True, "nogil": True, "error_model": "numpy"}


@numba.njit(**_OPTS)
def _chunk_fwd(x, lo, n, z, zo, h, ho, ap, ao, v, i, a, u, vp, th, p, f):
    """Forward recurrence of columns ``[lo, lo + n)`` of ``x``; spikes to ``z[:, zo:zo+n]``, ``h`` to
    ``h[:, ho:ho+n]``, ``a[t-1]`` to ``ap[:, ao:ao+n]`` (adaptive only); ``v, i, a`` are updated in place.
    A destination with one row (and ``T > 1``) is a scratch row that is overwritten every step (for
    outputs the caller does not need). Returns the number of non-finite inputs (``x - x != 0`` only
    for NaN and inf; an integer count vectorises, a float accumulator would not)."""
    beta, v_rest, gain, v_th, v_reset, alpha, adapt, rho, one_m_rho, th_minus_reset, one = p
    reset, has_syn, has_adapt, is_if = f
    zero = one - one
    if is_if:  # IF (v' = v + gain u) is the LIF expression with beta = 1, v_rest = 0, bit for bit
        beta = one
        v_rest = zero
    plain = not has_syn and not has_adapt
    zrows = z.shape[0] > 1
    hrows = h.shape[0] > 1
    arows = ap.shape[0] > 1
    nbad = 0
    for t in range(x.shape[0]):
        xr = x[t, lo : lo + n]
        hr = h[t if hrows else 0, ho : ho + n]
        zr = z[t if zrows else 0, zo : zo + n]
        if plain:  # LIF / IF without synapse or adaptation: one fused loop per reset mode
            if reset == TO_VALUE:
                for k in range(n):
                    xk = xr[k]
                    nbad += 1 if (xk - xk) != zero else 0
                    vq = v_rest + beta * (v[k] - v_rest) + gain * xk
                    ht = vq - v_th
                    zt = one if ht > zero else zero
                    v[k] = vq * (one - zt) + zt * v_reset
                    hr[k] = ht
                    zr[k] = zt
            elif reset == SUBTRACT:
                for k in range(n):
                    xk = xr[k]
                    nbad += 1 if (xk - xk) != zero else 0
                    vq = v_rest + beta * (v[k] - v_rest) + gain * xk
                    ht = vq - v_th
                    zt = one if ht > zero else zero
                    v[k] = vq - zt * th_minus_reset
                    hr[k] = ht
                    zr[k] = zt
            else:
                for k in range(n):
                    xk = xr[k]
                    nbad += 1 if (xk - xk) != zero else 0
                    vq = v_rest + beta * (v[k] - v_rest) + gain * xk
                    ht = vq - v_th
                    zt = one if ht > zero else zero
                    v[k] = vq
                    hr[k] = ht
                    zr[k] = zt
            continue
        if has_syn:
            for k in range(n):
                i[k] = alpha * i[k] + xr[k]
                u[k] = i[k]
        else:
            for k in range(n):
                u[k] = xr[k]
        for k in range(n):
            nbad += 1 if (xr[k] - xr[k]) != zero else 0
        for k in range(n):
            vp[k] = v_rest + beta * (v[k] - v_rest) + gain * u[k]
        if has_adapt:
            ar = ap[t if arows else 0, ao : ao + n]
            for k in range(n):
                ar[k] = a[k]
                th[k] = v_th + adapt * a[k]
        else:
            for k in range(n):
                th[k] = v_th
        for k in range(n):
            ht = vp[k] - th[k]
            hr[k] = ht
            zr[k] = one if ht > zero else zero
        if reset == TO_VALUE:
            for k in range(n):
                v[k] = vp[k] * (one - zr[k]) + zr[k] * v_reset
        elif reset == SUBTRACT:
            if has_adapt:
                for k in range(n):
                    v[k] = vp[k] - zr[k] * (th[k] - v_reset)
            else:
                for k in range(n):
                    v[k] = vp[k] - zr[k] * th_minus_reset
        else:
            for k in range(n):
                v[k] = vp[k]
        if has_adapt:
            for k in range(n):
                a[k] = rho * a[k] + one_m_rho * zr[k]
    return nbad


@numba.njit(**_OPTS)
def fwd(x, v0, i0, a0, z, h, a_prev, save, v_out, i_out, a_out, p, f, w, c_lo, c_hi):
    """Chunks ``[c_lo, c_hi)`` of width ``w``. ``save``: write ``h`` (and ``a[t-1]``) to the ``[T, M]``
    outputs; otherwise only the spikes are written. Returns False on NaN/inf input."""
    T, M = x.shape
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
        if save:
            nbad += _chunk_fwd(x, lo, n, z, lo, h, lo, a_prev, lo, v, i, a, u, vp, th, p, f)
        else:
            nbad += _chunk_fwd(x, lo, n, z, lo, hrow, 0, arow, 0, v, i, a, u, vp, th, p, f)
        v_out[lo : lo + n] = v
        i_out[lo : lo + n] = i
        a_out[lo : lo + n] = a
    return nbad == 0


@numba.njit(fastmath={"contract"}, **_OPTS)
def _exp(x):
    """``exp(x)`` of a float64 for ``|x| <= 100`` (clamped beyond: the sigmoid surrogate is then below 1e-40),
    written so that LLVM vectorises the loop that calls it: no libm call (Numba links no vector maths
    library here), only multiply-adds. ``exp(x) = exp(x / 2^9)^(2^9)``: the Taylor polynomial of degree 11
    on ``|x / 2^9| <= 0.196`` (truncation below 1e-17), then nine squarings (relative error at most about
    ``2^9`` float64 roundings: under 1e-13, checked against ``math.exp`` in the tests)."""
    r = min(max(x, -100.0), 100.0) * (1.0 / 512.0)
    p = 1.0 / 39916800.0  # Horner: 1 + r + r^2/2! + ... + r^11/11!
    p = 1.0 / 3628800.0 + r * p
    p = 1.0 / 362880.0 + r * p
    p = 1.0 / 40320.0 + r * p
    p = 1.0 / 5040.0 + r * p
    p = 1.0 / 720.0 + r * p
    p = 1.0 / 120.0 + r * p
    p = 1.0 / 24.0 + r * p
    p = 1.0 / 6.0 + r * p
    p = 0.5 + r * p
    p = 1.0 + r * p
    p = 1.0 + r * p
    for _ in range(9):  # constant trip count: unrolled
        p = p * p
    return p


@numba.njit(**_OPTS)
def _surrogate_row(hr, n, st, sg_code, sg_a, sg_b, one):
    zero = one - one
    if sg_code == SG_FAST_SIGMOID:  # fast sigmoid: 1 / (1 + a |h|)^2
        for k in range(n):
            q = one + sg_a * abs(hr[k])
            st[k] = one / (q * q)
    elif sg_code == SG_TRIANGLE:  # triangle: max(0, 1 - |h| / a) / a
        for k in range(n):
            st[k] = max(zero, one - abs(hr[k]) / sg_a) / sg_a
    elif sg_code == SG_ATAN:  # atan: b / (1 + (a h)^2), a = pi/2 alpha, b = alpha / 2
        for k in range(n):
            q = sg_a * hr[k]
            st[k] = sg_b / (one + q * q)
    elif sg_code == SG_SIGMOID:  # sigmoid: a s (1 - s), s = 1 / (1 + exp(-a h)); in float64, then rounded
        a64 = np.float64(sg_a)
        for k in range(n):
            q = 1.0 / (1.0 + _exp(-a64 * np.float64(hr[k])))
            st[k] = a64 * q * (1.0 - q)
    elif sg_code == SG_STRAIGHT_THROUGH:  # [|h| < a] / (2 a)
        for k in range(n):
            st[k] = sg_b if abs(hr[k]) < sg_a else zero


@numba.njit(**_OPTS)
def bwd(
    gz,
    gzc,
    gz_const,
    x,
    v0,
    i0,
    a0,
    h,
    s,
    a_prev,
    recompute,
    gvT,
    giT,
    gaT,
    gx,
    gv_out,
    gi_out,
    ga_out,
    p,
    f,
    detach,
    sg_code,
    sg_a,
    sg_b,
    pool_k,
    pool_w,
    pool_max,
    pool_div,
    w,
    c_lo,
    c_hi,
):
    """Reverse-time recurrence (equations in :mod:`spikeforge.backends.torch_kernel`) over chunks
    ``[c_lo, c_hi)`` of width ``w``. ``recompute``: rebuild ``h`` (and ``a[t-1]``) of each chunk from
    ``x`` and the initial state ``v0, i0, a0`` first; otherwise read the saved ``h, a_prev``.
    ``sg_code == SG_CUSTOM``: the surrogate derivative ``s`` was precomputed (saved-``h`` mode only).
    ``pool_k > 0``: ``gz`` is the gradient of the spikes' ``pool_k x pool_k`` tiling pool (average: divided
    by ``pool_div = pool_k**2`` here; ``pool_max``: max pooling), rows of images ``pool_w`` wide, ``w`` a multiple of
    ``pool_k * pool_w``; each element's dL/dz[t] comes from its tile's entry (see
    :mod:`spikeforge.backends._numba_tiles`)."""
    beta, v_rest, gain, v_th, v_reset, alpha, adapt, rho, one_m_rho, th_minus_reset, one = p
    reset, has_syn, has_adapt, is_if = f
    zero = one - one
    if is_if:
        beta = one
    plain = not has_syn and not has_adapt
    T, M = gx.shape
    hb = np.empty((T, w) if recompute else (1, 1), gx.dtype)
    zrow = np.empty((1, w), gx.dtype)  # the recomputed spikes are not needed: a scratch row
    ab = np.empty((T, w) if recompute and has_adapt else (1, 1), gx.dtype)
    u = np.empty(w, gx.dtype)
    vp = np.empty(w, gx.dtype)
    th = np.empty(w, gx.dtype)
    st = np.empty(w, gx.dtype)
    big = np.empty(w, gx.dtype)
    gvp = np.empty(w, gx.dtype)
    gzbuf = np.empty(w, gx.dtype)
    for c in range(c_lo, c_hi):
        lo = c * w
        n = min(M, lo + w) - lo
        if recompute:
            v = v0[lo : lo + n].copy()
            i = i0[lo : lo + n].copy()
            a = a0[lo : lo + n].copy()
            _chunk_fwd(x, lo, n, zrow, 0, hb, 0, ab, 0, v, i, a, u, vp, th, p, f)
            H, ho, A, ao = hb, 0, ab, 0
        else:
            H, ho, A, ao = h, lo, a_prev, lo
        gv = gvT[lo : lo + n].copy()
        gi = giT[lo : lo + n].copy()
        ga = gaT[lo : lo + n].copy()
        for t in range(T - 1, -1, -1):
            hr = H[t, ho : ho + n]
            if sg_code == SG_CUSTOM:  # precomputed by the surrogate's own grad()
                sr = s[t, lo : lo + n]
                for k in range(n):
                    st[k] = sr[k]
            else:
                _surrogate_row(hr, n, st, sg_code, sg_a, sg_b, one)
            if gz_const:  # dL/dz[t] is one number per step (e.g. the loss is a sum): a broadcast row
                gval = gzc[t]
                for k in range(n):
                    gzbuf[k] = gval
                gzr = gzbuf[:n]
            elif pool_k > 0:  # dL/dz[t] from the gradient of the spikes' tiling pool (recomputed h: which spike won)
                expand_tiles(gz[t], hr, lo, n, gzbuf, pool_k, pool_w, pool_max, pool_div)
                gzr = gzbuf[:n]
            else:
                gzr = gz[t, lo : lo + n]
            gxr = gx[t, lo : lo + n]
            if plain:  # no synapse, no adaptation: one fused loop per (reset, detach)
                if reset == TO_VALUE and not detach:
                    for k in range(n):
                        ht = hr[k]
                        zt = one if ht > zero else zero
                        g = (gzr[k] + gv[k] * (v_reset - (ht + v_th))) * st[k]
                        gp = g + gv[k] * (one - zt)
                        gv[k] = beta * gp
                        gxr[k] = gain * gp
                elif reset == TO_VALUE:
                    for k in range(n):
                        zt = one if hr[k] > zero else zero
                        g = gzr[k] * st[k]
                        gp = g + gv[k] * (one - zt)
                        gv[k] = beta * gp
                        gxr[k] = gain * gp
                elif reset == SUBTRACT and not detach:
                    for k in range(n):
                        g = (gzr[k] - gv[k] * th_minus_reset) * st[k]
                        gp = g + gv[k]
                        gv[k] = beta * gp
                        gxr[k] = gain * gp
                else:
                    for k in range(n):
                        gp = gzr[k] * st[k] + gv[k]
                        gv[k] = beta * gp
                        gxr[k] = gain * gp
                continue
            # dL/dz[t] plus what flows back into the spike through adaptation and the reset
            for k in range(n):
                big[k] = gzr[k]
            if has_adapt:
                ar = A[t, ao : ao + n]
                for k in range(n):
                    th[k] = v_th + adapt * ar[k]
                for k in range(n):
                    big[k] = big[k] + one_m_rho * ga[k]
            else:
                for k in range(n):
                    th[k] = v_th
            if not detach:
                if reset == TO_VALUE:
                    for k in range(n):
                        big[k] = big[k] + gv[k] * (v_reset - (hr[k] + th[k]))
                elif reset == SUBTRACT:
                    for k in range(n):
                        big[k] = big[k] - gv[k] * (th[k] - v_reset)
            # gh = big * st (kept in big); gv' = gh + gv (1 - z) | gh + gv
            if reset == TO_VALUE:
                for k in range(n):
                    g = big[k] * st[k]
                    big[k] = g
                    zt = one if hr[k] > zero else zero
                    gvp[k] = g + gv[k] * (one - zt)
            else:
                for k in range(n):
                    g = big[k] * st[k]
                    big[k] = g
                    gvp[k] = g + gv[k]
            if has_adapt:
                if reset == SUBTRACT:
                    for k in range(n):
                        zt = one if hr[k] > zero else zero
                        ga[k] = rho * ga[k] + adapt * (-big[k] - gv[k] * zt)
                else:
                    for k in range(n):
                        ga[k] = rho * ga[k] + adapt * (-big[k])
            if has_syn:
                for k in range(n):
                    gv[k] = beta * gvp[k]
                    git = gain * gvp[k] + gi[k]
                    gxr[k] = git
                    gi[k] = alpha * git
            else:
                for k in range(n):
                    gv[k] = beta * gvp[k]
                    gxr[k] = gain * gvp[k]
        gv_out[lo : lo + n] = gv
        gi_out[lo : lo + n] = gi
        ga_out[lo : lo + n] = ga
