r"""The products and reductions between activations of the spiking transformers, each an ``nn.Module``.

Every product whose two operands are activations (not weights) runs through one of these modules, so that
forward hooks see its inputs: :func:`spikeforge.transformer.spike_driven_report` records whether they were
binary and :func:`spikeforge.energy.count` counts their operations exactly. Shapes are time-major
``[T, B, ...]``; attention uses heads as ``[T, B, H, N, d]`` (``N`` tokens, ``d = D / H`` channels per head).

* :class:`SpikeMatmul`: ``a @ b`` (``[..., N, M] @ [..., M, P] -> [..., N, P]``), times a constant ``scale``.
* :class:`Hadamard`: ``a * b`` with broadcasting (a mask when one operand is binary).
* :class:`TokenSum`: the sum over the token axis (SDSA's column sum), kept as a length-1 axis.
* :class:`TokenMean`: the mean over the token axis (the classifier head).
* :class:`Softmax`: softmax over the last axis (the non-spiking twin's attention).
* :class:`ReLUTwin`: the non-spiking stand-in of a LIF layer: ``forward(x_seq, state=None) -> (relu(x), None)``
  with the LIF's state_dict entry, so a checkpoint of the spiking model loads into the twin and back.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch import nn

from spikeforge.neurons.base import Neuron

__all__ = ["SpikeMatmul", "Hadamard", "TokenSum", "TokenMean", "Softmax", "ReLUTwin", "check_tokens"]


def check_tokens(x: object, name: str, *, dim: int | None = None) -> Tensor:
    """``x`` as a floating-point time-major token tensor ``[T, B, N, D]`` (``D == dim`` when given)."""
    if not isinstance(x, Tensor) or not x.is_floating_point():
        kind = type(x).__name__ if not isinstance(x, Tensor) else str(x.dtype)
        raise TypeError(f"{name} must be a floating-point tensor [T, B, N, D], got {kind}; convert with .float()")
    if x.dim() != 4:
        raise ValueError(
            f"{name} must be time-major tokens [T, B, N, D], got shape {tuple(x.shape)}; "
            "reshape images to tokens with PatchSplit first"
        )
    if dim is not None and x.shape[-1] != dim:
        raise ValueError(f"{name} has {x.shape[-1]} channels in its last dim but the layer expects D={dim}")
    return x


class SpikeMatmul(nn.Module):
    """``scale * (a @ b)`` between two activations with the same leading (batch) dims; ``scale`` is a constant."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = float(scale)

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        if a.dim() < 2 or a.shape[:-2] != b.shape[:-2] or a.shape[-1] != b.shape[-2]:
            raise ValueError(
                f"SpikeMatmul needs [..., N, M] @ [..., M, P] with the same leading dims, got {tuple(a.shape)} @ "
                f"{tuple(b.shape)}; expand or reshape the operands first"
            )
        y = torch.matmul(a, b)
        return y * self.scale if self.scale != 1.0 else y

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


class Hadamard(nn.Module):
    """Element-wise ``a * b`` of two activations (broadcast); with a binary operand it is a mask."""

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        try:
            return a * b
        except RuntimeError as err:
            raise ValueError(f"Hadamard operands do not broadcast: {tuple(a.shape)} * {tuple(b.shape)}") from err


class TokenSum(nn.Module):
    """Sum over the token axis ``dim`` (default ``-2`` of ``[..., N, d]``), kept with length 1."""

    def __init__(self, dim: int = -2) -> None:
        super().__init__()
        self.dim = int(dim)

    def forward(self, x: Tensor) -> Tensor:
        return x.sum(dim=self.dim, keepdim=True)


class TokenMean(nn.Module):
    """Mean over the token axis of ``[T, B, N, C] -> [T, B, C]``."""

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"TokenMean expects [T, B, N, C], got shape {tuple(x.shape)}")
        return x.mean(dim=2)


class Softmax(nn.Module):
    """Softmax over the last axis (the twin's attention weights)."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.softmax(x, dim=-1)


class ReLUTwin(nn.Module):
    """ReLU in place of a spiking ``neuron`` (the non-spiking twin), with the same call signature and
    the same ``state_dict`` entry: the neuron's constant table (``_extra_state``), so checkpoints of the spiking
    model and of its twin load into each other. The neuron itself is not kept; ReLU ignores its constants.
    A neuron with tensor parameters (trainable thresholds, per-neuron time constants) has no twin here."""

    def __init__(self, neuron: Neuron) -> None:
        super().__init__()
        if not isinstance(neuron, Neuron):
            raise TypeError(f"ReLUTwin stands in for a spikeforge Neuron, got {type(neuron).__name__}")
        if any(True for _ in neuron.parameters()) or any(True for _ in neuron.buffers()):
            raise ValueError(
                f"{type(neuron).__name__} has tensor parameters, which the ReLU twin cannot mirror in its "
                "state_dict; use scalar neuron parameters (no learn_tau / learn_threshold / size)"
            )
        self._table = neuron.get_extra_state().clone()

    def forward(self, x_seq: Tensor, state: Any = None) -> tuple[Tensor, None]:
        return torch.relu(x_seq), None

    def get_extra_state(self) -> Tensor:
        return self._table

    def set_extra_state(self, state: Any) -> None:
        """The spiking layer's constants are accepted as they are: ReLU has no use for them."""
