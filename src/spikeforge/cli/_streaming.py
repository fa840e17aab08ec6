"""``spikeforge evaluate CHECKPOINT --engine streaming``: the checkpoint's network run sample by sample (batch 1)
through the event-driven :class:`~spikeforge.events.pipeline.StreamingPipeline`, side by side with the dense
model at batch 1 on the same encoded samples, in one process.

Reported: accuracy of both paths and how many predictions differ; per sample the spikes, the SynOps and neuron
updates the engine executed and their energy on the ``cmos45`` and ``loihi`` cost models
(:mod:`spikeforge.energy`): ``synops * (e_synop + bytes_per_weight * e_mem_byte) + updates * (e_neuron_active +
2 * bytes_per_state * e_mem_byte) + spikes * e_spike`` (one weight read per SynOp, one state read and write per
update, as :mod:`spikeforge.energy.counts` counts them); and the mean wall time per sample of each path (the first
sample, which compiles the engine's loops, is run once beforehand and not timed; each path runs over all samples in
a pass of its own, the inputs encoded again with the same seed and not timed).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import torch

__all__ = ["CHIPS", "streaming_evaluation", "streaming_rows", "energy_per_sample"]

#: The cost models every streaming evaluation prices its operations on.
CHIPS = ("cmos45", "loihi")


def energy_per_sample(synops: float, updates: float, spikes: float, chip: str) -> float:
    """Joules of ``synops`` SynOps, ``updates`` neuron updates and ``spikes`` spikes on an event-driven chip."""
    from spikeforge.energy import get_cost_model

    cm = get_cost_model(chip)
    mem = cm.e_mem_byte
    per_synop = (cm.e_synop or cm.e_add) + cm.bytes_per_weight * mem
    return synops * per_synop + updates * (cm.e_neuron_active + 2 * cm.bytes_per_state * mem) + spikes * cm.e_spike


def _split(config: Any, split: str, data_dir: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    """One split of the run's dataset (only that split is loaded when the dataset has it)."""
    from spikeforge.data import dataset_info
    from spikeforge.data import get_dataset
    from spikeforge.training.splits import load_splits

    if split == "test" or (split == "validation" and "validation" in dataset_info(config.dataset).split_names):
        ds = get_dataset(config.dataset, split, data_dir=config.data_dir if data_dir is None else data_dir)
        return ds.x, ds.y
    return load_splits(config, data_dir=data_dir)[split]


def _pipeline(model: Any, step_shape: tuple[int, ...], where: str) -> Any:
    from spikeforge.events.pipeline import StreamingPipeline

    try:
        return StreamingPipeline(model.network, step_shape)
    except (TypeError, ValueError) as err:
        raise ValueError(f"--engine streaming cannot run the network of {where}: {err}") from None


