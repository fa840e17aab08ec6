"""The "spike-driven" property, checked: which products of a model received binary inputs.

Yao et al. (NeurIPS 2023) call a network spike-driven when every matrix product involving an activation
has binary (spike) inputs, so that it becomes sparse additions (and masks). :func:`spike_driven_report`
runs a model once under temporary forward hooks and records, for every Linear and Conv (one activation
operand), every :class:`~spikeforge.transformer.SpikeMatmul` and :class:`~spikeforge.transformer.Hadamard`
(two activation operands) and every :class:`~spikeforge.transformer.TokenSum`, whether each activation operand
was binary (every element 0 or 1) on every call. Nothing is stored on the model; the hooks are removed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch import nn

from spikeforge.transformer._ops import Hadamard
from spikeforge.transformer._ops import SpikeMatmul
from spikeforge.transformer._ops import TokenSum

__all__ = ["ProductRecord", "SpikeDrivenReport", "spike_driven_report", "PRODUCT_TYPES"]

PRODUCT_TYPES: tuple[type[nn.Module], ...] = (
    nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, SpikeMatmul, Hadamard, TokenSum,
)  # fmt: skip


def _binary(x: Tensor) -> bool:
    return bool(((x == 0) | (x == 1)).all())


@dataclass(frozen=True)
class ProductRecord:
    """One product module: its qualified ``name``, ``module_type``, how often it ran (``calls``) and, per
    activation operand, whether it was binary on every call (``binary``; one entry for Linear/Conv/TokenSum,
    two for SpikeMatmul/Hadamard)."""

    name: str
    module_type: str
    calls: int
    binary: tuple[bool, ...]

    @property
    def spike_driven(self) -> bool:
        """Every activation operand was binary."""
        return all(self.binary)


@dataclass(frozen=True)
class SpikeDrivenReport:
    """Per-product records of one run (in first-call order)."""

    products: tuple[ProductRecord, ...]

    @property
    def exceptions(self) -> tuple[str, ...]:
        """Names of the products that saw a non-binary activation operand."""
        return tuple(p.name for p in self.products if not p.spike_driven)

    @property
    def spike_driven(self) -> bool:
        return not self.exceptions

    def table(self) -> str:
        lines = [f"{'product':<34}{'type':<13}{'calls':>6}  binary inputs"]
        for p in self.products:
            lines.append(f"{p.name[:33]:<34}{p.module_type:<13}{p.calls:>6}  {', '.join(map(str, p.binary))}")
        return "\n".join(lines)


def spike_driven_report(model: nn.Module, *args: Any, **kwargs: Any) -> SpikeDrivenReport:
    """Run ``model(*args, **kwargs)`` without gradients and record the binary-ness of every product's inputs.

    Raises ``ValueError`` if no product module ran (nothing was checked)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    seen: dict[str, dict[str, Any]] = {}

    def make(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: tuple[Any, ...]) -> None:
            operands = inputs[:2] if isinstance(module, (SpikeMatmul, Hadamard)) else inputs[:1]
            flags = tuple(_binary(x) for x in operands)
            entry = seen.setdefault(name, {"type": type(module).__name__, "calls": 0, "binary": flags})
            entry["calls"] += 1
            entry["binary"] = tuple(a and b for a, b in zip(entry["binary"], flags, strict=True))

        return hook

    handles = [m.register_forward_pre_hook(make(n)) for n, m in model.named_modules() if isinstance(m, PRODUCT_TYPES)]
    try:
        with torch.no_grad():
            model(*args, **kwargs)
    finally:
        for h in handles:
            h.remove()
    if not seen:
        raise ValueError(
            "no Linear, Conv, SpikeMatmul, Hadamard or TokenSum ran in this model; products written inline "
            "(torch.matmul, *) cannot be seen: use the modules of spikeforge.transformer"
        )
    return SpikeDrivenReport(tuple(ProductRecord(n, e["type"], e["calls"], e["binary"]) for n, e in seen.items()))
