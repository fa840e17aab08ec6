"""Statistics of spiking activity that the training summary and the plots share: one definition each.

The firing rate of a neuron is its spikes divided by (time steps x samples); the mean firing rate of a layer is
the mean of its neurons' rates (its spikes / (neurons x steps x samples)). :func:`firing_rates` measures them on a
whole split, encoded batch by batch as :func:`spikeforge.training.evaluate.evaluate_tensors` does (same
generator seed, same batches), so ``spikeforge train``'s summary, its firing-rate plot and ``spikeforge
evaluate`` report the same numbers.
"""

from __future__ import annotations

from typing import Any
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

__all__ = ["neuron_rates", "mean_rate", "FiringRates", "firing_rates"]


def neuron_rates(spikes: Tensor) -> Tensor:
    """Firing rate of every neuron, ``float64 [N]``, from spikes ``[T, B, ...]`` (non-zero = a spike)."""
    if spikes.dim() < 2 or spikes.numel() == 0:
        raise ValueError(f"spikes must be a non-empty [T, B, ...] tensor, got shape {tuple(spikes.shape)}")
    flat = (spikes.reshape(spikes.shape[0] * spikes.shape[1], -1) != 0).to(torch.float64)
    return flat.mean(dim=0).cpu()


def mean_rate(rates: Tensor | np.ndarray) -> float:
    """The mean firing rate of a layer from its neurons' rates (:func:`neuron_rates`)."""
    return float(np.asarray(rates.cpu() if isinstance(rates, Tensor) else rates, dtype=np.float64).mean())


class FiringRates(NamedTuple):
    """Per-neuron firing rates of every spiking layer (``float64 [N]``), measured on ``n_samples`` samples."""

    per_neuron: dict[str, Tensor]
    n_samples: int

    def means(self) -> dict[str, float]:
        """Layer name -> its mean firing rate (:func:`mean_rate`): what the summary reports."""
        return {name: mean_rate(r) for name, r in self.per_neuron.items()}


@torch.no_grad()
def firing_rates(
    model: Any, x: Tensor, *, batch_size: int = 1000, generator: torch.Generator | None = None
) -> FiringRates:
    """Firing rates of ``model`` (an SNN classifier) on all of ``x [N, ...]``, in eval mode.

    Each batch is encoded on the CPU with ``generator`` (default: a fresh one seeded
    :data:`~spikeforge.training.evaluate.EVAL_SEED`, as evaluation does) and run where the model's parameters are.
    """
    from spikeforge.layers import record
    from spikeforge.training.evaluate import EVAL_SEED
    from spikeforge.training.evaluate import spiking_layer_names

    n = int(x.shape[0])
    if n == 0:
        raise ValueError("x is empty; give at least one sample")
    gen = generator if generator is not None else torch.Generator().manual_seed(EVAL_SEED)
    names = spiking_layer_names(model)
    device = next(iter(model.parameters()), torch.empty(0)).device
    sums: dict[str, Tensor] = {}
    was_training = model.training
    model.eval()
    try:
        for start in range(0, n, batch_size):
            x_seq = model.encode(x[start : start + batch_size].cpu(), generator=gen).to(device)
            _, rec = record(model.network, x_seq)
            for name in names:
                z = rec[name]
                weighted = neuron_rates(z) * z.shape[1]  # rates of this batch, weighted by its samples
                sums[name] = sums[name] + weighted if name in sums else weighted
    finally:
        model.train(was_training)
    return FiringRates({name: s / n for name, s in sums.items()}, n)
