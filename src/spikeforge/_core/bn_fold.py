r"""The one BatchNorm fold: an eval-mode BatchNorm merged into the Linear/Conv that feeds it.

Used by ANN-to-SNN conversion (:mod:`spikeforge.conversion.fold`) and NIR export
(:mod:`spikeforge.nir._export`), which must agree. With ``s = gamma / sqrt(running_var + eps)`` per output
channel (``gamma = 1``, ``beta = 0`` when ``affine=False``):

.. math:: W' = s \odot W, \qquad b' = s\,(b - \mu) + \beta,

so ``layer'(x) = bn(layer(x))`` in eval mode, exactly in real arithmetic. The constants are computed in
float64 and rounded once to the layer's dtype (in float16/bfloat16 computing ``s`` in the layer's dtype
would round four times and change hundreds of weights by one ulp).
"""

from __future__ import annotations

import copy
from typing import cast

import torch
from torch import Tensor
from torch import nn

__all__ = ["FOLDABLE_LAYERS", "fold_bn"]

#: Layers a BatchNorm directly after can be folded into (output channels/features on weight dim 0).
FOLDABLE_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def fold_bn(layer: nn.Module, bn: nn.modules.batchnorm._BatchNorm) -> nn.Module:
    """Return a copy of ``layer`` (Linear/Conv, bias or not) with the eval-mode BatchNorm ``bn`` folded in.

    The folded layer always has a bias; ``layer`` and ``bn`` are not modified.

    Raises:
        ValueError: ``layer`` is not a Linear/Conv, ``bn`` has no running statistics
            (``track_running_stats=False``), or the channel counts differ.
    """
    if not isinstance(layer, FOLDABLE_LAYERS):
        kinds = ", ".join(c.__name__ for c in FOLDABLE_LAYERS)
        raise ValueError(f"cannot fold BatchNorm into {type(layer).__name__}; it must directly follow one of: {kinds}")
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError(
            "BatchNorm without running statistics (track_running_stats=False) uses batch statistics at "
            "inference and cannot be folded; train with track_running_stats=True"
        )
    weight = cast(Tensor, layer.weight).detach()
    bias = cast("Tensor | None", layer.bias)
    n_out = weight.shape[0]
    if n_out != bn.running_mean.shape[0]:
        raise ValueError(
            f"cannot fold {type(bn).__name__}({bn.running_mean.shape[0]}) into {type(layer).__name__} with "
            f"{n_out} outputs; the BatchNorm must have one feature per output channel"
        )
    w = weight.double()
    b = bias.detach().double() if bias is not None else torch.zeros(n_out, dtype=w.dtype, device=w.device)
    mean, var = bn.running_mean.detach().double(), bn.running_var.detach().double()
    gamma = bn.weight.detach().double() if bn.weight is not None else torch.ones_like(mean)
    beta = bn.bias.detach().double() if bn.bias is not None else torch.zeros_like(mean)
    s = gamma / torch.sqrt(var + bn.eps)  # [C_out]
    fused = copy.deepcopy(layer)
    fused.weight = nn.Parameter((w * s.reshape(-1, *([1] * (w.dim() - 1)))).to(weight.dtype))
    fused.bias = nn.Parameter(((b - mean) * s + beta).to(weight.dtype))
    return fused
