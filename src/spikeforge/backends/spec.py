"""What a fused multi-step kernel needs to know about a LIF-family neuron, and the autograd Function
that runs a kernel over a whole sequence.

One generic recurrence covers IF, LIF (every reset mode), current-based LIF and adaptive LIF. Per element
and step ``t`` (``u`` is the input, or the synaptic current when ``has_syn``)::

    i[t]  = alpha i[t-1] + x[t]                           (has_syn; else u[t] = x[t])
    v'    = v_rest + beta (v[t-1] - v_rest) + gain u[t]
    th    = v_th + adapt a[t-1]                           (has_adapt; else th = v_th)
    h[t]  = v' - th;   z[t] = [h[t] > 0]
    v[t]  = reset(v', z[t], th)                           to_value | subtract | none
    a[t]  = rho a[t-1] + (1 - rho) z[t]                   (has_adapt)

The operations and their order mirror the reference step functions exactly, so the forward spikes are
bit-identical to the reference time loop in float32 and float64. The forward saves ``h`` (and ``a[t-1]``
for adaptive neurons), or, for kernels that offer ``forward_light``/``backward_recompute`` (Numba, with a
built-in surrogate), only the input and initial state, from which the backward rebuilds ``h``; the
backward evaluates ``surrogate.grad(h)`` (vectorised over the whole sequence, or inside the compiled kernel
for the built-in surrogates: ``surrogate.kernel_code()``) and runs the reverse-time recurrence derived by
hand (see :mod:`spikeforge.backends.torch_kernel`).

Second-order gradients (``torch.autograd.grad(..., create_graph=True)``, e.g. a gradient penalty): the
hand-written backward is not differentiable, so when autograd records the backward the fused node instead
reruns the sequence as differentiable torch ops (the reference step functions' operations) and
differentiates that: first- and second-order gradients are the reference loop's, at the reference loop's
speed. For this the node keeps a reference to its input ``x`` (no copy) besides ``h``.
"""

from __future__ import annotations

import importlib
from typing import Any
from typing import NamedTuple
from typing import Protocol

import torch
from torch import Tensor

from spikeforge._core.codes import NONE
from spikeforge._core.codes import RESET_CODES
from spikeforge._core.codes import SG_CUSTOM
from spikeforge._core.codes import SUBTRACT
from spikeforge._core.codes import TO_VALUE
from spikeforge._core.spec import FusedSpec
from spikeforge.backends import _differentiable

__all__ = [
    "FusedSpec", "FinalGrads", "Grads", "Kernel", "fused_run", "surrogate_kernel_code", "importable", "TO_VALUE",
    "SUBTRACT", "NONE", "RESET_CODES",
]  # fmt: skip


