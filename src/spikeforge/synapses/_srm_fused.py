"""The SRM layer by the fused Numba loops (:mod:`spikeforge.synapses._srm_numba`) as autograd functions.

:func:`fused_membrane`: ``u = c_s (alpha filter of x) + refractory response`` in one pass over time, backward
``dL/dx = c_s H^T dL/du`` (the transposed, time-reversed PSP kernel, by the reverse recurrence); the spikes are
then taken in torch with any surrogate. :func:`fused_srm`: also the spikes, and for SLAYER's
:class:`~spikeforge.synapses.SlayerPDF` the whole backward (surrogate and reverse filter) in one pass. No gradient
flows through the refractory response (SLAYER). CPU tensors, float32/float64, a carried state without gradient.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["numba_ready", "fused_membrane", "fused_srm"]


@cache
def numba_ready() -> bool:
    """Whether Numba is installed (``pip install 'spikeforge[fast]'``)."""
    return importlib.util.find_spec("numba") is not None


def _loops() -> Any:
    from spikeforge.synapses import _srm_numba

    return _srm_numba


def _forward(x: Tensor, s0: tuple[Tensor, ...], consts: tuple[float, ...], spikes: bool) -> tuple[Any, ...]:
    a_s, c_s, a_r, c_r, v_th = consts
    t = x.shape[0]
    xn = x.detach().contiguous().reshape(t, -1).numpy()
    kind = xn.dtype.type
    ps, qs, pr, qr = (s.detach().reshape(-1).numpy().copy() for s in s0)
    u = np.empty_like(xn)
    z = np.empty_like(xn) if spikes else np.empty((1, xn.shape[1]), xn.dtype)
    _loops().membrane(xn, ps, qs, pr, qr, u, z, *(kind(c) for c in (a_s, c_s, a_r, c_r, v_th, 0.0, 1.0)))
    shape = s0[0].shape
    return (torch.from_numpy(u).reshape(x.shape), torch.from_numpy(z).reshape(x.shape) if spikes else None,
            torch.from_numpy(pr).reshape(shape), torch.from_numpy(qr).reshape(shape))  # fmt: skip


class _FusedMembrane(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, s0: tuple[Tensor, ...], consts: tuple[float, ...]) -> tuple[Tensor, ...]:
        u, _, pr, qr = _forward(x, s0, consts, spikes=False)
        ctx.a_s, ctx.c_s = consts[0], consts[1]
        ctx.mark_non_differentiable(pr, qr)
        return u, pr, qr

    @staticmethod
    def backward(ctx: Any, gu: Tensor, *unused: Any) -> tuple[Tensor, None, None]:
        t = gu.shape[0]
        g = gu.detach().contiguous().reshape(t, -1).numpy()
        kind = g.dtype.type
        out = np.empty_like(g)
        p, q = np.zeros(g.shape[1], g.dtype), np.zeros(g.shape[1], g.dtype)
        _loops().reverse_scan(g, out, p, q, kind(ctx.a_s), kind(ctx.c_s))
        return torch.from_numpy(out).reshape(gu.shape), None, None


class _FusedSRM(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, x: Tensor, s0: tuple[Tensor, ...], consts: tuple[float, ...], pdf: tuple[float, float]
    ) -> tuple[Tensor, ...]:
        u, z, pr, qr = _forward(x, s0, consts, spikes=True)
        ctx.consts, ctx.pdf = consts, pdf
        ctx.save_for_backward(u)
        ctx.mark_non_differentiable(pr, qr)
        return z, u, pr, qr

    @staticmethod
    def backward(ctx: Any, gz: Tensor | None, gu: Tensor | None, *unused: Any) -> tuple[Any, ...]:
        (u,) = ctx.saved_tensors
        t = u.shape[0]
        un = u.reshape(t, -1).numpy()
        kind = un.dtype.type

        def flat(g: Tensor | None) -> Any:
            return np.zeros((1, 1), un.dtype) if g is None else g.detach().contiguous().reshape(t, -1).numpy()

        gzn, gun = flat(gz), flat(gu)
        if gz is None:  # only the membrane was used: delta = gu
            gzn, gun = gun, gzn
            alpha, beta, has_gu = 0.0, 0.0, False
        else:
            alpha, beta = ctx.pdf
            has_gu = gu is not None
        out = np.empty_like(un)
        p, q = np.zeros(un.shape[1], un.dtype), np.zeros(un.shape[1], un.dtype)
        a_s, c_s, _, _, v_th = ctx.consts
        if gz is None:
            _loops().reverse_scan(gzn, out, p, q, kind(a_s), kind(c_s))
        else:
            _loops().reverse_scan_pdf(
                gzn, gun, has_gu, un, out, p, q, *(kind(c) for c in (a_s, c_s, v_th, alpha, beta))
            )
        return torch.from_numpy(out).reshape(u.shape), None, None, None


def fused_membrane(x: Tensor, s0: tuple[Tensor, ...], consts: tuple[float, ...]) -> tuple[Tensor, Tensor, Tensor]:
    """``(u [T, ...], pr_T, qr_T)`` from input currents ``x`` and the state ``(ps, qs, pr, qr)``;
    ``consts = (a_s, c_s, a_r, c_r, v_th)``."""
    u, pr, qr = _FusedMembrane.apply(x, tuple(s0), consts)
    return u, pr, qr


def fused_srm(
    x: Tensor, s0: tuple[Tensor, ...], consts: tuple[float, ...], pdf: tuple[float, float]
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(z, u, pr_T, qr_T)``: spikes and membrane with SLAYER's PDF surrogate ``pdf = (alpha, beta)``."""
    z, u, pr, qr = _FusedSRM.apply(x, tuple(s0), consts, pdf)
    return z, u, pr, qr
