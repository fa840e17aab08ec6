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

``TritonKernel(interpret=True)`` (``backend="triton_interpret"``) runs the very same kernel source on CPU
tensors in Triton's NumPy interpreter (slow; used by the CPU test suite). The choice is this explicit
argument: nothing here reads ``TRITON_INTERPRET`` (that variable stays Triton's own concern). Kernels are
built on first use, one set per mode (compiled / interpreted).
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import Tensor

from spikeforge._core.codes import SG_CUSTOM
from spikeforge.backends.spec import FinalGrads
from spikeforge.backends.spec import FusedSpec
from spikeforge.backends.spec import Grads
from spikeforge.backends.spec import importable
from spikeforge.backends.spec import surrogate_kernel_code

__all__ = ["TritonKernel", "triton_available", "triton_installed", "kernels", "TRITON_DTYPES"]

TRITON_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
_BLOCK = 256  # elements per program (2 per thread with 4 warps): coalesced 1 KiB row slices in float32
# compile options of every launch: no FMA contraction (see the module docstring); 4 warps of 32 threads
_LAUNCH_OPTIONS: dict[str, Any] = {"num_warps": 4, "enable_fp_fusion": False}


def triton_installed() -> bool:
    """Whether the ``triton`` package can be imported."""
    return importable("triton")


def triton_available() -> bool:
    """Whether Triton kernels can run on a GPU here: ``triton`` importable and CUDA available."""
    return triton_installed() and torch.cuda.is_available()


@functools.cache
def kernels(interpret: bool = False) -> tuple[Any, Any]:
    """The ``(fwd, bwd)`` kernels: compiled for the GPU (``interpret=False``) or run by Triton's NumPy
    interpreter on CPU tensors (``interpret=True``, slow; what the CPU test suite uses). Built once per mode
    from the same source (:mod:`spikeforge.backends._triton_kernels`)."""
    if not triton_installed():
        raise ImportError("the Triton kernel needs triton: pip install 'spikeforge[gpu]' (or pip install triton)")
    import triton

    from spikeforge.backends import _triton_kernels as src

    if interpret:
        from triton.runtime.interpreter import InterpretedFunction

        return InterpretedFunction(src.fwd), InterpretedFunction(src.bwd)
    return triton.jit(src.fwd), triton.jit(src.bwd)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    if dtype not in TRITON_DTYPES:
        raise TypeError(f"the Triton kernel runs {TRITON_DTYPES} tensors, got {dtype}; cast the input with .float()")
    return torch.float64 if dtype == torch.float64 else torch.float32


def device_problem(x: Tensor, interpret: bool) -> str | None:
    """Why the (compiled or interpreted) kernels cannot run on ``x``'s device, with the fix; None if they can."""
    if interpret:
        if x.device.type == "cpu":
            return None
        return f"the Triton interpreter runs CPU tensors, got {x.device}; move them with .cpu() or use backend='triton'"
    if x.device.type == "cuda":
        return None
    where = "" if torch.cuda.is_available() else " (no CUDA GPU is visible here)"
    return (
        f"the Triton kernel runs CUDA tensors, got a tensor on {x.device}: move the model and input with "
        f".cuda(){where}, or use backend='auto' (or backend='triton_interpret' to run the slow Triton "
        "interpreter on CPU tensors)"
    )


def _check_device(x: Tensor, interpret: bool) -> None:
    problem = device_problem(x, interpret)
    if problem is not None:
        raise ValueError(problem)


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
    """Fused multi-step LIF-family kernel in Triton: the :class:`~spikeforge.backends.spec.Kernel` protocol.

    Args:
        interpret: run the kernels in Triton's interpreter on CPU tensors instead of compiling them for the
            GPU (a testing aid: slow, but the same kernel source op by op).
    """

    name = "triton"
    checks_finite = False

    def __init__(self, interpret: bool = False) -> None:
        self.interpret = interpret

    @torch.no_grad()
    def forward(self, x: Tensor, v0: Tensor, i0: Tensor, a0: Tensor, spec: FusedSpec) -> tuple[Tensor, ...]:
        """``x [T, M]`` (contiguous), states ``[M]``. Returns ``(z, h, a_prev, vT, iT, aT)``."""
        _check_device(x, self.interpret)
        cd = _compute_dtype(x.dtype)
        fwd, _ = kernels(self.interpret)
        T, M = x.shape
        z = torch.empty_like(x)
        h = torch.empty(x.shape, dtype=cd, device=x.device)
        a_prev = torch.empty(x.shape, dtype=cd, device=x.device) if spec.has_adapt else x.new_empty(0)
        v_out, i_out, a_out = (torch.empty(v0.shape, dtype=cd, device=x.device) for _ in range(3))
        p = _constants(list(spec.constants()), cd, x.device)
        _launch(
            fwd,
            x,
            M,
            x.contiguous(),
            v0.contiguous(),
            i0.contiguous(),
            a0.contiguous(),
            z,
            h,
            a_prev if spec.has_adapt else h,
            v_out,
            i_out,
            a_out,
            p,
            T,
            M,
            RESET=spec.reset,
            HAS_SYN=spec.has_syn,
            HAS_ADAPT=spec.has_adapt,
            IS_IF=spec.is_if,
        )
        if M == 0:
            v_out, i_out, a_out = v0.clone(), i0.clone(), a0.clone()
        # float16/bfloat16: results leave the kernel in float32 and are rounded here by torch (round to
        # nearest even; Triton's interpreter would truncate a bfloat16 cast, the GPU would not)
        return z, h, a_prev, v_out.to(v0.dtype), i_out.to(v0.dtype), a_out.to(v0.dtype)

    @torch.no_grad()
    def backward(self, gz: Tensor, h: Tensor, a_prev: Tensor, gT: FinalGrads, spec: FusedSpec, surrogate: Any) -> Grads:
        """Reverse-time recurrence; ``gz [T, M]`` may have any strides (e.g. stride 0 from ``z.sum()``)."""
        _check_device(h, self.interpret)
        _, bwd = kernels(self.interpret)
        T, M = h.shape
        cd = h.dtype
        code, sg_a, sg_b = surrogate_kernel_code(surrogate)
        s = surrogate.grad(h).to(cd).contiguous() if code == SG_CUSTOM else h
        out_dtype = gz.dtype  # the input's dtype (h is float32 when the input is float16/bfloat16)
        gx = torch.empty(h.shape, dtype=cd, device=h.device)
        gvT, giT, gaT = gT
        gv, gi, ga = (torch.empty(gvT.shape, dtype=cd, device=h.device) for _ in range(3))
        beta, _v_rest, *rest = spec.constants()  # the backward needs no v_rest; IF has no leak (beta 1)
        p = _constants([1.0 if spec.is_if else beta, *rest, sg_a, sg_b], cd, h.device)
        gz = gz if gz.dim() == 2 else gz.reshape(T, M)
        sgt, sgm = gz.stride()
        _launch(
            bwd,
            h,
            M,
            gz,
            sgt,
            sgm,
            (T - 1) * sgt,
            h,
            s,
            a_prev if spec.has_adapt else h,
            gvT.contiguous(),
            giT.contiguous(),
            gaT.contiguous(),
            gx,
            gv,
            gi,
            ga,
            p,
            T,
            M,
            (T - 1) * M,
            RESET=spec.reset,
            DETACH=spec.detach_reset,
            HAS_SYN=spec.has_syn,
            HAS_ADAPT=spec.has_adapt,
            SG=code,
            FP64=cd == torch.float64,
        )
        if M == 0:
            gv, gi, ga = gvT, giT, gaT
        return gx.to(out_dtype), gv.to(out_dtype), gi.to(out_dtype), ga.to(out_dtype)
