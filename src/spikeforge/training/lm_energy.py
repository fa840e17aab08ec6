"""Energy per generated token of a SpikeGPT / RWKV checkpoint: operations counted, then priced on chips.

The model is run on real text (the parallel form, whose logits equal the recurrent form's) with every binary
tensor recorded; the counts are then written as :class:`~spikeforge.energy.LayerCounts` with **one inference =
one token** (``batch_size`` = tokens counted, ``time_steps`` = 1), and priced by
:func:`spikeforge.energy.estimate` on each chip, so ``total_j`` is the energy per token.

Counted per token (``C = d_model``, ``H = ffn_mult * C``, ``V`` the vocabulary):

* **SynOps** where a product's input is binary (spiking model): ``W_v'`` reads the binary hidden layer ``z``,
  ``C nnz(z)``. With ``spike_inputs`` ``"att"``/``"all"`` the time-mixing ``W_r, W_k, W_v`` read
  ``mu * s[t] + (1 - mu) * s[t-1]`` with ``s`` binary, i.e. two event-driven passes with the ``mu``-scaled
  weights: ``3 C (nnz(s[t]) + nnz(s[t-1]))``; with ``"ffn"``/``"all"`` the channel-mixing ``W_k', W_r'`` likewise
  ``(H + C)(nnz + nnz')``. The non-spiking twin does all of these as MACs (``3 C^2``, ``(H + C) C``, ``H C``).
* **MACs** where the input is real: ``W_o`` (``C^2``), the head (``C V``), the sigmoid gates' products (``2 C``),
  layer norms (``2 C`` each: scale and shift), the projections of real layer-norm outputs (``3 C^2`` and
  ``(H + C) C``) with their token-shift mixes (``2 C`` per mixed input) and the twin's ``relu^2`` (``H``).
* **WKV, counted analytically** from the recurrent form (:func:`~spikeforge.lm.wkv.wkv_step`): per channel 7
  multiplies (MACs) and 15 other element-wise operations (adds, subtractions, maxima, 4 ``exp`` and 1 division,
  all priced as one add each: optimistic for ``exp`` and the division); its state ``aa, bb, pp`` (3 C) and the two
  token-shift states (2 C) are read and written once per token. Layer norms also count ``3 C`` adds, the residual
  ``2 C`` adds per block, sigmoids one add each.
* **Neuron updates** of the spiking neurons that are used: ``SN_k`` (``H``) and, per ``spike_inputs``, ``SN_a``
  and ``SN_f`` (``C`` each), with their spikes; the binary embedding's ``C`` compares.

Weight reads: one per SynOp or MAC (no reuse), as in :mod:`spikeforge.energy.counts`.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from spikeforge.energy import CostModel
from spikeforge.energy import EnergySummary
from spikeforge.energy import LayerCounts
from spikeforge.energy import OpCounts
from spikeforge.energy import cost_models
from spikeforge.energy import estimate
from spikeforge.lm import SpikeGPT

__all__ = ["lm_energy", "lm_counts", "WKV_MACS", "WKV_OTHER"]

WKV_MACS = 7
WKV_OTHER = 15


def _nnz(x: Tensor) -> int:
    return int(torch.count_nonzero(x))


def _layer(name: str, kind: str, n: int, **counts: int) -> LayerCounts:
    fields: dict[str, Any] = {"calls": n, **counts}
    fields.setdefault("weight_reads", counts.get("synops", 0) + counts.get("macs", 0))
    return LayerCounts(name=name, kind=kind, module_type="SpikeGPT", **fields)


@torch.no_grad()
def lm_counts(model: SpikeGPT, ids: Tensor, *, context: int = 128, streams: int = 8) -> OpCounts:
    """Operation counts of ``model`` reading ``ids`` (``[N]`` int64), one inference per token (module docstring)."""
    cfg = model.config
    c, h, v = cfg.d_model, cfg.d_model * cfg.ffn_mult, cfg.vocab_size
    streams = max(1, min(streams, len(ids) // 2))
    x = ids[: (len(ids) // streams) * streams].view(streams, -1).t().contiguous()
    n = x.numel()
    if n < 1:
        raise ValueError("lm_counts needs at least one token")
    spk: dict[str, int] = {}
    state = None
    model.eval()
    for s in range(0, x.shape[0], context):
        rec: dict[str, Tensor] = {}
        _, state = model(x[s : s + context], state, record=rec)
        for key, t in rec.items():
            spk[key] = spk.get(key, 0) + _nnz(t)
    layers = [_layer("embedding", "neuron", n, adds=c * n if cfg.spiking else 0, weight_reads=c * n,
                     spikes=spk["embedding"] if cfg.spiking else 0)]  # fmt: skip
    for i in range(cfg.n_layers):
        b = f"blocks.{i}"
        att_events, ffn_events = spk[f"{b}.att_in"] + spk[f"{b}.att_prev"], spk[f"{b}.ffn_in"] + spk[f"{b}.ffn_prev"]
        att_spikes = cfg.spiking and cfg.spike_inputs in ("att", "all")
        ffn_spikes = cfg.spiking and cfg.spike_inputs in ("ffn", "all")
        used = [("sn_att", c, "att_in")] if att_spikes else []
        used += [("sn_ffn", c, "ffn_in")] if ffn_spikes else []
        used += [("sn_key", h, "ffn_hidden")] if cfg.spiking else []
        for name, size, key in used:
            layers.append(_layer(f"{b}.{name}", "neuron", n, neuron_updates=size * n, active_updates=size * n,
                                 spikes=spk[f"{b}.{key}"], state_reads=size * n, state_writes=size * n))  # fmt: skip
        if att_spikes:
            layers.append(_layer(f"{b}.att_rkv", "linear", n, synops=3 * c * att_events, dense_macs=3 * c * c * n))
        else:
            layers.append(_layer(f"{b}.att_rkv", "linear", n, macs=3 * c * c * n, dense_macs=3 * c * c * n))
        if ffn_spikes:
            layers.append(
                _layer(f"{b}.ffn_key_receptance", "linear", n, synops=(h + c) * ffn_events, dense_macs=(h + c) * c * n)
            )
        else:
            layers.append(
                _layer(f"{b}.ffn_key_receptance", "linear", n, macs=(h + c) * c * n, dense_macs=(h + c) * c * n)
            )
        if cfg.spiking:
            layers.append(
                _layer(f"{b}.ffn_value", "linear", n, synops=c * spk[f"{b}.ffn_hidden"], dense_macs=h * c * n)
            )
        else:
            layers.append(_layer(f"{b}.ffn_value", "linear", n, macs=(h * c + h) * n, dense_macs=(h * c + h) * n))
        mixes = 3 * (not att_spikes) + 2 * (not ffn_spikes)  # mixed inputs of real vectors, 2 products each
        if mixes:
            layers.append(_layer(f"{b}.token_shift_mix", "linear", n, macs=2 * c * mixes * n,
                                 dense_macs=2 * c * mixes * n, weight_reads=0))  # fmt: skip
        layers += [
            _layer(f"{b}.att_output", "linear", n, macs=c * c * n, dense_macs=c * c * n),
            _layer(f"{b}.wkv", "neuron", n, macs=WKV_MACS * c * n, dense_macs=WKV_MACS * c * n,
                   adds=WKV_OTHER * c * n, weight_reads=0, state_reads=5 * c * n, state_writes=5 * c * n),
            _layer(f"{b}.norms_gates_residual", "linear", n, macs=(2 * 2 * c + 2 * c) * n,
                   dense_macs=(2 * 2 * c + 2 * c) * n, adds=(2 * 3 * c + 2 * c + 2 * c) * n, weight_reads=0),
        ]  # fmt: skip
    layers.append(_layer("head", "linear", n, macs=(c * v + 2 * c) * n, dense_macs=(c * v + 2 * c) * n, adds=3 * c * n))
    return OpCounts(layers=tuple(layers), time_steps=1, batch_size=n, bytes_per_element=4)


def lm_energy(
    model: SpikeGPT,
    ids: Tensor,
    hardware: Sequence[str] | str,
    *,
    extra: Mapping[str, CostModel] | None = None,
    context: int = 128,
    meta: Mapping[str, Any] | None = None,
) -> EnergySummary:
    """Counts of :func:`lm_counts` priced on each chip of ``hardware``: ``reports[chip].total_j`` is J per token."""
    chips = cost_models(hardware, extra)
    counts = lm_counts(model, ids, context=context)
    reports = {chip.name: estimate(counts, chip, ann_baselines=(), extra_models=extra) for chip in chips}
    info = {"model": "spikegpt" if model.config.spiking else "rwkv (non-spiking twin)", "inference": "one token",
            "tokens_counted": counts.batch_size, **dict(meta or {})}  # fmt: skip
    return EnergySummary(counts=counts, reports=reports, meta=info)
