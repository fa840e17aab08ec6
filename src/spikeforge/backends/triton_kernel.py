"""Fused GPU kernel written in Triton (``pip install 'spikeforge[gpu]'``, a CUDA build of torch).

Same recurrence and operation order as :mod:`spikeforge.backends.numba_kernel` (the equations are in
:mod:`spikeforge.backends.spec`, the backward derivation in :mod:`spikeforge.backends.torch_kernel`).
One Triton program owns ``BLOCK`` contiguous elements of the flattened ``[T, M]`` sequence and runs the
whole time loop with the state (``v``, ``i``, ``a``, and the gradient carries in the backward) held in
registers: per step it reads one row slice of ``x`` and writes ``z``, ``h`` (and ``a[t-1]``), so the
sequence is streamed through HBM once in each direction.

Numerics:

* **No FMA contraction.** Triton fuses ``a * b + c`` into one fused multiply-add by default
  (``enable_fp_fusion=True``), which rounds once instead of twice and so can flip a spike whose
  membrane lands within an ulp of threshold. Every launch passes ``enable_fp_fusion=False``, so each
  ``*``, ``+``, ``-`` rounds like the eager reference step and float32/float64 spikes are bit-identical
  to the reference loop.
* Scalars (``beta``, ``v_th``, ...) are cast to the compute dtype on the host and read from a small
  tensor, exactly like the Numba kernel casts them, so float64 runs in float64 throughout (a Python
  float kernel argument would be truncated to float32 by Triton).
* Divisions in the surrogates use IEEE round-to-nearest division in float32; ``exp`` (sigmoid
  surrogate) is Triton's ``tl.exp``, which may use the fast hardware exponential in float32, so
  sigmoid-surrogate gradients agree with torch's to float32 tolerance, not to the last bit. (Gradients
  are compared within tolerance in any case: the reference sums terms in a different order.)
* **float16 / bfloat16:** loaded, computed and carried in float32 over the whole sequence; ``z`` is
  stored in the input dtype, ``gx`` and the final states leave the kernel in float32 and are rounded to
  the input dtype by torch (one extra pass over ``gx``). ``h`` and ``a[t-1]`` are saved in float32
  so the backward re-derives exactly the forward's spikes. This is *more* accurate than the reference
  loop, which rounds the membrane to 16 bits every step, so spikes can differ from it near threshold;
  they are bit-identical to this kernel run in float32 on the same (upcast) inputs.

``TRITON_INTERPRET=1`` runs the very same kernels on CPU tensors with Triton's NumPy interpreter (slow;
used by the CPU test suite). Kernels are built on first use, one set per mode (compiled / interpreted).
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor

from spikeforge.backends.numba_kernel import _surrogate_code
from spikeforge.backends.spec import FusedSpec

__all__ = ["TritonKernel", "triton_available", "triton_installed", "triton_interpreting", "TRITON_DTYPES"]

TRITON_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
_BLOCK = 256  # elements per program (2 per thread with 4 warps): coalesced 1 KiB row slices in float32
# compile options of every launch: no FMA contraction (see the module docstring); 4 warps of 32 threads
_LAUNCH_OPTIONS: dict[str, Any] = {"num_warps": 4, "enable_fp_fusion": False}
_KERNELS: dict[bool, tuple[Any, Any]] = {}  # compiled / interpreted kernels, built on first use (code, not data)
tl: Any = None  # triton.language, imported on first use by _build()


def triton_installed() -> bool:
    """Whether the ``triton`` package can be imported."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def triton_available() -> bool:
    """Whether Triton kernels can run on a GPU here: ``triton`` importable and CUDA available."""
    return triton_installed() and torch.cuda.is_available()


def triton_interpreting() -> bool:
    """Whether ``TRITON_INTERPRET=1`` is set (kernels then run on CPU tensors in Triton's interpreter)."""
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "yes", "on")


