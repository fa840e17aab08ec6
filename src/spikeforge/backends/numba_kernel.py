"""Fused CPU kernel compiled by Numba (LLVM from the ``numba`` wheel: no compiler on the user's machine).

Same recurrence and operation order as :mod:`spikeforge.backends.torch_kernel` (the docstring there has
the backward equations). Elements are split into chunks; inside a chunk the loop runs over time, then
over the chunk's contiguous elements, so every row of ``[T, M]`` is read once and sequentially. The kernel
is serial on purpose: a Numba OpenMP pool next to torch's own thread pool was measured to slow later
torch ops in the same process by up to 10x (oversubscription), and the LIF recurrence is memory-bound. Scalars are cast to the tensor dtype before use, so float32 runs in float32
exactly like the eager reference (bit-identical spikes).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch import Tensor

from spikeforge.backends.spec import SUBTRACT, TO_VALUE, FusedSpec

__all__ = ["NumbaKernel", "numba_available"]

_CHUNK = 512
_KERNELS: dict[str, Any] = {}  # compiled functions, built on first use (a cache of code, not of data)


def numba_available() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def _build() -> tuple[Any, Any]:
    import numba
    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def fwd(x, v0, i0, a0, z, h, a_prev, v_out, i_out, a_out, beta, v_rest, gain, v_th, v_reset, alpha, adapt, rho, one_m_rho, th_minus_reset, one, reset, has_syn, has_adapt, is_if, c_lo, c_hi):  # noqa: E501
        T, M = x.shape
        zero = one - one
        # IF (v' = v + gain u) is the LIF expression with beta = 1, v_rest = 0, bit for bit: (v - 0) = v,
        # 1 * v = v, 0 + v = v exactly; so both share the fused loops below
        plain = not has_syn and not has_adapt
        if is_if:
            beta = one
            v_rest = zero
            is_if = False
        u = np.empty(_CHUNK, x.dtype)
        vp = np.empty(_CHUNK, x.dtype)
        th = np.empty(_CHUNK, x.dtype)
        fin = np.zeros(_CHUNK, x.dtype)  # stays 0 unless some input is NaN or inf (inf * 0 = NaN)
        for c in range(c_lo, c_hi):
            lo = c * _CHUNK
            hi = min(M, lo + _CHUNK)
            n = hi - lo
            v = v0[lo:hi].copy()
            i = i0[lo:hi].copy()
            a = a0[lo:hi].copy()
            for t in range(T):
                # every branch below is taken per row, never per element: the inner loops vectorise
                xr = x[t, lo:hi]
                hr = h[t, lo:hi]
                zr = z[t, lo:hi]
                if plain:  # LIF / IF without synapse or adaptation: one fused loop per reset mode
                    if reset == 0:
                        for k in range(n):
                            xk = xr[k]
                            fin[k] = fin[k] + xk * zero
                            vq = v_rest + beta * (v[k] - v_rest) + gain * xk
                            ht = vq - v_th
                            zt = one if ht > zero else zero
                            v[k] = vq * (one - zt) + zt * v_reset
                            hr[k] = ht
                            zr[k] = zt
                    elif reset == 1:
                        for k in range(n):
                            xk = xr[k]
                            fin[k] = fin[k] + xk * zero
                            vq = v_rest + beta * (v[k] - v_rest) + gain * xk
                            ht = vq - v_th
                            zt = one if ht > zero else zero
                            v[k] = vq - zt * th_minus_reset
                            hr[k] = ht
                            zr[k] = zt
                    else:
                        for k in range(n):
                            xk = xr[k]
                            fin[k] = fin[k] + xk * zero
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
                    fin[k] = fin[k] + xr[k] * zero
                if is_if:
                    for k in range(n):
                        vp[k] = v[k] + gain * u[k]
                else:
                    for k in range(n):
                        vp[k] = v_rest + beta * (v[k] - v_rest) + gain * u[k]
                if has_adapt:
                    ar = a_prev[t, lo:hi]
                    for k in range(n):
                        ar[k] = a[k]
                        th[k] = v_th + adapt * a[k]
                    if reset == 0:
                        for k in range(n):
                            ht = vp[k] - th[k]
                            zt = one if ht > zero else zero
                            v[k] = vp[k] * (one - zt) + zt * v_reset
                            hr[k] = ht
                            zr[k] = zt
                    elif reset == 1:
                        for k in range(n):
                            ht = vp[k] - th[k]
                            zt = one if ht > zero else zero
                            v[k] = vp[k] - zt * (th[k] - v_reset)
                            hr[k] = ht
                            zr[k] = zt
                    else:
                        for k in range(n):
                            ht = vp[k] - th[k]
                            zt = one if ht > zero else zero
                            v[k] = vp[k]
                            hr[k] = ht
                            zr[k] = zt
                    for k in range(n):
                        a[k] = rho * a[k] + one_m_rho * zr[k]
                elif reset == 0:
                    for k in range(n):
                        ht = vp[k] - v_th
                        zt = one if ht > zero else zero
                        v[k] = vp[k] * (one - zt) + zt * v_reset
                        hr[k] = ht
                        zr[k] = zt
                elif reset == 1:
                    for k in range(n):
                        ht = vp[k] - v_th
                        zt = one if ht > zero else zero
                        v[k] = vp[k] - zt * th_minus_reset
                        hr[k] = ht
                        zr[k] = zt
                else:
                    for k in range(n):
                        ht = vp[k] - v_th
                        zt = one if ht > zero else zero
                        v[k] = vp[k]
                        hr[k] = ht
                        zr[k] = zt
            v_out[lo:hi] = v
            i_out[lo:hi] = i
            a_out[lo:hi] = a
        for k in range(_CHUNK):
            if fin[k] != zero:
                return False
        return True

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def bwd(gz, gzc, gz_const, h, s, a_prev, gvT, giT, gaT, gx, gv_out, gi_out, ga_out, beta, gain, v_th, v_reset, alpha, adapt, rho, one_m_rho, one, reset, detach, has_syn, has_adapt, sg_code, sg_a, sg_b, c_lo, c_hi):  # noqa: E501
        T, M = h.shape
        zero = one - one
        plain = not has_syn and not has_adapt
        th_minus_reset = v_th - v_reset
        st = np.empty(_CHUNK, h.dtype)
        th = np.empty(_CHUNK, h.dtype)
        big = np.empty(_CHUNK, h.dtype)
        gvp = np.empty(_CHUNK, h.dtype)
        gzbuf = np.empty(_CHUNK, h.dtype)
        for c in range(c_lo, c_hi):
            lo = c * _CHUNK
            hi = min(M, lo + _CHUNK)
            n = hi - lo
            gv = gvT[lo:hi].copy()
            gi = giT[lo:hi].copy()
            ga = gaT[lo:hi].copy()
            for t in range(T - 1, -1, -1):
                hr = h[t, lo:hi]
                # surrogate derivative of the row (one branch per row)
                if sg_code == 0:  # precomputed by the surrogate's own grad()
                    sr = s[t, lo:hi]
                    for k in range(n):
                        st[k] = sr[k]
                elif sg_code == 1:  # fast sigmoid: 1 / (1 + a |h|)^2
                    for k in range(n):
                        q = one + sg_a * abs(hr[k])
                        st[k] = one / (q * q)
                elif sg_code == 2:  # triangle: max(0, 1 - |h| / a) / a
                    for k in range(n):
                        st[k] = max(zero, one - abs(hr[k]) / sg_a) / sg_a
                elif sg_code == 3:  # atan: b / (1 + (a h)^2), a = pi/2 alpha, b = alpha / 2
                    for k in range(n):
                        q = sg_a * hr[k]
                        st[k] = sg_b / (one + q * q)
                elif sg_code == 4:  # sigmoid: a s (1 - s), s = 1 / (1 + exp(-a h))
                    for k in range(n):
                        q = one / (one + math.exp(-sg_a * hr[k]))
                        st[k] = sg_a * q * (one - q)
                else:  # straight-through: [|h| < a] / (2 a)
                    for k in range(n):
                        st[k] = sg_b if abs(hr[k]) < sg_a else zero
                if gz_const:  # dL/dz[t] is one number per step (e.g. the loss is a sum): a broadcast row
                    gval = gzc[t]
                    for k in range(n):
                        gzbuf[k] = gval
                    gzr = gzbuf[:n]
                else:
                    gzr = gz[t, lo:hi]
                gxr = gx[t, lo:hi]
                if plain:  # no synapse, no adaptation: one fused loop per (reset, detach)
                    if reset == 0 and not detach:
                        for k in range(n):
                            ht = hr[k]
                            zt = one if ht > zero else zero
                            g = (gzr[k] + gv[k] * (v_reset - (ht + v_th))) * st[k]
                            gp = g + gv[k] * (one - zt)
                            gv[k] = beta * gp
                            gxr[k] = gain * gp
                    elif reset == 0:
                        for k in range(n):
                            zt = one if hr[k] > zero else zero
                            g = gzr[k] * st[k]
                            gp = g + gv[k] * (one - zt)
                            gv[k] = beta * gp
                            gxr[k] = gain * gp
                    elif reset == 1 and not detach:
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
                    ar = a_prev[t, lo:hi]
                    for k in range(n):
                        th[k] = v_th + adapt * ar[k]
                    for k in range(n):
                        big[k] = big[k] + one_m_rho * ga[k]
                else:
                    for k in range(n):
                        th[k] = v_th
                if not detach:
                    if reset == 0:
                        for k in range(n):
                            big[k] = big[k] + gv[k] * (v_reset - (hr[k] + th[k]))
                    elif reset == 1:
                        for k in range(n):
                            big[k] = big[k] - gv[k] * (th[k] - v_reset)
                # gh = big * st (kept in big); gv' = gh + gv (1 - z) | gh + gv
                if reset == 0:
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
                    if reset == 1:
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
            gv_out[lo:hi] = gv
            gi_out[lo:hi] = gi
            ga_out[lo:hi] = ga

    return fwd, bwd


def _kernels() -> tuple[Any, Any]:
    if "fwd" not in _KERNELS:
        _KERNELS["fwd"], _KERNELS["bwd"] = _build()
    return _KERNELS["fwd"], _KERNELS["bwd"]


def _nchunks(m: int) -> int:
    return (m + _CHUNK - 1) // _CHUNK


_MIN_PARALLEL = 1 << 17  # elements (T * M) below which one thread is faster than a hand-off
_POOLS: dict[int, ThreadPoolExecutor] = {}  # worker threads, created on first use (a cache of threads, not of data)


def _split(kernel: Any, args: tuple[Any, ...], T: int, M: int) -> list[Any]:
    """Run ``kernel(*args, c_lo, c_hi)`` over all element chunks, split across ``torch.get_num_threads()``
    threads. The kernels release the GIL (``nogil``) and touch disjoint columns, so the split is exact:
    each element's recurrence runs in one thread in the same order as the serial kernel. The threads
    are plain Python threads that sleep when idle (no spinning pool competing with torch's)."""
    n = _nchunks(M)
    workers = min(torch.get_num_threads(), n)
    if workers <= 1 or T * M < _MIN_PARALLEL:
        return [kernel(*args, 0, n)]
    bounds = [n * w // workers for w in range(workers + 1)]
    pool = _POOLS.get(workers - 1)
    if pool is None:
        pool = _POOLS[workers - 1] = ThreadPoolExecutor(max_workers=workers - 1, thread_name_prefix="spikeforge-numba")
    futures = [pool.submit(kernel, *args, bounds[w], bounds[w + 1]) for w in range(1, workers)]
    first = kernel(*args, bounds[0], bounds[1])
    return [first, *(f.result() for f in futures)]


def _surrogate_code(sg: Any) -> tuple[int, float, float]:
    """Built-in surrogates evaluated inside the kernel (exact type match: a subclass may override grad)."""
    from spikeforge import surrogate as S

    kind = type(sg)
    if kind is S.FastSigmoid:
        return 1, sg.slope, 0.0
    if kind is S.Triangle:
        return 2, sg.width, 0.0
    if kind is S.ATan:
        return 3, math.pi / 2 * sg.alpha, sg.alpha / 2
    if kind is S.Sigmoid:
        return 4, sg.slope, 0.0
    if kind is S.StraightThrough:
        return 5, sg.width, 1.0 / (2 * sg.width)
    return 0, 0.0, 0.0


def _np(t: Tensor) -> np.ndarray:
    return t.detach().numpy()


class NumbaKernel:
    name = "numba"
    checks_finite = True  # forward raises ValueError on NaN/inf input itself (no separate pass over x)

    @staticmethod
    def forward(x: Tensor, v0: Tensor, i0: Tensor, a0: Tensor, spec: FusedSpec) -> tuple[Tensor, ...]:
        fwd, _ = _kernels()
        f = np.float32 if x.dtype == torch.float32 else np.float64
        z = torch.empty_like(x)
        h = torch.empty_like(x)
        a_prev = torch.empty_like(x) if spec.has_adapt else x.new_empty((1, 1))
        v_out, i_out, a_out = torch.empty_like(v0), torch.empty_like(v0), torch.empty_like(v0)
        ok = _split(fwd, (
            _np(x), _np(v0), _np(i0), _np(a0), _np(z), _np(h), _np(a_prev), _np(v_out), _np(i_out), _np(a_out),
            f(spec.beta), f(spec.v_rest), f(spec.gain), f(spec.v_th), f(spec.v_reset), f(spec.alpha),
            f(spec.adapt), f(spec.rho), f(1 - spec.rho), f(spec.v_th - spec.v_reset), f(1.0),
            spec.reset, spec.has_syn, spec.has_adapt, spec.is_if,
        ), *x.shape)
        if not all(ok):
            raise ValueError("x_seq contains NaN or inf; clean it first (e.g. torch.nan_to_num)")
        return z, h, a_prev, v_out, i_out, a_out

    @staticmethod
    def backward(
        gz: Tensor, h: Tensor, a_prev: Tensor, gvT: Tensor, giT: Tensor, gaT: Tensor, spec: FusedSpec, surrogate: Any
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        _, bwd = _kernels()
        f = np.float32 if h.dtype == torch.float32 else np.float64
        code, a, b = _surrogate_code(surrogate)
        s = surrogate.grad(h) if code == 0 else h.new_empty((1, 1))
        # contiguous rows vectorise; an expanded dL/dz that is constant along each row (stride 0) is
        # passed as one value per step instead of being materialised
        gz_const = gz.stride(1) == 0
        gzc = gz[:, 0].contiguous() if gz_const else h.new_empty(1)
        gz = h.new_empty((1, 1)) if gz_const else gz.contiguous()
        gx = torch.empty_like(h)
        gv, gi, ga = torch.empty_like(gvT), torch.empty_like(gvT), torch.empty_like(gvT)
        _split(bwd, (
            _np(gz), _np(gzc), gz_const, _np(h), _np(s), _np(a_prev), _np(gvT), _np(giT), _np(gaT), _np(gx), _np(gv), _np(gi), _np(ga),
            f(1.0 if spec.is_if else spec.beta), f(spec.gain), f(spec.v_th), f(spec.v_reset), f(spec.alpha),
            f(spec.adapt), f(spec.rho), f(1 - spec.rho), f(1.0), spec.reset, spec.detach_reset, spec.has_syn, spec.has_adapt,
            code, f(a), f(b),
        ), *h.shape)
        return gx, gv, gi, ga


assert TO_VALUE == 0 and SUBTRACT == 1  # the kernels above use the integer codes directly
