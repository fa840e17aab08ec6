"""The fused recurrence as ordinary differentiable torch ops: what the fused autograd node runs when autograd
records its backward (``create_graph=True``), so that second-order gradients are the reference loop's."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from spikeforge._core.codes import RESET_NAMES
from spikeforge._core.reset import apply_reset
from spikeforge._core.spec import FusedSpec
from spikeforge._core.spike import spike

__all__ = ["differentiable_run"]


def differentiable_run(
    x: Tensor, v0: Tensor, i0: Tensor, a0: Tensor, spec: FusedSpec, surrogate: Any
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The recurrence as ordinary differentiable torch ops, step for step as the reference step functions
    (:func:`~spikeforge._core.spike.spike` for the spikes, the reset by
    :func:`~spikeforge._core.reset.apply_reset`): ``(z, v_T, i_T, a_T)`` with a full autograd graph.

    The fused backward runs this when autograd records the backward itself (``create_graph=True``, e.g. a
    gradient penalty), so second-order gradients are the reference loop's, not those of a hand-written
    backward that autograd cannot differentiate.
    """
    zs = []
    v, i, a = v0, i0, a0
    for t in range(x.shape[0]):
        u = x[t]
        if spec.has_syn:
            i = spec.alpha * i + u
            u = i
        vp = v + spec.gain * u if spec.is_if else spec.v_rest + spec.beta * (v - spec.v_rest) + spec.gain * u
        th: Tensor | float = spec.v_th + spec.adapt * a if spec.has_adapt else spec.v_th
        z = spike(vp - th, surrogate)
        zr = z.detach() if spec.detach_reset else z
        v = apply_reset(vp, zr, th, spec.v_reset, RESET_NAMES[spec.reset])
        if spec.has_adapt:
            a = spec.rho * a + (1 - spec.rho) * z
        zs.append(z)
    z_seq = torch.stack(zs) if zs else torch.empty_like(x)
    return z_seq, v, i, a
