"""The Triton kernel sources behind :mod:`spikeforge.backends.triton_kernel` (imported only when Triton is used).

Plain Python functions in Triton's language, not decorated: :func:`spikeforge.backends.triton_kernel.kernels`
wraps the same source either for the GPU compiler (``triton.jit``) or for Triton's CPU interpreter, as the
caller asks. Both resolve names through this module's globals: ``tl`` is imported here at module level, and
the reset and surrogate codes of :mod:`spikeforge._core.codes` are bound as ``tl.constexpr`` (Triton's
compile-time constants), so each ``if RESET == SUBTRACT`` / ``if SG == SG_ATAN`` branch is resolved when a
kernel is specialised. The kernels call no helper functions.
"""

from __future__ import annotations

import triton.language as tl

from spikeforge._core import codes

TO_VALUE = tl.constexpr(codes.TO_VALUE)
SUBTRACT = tl.constexpr(codes.SUBTRACT)
SG_CUSTOM = tl.constexpr(codes.SG_CUSTOM)
SG_FAST_SIGMOID = tl.constexpr(codes.SG_FAST_SIGMOID)
SG_TRIANGLE = tl.constexpr(codes.SG_TRIANGLE)
SG_ATAN = tl.constexpr(codes.SG_ATAN)
SG_SIGMOID = tl.constexpr(codes.SG_SIGMOID)
SG_STRAIGHT_THROUGH = tl.constexpr(codes.SG_STRAIGHT_THROUGH)


def fwd(
    x_ptr,
    v0_ptr,
    i0_ptr,
    a0_ptr,
    z_ptr,
    h_ptr,
    ap_ptr,
    vT_ptr,
    iT_ptr,
    aT_ptr,
    p_ptr,
    T,
    M,
    RESET: tl.constexpr,
    HAS_SYN: tl.constexpr,
    HAS_ADAPT: tl.constexpr,
    IS_IF: tl.constexpr,
    BLOCK: tl.constexpr,
):
    CD = p_ptr.dtype.element_ty  # compute dtype: float64, else float32
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < M
    beta, v_rest, gain = tl.load(p_ptr + 0), tl.load(p_ptr + 1), tl.load(p_ptr + 2)
    v_th, v_reset, alpha = tl.load(p_ptr + 3), tl.load(p_ptr + 4), tl.load(p_ptr + 5)
    adapt, rho, one_m_rho, th_m_reset = tl.load(p_ptr + 6), tl.load(p_ptr + 7), tl.load(p_ptr + 8), tl.load(p_ptr + 9)
    v = tl.load(v0_ptr + offs, mask=mask, other=0.0).to(CD)
    i = tl.load(i0_ptr + offs, mask=mask, other=0.0).to(CD)
    a = tl.load(a0_ptr + offs, mask=mask, other=0.0).to(CD)
    xp, zp, hp, app = x_ptr + offs, z_ptr + offs, h_ptr + offs, ap_ptr + offs
    for _ in range(T):
        u = tl.load(xp, mask=mask, other=0.0).to(CD)
        if HAS_SYN:
            i = alpha * i + u
            u = i
        if IS_IF:
            vp = v + gain * u
        else:
            vp = v_rest + beta * (v - v_rest) + gain * u
        if HAS_ADAPT:
            tl.store(app, a, mask=mask)
            th = v_th + adapt * a
        else:
            th = v_th
        ht = vp - th
        zt = (ht > 0).to(CD)
        if RESET == TO_VALUE:
            v = vp * (1.0 - zt) + zt * v_reset
        elif RESET == SUBTRACT:
            if HAS_ADAPT:
                v = vp - zt * (th - v_reset)
            else:
                v = vp - zt * th_m_reset
        else:
            v = vp
        if HAS_ADAPT:
            a = rho * a + one_m_rho * zt
        tl.store(hp, ht, mask=mask)
        tl.store(zp, zt.to(z_ptr.dtype.element_ty), mask=mask)
        xp += M
        zp += M
        hp += M
        app += M
    tl.store(vT_ptr + offs, v.to(vT_ptr.dtype.element_ty), mask=mask)
    tl.store(iT_ptr + offs, i.to(iT_ptr.dtype.element_ty), mask=mask)
    tl.store(aT_ptr + offs, a.to(aT_ptr.dtype.element_ty), mask=mask)


