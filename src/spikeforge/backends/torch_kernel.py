"""Fused kernel in plain eager PyTorch: one autograd node for the whole sequence, hand-written backward.

Works on any device and dtype. Reverse-time recurrence (per element; ``s = surrogate.grad(h)``, carries
``gv = dL/dv[t]``, ``ga = dL/da[t]``, ``gi`` = the synaptic-current carry)::

    Gz   = dL/dz[t] + (1 - rho) ga                                  (has_adapt)
           + gv (v_reset - v')          if reset = to_value and the reset is not detached
           - gv (th - v_reset)          if reset = subtract and the reset is not detached
    gh   = Gz s[t]
    gv'  = gh + gv (1 - z[t])  (to_value)   |   gh + gv  (subtract, none)
    gth  = -gh - gv z[t]  (subtract)        |   -gh      (otherwise)            (has_adapt)
    ga  <- rho ga + adapt gth;  gv <- beta gv' (IF: gv');  gu = gain gv'
    gi_t = gu + gi;  dL/dx[t] = gi_t;  gi <- alpha gi_t                      (has_syn; else dL/dx[t] = gu)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from spikeforge._core.codes import SUBTRACT
from spikeforge._core.codes import TO_VALUE
from spikeforge._core.spec import FusedSpec
from spikeforge.backends.spec import FinalGrads
from spikeforge.backends.spec import Grads

__all__ = ["TorchKernel"]


class TorchKernel:
    name = "torch"
    checks_finite = False

    @staticmethod
    @torch.no_grad()
    def forward(x: Tensor, v0: Tensor, i0: Tensor, a0: Tensor, spec: FusedSpec) -> tuple[Tensor, ...]:
        z = torch.empty_like(x)
        h = torch.empty_like(x)
        a_prev = torch.empty_like(x) if spec.has_adapt else x.new_empty(0)
        v, i, a = v0.clone(), i0.clone(), a0.clone()
        for t in range(x.shape[0]):
            u = x[t]
            if spec.has_syn:
                i = spec.alpha * i + u
                u = i
            if spec.is_if:
                vp = v + spec.gain * u
            else:
                vp = spec.v_rest + spec.beta * (v - spec.v_rest) + spec.gain * u
            if spec.has_adapt:
                a_prev[t] = a
                th: Tensor | float = spec.v_th + spec.adapt * a
            else:
                th = spec.v_th
            ht = vp - th
            zt = (ht > 0).to(x.dtype)
            if spec.reset == TO_VALUE:
                v = vp * (1 - zt) + zt * spec.v_reset
            elif spec.reset == SUBTRACT:
                v = vp - zt * (th - spec.v_reset)
            else:
                v = vp
            if spec.has_adapt:
                a = spec.rho * a + (1 - spec.rho) * zt
            h[t] = ht
            z[t] = zt
        return z, h, a_prev, v, i, a

    @staticmethod
    @torch.no_grad()
    def backward(gz: Tensor, h: Tensor, a_prev: Tensor, gT: FinalGrads, spec: FusedSpec, surrogate: Any) -> Grads:
        s = surrogate.grad(h)
        gx = torch.empty_like(h)
        gv, gi, ga = (g.clone() for g in gT)
        beta = 1.0 if spec.is_if else spec.beta
        for t in range(h.shape[0] - 1, -1, -1):
            ht = h[t]
            zt = (ht > 0).to(h.dtype)
            th: Tensor | float = spec.v_th + spec.adapt * a_prev[t] if spec.has_adapt else spec.v_th
            big_gz = gz[t]
            if spec.has_adapt:
                big_gz = big_gz + (1 - spec.rho) * ga
            if not spec.detach_reset:
                if spec.reset == TO_VALUE:
                    big_gz = big_gz + gv * (spec.v_reset - (ht + th))
                elif spec.reset == SUBTRACT:
                    big_gz = big_gz - gv * (th - spec.v_reset)
            gh = big_gz * s[t]
            gvp = gh + gv * (1 - zt) if spec.reset == TO_VALUE else gh + gv
            if spec.has_adapt:
                gth = -gh - gv * zt if spec.reset == SUBTRACT else -gh
                ga = spec.rho * ga + spec.adapt * gth
            gv = beta * gvp
            gu = spec.gain * gvp
            if spec.has_syn:
                gi_t = gu + gi
                gx[t] = gi_t
                gi = spec.alpha * gi_t
            else:
                gx[t] = gu
        return gx, gv, gi, ga
