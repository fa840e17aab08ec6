r"""Float64 loops of the event simulation and of EventProp's backward pass (one layer at a time).

Model and notation (:mod:`spikeforge.exact.simulate` has the full statement): ``a = 1/tau_mem``,
``c = 1/tau_syn``; between events a neuron with ``V(0) = V0``, ``I(0) = I0`` follows

    I(s) = I0 exp(-c s),    V(s) = V0 exp(-a s) + a I0 E(s),    E(s) = (exp(-a s) - exp(-c s)) / (c - a),

(``E(s) = s exp(-a s)`` when ``a == c``; :func:`edecay` evaluates it without cancellation) and
``dV/ds = a (I - V)``. ``V`` has at most one critical point, so a crossing of ``v_th`` from below needs
``I0 > v_th`` and happens on the rising flank before the peak ``s*`` (:func:`peak_time`): the root is bracketed
there and found by safeguarded Newton (:func:`crossing`) to float64 precision.

The functions are plain Python; with Numba installed they are compiled (``njit``, cached on disk) and the
originals stay reachable as ``.py_func`` (the tests compare both paths). Arrays: spike times ``[N, K]`` per
sample, ascending per neuron and padded with ``+inf``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any
from typing import TypeVar
from typing import cast

import numpy as np

F = TypeVar("F", bound=Callable[..., Any])

try:  # the ``fast`` extra; without it the same loops run interpreted (slow but identical)
    import numba

    def _jit(fn: F) -> F:
        compiled: Any = numba.njit(cache=True, nogil=True)(fn)
        return cast(F, compiled)

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only where numba is absent

    def _jit(fn: F) -> F:
        return fn

    HAVE_NUMBA = False

#: ``dV/dt`` just before a spike is clamped to at least ``VDOT_FLOOR * v_th / tau_mem`` in the backward pass:
#: at a spike that only grazes ``v_th`` the exact derivative is unbounded (round-off level cases only).
VDOT_FLOOR = 1e-8


@_jit
def edecay(s: float, a: float, c: float) -> float:
    """``(exp(-a s) - exp(-c s)) / (c - a)`` for ``s >= 0`` finite, stable for ``a ~= c``."""
    m = min(a, c)
    d = abs(c - a)
    x = d * s
    if x == 0.0:
        return s * math.exp(-m * s)
    return math.exp(-m * s) * (-math.expm1(-x)) / d


@_jit
def peak_time(v0: float, i0: float, a: float, c: float) -> float:
    """Time of the maximum of ``V`` after a state ``(v0, i0)`` with ``i0 > v0`` and ``i0 > 0``; ``inf`` if
    ``V`` rises for ever (it then stays below 0)."""
    den = a * i0 + (c - a) * v0
    if den <= 0.0:
        return math.inf
    x = (c - a) * (i0 - v0) / den
    ratio = 1.0 if x == 0.0 else math.log1p(x) / x
    return (i0 - v0) / den * ratio


@_jit
def crossing(v0: float, i0: float, a: float, c: float, v_th: float, span: float) -> float:
    """First ``s`` in ``(0, span]`` with ``V(s) > v_th`` crossing upwards (``v0 <= v_th``), or ``-1``."""
    if i0 <= v_th:  # dV/ds = a (I - V) and I decays: V cannot pass v_th
        return -1.0
    hi = min(peak_time(v0, i0, a, c), span)
    if hi == math.inf:
        return -1.0
    f_hi = v0 * math.exp(-a * hi) + a * i0 * edecay(hi, a, c) - v_th
    if not f_hi > 0.0:
        return -1.0
    lo = 0.0
    f_lo = v0 - v_th
    x = lo + (hi - lo) * (-f_lo) / (f_hi - f_lo)  # secant start; V rises on [lo, hi]
    for _ in range(200):
        ea = math.exp(-a * x)
        vx = v0 * ea + a * i0 * edecay(x, a, c)
        fx = vx - v_th
        if fx > 0.0:
            hi = x
        else:
            lo = x
        slope = a * (i0 * math.exp(-c * x) - vx)
        xn = x - fx / slope if slope > 0.0 else 0.5 * (lo + hi)
        if not lo < xn < hi:
            xn = 0.5 * (lo + hi)
        if abs(xn - x) <= 1e-15 * (1.0 + xn) or hi - lo <= 4e-16 * hi:  # below the ulp of a time
            return xn
        x = xn
    return x


@_jit
def sorted_events(times: Any) -> tuple[Any, Any, Any]:
    """Finite entries of one sample's ``[N, K]`` spike times, sorted by time (stable): ``(t, neuron, slot)``."""
    n, k = times.shape
    count = 0
    for j in range(n):
        for q in range(k):
            if times[j, q] < math.inf:
                count += 1
    t = np.empty(count)
    src = np.empty(count, np.int64)
    slot = np.empty(count, np.int64)
    e = 0
    for j in range(n):
        for q in range(k):
            if times[j, q] < math.inf:
                t[e] = times[j, q]
                src[e] = j
                slot[e] = q
                e += 1
    order = np.argsort(t, kind="mergesort")
    return t[order], src[order], slot[order]


