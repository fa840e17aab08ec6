"""A LIF-family layer and the ``k x k`` tiling average or max pool after it, as one autograd node (issue 20).

In a convolutional SNN (``conv -> LIF -> AvgPool2d(k)``) the layer's spikes ``[T, B, C, H, W]`` exist only to
be pooled, and the pool's backward only expands ``dL/dpooled / k**2`` back to that size for the layer's
backward. :func:`fused_pool_run` runs the recurrence and the pooling in one pass over cache-sized chunks
(the spikes are never written to memory) and its backward reads the pooled gradient directly (the full-size
``dL/dz`` is never built), recomputing the membrane from the saved input as the light Numba path does. What
is saved is the input and the initial state only. Outputs are bit-identical to the layer then
``avg_pool2d`` (the tile sums of spikes are exact integers) or ``max_pool2d``, and so are the gradients (the
same reverse-time recurrence reading the same values: ``dL/dpooled / k**2``, divided in the kernel, for every
element of a tile; for max pooling ``dL/dpooled`` for the element ``max_pool2d`` routes it to, the tile's first
spike in row-major order, else its first element, and 0 for the others).

Under ``create_graph=True`` the backward reruns the layer as differentiable torch ops and pools that, so
second-order gradients are the reference loop's (as :func:`spikeforge.backends.fused_run` does).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from spikeforge._core.spec import FusedSpec
from spikeforge.backends import _differentiable
from spikeforge.backends.spec import FinalGrads

__all__ = ["fused_pool_run", "supports_pool"]


def supports_pool(kernel: Any, surrogate: Any) -> bool:
    """Whether ``kernel`` runs a layer and its tiling pool fused for this surrogate (the Numba kernel with a
    built-in surrogate)."""
    return kernel is not None and hasattr(kernel, "forward_pool") and bool(kernel.can_recompute(surrogate))


def _pool(z: Tensor, k: int, height: int, width: int, is_max: bool) -> Tensor:
    """``avg_pool2d`` (``max_pool2d``) of the images in ``z [T, N * H * W]``: ``[T, N * H * W / k**2]``."""
    pool = torch.nn.functional.max_pool2d if is_max else torch.nn.functional.avg_pool2d
    return pool(z.reshape(-1, height, width), k).reshape(z.shape[0], -1)


class _FusedPoolFunction(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        v0: Tensor,
        i0: Tensor,
        a0: Tensor,
        spec: FusedSpec,
        kernel: Any,
        surrogate: Any,
        k: int,
        height: int,
        width: int,
        is_max: bool,
    ) -> tuple[Tensor, ...]:
        ctx.spec, ctx.kernel, ctx.surrogate, ctx.geometry = spec, kernel, surrogate, (k, height, width, is_max)
        pooled, v_t, i_t, a_t = kernel.forward_pool(x, v0, i0, a0, spec, k, width, is_max)
        if any(ctx.needs_input_grad[:4]):
            ctx.save_for_backward(x, v0, i0, a0)
        return pooled, v_t, i_t, a_t

    @staticmethod
    def backward(ctx: Any, gp: Tensor | None, gvT: Tensor | None, giT: Tensor | None, gaT: Tensor | None) -> Any:
        k, _, width, is_max = ctx.geometry
        if torch.is_grad_enabled():  # create_graph=True: differentiate the recurrence as torch ops
            return _exact_backward(ctx, (gp, gvT, giT, gaT))
        x, v0, i0, a0 = ctx.saved_tensors
        zeros = x.new_zeros(x.shape[1:])
        # the kernel divides by k * k itself (average pooling): no second [T, M / k**2] buffer
        gy = x.new_zeros((x.shape[0], x.shape[1] // (k * k))) if gp is None else gp.contiguous()
        gT = FinalGrads(*(zeros if g is None else g.contiguous() for g in (gvT, giT, gaT)))
        pool = (k, width, is_max)
        grads = ctx.kernel.backward_recompute(gy, x, v0, i0, a0, gT, ctx.spec, ctx.surrogate, pool=pool)
        return (*grads, *(None,) * 7)


def _exact_backward(ctx: Any, grads: tuple[Tensor | None, ...]) -> tuple[Any, ...]:
    k, height, width, is_max = ctx.geometry
    x, v0, i0, a0 = ctx.saved_tensors
    needs = ctx.needs_input_grad[:4]
    none = (None,) * 7
    with torch.enable_grad():
        ins = [t if t.requires_grad else t.detach().requires_grad_(need) for t, need in zip((x, v0, i0, a0), needs)]
        z, v_t, i_t, a_t = _differentiable.differentiable_run(ins[0], ins[1], ins[2], ins[3], ctx.spec, ctx.surrogate)
        outs = (_pool(z, k, height, width, is_max), v_t, i_t, a_t)
        pairs = [(o, g) for o, g in zip(outs, grads) if g is not None and o.requires_grad]
        wrt = [t for t, need in zip(ins, needs) if need]
        if not pairs or not wrt:
            return (None, None, None, None, *none)
        got = iter(
            torch.autograd.grad([o for o, _ in pairs], wrt, [g for _, g in pairs], create_graph=True, allow_unused=True)
        )
    return (*(next(got) if need else None for need in needs), *none)


def fused_pool_run(
    x: Tensor,
    v0: Tensor,
    i0: Tensor | None,
    a0: Tensor | None,
    spec: FusedSpec,
    kernel: Any,
    surrogate: Any,
    k: int,
    is_max: bool = False,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The layer over ``x [T, ..., H, W]`` from states ``v0, i0, a0 [..., H, W]``, its spikes average-pooled
    (``is_max``: max-pooled) over ``k x k`` tiles (``H``, ``W`` multiples of ``k``; ``kernel`` one that
    :func:`supports_pool`).

    Returns ``(pooled [T, ..., H / k, W / k], v_T, i_T, a_T)``; gradients flow to ``x`` and the initial states.
    """
    shape = x.shape
    height, width = shape[-2], shape[-1]
    if x.dim() < 3 or height % k or width % k:
        raise ValueError(f"fused_pool_run needs [T, ..., H, W] with H and W multiples of k={k}, got {tuple(shape)}")
    x2 = x.reshape(shape[0], -1).contiguous()  # [T, M]
    flat = lambda t: (torch.zeros_like(v0) if t is None else t).reshape(-1).contiguous()
    v = v0.reshape(-1).contiguous()
    pooled, v_t, i_t, a_t = _FusedPoolFunction.apply(
        x2, v, flat(i0), flat(a0), spec, kernel, surrogate, k, height, width, is_max
    )
    st = shape[1:]
    out_shape = (*shape[:-2], height // k, width // k)
    return pooled.reshape(out_shape), v_t.reshape(st), i_t.reshape(st), a_t.reshape(st)
