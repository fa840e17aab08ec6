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
    prange = range  # serial on purpose: no thread pool competing with torch's (see module docstring)

    @numba.njit(cache=True, nogil=True)
    def fwd(x, v0, i0, a0, z, h, a_prev, v_out, i_out, a_out, beta, v_rest, gain, v_th, v_reset, alpha, adapt, rho, one_m_rho, th_minus_reset, one, reset, has_syn, has_adapt, is_if):  # noqa: E501
        T, M = x.shape
        nchunks = (M + 511) // 512
        for c in prange(nchunks):
            lo = c * 512
            hi = min(M, lo + 512)
            n = hi - lo
            v = v0[lo:hi].copy()
            i = i0[lo:hi].copy()
            a = a0[lo:hi].copy()
            for t in range(T):
                for k in range(n):
                    m = lo + k
                    u = x[t, m]
                    if has_syn:
                        i[k] = alpha * i[k] + u
                        u = i[k]
                    if is_if:
                        vp = v[k] + gain * u
                    else:
                        vp = v_rest + beta * (v[k] - v_rest) + gain * u
                    if has_adapt:
                        a_prev[t, m] = a[k]
                        th = v_th + adapt * a[k]
                    else:
                        th = v_th
                    ht = vp - th
                    zt = one if ht > 0 else one - one
                    if reset == 0:
                        v[k] = vp * (one - zt) + zt * v_reset
                    elif reset == 1:
                        if has_adapt:
                            v[k] = vp - zt * (th - v_reset)
                        else:
                            v[k] = vp - zt * th_minus_reset
                    else:
                        v[k] = vp
                    if has_adapt:
                        a[k] = rho * a[k] + one_m_rho * zt
                    h[t, m] = ht
                    z[t, m] = zt
            v_out[lo:hi] = v
            i_out[lo:hi] = i
            a_out[lo:hi] = a

    @numba.njit(cache=True, nogil=True)
    def bwd(gz, h, s, a_prev, gvT, giT, gaT, gx, gv_out, gi_out, ga_out, beta, gain, v_th, v_reset, alpha, adapt, rho, one_m_rho, one, reset, detach, has_syn, has_adapt, sg_code, sg_a, sg_b):  # noqa: E501
        T, M = h.shape
        nchunks = (M + 511) // 512
        for c in prange(nchunks):
            lo = c * 512
            hi = min(M, lo + 512)
            n = hi - lo
            gv = gvT[lo:hi].copy()
            gi = giT[lo:hi].copy()
            ga = gaT[lo:hi].copy()
            for t in range(T - 1, -1, -1):
                for k in range(n):
                    m = lo + k
                    ht = h[t, m]
                    zt = one if ht > 0 else one - one
                    th = v_th + adapt * a_prev[t, m] if has_adapt else v_th
                    big = gz[t, m]
                    if has_adapt:
                        big = big + one_m_rho * ga[k]
                    if not detach:
                        if reset == 0:
                            big = big + gv[k] * (v_reset - (ht + th))
                        elif reset == 1:
                            big = big - gv[k] * (th - v_reset)
                    if sg_code == 0:  # precomputed by the surrogate's own grad()
                        st = s[t, m]
                    elif sg_code == 1:  # fast sigmoid: 1 / (1 + a |h|)^2
                        q = one + sg_a * abs(ht)
                        st = one / (q * q)
                    elif sg_code == 2:  # triangle: max(0, 1 - |h| / a) / a
                        st = max(one - one, one - abs(ht) / sg_a) / sg_a
                    elif sg_code == 3:  # atan: b / (1 + (a h)^2), a = pi/2 alpha, b = alpha / 2
                        q = sg_a * ht
                        st = sg_b / (one + q * q)
                    elif sg_code == 4:  # sigmoid: a s (1 - s), s = 1 / (1 + exp(-a h))
                        q = one / (one + math.exp(-sg_a * ht))
                        st = sg_a * q * (one - q)
                    else:  # straight-through: [|h| < a] / (2 a)
                        st = sg_b if abs(ht) < sg_a else one - one
                    gh = big * st
                    if reset == 0:
                        gvp = gh + gv[k] * (one - zt)
                    else:
                        gvp = gh + gv[k]
                    if has_adapt:
                        if reset == 1:
                            gth = -gh - gv[k] * zt
                        else:
                            gth = -gh
                        ga[k] = rho * ga[k] + adapt * gth
                    gv[k] = beta * gvp
                    gu = gain * gvp
                    if has_syn:
                        git = gu + gi[k]
                        gx[t, m] = git
                        gi[k] = alpha * git
                    else:
                        gx[t, m] = gu
            gv_out[lo:hi] = gv
            gi_out[lo:hi] = gi
            ga_out[lo:hi] = ga

    return fwd, bwd


def _kernels() -> tuple[Any, Any]:
    if "fwd" not in _KERNELS:
        _KERNELS["fwd"], _KERNELS["bwd"] = _build()
    return _KERNELS["fwd"], _KERNELS["bwd"]


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

    @staticmethod
    def forward(x: Tensor, v0: Tensor, i0: Tensor, a0: Tensor, spec: FusedSpec) -> tuple[Tensor, ...]:
        fwd, _ = _kernels()
        f = np.float32 if x.dtype == torch.float32 else np.float64
        z = torch.empty_like(x)
        h = torch.empty_like(x)
        a_prev = torch.empty_like(x) if spec.has_adapt else x.new_empty((1, 1))
        v_out, i_out, a_out = torch.empty_like(v0), torch.empty_like(v0), torch.empty_like(v0)
        fwd(
            _np(x), _np(v0), _np(i0), _np(a0), _np(z), _np(h), _np(a_prev), _np(v_out), _np(i_out), _np(a_out),
            f(spec.beta), f(spec.v_rest), f(spec.gain), f(spec.v_th), f(spec.v_reset), f(spec.alpha),
            f(spec.adapt), f(spec.rho), f(1 - spec.rho), f(spec.v_th - spec.v_reset), f(1.0),
            spec.reset, spec.has_syn, spec.has_adapt, spec.is_if,
        )
        return z, h, a_prev, v_out, i_out, a_out

    @staticmethod
    def backward(
        gz: Tensor, h: Tensor, a_prev: Tensor, gvT: Tensor, giT: Tensor, gaT: Tensor, spec: FusedSpec, surrogate: Any
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        _, bwd = _kernels()
        f = np.float32 if h.dtype == torch.float32 else np.float64
        code, a, b = _surrogate_code(surrogate)
        s = surrogate.grad(h) if code == 0 else h.new_empty((1, 1))
        gx = torch.empty_like(h)
        gv, gi, ga = torch.empty_like(gvT), torch.empty_like(gvT), torch.empty_like(gvT)
        bwd(
            _np(gz), _np(h), _np(s), _np(a_prev), _np(gvT), _np(giT), _np(gaT), _np(gx), _np(gv), _np(gi), _np(ga),
            f(1.0 if spec.is_if else spec.beta), f(spec.gain), f(spec.v_th), f(spec.v_reset), f(spec.alpha),
            f(spec.adapt), f(spec.rho), f(1 - spec.rho), f(1.0), spec.reset, spec.detach_reset, spec.has_syn, spec.has_adapt,
            code, f(a), f(b),
        )
        return gx, gv, gi, ga


assert TO_VALUE == 0 and SUBTRACT == 1  # the kernels above use the integer codes directly