@_jit
def _grown(arr: Any, cap: int, fill: float) -> Any:
    """``arr [B, N, K]`` widened to ``K = cap``, the new slots set to ``fill``."""
    new = np.full((arr.shape[0], arr.shape[1], cap), fill)
    new[:, :, : arr.shape[2]] = arr
    return new


@_jit
def forward_layer(
    pre: Any, w: Any, tau_mem: float, tau_syn: float, v_th: float, t_end: float, max_spikes: int
) -> tuple[Any, Any, int]:
    """Spike times of one layer ``[B, N, K <= max_spikes]`` (+inf padded), the current ``I`` at each spike and the
    largest spike count (> ``max_spikes`` means overflow: the caller raises). ``tau_syn == 0``: V jumps, and
    fires (losing ``v_th``) while above ``v_th``."""
    bsz = pre.shape[0]
    n_post = w.shape[0]
    out = np.full((bsz, n_post, min(4, max_spikes)), math.inf)  # grown on demand: memory follows the spikes
    cur = np.zeros((bsz, n_post, min(4, max_spikes)))
    a = 1.0 / tau_mem
    c = 1.0 / tau_syn if tau_syn > 0.0 else 0.0
    most = 0
    for b in range(bsz):
        et, src, _slot = sorted_events(pre[b])
        n_ev = et.shape[0]
        for i in range(n_post):
            v = 0.0
            cu = 0.0
            tc = 0.0
            n = 0
            e = 0
            while e <= n_ev:
                t_next = et[e] if e < n_ev else t_end
                if t_next > t_end:
                    t_next = t_end
                if tau_syn > 0.0:
                    while t_next > tc:  # spikes before the next event
                        span = t_next - tc if t_next < math.inf else math.inf
                        s = crossing(v, cu, a, c, v_th, span)
                        if s < 0.0:
                            if span < math.inf:
                                v = v * math.exp(-a * span) + a * cu * edecay(span, a, c)
                                cu = cu * math.exp(-c * span)
                            tc = t_next
                            break
                        cu = cu * math.exp(-c * s)
                        tc = tc + s
                        if n < max_spikes:
                            if n == out.shape[2]:
                                cap = min(2 * n, max_spikes)
                                out, cur = _grown(out, cap, math.inf), _grown(cur, cap, 0.0)
                            out[b, i, n] = tc
                            cur[b, i, n] = cu
                        n += 1
                        v = 0.0
                elif t_next > tc and t_next < math.inf:
                    v = v * math.exp(-a * (t_next - tc))
                    tc = t_next
                if e == n_ev or et[e] > t_end:
                    break
                if tau_syn > 0.0:
                    cu += w[i, src[e]] * c
                else:
                    v += w[i, src[e]] * a
                    if e + 1 == n_ev or et[e + 1] > et[e]:  # after all simultaneous inputs
                        while v > v_th:  # the tau_syn -> 0 limit: the charge left after a reset still arrives
                            if n < max_spikes:
                                if n == out.shape[2]:
                                    cap = min(2 * n, max_spikes)
                                    out, cur = _grown(out, cap, math.inf), _grown(cur, cap, 0.0)
                                out[b, i, n] = tc
                            n += 1
                            v -= v_th
                e += 1
            most = max(most, n)
    return out, cur, most


@_jit
def readout_layer(pre: Any, w: Any, tau_mem: float, tau_syn: float, t_end: float) -> tuple[Any, Any]:
    """Maximum of the membrane of non-spiking neurons over ``[0, t_end]`` and its time, ``[B, N]`` each
    (0 at time 0 when the membrane never rises)."""
    bsz = pre.shape[0]
    n_post = w.shape[0]
    vmax = np.zeros((bsz, n_post))
    tmax = np.zeros((bsz, n_post))
    a = 1.0 / tau_mem
    c = 1.0 / tau_syn if tau_syn > 0.0 else 0.0
    for b in range(bsz):
        et, src, _slot = sorted_events(pre[b])
        n_ev = et.shape[0]
        for i in range(n_post):
            v = 0.0
            cu = 0.0
            tc = 0.0
            for e in range(n_ev + 1):
                t_next = min(et[e], t_end) if e < n_ev else t_end
                span = t_next - tc
                if tau_syn > 0.0 and cu > v and cu > 0.0:  # an interior maximum
                    sp = peak_time(v, cu, a, c)
                    if sp < span:
                        vp = v * math.exp(-a * sp) + a * cu * edecay(sp, a, c)
                        if vp > vmax[b, i]:
                            vmax[b, i] = vp
                            tmax[b, i] = tc + sp
                if span == math.inf:
                    break
                if span > 0.0:
                    if tau_syn > 0.0:
                        v = v * math.exp(-a * span) + a * cu * edecay(span, a, c)
                        cu = cu * math.exp(-c * span)
                    else:
                        v = v * math.exp(-a * span)
                    tc = t_next
                if v > vmax[b, i]:
                    vmax[b, i] = v
                    tmax[b, i] = tc
                if e == n_ev or et[e] > t_end:
                    break
                if tau_syn > 0.0:
                    cu += w[i, src[e]] * c
                else:
                    v += w[i, src[e]] * a
                    if v > vmax[b, i]:
                        vmax[b, i] = v
                        tmax[b, i] = tc
    return vmax, tmax


