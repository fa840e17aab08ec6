"""Evaluation: accuracy, loss and spiking activity of a classifier on a whole split."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from spikeforge.layers import record
from spikeforge.neurons import Neuron
from spikeforge.training.distributed import DistContext
from spikeforge.training.distributed import all_reduce_sum
from spikeforge.training.models import SNNClassifier

__all__ = ["EVAL_SEED", "evaluate_tensors", "spiking_layer_names"]

#: Seed of the generator used by random encoders during evaluation when none is given.
EVAL_SEED = 0


def spiking_layer_names(model: SNNClassifier) -> list[str]:
    """Qualified names (inside ``model.network``) of the spiking neuron layers, in order."""
    return [n for n, m in model.network.named_modules() if isinstance(m, Neuron) and m.spiking]


@torch.no_grad()
def evaluate_tensors(
    model: SNNClassifier,
    x: Tensor,
    y: Tensor,
    *,
    batch_size: int,
    device: torch.device,
    ctx: DistContext | None = None,
    generator: torch.Generator | None = None,
    activity: bool = True,
) -> dict[str, Any]:
    """Evaluate on ``x [N, ...]``, ``y [N]`` (CPU tensors), batch by batch, in eval mode.

    Every batch is encoded whole on the CPU with ``generator`` (a fresh one seeded :data:`EVAL_SEED`
    if None); under data parallelism each rank then runs its strided share and the sums are reduced,
    so the numbers do not depend on the number of ranks.

    ``activity=False`` skips the spike counts: the network then runs without recording hooks, so its fused
    kernels (e.g. a neuron fused with the pooling after it) stay in use and no full-size spike tensor is kept;
    accuracy and loss are the same (the fused paths are bit-identical to the recorded ones).

    Returns:
        ``accuracy`` (fraction), ``loss`` (mean cross-entropy of the decoded logits), ``firing_rates``
        (spiking layer name -> mean spikes per neuron per time step; ``{}`` without ``activity``),
        ``spikes_per_sample`` (all spiking layers, all steps; ``None`` without ``activity``), ``n`` (samples).
    """
    if not isinstance(model, SNNClassifier):
        raise TypeError(f"model must be a spikeforge.models.SNNClassifier, got {type(model).__name__}")
    n = int(y.shape[0])
    if n == 0:
        raise ValueError("cannot evaluate on an empty dataset")
    rank, world = (ctx.rank, ctx.world_size) if ctx is not None else (0, 1)
    gen = generator if generator is not None else torch.Generator().manual_seed(EVAL_SEED)
    names = spiking_layer_names(model) if activity else []
    was_training = model.training
    model.eval()
    # sums: loss, correct, count, then spikes and neuron-steps per spiking layer
    sums = torch.zeros(3 + 2 * len(names), dtype=torch.float64)
    try:
        for start in range(0, n, batch_size):
            x_seq = model.encode(x[start : start + batch_size], generator=gen)  # [T, b, ...]
            yb = y[start : start + batch_size]
            x_seq, yb = x_seq[:, rank::world].to(device), yb[rank::world].to(device)
            if yb.numel() == 0:
                continue
            if activity:
                (out_seq, _), rec = record(model.network, x_seq)
            else:
                out_seq, _ = model.network(x_seq)
            logits = model.decode(out_seq)  # [b, C]
            sums[0] += float(F.cross_entropy(logits, yb, reduction="sum"))
            sums[1] += float((logits.argmax(dim=1) == yb).sum())
            sums[2] += yb.numel()
            for i, name in enumerate(names):
                z = rec[name]  # [T, b, ...] spikes
                sums[3 + 2 * i] += float(z.sum(dtype=torch.float64))
                sums[4 + 2 * i] += z.numel()
    finally:
        model.train(was_training)
    if ctx is not None:
        sums = all_reduce_sum(sums, ctx)
    count = float(sums[2])
    rates = {name: float(sums[3 + 2 * i] / sums[4 + 2 * i]) for i, name in enumerate(names)}
    total_spikes = float(sum(sums[3 + 2 * i] for i in range(len(names))))
    return {
        "accuracy": float(sums[1]) / count,
        "loss": float(sums[0]) / count,
        "firing_rates": rates,
        "spikes_per_sample": total_spikes / count if activity else None,
        "n": int(count),
    }
