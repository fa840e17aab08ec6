"""Which weights should the main job report? Best-validation epoch, last epoch, or an average of the last epochs.

Issue 20 asks for ``spikeforge train`` (Yin-Yang defaults) >= 98.0 % test accuracy on every seed 0-9. With the
current rule (the weights of the epoch with the best accuracy on the 1000-sample validation split) seed 4 lands
at 97.8 % because a noisy validation maximum picks an early epoch. Choosing another rule by looking at the test
split would be selection on the test set, so this study judges the rules on a *development* set that neither
training nor the published splits touch: ``--dev-size`` fresh Yin-Yang samples drawn with the published
algorithm (:func:`spikeforge.data.yinyang.make_yinyang`) from seed ``--dev-seed`` (published splits use seeds
40-42), for training seeds (``--seeds``) other than the ten the target is read on (default 10-19).

Each run is the trainer itself (:func:`spikeforge.training.loop.train`, the command line's defaults plus any
``--set key=value``) with a callback that, after every epoch, reads the epoch's weights from the run's
``checkpoint.pt`` and scores them on the development set. Rules compared per seed, all on the same run:

* ``best_val``: the epoch of the best validation accuracy (first such epoch), what the trainer reports today;
* ``last``: the last epoch's weights;
* ``swa_N``: the average of the last ``N`` epochs' weights (stochastic weight averaging, Izmailov et al. 2018;
  the 4-256-3 MLP has no BatchNorm, so no statistics need recomputing).

Printed: one row per seed (development accuracy of each rule) and the minimum and mean over seeds.

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/seed_selection.py --seeds 10 11 12 --out part.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from spikeforge.data.yinyang import make_yinyang
from spikeforge.training.config import TrainConfig
from spikeforge.training.loop import Callback
from spikeforge.training.loop import train
from spikeforge.training.models import build_model

SWA = (10, 20, 40)


class DevScorer(Callback):
    """After each epoch: the epoch's weights from ``checkpoint.pt``, their development accuracy, and a copy kept
    for the averages."""

    def __init__(self, out_dir: Path, config: TrainConfig, x: torch.Tensor, y: torch.Tensor) -> None:
        from spikeforge.data import dataset_info

        self.out_dir, self.x, self.y = out_dir, x, y
        self.model = build_model(config, dataset_info(config.dataset)).eval()
        self.weights: list[dict[str, torch.Tensor]] = []
        self.dev: list[float] = []

    def score(self, state: dict[str, torch.Tensor]) -> float:
        self.model.load_state_dict(state)
        with torch.no_grad():
            logits = self.model(self.x)
        return float((logits.argmax(1) == self.y).float().mean())

    def on_epoch_end(self, epoch: int, metrics: dict) -> None:
        state = torch.load(self.out_dir / "checkpoint.pt", map_location="cpu", weights_only=False)["model"]
        state = {k: v.clone() for k, v in state.items()}
        self.weights.append(state)
        self.dev.append(self.score(state))

    def averaged(self, n: int) -> float:
        last = self.weights[-n:]
        avg = {k: sum(w[k].double() for w in last).div(len(last)).to(last[0][k].dtype) for k in last[0]}
        return self.score(avg)


def run_seed(seed: int, sets: dict[str, Any], x: torch.Tensor, y: torch.Tensor, scratch: Path) -> dict[str, Any]:
    config = TrainConfig(**{**sets, "seed": seed})
    out = scratch / f"seed{seed}"
    scorer = DevScorer(out, config, x, y)
    t0 = time.perf_counter()
    result = train(config, out, callbacks=[scorer])
    row: dict[str, Any] = {
        "seed": seed,
        "best_epoch": result.best_epoch,
        "val_acc": round(100 * result.val_acc, 2),
        "test_acc": round(100 * result.test_acc, 2),
        "best_val": round(100 * scorer.dev[result.best_epoch - 1], 2),
        "last": round(100 * scorer.dev[-1], 2),
        "dev_per_epoch": [round(100 * d, 2) for d in scorer.dev],
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    for n in SWA:
        row[f"swa_{n}"] = round(100 * scorer.averaged(n), 2)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(10, 20)))
    ap.add_argument("--dev-seed", type=int, default=7)
    ap.add_argument("--dev-size", type=int, default=10000)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="TrainConfig field (JSON value)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.dev_seed in (40, 41, 42):
        raise SystemExit("--dev-seed must differ from the published splits' seeds 40-42")
    sets = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    feats, labels = make_yinyang(args.dev_size, args.dev_seed)
    x, y = torch.from_numpy(feats).float(), torch.from_numpy(labels).long()
    rules = ["best_val", "last", *(f"swa_{n}" for n in SWA)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            row = run_seed(seed, sets, x, y, Path(tmp))
            rows.append(row)
            print(f"seed {seed}: best epoch {row['best_epoch']}, " + ", ".join(f"{r} {row[r]:.2f}" for r in rules)
                  + f" (dev %); val {row['val_acc']:.2f}, {row['wall_s']:.0f} s", flush=True)  # fmt: skip
    summary = {r: {"min": min(row[r] for row in rows), "mean": round(sum(row[r] for row in rows) / len(rows), 3)}
               for r in rules}  # fmt: skip
    print("rule | min dev % | mean dev %")
    for r in rules:
        print(f"{r} | {summary[r]['min']:.2f} | {summary[r]['mean']:.3f}")
    if args.out:
        payload = {"dev_seed": args.dev_seed, "dev_size": args.dev_size, "set": sets, "rows": rows, "summary": summary}
        args.out.write_text(json.dumps(payload, indent=1))


if __name__ == "__main__":
    main()