def streaming_evaluation(
    path: os.PathLike[str] | str, split: str = "test", *, data_dir: str | None = None, limit: int | None = None
) -> dict[str, Any]:
    """Evaluate the checkpoint at ``path`` on the first ``limit`` samples of ``split`` with the streaming
    pipeline and densely (both at batch 1); see the module docstring for what is returned."""
    from spikeforge.layers import record
    from spikeforge.training.evaluate import EVAL_SEED
    from spikeforge.training.evaluate import spiking_layer_names
    from spikeforge.training.saved import check_input_shape
    from spikeforge.training.saved import load_checkpoint
    from spikeforge.training.threads import threads_for
    from spikeforge.training.threads import use_threads

    where = f"checkpoint {str(path)!r}"
    model, config, _ = load_checkpoint(path)
    model.eval()
    x, y = _split(config, split, data_dir)
    check_input_shape(x, config, f"evaluating {where}")
    n = len(y) if limit is None else min(int(limit), len(y))
    if n < 1:
        raise ValueError(f"the {split} split of {config.dataset} is empty; choose another --split")
    names = spiking_layer_names(model)
    sums = {"engine_correct": 0, "dense_correct": 0, "disagree": 0, "spikes": 0, "dense_spikes": 0.0}
    sums |= {"synops": 0, "neuron_updates": 0, "engine_s": 0.0, "dense_s": 0.0, "max_logit_diff": 0.0}
    with use_threads(threads_for(config).threads), torch.no_grad():
        first = model.encode(x[:1], generator=torch.Generator().manual_seed(EVAL_SEED))
        pipe = _pipeline(model, tuple(int(s) for s in first.shape[2:]), where)
        pipe.run(first)  # compile the engine loops (not timed)
        model(first, encoded=True)

        def inputs() -> Iterator[torch.Tensor]:  # [T, 1, ...] per sample: the same draws on every pass
            gen = torch.Generator().manual_seed(EVAL_SEED)
            for i in range(n):
                yield model.encode(x[i : i + 1], generator=gen)

        # Each path in a pass of its own (encoding untimed), so neither runs with the other's data in the caches
        logits_e, logits_d = [], []
        for x_seq in inputs():
            t0 = time.perf_counter()
            res = pipe.run(x_seq)
            logits_e.append(model.decode(res.out))
            sums["engine_s"] += time.perf_counter() - t0
            sums["spikes"] += res.total("spikes")
            sums["synops"] += res.total("synops")
            sums["neuron_updates"] += res.total("neuron_updates")
        for x_seq in inputs():
            t0 = time.perf_counter()
            logits_d.append(model(x_seq, encoded=True))
            sums["dense_s"] += time.perf_counter() - t0
        for i, x_seq in enumerate(inputs()):
            _, rec = record(model.network, x_seq)  # untimed: the dense path's spikes
            sums["dense_spikes"] += float(sum(rec[k].sum(dtype=torch.float64) for k in names))
            pred_e, pred_d, label = int(logits_e[i].argmax(1)), int(logits_d[i].argmax(1)), int(y[i])
            sums["engine_correct"] += pred_e == label
            sums["dense_correct"] += pred_d == label
            sums["disagree"] += pred_e != pred_d
            diff = float((logits_e[i].to(torch.float64) - logits_d[i].to(torch.float64)).abs().max())
            sums["max_logit_diff"] = max(sums["max_logit_diff"], diff)
    syn, upd, spk = (sums[k] / n for k in ("synops", "neuron_updates", "spikes"))
    return {
        "engine": "streaming",
        "stages": list(pipe.kinds),
        "n": n,
        "accuracy": sums["engine_correct"] / n,
        "dense_accuracy": sums["dense_correct"] / n,
        "disagreements": int(sums["disagree"]),
        "max_logit_diff": sums["max_logit_diff"],
        "spikes_per_sample": spk,
        "dense_spikes_per_sample": sums["dense_spikes"] / n,
        "synops_per_sample": syn,
        "neuron_updates_per_sample": upd,
        "energy_j_per_sample": {chip: energy_per_sample(syn, upd, spk, chip) for chip in CHIPS},
        "engine_ms_per_sample": 1e3 * sums["engine_s"] / n,
        "dense_ms_per_sample": 1e3 * sums["dense_s"] / n,
        "threads": torch.get_num_threads(),
        "loadavg": _loadavg(),
    }


def _loadavg() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:  # not on this platform
        return None


def streaming_rows(m: dict[str, Any]) -> list[tuple[str, Any]]:
    """Table rows of a :func:`streaming_evaluation` result."""
    from spikeforge.cli._common import pct

    rows: list[tuple[str, Any]] = [
        ("samples (batch 1)", m["n"]),
        ("pipeline", " -> ".join(m["stages"])),
        ("accuracy (streaming)", pct(m["accuracy"])),
        ("accuracy (dense)", pct(m["dense_accuracy"])),
        ("disagreeing predictions", m["disagreements"]),
        ("max |logit difference|", f"{m['max_logit_diff']:.3g}"),
        ("spikes / sample (streaming)", f"{m['spikes_per_sample']:.1f}"),
        ("spikes / sample (dense)", f"{m['dense_spikes_per_sample']:.1f}"),
        ("SynOps / sample", f"{m['synops_per_sample']:.0f}"),
        ("neuron updates / sample", f"{m['neuron_updates_per_sample']:.0f}"),
    ]
    rows += [(f"energy / sample ({chip})", f"{e * 1e6:.3f} uJ") for chip, e in m["energy_j_per_sample"].items()]
    rows += [
        ("time / sample (streaming)", f"{m['engine_ms_per_sample']:.3f} ms"),
        ("time / sample (dense)", f"{m['dense_ms_per_sample']:.3f} ms"),
        ("torch threads, load average", f"{m['threads']}, {m['loadavg']}"),
    ]
    return rows