def importable(module: str) -> bool:
    """Whether ``module`` (an optional dependency such as ``numba`` or ``triton``) imports here."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def surrogate_kernel_code(surrogate: Any) -> tuple[int, float, float]:
    """``surrogate.kernel_code()`` (see :mod:`spikeforge.surrogate`); ``SG_CUSTOM`` for any object with only
    ``grad`` (kernels then call ``surrogate.grad`` in torch)."""
    code = getattr(surrogate, "kernel_code", None)
    return code() if callable(code) else (SG_CUSTOM, 0.0, 0.0)


Grads = tuple[Tensor, Tensor, Tensor, Tensor]  # (gx, gv0, gi0, ga0): gradients w.r.t. the input and initial states


class FinalGrads(NamedTuple):
    """Gradients of the loss w.r.t. the final states ``v_T, i_T, a_T`` ``[M]`` (zeros where unused)."""

    v: Tensor
    i: Tensor
    a: Tensor


class Kernel(Protocol):
    name: str
    checks_finite: bool  # the forward raises on NaN/inf input itself (the caller skips its own pass over x)

    def forward(self, x: Tensor, v0: Tensor, i0: Tensor, a0: Tensor, spec: FusedSpec) -> tuple[Tensor, ...]:
        """Returns ``(z, h, a_prev, vT, iT, aT)``; ``a_prev`` is empty unless ``spec.has_adapt``."""

    def backward(self, gz: Tensor, h: Tensor, a_prev: Tensor, gT: FinalGrads, spec: FusedSpec, surrogate: Any) -> Grads:
        """Returns ``(gx, gv0, gi0, ga0)``; the kernel evaluates ``surrogate.grad(h)`` itself."""


class _FusedFunction(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, x: Tensor, v0: Tensor, i0: Tensor, a0: Tensor, spec: FusedSpec, kernel: Kernel, surrogate: Any
    ) -> tuple[Tensor, ...]:
        ctx.spec, ctx.kernel, ctx.surrogate = spec, kernel, surrogate
        need_grad = any(ctx.needs_input_grad[:4])
        light = hasattr(kernel, "forward_light")
        ctx.recompute = need_grad and light and kernel.can_recompute(surrogate)  # type: ignore[attr-defined]
        if light and (ctx.recompute or not need_grad):
            # spikes only; the backward (if any) rebuilds h from the input and the initial state
            z, v_t, i_t, a_t = kernel.forward_light(x, v0, i0, a0, spec)  # type: ignore[attr-defined]
            if ctx.recompute:
                ctx.save_for_backward(x, v0, i0, a0)
            return z, v_t, i_t, a_t
        z, h, a_prev, v_t, i_t, a_t = kernel.forward(x, v0, i0, a0, spec)
        if need_grad:
            # the inputs are kept (not copied) for a backward that autograd records (see _exact_backward)
            ctx.save_for_backward(x, v0, i0, a0, h, a_prev)
        return z, v_t, i_t, a_t

    @staticmethod
    def backward(
        ctx: Any, gz: Tensor | None, gvT: Tensor | None, giT: Tensor | None, gaT: Tensor | None
    ) -> tuple[Any, ...]:
        if torch.is_grad_enabled():  # create_graph=True: the backward itself must be differentiable
            return _exact_backward(ctx, (gz, gvT, giT, gaT))
        saved = ctx.saved_tensors
        like = saved[0]
        zeros = like.new_zeros(like.shape[1:])
        gz = torch.zeros_like(like) if gz is None else gz  # may be an expanded (stride-0) view: kernels read it as is
        gT = FinalGrads(*(zeros if g is None else g.contiguous() for g in (gvT, giT, gaT)))
        if ctx.recompute:
            x, v0, i0, a0 = saved
            gx, gv0, gi0, ga0 = ctx.kernel.backward_recompute(gz, x, v0, i0, a0, gT, ctx.spec, ctx.surrogate)
        else:
            h, a_prev = saved[4:]
            gx, gv0, gi0, ga0 = ctx.kernel.backward(gz, h, a_prev, gT, ctx.spec, ctx.surrogate)
        return gx, gv0, gi0, ga0, None, None, None


def _exact_backward(ctx: Any, grads: tuple[Tensor | None, ...]) -> tuple[Any, ...]:
    """The backward under ``create_graph=True`` (a gradient penalty, Hessian-vector products): rerun the
    forward as differentiable torch ops (:func:`~spikeforge.backends._differentiable.differentiable_run`, the
    reference step functions' operations) and differentiate that with ``create_graph=True``, so first- and
    second-order gradients are the reference loop's. The hand-written kernels' backward is not itself
    differentiable (it would silently drop every second-order term)."""
    x, v0, i0, a0 = ctx.saved_tensors[:4]
    needs = ctx.needs_input_grad[:4]
    with torch.enable_grad():
        ins = [t if t.requires_grad else t.detach().requires_grad_(need) for t, need in zip((x, v0, i0, a0), needs)]
        outs = _differentiable.differentiable_run(ins[0], ins[1], ins[2], ins[3], ctx.spec, ctx.surrogate)
        pairs = [(o, g) for o, g in zip(outs, grads) if g is not None and o.requires_grad]
        wrt = [t for t, need in zip(ins, needs) if need]
        if not pairs or not wrt:
            return None, None, None, None, None, None, None
        got = iter(
            torch.autograd.grad([o for o, _ in pairs], wrt, [g for _, g in pairs], create_graph=True, allow_unused=True)
        )
    result = [next(got) if need else None for need in needs]
    return (*result, None, None, None)


def fused_run(
    x: Tensor, v0: Tensor, i0: Tensor | None, a0: Tensor | None, spec: FusedSpec, kernel: Kernel, surrogate: Any
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Run a fused kernel over ``x [T, ...]`` from states ``v0, i0, a0 [...]``.

    Returns ``(z [T, ...], v_T, i_T, a_T)``; gradients flow to ``x`` and to the initial states.
    """
    shape = x.shape
    x2 = x.reshape(shape[0], -1).contiguous()  # [T, M]
    flat = lambda t: (torch.zeros_like(v0) if t is None else t).reshape(-1).contiguous()
    v = v0.reshape(-1).contiguous()
    z, v_t, i_t, a_t = _FusedFunction.apply(x2, v, flat(i0), flat(a0), spec, kernel, surrogate)
    st = shape[1:]
    return z.reshape(shape), v_t.reshape(st), i_t.reshape(st), a_t.reshape(st)
