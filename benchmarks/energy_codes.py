"""The seed's exercise: rate code at T = 200 versus time-to-first-spike (latency) code at T = 20.

"A rate-coded SNN needs 200 time steps to match an ANN; a temporal-code SNN decides in 20 with the same
spike rate per step - which has the better energy story?"

Both networks are the same small MLP on Yin-Yang (4 inputs -> ``--hidden`` LIF -> 3 LI readout),
trained with :func:`spikeforge.train.train` (surrogate gradients, AdamW, cosine schedule). Inputs:
``encoding="rate"`` (Bernoulli, p = x per step, T = 200) and ``encoding="latency"`` (one spike per
feature at step round((1 - x)(T - 1)), T = 20). The rate-coded net uses a longer membrane
time constant (``--rate-tau``, 20 steps) and mean-membrane decoding to average the Bernoulli noise; the
latency-coded net uses the library defaults (tau 5 steps, max-membrane decoding). After training, each
model is counted on the whole test split (:func:`spikeforge.energy.count`) and priced on every built-in
chip (:func:`spikeforge.energy.estimate`), next to the same layers run once as a dense ANN.

Assumptions (also in benchmarks/RESULTS.md): energies per inference, batch totals / test-set size; one
weight read per synaptic operation; input spikes arrive as events (the first layer is priced as SynOps,
the encoder itself is not priced); the Loihi numbers are pre-silicon per-operation figures; the GPU runs
every step densely at its peak efficiency.

Run (about 75 s on an idle CPU core; several minutes on a busy shared machine)::

    .venv/bin/python benchmarks/energy_codes.py --epochs-rate 30 --epochs-latency 20 --json benchmarks/energy_codes.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from typing import Any

import torch

from spikeforge.energy import format_energy, list_cost_models, summarize
from spikeforge.train import TrainConfig, load_splits, train


def _config(encoding: str, time_steps: int, args: argparse.Namespace, epochs: int) -> TrainConfig:
    rate = encoding == "rate"
    return TrainConfig(
        dataset="yinyang", model="mlp", hidden=(args.hidden,), time_steps=time_steps, encoding=encoding,
        decoding=args.rate_decoding if rate else "max_membrane", epochs=epochs, batch_size=args.batch_size,
        lr=args.lr, seed=args.seed, patience=None, eval_batch_size=1000,
        neuron_kwargs={"tau_mem": args.rate_tau, "input_scaling": "none"} if rate else None,
    )


def run_one(name: str, config: TrainConfig, chips: list[str]) -> dict[str, Any]:
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as out_dir:
        result = train(config, out_dir)
    train_s = time.perf_counter() - t0
    model = result.model.eval()
    x, y = load_splits(config)["test"]
    with torch.no_grad():
        x_seq = model.encode(x, generator=torch.Generator().manual_seed(0))
    summary = summarize(model, x_seq, chips)
    counts = summary.counts
    with torch.no_grad():
        acc = float((model(x_seq, encoded=True).argmax(-1) == y).float().mean())
    b = counts.batch_size
    input_rate = float(x_seq.mean())  # input spikes per input channel per step
    hidden = [layer for layer in counts.layers if layer.spiking]
    row: dict[str, Any] = {
        "name": name, "encoding": config.encoding, "time_steps": config.time_steps, "epochs": config.epochs,
        "train_s": round(train_s, 1), "test_acc_train_run": result.test_acc, "test_acc_counted": acc,
        "test_samples": b, "input_spikes_per_inference": counts.input_spikes / b if counts.input_spikes is not None else None,
        "input_spike_rate_per_step": input_rate,
        "hidden_spikes_per_inference": sum(layer.spikes for layer in hidden) / b,
        "hidden_rate_per_step": counts.firing_rates(),
        "synops_per_inference": counts.total("synops") / b,
        "macs_per_inference": counts.total("macs") / b,
        "neuron_updates_per_inference": counts.total("neuron_updates") / b,
        "energy_j": {k: {"compute": r.compute_j, "memory": r.memory_j, "total": r.total_j, "latency_s": r.latency_s}
                     for k, r in summary.reports.items()},
        "ann_j": {k: v["total_j"] for k, v in next(iter(summary.reports.values())).ann.items()},
        "ann_macs": next(iter(summary.reports.values())).ann["cmos45"]["macs"],
        "caveats": {k: list(r.caveats) for k, r in summary.reports.items()},
    }
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--epochs-rate", type=int, default=30)
    p.add_argument("--epochs-latency", type=int, default=20)
    p.add_argument("--rate-tau", type=float, default=20.0,
                   help="membrane time constant (steps) of the rate-coded net: a longer one averages the Bernoulli noise")
    p.add_argument("--rate-decoding", default="mean_membrane", help="decoding of the rate-coded net")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    chips = list_cost_models()
    rows = [
        run_one("rate T=200", _config("rate", 200, args, args.epochs_rate), chips),
        run_one("latency T=20", _config("latency", 20, args, args.epochs_latency), chips),
    ]
    print(f"{'':<28}" + "".join(f"{r['name']:>18}" for r in rows))
    for key, fmt in (("test_acc_counted", "{:.3f}"), ("epochs", "{}"), ("train_s", "{:.0f}"),
                     ("input_spike_rate_per_step", "{:.3f}"), ("input_spikes_per_inference", "{:.1f}"),
                     ("hidden_spikes_per_inference", "{:.1f}"), ("synops_per_inference", "{:.0f}"),
                     ("macs_per_inference", "{:.0f}"), ("neuron_updates_per_inference", "{:.0f}")):
        print(f"{key:<28}" + "".join(f"{fmt.format(r[key]):>18}" for r in rows))
    for chip in chips:
        print(f"{'energy ' + chip:<28}" + "".join(f"{format_energy(r['energy_j'][chip]['total']):>18}" for r in rows))
    for chip in ("loihi", "truenorth", "spinnaker"):
        lat = [r["energy_j"][chip]["latency_s"] for r in rows]
        print(f"{'latency ' + chip + ' (s)':<28}" + "".join(f"{v:>18.3g}" for v in lat))
    print(f"{'dense ANN MACs':<28}" + "".join(f"{r['ann_macs']:>18.0f}" for r in rows))
    for chip, v in rows[0]["ann_j"].items():
        print(f"{'dense ANN on ' + chip:<28}{format_energy(v):>18}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