def bwd(
    gz_ptr,
    sgt,
    sgm,
    gz_last,
    h_ptr,
    s_ptr,
    ap_ptr,
    gvT_ptr,
    giT_ptr,
    gaT_ptr,
    gx_ptr,
    gv_ptr,
    gi_ptr,
    ga_ptr,
    p_ptr,
    T,
    M,
    last,
    RESET: tl.constexpr,
    DETACH: tl.constexpr,
    HAS_SYN: tl.constexpr,
    HAS_ADAPT: tl.constexpr,
    SG: tl.constexpr,
    FP64: tl.constexpr,
    BLOCK: tl.constexpr,
):
    CD = p_ptr.dtype.element_ty
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < M
    beta, gain, v_th = tl.load(p_ptr + 0), tl.load(p_ptr + 1), tl.load(p_ptr + 2)
    v_reset, alpha, adapt = tl.load(p_ptr + 3), tl.load(p_ptr + 4), tl.load(p_ptr + 5)
    rho, one_m_rho, th_m_reset = tl.load(p_ptr + 6), tl.load(p_ptr + 7), tl.load(p_ptr + 8)
    sg_a, sg_b = tl.load(p_ptr + 9), tl.load(p_ptr + 10)
    gv = tl.load(gvT_ptr + offs, mask=mask, other=0.0).to(CD)
    gi = tl.load(giT_ptr + offs, mask=mask, other=0.0).to(CD)
    ga = tl.load(gaT_ptr + offs, mask=mask, other=0.0).to(CD)
    gzp = gz_ptr + offs * sgm + gz_last  # gz may be an expanded (stride-0) view: strides, not copies
    hp, sp, app, gxp = h_ptr + offs + last, s_ptr + offs + last, ap_ptr + offs + last, gx_ptr + offs + last
    for _ in range(T):
        ht = tl.load(hp, mask=mask, other=0.0)
        zt = (ht > 0).to(CD)
        if HAS_ADAPT:
            th = v_th + adapt * tl.load(app, mask=mask, other=0.0)
        else:
            th = v_th
        big = tl.load(gzp, mask=mask, other=0.0).to(CD)
        if HAS_ADAPT:
            big = big + one_m_rho * ga
        if not DETACH:
            if RESET == TO_VALUE:
                big = big + gv * (v_reset - (ht + th))
            elif RESET == SUBTRACT:
                if HAS_ADAPT:
                    big = big - gv * (th - v_reset)
                else:
                    big = big - gv * th_m_reset
        # surrogate gradient st = sg'(h); divisions are IEEE round-to-nearest (always so in float64)
        if SG == SG_CUSTOM:  # precomputed by the surrogate's own grad()
            st = tl.load(sp, mask=mask, other=0.0)
        elif SG == SG_FAST_SIGMOID:  # fast sigmoid: 1 / (1 + a |h|)^2
            q = 1.0 + sg_a * tl.abs(ht)
            if FP64:
                st = 1.0 / (q * q)
            else:
                st = tl.fdiv(1.0, q * q, ieee_rounding=True)
        elif SG == SG_TRIANGLE:  # triangle: max(0, 1 - |h| / a) / a
            if FP64:
                st = tl.maximum(1.0 - tl.abs(ht) / sg_a, 0.0) / sg_a
            else:
                r = tl.maximum(1.0 - tl.fdiv(tl.abs(ht), sg_a, ieee_rounding=True), 0.0)
                st = tl.fdiv(r, sg_a, ieee_rounding=True)
        elif SG == SG_ATAN:  # atan: b / (1 + (a h)^2)
            q = sg_a * ht
            if FP64:
                st = sg_b / (1.0 + q * q)
            else:
                st = tl.fdiv(sg_b, 1.0 + q * q, ieee_rounding=True)
        elif SG == SG_SIGMOID:  # sigmoid: a s (1 - s), s = 1 / (1 + exp(-a h))
            e = 1.0 + tl.exp(-sg_a * ht)
            if FP64:
                q = 1.0 / e
            else:
                q = tl.fdiv(1.0, e, ieee_rounding=True)
            st = sg_a * q * (1.0 - q)
        else:  # SG_STRAIGHT_THROUGH: [|h| < a] / (2 a)
            st = tl.where(tl.abs(ht) < sg_a, sg_b, 0.0 * ht)
        gh = big * st
        if RESET == TO_VALUE:
            gvp = gh + gv * (1.0 - zt)
        else:
            gvp = gh + gv
        if HAS_ADAPT:
            if RESET == SUBTRACT:
                gth = -gh - gv * zt
            else:
                gth = -gh
            ga = rho * ga + adapt * gth
        gv = beta * gvp
        gu = gain * gvp
        if HAS_SYN:
            git = gu + gi
            tl.store(gxp, git.to(gx_ptr.dtype.element_ty), mask=mask)
            gi = alpha * git
        else:
            tl.store(gxp, gu.to(gx_ptr.dtype.element_ty), mask=mask)
        gzp -= sgt
        hp -= M
        sp -= M
        app -= M
        gxp -= M
    tl.store(gv_ptr + offs, gv.to(gv_ptr.dtype.element_ty), mask=mask)
    tl.store(gi_ptr + offs, gi.to(gi_ptr.dtype.element_ty), mask=mask)
    tl.store(ga_ptr + offs, ga.to(ga_ptr.dtype.element_ty), mask=mask)