def _build() -> tuple[Any, Any]:
    # Both Triton's compiler and its interpreter resolve names through the kernel's module globals, so
    # ``tl`` is bound there (a lazy import; nothing else is) and the kernels call no helper functions.
    global tl
    import triton
    import triton.language

    tl = triton.language

    @triton.jit
    def fwd(
        x_ptr, v0_ptr, i0_ptr, a0_ptr, z_ptr, h_ptr, ap_ptr, vT_ptr, iT_ptr, aT_ptr, p_ptr, T, M,
        RESET: tl.constexpr, HAS_SYN: tl.constexpr, HAS_ADAPT: tl.constexpr, IS_IF: tl.constexpr, BLOCK: tl.constexpr,
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
            if RESET == 0:
                v = vp * (1.0 - zt) + zt * v_reset
            elif RESET == 1:
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

    @triton.jit
    def bwd(
        gz_ptr, sgt, sgm, gz_last, h_ptr, s_ptr, ap_ptr, gvT_ptr, giT_ptr, gaT_ptr, gx_ptr, gv_ptr, gi_ptr, ga_ptr,
        p_ptr, T, M, last,
        RESET: tl.constexpr, DETACH: tl.constexpr, HAS_SYN: tl.constexpr, HAS_ADAPT: tl.constexpr,
        SG: tl.constexpr, FP64: tl.constexpr, BLOCK: tl.constexpr,
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
                if RESET == 0:
                    big = big + gv * (v_reset - (ht + th))
                elif RESET == 1:
                    if HAS_ADAPT:
                        big = big - gv * (th - v_reset)
                    else:
                        big = big - gv * th_m_reset
            # surrogate gradient st = sg'(h); divisions are IEEE round-to-nearest (always so in float64)
            if SG == 0:  # precomputed by the surrogate's own grad()
                st = tl.load(sp, mask=mask, other=0.0)
            elif SG == 1:  # fast sigmoid: 1 / (1 + a |h|)^2
                q = 1.0 + sg_a * tl.abs(ht)
                if FP64:
                    st = 1.0 / (q * q)
                else:
                    st = tl.fdiv(1.0, q * q, ieee_rounding=True)
            elif SG == 2:  # triangle: max(0, 1 - |h| / a) / a
                if FP64:
                    st = tl.maximum(1.0 - tl.abs(ht) / sg_a, 0.0) / sg_a
                else:
                    r = tl.maximum(1.0 - tl.fdiv(tl.abs(ht), sg_a, ieee_rounding=True), 0.0)
                    st = tl.fdiv(r, sg_a, ieee_rounding=True)
            elif SG == 3:  # atan: b / (1 + (a h)^2)
                q = sg_a * ht
                if FP64:
                    st = sg_b / (1.0 + q * q)
                else:
                    st = tl.fdiv(sg_b, 1.0 + q * q, ieee_rounding=True)
            elif SG == 4:  # sigmoid: a s (1 - s), s = 1 / (1 + exp(-a h))
                e = 1.0 + tl.exp(-sg_a * ht)
                if FP64:
                    q = 1.0 / e
                else:
                    q = tl.fdiv(1.0, e, ieee_rounding=True)
                st = sg_a * q * (1.0 - q)
            else:  # straight-through: [|h| < a] / (2 a)
                st = tl.where(tl.abs(ht) < sg_a, sg_b, 0.0 * ht)
            gh = big * st
            if RESET == 0:
                gvp = gh + gv * (1.0 - zt)
            else:
                gvp = gh + gv
            if HAS_ADAPT:
                if RESET == 1:
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

    return fwd, bwd


def _kernels() -> tuple[Any, Any]:
    mode = triton_interpreting()  # triton.jit reads TRITON_INTERPRET when the kernels are defined
    if mode not in _KERNELS:
        if not triton_installed():
            raise ImportError("the Triton kernel needs triton: pip install 'spikeforge[gpu]' (or pip install triton)")
        _KERNELS[mode] = _build()
    return _KERNELS[mode]


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    if dtype not in TRITON_DTYPES:
        raise TypeError(f"the Triton kernel runs {TRITON_DTYPES} tensors, got {dtype}; cast the input with .float()")
    return torch.float64 if dtype == torch.float64 else torch.float32


def _check_device(x: Tensor) -> None:
    if x.device.type != "cuda" and not triton_interpreting():
        raise ValueError(
            f"the Triton kernel runs CUDA tensors, got a tensor on {x.device}; move it with .cuda(), "
            "use backend='auto', or set TRITON_INTERPRET=1 to run the (slow) Triton interpreter on the CPU"
        )


def _constants(values: list[float], dtype: torch.dtype, device: torch.device) -> Tensor:
    """The kernel's scalars as a small tensor of the compute dtype on ``device``.

    Copied from pinned memory without blocking: a plain ``torch.tensor(..., device="cuda")`` would
    synchronise the host with the GPU on every call.
    """
    t = torch.tensor(values, dtype=dtype)
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t


def _launch(kernel: Any, x: Tensor, m: int, *args: Any, **meta: Any) -> None:
    if m == 0:
        return
    grid = ((m + _BLOCK - 1) // _BLOCK,)
    if x.device.type == "cuda":
        with torch.cuda.device(x.device):
            kernel[grid](*args, **meta, BLOCK=_BLOCK, **_LAUNCH_OPTIONS)
    else:
        kernel[grid](*args, **meta, BLOCK=_BLOCK, **_LAUNCH_OPTIONS)


class TritonKernel:
    """Fused multi-step LIF-family kernel in Triton: the :class:`~spikeforge.backends.spec.Kernel` protocol."""

    name = "triton"

    @staticmethod
    @torch.no_grad()
    def forward(x: Tensor, v0: Tensor, i0: Tensor, a0: Tensor, spec: FusedSpec) -> tuple[Tensor, ...]:
        """``x [T, M]`` (contiguous), states ``[M]``. Returns ``(z, h, a_prev, vT, iT, aT)``."""
        _check_device(x)
        cd = _compute_dtype(x.dtype)
        fwd, _ = _kernels()
        T, M = x.shape
        z = torch.empty_like(x)
        h = torch.empty(x.shape, dtype=cd, device=x.device)
        a_prev = torch.empty(x.shape, dtype=cd, device=x.device) if spec.has_adapt else x.new_empty(0)
        v_out, i_out, a_out = (torch.empty(v0.shape, dtype=cd, device=x.device) for _ in range(3))
        p = _constants(
            [spec.beta, spec.v_rest, spec.gain, spec.v_th, spec.v_reset, spec.alpha, spec.adapt, spec.rho, 1 - spec.rho, spec.v_th - spec.v_reset],
            cd, x.device,
        )
        _launch(
            fwd, x, M, x.contiguous(), v0.contiguous(), i0.contiguous(), a0.contiguous(), z, h, a_prev if spec.has_adapt else h,
            v_out, i_out, a_out, p, T, M,
            RESET=spec.reset, HAS_SYN=spec.has_syn, HAS_ADAPT=spec.has_adapt, IS_IF=spec.is_if,
        )
        if M == 0:
            v_out, i_out, a_out = v0.clone(), i0.clone(), a0.clone()
        # float16/bfloat16: results leave the kernel in float32 and are rounded here by torch (round to
        # nearest even; Triton's interpreter would truncate a bfloat16 cast, the GPU would not)
        return z, h, a_prev, v_out.to(v0.dtype), i_out.to(v0.dtype), a_out.to(v0.dtype)

    @staticmethod
    @torch.no_grad()
    def backward(
        gz: Tensor, h: Tensor, a_prev: Tensor, gvT: Tensor, giT: Tensor, gaT: Tensor, spec: FusedSpec, surrogate: Any
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Reverse-time recurrence; ``gz [T, M]`` may have any strides (e.g. stride 0 from ``z.sum()``)."""
        _check_device(h)
        _, bwd = _kernels()
        T, M = h.shape
        cd = h.dtype
        code, sg_a, sg_b = _surrogate_code(surrogate)
        s = surrogate.grad(h).to(cd).contiguous() if code == 0 else h
        out_dtype = gz.dtype  # the input's dtype (h is float32 when the input is float16/bfloat16)
        gx = torch.empty(h.shape, dtype=cd, device=h.device)
        gv, gi, ga = (torch.empty(gvT.shape, dtype=cd, device=h.device) for _ in range(3))
        beta = 1.0 if spec.is_if else spec.beta
        p = _constants(
            [beta, spec.gain, spec.v_th, spec.v_reset, spec.alpha, spec.adapt, spec.rho, 1 - spec.rho, spec.v_th - spec.v_reset, sg_a, sg_b],
            cd, h.device,
        )
        gz = gz if gz.dim() == 2 else gz.reshape(T, M)
        sgt, sgm = gz.stride()
        _launch(
            bwd, h, M, gz, sgt, sgm, (T - 1) * sgt, h, s, a_prev if spec.has_adapt else h,
            gvT.contiguous(), giT.contiguous(), gaT.contiguous(), gx, gv, gi, ga, p, T, M, (T - 1) * M,
            RESET=spec.reset, DETACH=spec.detach_reset, HAS_SYN=spec.has_syn, HAS_ADAPT=spec.has_adapt,
            SG=code, FP64=cd == torch.float64,
        )
        if M == 0:
            gv, gi, ga = gvT, giT, gaT
        return gx.to(out_dtype), gv.to(out_dtype), gi.to(out_dtype), ga.to(out_dtype)