@_jit
def _back_step(lv: float, li: float, s: float, a: float, c: float) -> tuple[float, float]:
    """Adjoint ``(lambda_V, lambda_I)`` carried back over ``s`` between events (transpose of the forward map)."""
    if s <= 0.0:
        return lv, li
    return lv * math.exp(-a * s), a * edecay(s, a, c) * lv + math.exp(-c * s) * li


@_jit
def _left_slope(et: Any, src: Any, w_row: Any, t: float, a: float, c: float) -> float:
    """``dV/dt`` just before ``t`` of a neuron at rest at time 0 driven by the inputs strictly before ``t``
    (a kink maximum of the readout at an input at ``t`` moves with that input at this rate)."""
    v = 0.0
    cu = 0.0
    for e in range(et.shape[0]):
        if et[e] >= t:
            break
        s = t - et[e]
        v += w_row[src[e]] * c * a * edecay(s, a, c)
        cu += w_row[src[e]] * c * math.exp(-c * s)
    return a * (cu - v)


@_jit
def backward_layer(
    pre: Any,
    w: Any,
    out: Any,
    cur: Any,
    g_out: Any,
    t_mark: Any,
    g_mark: Any,
    tau_mem: float,
    tau_syn: float,
    v_th: float,
) -> tuple[Any, Any]:
    """EventProp for one layer (``tau_syn > 0``): ``(dL/dW [N_post, N_pre], dL/d pre-times [B, N_pre, K_pre])``.

    ``out``/``cur``: the layer's spike times and currents at them ``[B, N, K]``; ``g_out``: ``dL/dt`` of each
    spike ``[B, N, K]``. A spiking layer passes ``t_mark`` empty; a readout layer passes its arg-max times
    ``t_mark [B, N]`` and ``dL/dV_max`` in ``g_mark`` (a jump of ``lambda_V`` there) and no spikes.
    """
    bsz, n_pre, k_pre = pre.shape
    n_post = w.shape[0]
    k_out = out.shape[2]
    gw = np.zeros((n_post, n_pre))
    gpre = np.zeros((bsz, n_pre, k_pre))
    a = 1.0 / tau_mem
    c = 1.0 / tau_syn
    floor = VDOT_FLOOR * v_th * a
    marked = t_mark.shape[0] > 0
    for b in range(bsz):
        et, src, slot = sorted_events(pre[b])
        for i in range(n_post):
            n = 0
            while n < k_out and out[b, i, n] < math.inf:
                n += 1
            mark_left = marked and g_mark[b, i] != 0.0
            if n == 0 and not mark_left:
                continue  # lambda stays 0: no gradient through this neuron
            lv = 0.0
            li = 0.0
            tc = math.inf
            e = et.shape[0] - 1
            k = n - 1
            while e >= 0 or k >= 0 or mark_left:
                # forward order at equal times: mark (V before the input), spike, then the input
                t_in = et[e] if e >= 0 else -math.inf
                t_sp = out[b, i, k] if k >= 0 else -math.inf
                t_mk = t_mark[b, i] if mark_left else -math.inf
                t = max(t_in, t_sp, t_mk)
                if tc < math.inf:
                    lv, li = _back_step(lv, li, tc - t, a, c)
                tc = t
                if e >= 0 and t_in == t:
                    j = src[e]
                    gw[i, j] += li * c
                    gpre[b, j, slot[e]] += w[i, j] * c * (c * li - a * lv)
                    if mark_left and t_mk == t:  # the maximum sits at this input (a kink): V_max = V(t_in)
                        gpre[b, j, slot[e]] += g_mark[b, i] * _left_slope(et, src, w[i], t, a, c)
                    e -= 1
                elif k >= 0 and t_sp == t:
                    ik = cur[b, i, k]
                    vdot = max(a * (ik - v_th), floor)
                    lv = (lv * a * ik - g_out[b, i, k]) / vdot
                    k -= 1
                else:
                    lv += g_mark[b, i]
                    mark_left = False
    return gw, gpre
