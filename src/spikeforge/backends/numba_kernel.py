"""Fused CPU kernel compiled by Numba (LLVM from the ``numba`` wheel: no compiler on the user's machine).

Same recurrence and operation order as :mod:`spikeforge.backends.torch_kernel` (the docstring there has
the backward equations); the loops are in :mod:`spikeforge.backends._numba_loops`. Elements are split
into chunks of contiguous columns; inside a chunk the loop runs over time, so every row of ``[T, M]`` is
read once and sequentially. The kernels run serially in the calling thread (they release the GIL): a
Numba/OpenMP pool next to torch's own was measured to slow later torch ops in the same process by up to
10x, and splitting chunks over Python threads gained nothing (see :func:`_run`). Scalars are cast to
the tensor dtype before use, so float32 runs in float32 exactly like the eager reference (bit-identical
spikes). For the built-in surrogates the backward recomputes ``h`` from the saved input instead of
saving it: less memory, fewer bytes moved, and no fresh ``[T, M]`` buffer for the forward to fault in.
As with any op that saves its input, changing the input in place before the backward raises autograd's
"modified by an inplace operation" error.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from spikeforge._core.codes import SG_CUSTOM
from spikeforge.backends.spec import FinalGrads
from spikeforge.backends.spec import FusedSpec
from spikeforge.backends.spec import Grads
from spikeforge.backends.spec import importable
from spikeforge.backends.spec import surrogate_kernel_code

__all__ = ["NumbaKernel", "numba_available"]

_CHUNK = 2048  # columns per chunk when T is short; longer sequences use narrower chunks (see _width)
_SCRATCH_BYTES = 1 << 20  # one [T, w] per-chunk scratch buffer: 1 MiB, about what one core's L2 holds


def numba_available() -> bool:
    """Whether the ``numba`` package can be imported."""
    return importable("numba")


def _loops() -> Any:
    """The compiled loops, imported on first use (importing them imports numba)."""
    from spikeforge.backends import _numba_loops

    return _numba_loops


def _width(T: int, dtype: torch.dtype) -> int:
    """Chunk width: a multiple of 16 (vector lanes), at most ``_CHUNK``, with a ``[T, w]`` scratch of at most
    ``_SCRATCH_BYTES``. Wide chunks stream long contiguous row segments; the cap keeps the scratch in about
    one core's L2."""
    itemsize = 4 if dtype == torch.float32 else 8
    return max(16, min(_CHUNK, (_SCRATCH_BYTES // itemsize // max(T, 1)) // 16 * 16))


def _pool_width(T: int, dtype: torch.dtype, tile_row: int) -> int:
    """Chunk width for the pooled kernels: :func:`_width` rounded down to whole rows of tiles (``tile_row =
    k * W`` columns; at least one)."""
    return max(1, _width(T, dtype) // tile_row) * tile_row


def _pool_loops() -> Any:
    from spikeforge.backends import _numba_pool

    return _numba_pool


def _run(kernel: Any, args: tuple[Any, ...], M: int, w: int) -> Any:
    """``kernel(*args, w, 0, n_chunks)``: every chunk, in this thread. Kept serial on purpose: splitting the
    chunks over a second thread gained nothing for this memory-bound recurrence on two cores in our
    trials, and it competes with the spinning OpenMP workers torch leaves behind after its own parallel
    ops (several times slower when they collide)."""
    return kernel(*args, w, 0, (M + w - 1) // w)


def _np(t: Tensor) -> np.ndarray:
    return t.detach().numpy()


def _consts(spec: FusedSpec, dtype: torch.dtype) -> tuple[tuple[Any, ...], tuple[int, bool, bool, bool]]:
    f = np.float32 if dtype == torch.float32 else np.float64
    p = (*spec.constants(), 1.0)
    return tuple(f(c) for c in p), (spec.reset, spec.has_syn, spec.has_adapt, spec.is_if)


class NumbaKernel:
    """CPU kernel. Besides the :class:`~spikeforge.backends.spec.Kernel` protocol (forward saves ``h``)
    it offers a lighter pair: :meth:`forward_light` writes only the spikes and :meth:`backward_recompute`
    rebuilds ``h`` chunk by chunk from the saved input, for the built-in surrogates."""

    name = "numba"
    checks_finite = True  # forward raises ValueError on NaN/inf input itself (no separate pass over x)

    @staticmethod
    def can_recompute(surrogate: Any) -> bool:
        return surrogate_kernel_code(surrogate)[0] != SG_CUSTOM

    @staticmethod
    def _run_fwd(x: Tensor, v0: Tensor, i0: Tensor, a0: Tensor, spec: FusedSpec, save: bool) -> tuple[Tensor, ...]:
        p, fl = _consts(spec, x.dtype)
        z = torch.empty_like(x)
        h = torch.empty_like(x) if save else x.new_empty((1, 1))
        a_prev = torch.empty_like(x) if save and spec.has_adapt else x.new_empty((1, 1))
        v_out, i_out, a_out = torch.empty_like(v0), torch.empty_like(v0), torch.empty_like(v0)
        T, M = x.shape
        ok = _run(
            _loops().fwd,
            (
                _np(x),
                _np(v0),
                _np(i0),
                _np(a0),
                _np(z),
                _np(h),
                _np(a_prev),
                save,
                _np(v_out),
                _np(i_out),
                _np(a_out),
                p,
                fl,
            ),
            M,
            _width(T, x.dtype),
        )
        if not ok:
            raise ValueError("x_seq contains NaN or inf; clean it first (e.g. torch.nan_to_num)")
        return z, h, a_prev, v_out, i_out, a_out

    @classmethod
    def forward(cls, x: Tensor, v0: Tensor, i0: Tensor, a0: Tensor, spec: FusedSpec) -> tuple[Tensor, ...]:
        return cls._run_fwd(x, v0, i0, a0, spec, True)

    @classmethod
    def forward_light(cls, x: Tensor, v0: Tensor, i0: Tensor, a0: Tensor, spec: FusedSpec) -> tuple[Tensor, ...]:
        """Returns ``(z, vT, iT, aT)``; nothing is saved for the backward."""
        z, _, _, v_out, i_out, a_out = cls._run_fwd(x, v0, i0, a0, spec, False)
        return z, v_out, i_out, a_out

    @staticmethod
    def forward_pool(
        x: Tensor, v0: Tensor, i0: Tensor, a0: Tensor, spec: FusedSpec, k: int, width: int, is_max: bool = False
    ) -> tuple[Tensor, ...]:
        """The recurrence over ``x [T, M]`` (``M = N * H * W``, images ``width`` wide) followed by ``k x k``
        tiling average (``is_max``: max) pooling of its spikes, which are never stored: ``(pooled [T, M / k**2],
        vT, iT, aT)``, ``pooled`` bit-identical to ``avg_pool2d`` (``max_pool2d``) of the spikes. Nothing is
        saved for the backward (:meth:`backward_recompute` with ``pool=(k, width, is_max)`` rebuilds what it
        needs from ``x``)."""
        p, fl = _consts(spec, x.dtype)
        T, M = x.shape
        pooled = x.new_empty((T, M // (k * k)))
        v_out, i_out, a_out = torch.empty_like(v0), torch.empty_like(v0), torch.empty_like(v0)
        args = (
            _np(x),
            _np(v0),
            _np(i0),
            _np(a0),
            _np(pooled),
            _np(v_out),
            _np(i_out),
            _np(a_out),
            p,
            fl,
            k,
            width,
            is_max,
        )
        if not _run(_pool_loops().fwd_pool, args, M, _pool_width(T, x.dtype, k * width)):
            raise ValueError("x_seq contains NaN or inf; clean it first (e.g. torch.nan_to_num)")
        return (pooled if is_max else pooled.div_(k * k)), v_out, i_out, a_out

    @staticmethod
    def _run_bwd(
        gz: Tensor,
        x: Tensor,
        v0: Tensor,
        i0: Tensor,
        a0: Tensor,
        h: Tensor,
        a_prev: Tensor,
        recompute: bool,
        gT: FinalGrads,
        spec: FusedSpec,
        surrogate: Any,
        pool: tuple[int, int, bool] = (0, 1, False),
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        like = x if recompute else h
        f = np.float32 if like.dtype == torch.float32 else np.float64
        p, fl = _consts(spec, like.dtype)
        code, a, b = surrogate_kernel_code(surrogate)
        s = surrogate.grad(h) if code == SG_CUSTOM else like.new_empty((1, 1))
        # contiguous rows vectorise; an expanded dL/dz that is constant along each row (stride 0) is
        # passed as one value per step instead of being materialised
        gz_const = gz.stride(1) == 0 and pool[0] == 0
        gzc = gz[:, 0].contiguous() if gz_const else like.new_empty(1)
        gz = like.new_empty((1, 1)) if gz_const else gz.contiguous()
        gx = torch.empty_like(like)
        gvT, giT, gaT = gT
        gv, gi, ga = torch.empty_like(gvT), torch.empty_like(gvT), torch.empty_like(gvT)
        T, M = like.shape
        _run(
            _loops().bwd,
            (
                _np(gz),
                _np(gzc),
                gz_const,
                _np(x),
                _np(v0),
                _np(i0),
                _np(a0),
                _np(h),
                _np(s),
                _np(a_prev),
                recompute,
                _np(gvT),
                _np(giT),
                _np(gaT),
                _np(gx),
                _np(gv),
                _np(gi),
                _np(ga),
                p,
                fl,
                spec.detach_reset,
                code,
                f(a),
                f(b),
                pool[0],
                pool[1],
                pool[2],
                f(pool[0] * pool[0] if pool[0] else 1),
            ),
            M,
            _pool_width(T, like.dtype, pool[0] * pool[1]) if pool[0] else _width(T, like.dtype),
        )
        return gx, gv, gi, ga

    @classmethod
    def backward(cls, gz: Tensor, h: Tensor, a_prev: Tensor, gT: FinalGrads, spec: FusedSpec, surrogate: Any) -> Grads:
        e = h.new_empty((1, 1))
        e1 = h.new_empty(1)
        return cls._run_bwd(gz, e, e1, e1, e1, h, a_prev, False, gT, spec, surrogate)

    @classmethod
    def backward_recompute(
        cls,
        gz: Tensor,
        x: Tensor,
        v0: Tensor,
        i0: Tensor,
        a0: Tensor,
        gT: FinalGrads,
        spec: FusedSpec,
        surrogate: Any,
        pool: tuple[int, int, bool] = (0, 1, False),
    ) -> Grads:
        """``pool=(k, width, is_max)``: ``gz [T, M / k**2]`` is the gradient of :meth:`forward_pool`'s output
        (C-contiguous; average pooling divides it by ``k * k`` element by element, as ``avg_pool2d`` does)."""
        e = x.new_empty((1, 1))
        return cls._run_bwd(gz, x, v0, i0, a0, e, e, True, gT, spec, surrogate, pool)
