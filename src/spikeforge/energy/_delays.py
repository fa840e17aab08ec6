r"""Operation counts of a :class:`~spikeforge.synapses.DelayedLinear` with integer (rounded) delays.

A delayed Linear does the synaptic work of an ``nn.Linear`` of the same shape, only later: every input spike is
accumulated into each of its ``out_features`` targets when it *arrives*, ``d`` steps after it was sent. Counted
exactly over the run's ``T`` steps (what the dense and streaming paths compute):

* binary input: ``synops = sum_{o, i} #{spikes of channel i sent at t < T - d[o, i]}`` (``d[o, i] = d_i`` per
  axon): a spike whose arrival falls after the last step is still in the delay line and is not counted. With
  zero delays, or no spikes in the last ``max_delay`` steps, this equals the ``nn.Linear`` count
  ``nnz(x) * out_features``.
* non-binary input: ``macs = dense_macs = T * B * in * out``, as ``nn.Linear`` (every output sums ``in``
  products at every step).
* the delay line: ``delay_buffer = (max_delay + 1) * in_features`` values held per sample (storage, like
  ``weights``); per step and sample it is written ``in`` values (the newest input) and read once per distinct
  delay of each input channel (``in`` per axon; ``sum_i |{d[o, i]}_o|`` per synapse): these are added to the
  layer's ``state_writes`` / ``state_reads`` and priced as state memory.

Interpolated (training-mode) delays are a temporal convolution with ``max_delay + 1`` taps per synapse, not an
inference path: :func:`delayed_counts` refuses them (call ``layer.rounded()`` first).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from spikeforge.synapses import DelayedLinear

__all__ = ["delayed_counts"]


def integer_delays(module: DelayedLinear, name: str) -> Tensor:
    """The layer's integer delays (``[in]`` or ``[out, in]``, long); refuses interpolated delays."""
    if not module.integer:
        raise ValueError(
            f"count(): layer {name or '<root>'!r} is a DelayedLinear with interpolated (training) delays, a "
            f"temporal convolution of {module.max_delay + 1} taps per synapse; count the inference model: replace "
            "it with layer.rounded()"
        )
    return module.delays.detach().round().to(torch.long)


def delayed_counts(module: DelayedLinear, name: str, x: Tensor, binary: bool) -> dict[str, Any]:
    """Counts of one forward of ``module`` on ``x [T, B, in]`` (see the module docstring)."""
    d = integer_delays(module, name)
    t, b, n_in = x.shape
    n_out = module.out_features
    dense = t * b * n_in * n_out
    synops = 0
    if binary:
        # sent[k, i]: spikes of channel i sent at steps 0 .. k (summed over the batch); sent[-1] = 0 (none yet)
        per_step = (x != 0).sum(1).to(torch.long)  # [T, in]
        sent = torch.cat([per_step.cumsum(0), per_step.new_zeros((1, n_in))])  # [T + 1, in]
        last = t - 1 - d  # a spike sent at s <= last arrives at s + d <= T - 1
        last = torch.where(last < 0, torch.full_like(last, -1), last)
        cols = torch.arange(n_in, device=x.device)
        if module.per == "axon":
            synops = int(sent[last, cols].sum()) * n_out
        else:
            synops = int(sent[last, cols.expand_as(last)].sum())
    reads = n_in if module.per == "axon" else sum(len(torch.unique(d[:, i])) for i in range(n_in))
    return {
        "dense_macs": dense,
        "synops": synops,
        "macs": 0 if binary else dense,
        "weight_reads": synops if binary else dense,
        "state_writes": t * b * n_in,
        "state_reads": t * b * reads,
        "delay_buffer": (module.max_delay + 1) * n_in,
    }
