r"""Quantisation-clip-floor-shift (QCFS) activation of Bu et al. (ICLR 2022).

Bu, Fang, Ding, Dai, Yu, Huang, "Optimal ANN-SNN conversion for high-accuracy and ultra-low-latency
spiking neural networks", ICLR 2022. The ANN is trained with

.. math::

    h(x) = \frac{\lambda}{L}\,\mathrm{clip}\!\left(\left\lfloor \frac{x L}{\lambda} + \varphi \right\rfloor, 0, L\right),
    \qquad \varphi = \tfrac12,

in place of ReLU, where ``L`` is the number of quantisation levels and ``lambda > 0`` a trainable
threshold. The floor has a straight-through gradient (``d floor(u) / du := 1``), as in the paper,
so inside ``0 < x < lambda``

.. math::

    \frac{\partial h}{\partial x} = 1, \qquad
    \frac{\partial h}{\partial \lambda} = \frac{q}{L} - \frac{x}{\lambda}, \quad q = \lfloor xL/\lambda + 1/2 \rfloor,

``dh/dlambda = 1`` for ``x >= lambda`` and both derivatives vanish for ``x <= 0``. After training, the
network converts to IF neurons with threshold ``lambda`` and initial membrane ``lambda / 2``
(:func:`spikeforge.conversion.convert` with ``method="qcfs"``). For very low ``T`` on small CNNs,
``convert(..., correction="membrane", correction_steps=T)`` removes the mean unevenness error
(see :mod:`spikeforge.conversion.correct`); the default conversion is the paper's.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torch import nn

__all__ = ["QCFS", "qcfs", "floor_ste"]


class _FloorSTE(torch.autograd.Function):
    @staticmethod
    def forward(x: Tensor) -> Tensor:
        return torch.floor(x)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
        pass

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> Tensor:
        return grad_out


def floor_ste(x: Tensor) -> Tensor:
    """``floor(x)`` in the forward pass; identity (straight-through) gradient in the backward pass."""
    return _FloorSTE.apply(x)


def qcfs(x: Tensor, threshold: Tensor | float, levels: int) -> Tensor:
    r"""Functional QCFS: ``threshold * floor_ste(clamp(x / threshold, 0, 1) * L + 1/2) / L``.

    Clamping ``x / lambda`` to ``[0, 1]`` before the floor equals clipping ``floor(xL/lambda + 1/2)`` to
    ``[0, L]`` (floor is monotone, ``floor(1/2) = 0`` and ``floor(L + 1/2) = L``), and gives the
    derivatives listed in the module docstring.

    Args:
        x: pre-activation, any shape, floating.
        threshold: ``lambda > 0``, a float or a scalar tensor (may require grad).
        levels: ``L >= 1`` quantisation levels.
    Returns:
        The quantised activation, shape and dtype of ``x``; values in ``{0, lambda/L, ..., lambda}``.
    """
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got {type(x).__name__}; convert with x.float()")
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
        raise ValueError(f"levels must be an int >= 1 (the number of quantisation steps L), got {levels!r}")
    lam = threshold if isinstance(threshold, Tensor) else torch.as_tensor(float(threshold))
    lam = lam.to(dtype=x.dtype, device=x.device)
    if not bool(torch.isfinite(lam.detach()).all()) or bool((lam.detach() <= 0).any()):
        raise ValueError(f"threshold lambda must be finite and > 0, got {float(lam.detach().reshape(-1)[0])}")
    y = torch.clamp(x / lam, 0.0, 1.0)
    return lam * floor_ste(y * levels + 0.5) / levels


class QCFS(nn.Module):
    """Drop-in replacement for ``nn.ReLU`` when training an ANN for low-latency conversion.

    Args:
        levels: ``L``, the number of quantisation steps (the paper uses small values such as 4 or 8;
            the SNN run for ``T = L`` steps reproduces one QCFS layer exactly, see :func:`qcfs`).
        threshold: initial ``lambda`` (> 0); the paper's code starts at 8.0.
        learn_threshold: make ``lambda`` an ``nn.Parameter`` (default, as in the paper) or a buffer.

    Shapes: any ``[*]`` -> ``[*]``.
    """

    def __init__(self, levels: int = 8, threshold: float = 8.0, *, learn_threshold: bool = True) -> None:
        super().__init__()
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
            raise ValueError(f"levels must be an int >= 1, got {levels!r}")
        if not math.isfinite(float(threshold)) or float(threshold) <= 0:
            raise ValueError(f"threshold must be finite and > 0, got {threshold!r}")
        self.levels = levels
        t = torch.tensor(float(threshold), dtype=torch.get_default_dtype())
        if learn_threshold:
            self.threshold = nn.Parameter(t)
        else:
            self.register_buffer("threshold", t)

    def forward(self, x: Tensor) -> Tensor:
        return qcfs(x, self.threshold, self.levels)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, threshold={float(self.threshold.detach()):.4g}"
