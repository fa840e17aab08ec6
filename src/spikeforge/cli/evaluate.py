"""``spikeforge evaluate CHECKPOINT``: accuracy, loss and spiking activity of a saved model on one split."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from spikeforge.cli._common import SPLITS
from spikeforge.cli._common import Command
from spikeforge.cli._common import Output
from spikeforge.cli._common import activity_rows
from spikeforge.cli._common import add_data_dir
from spikeforge.cli._common import existing_file
from spikeforge.cli._common import pct
from spikeforge.cli._common import table

__all__ = ["COMMAND", "run"]


def _arguments(e: argparse.ArgumentParser) -> None:
    e.add_argument("checkpoint", type=Path, help="path to a checkpoint written by 'spikeforge train'")
    e.add_argument("--split", choices=SPLITS, default="test", help="dataset split")
    add_data_dir(e)


def run(args: argparse.Namespace) -> Output:
    from spikeforge.training.saved import evaluate_checkpoint

    existing_file(args.checkpoint, "checkpoint")
    metrics = dict(evaluate_checkpoint(args.checkpoint, args.split, data_dir=args.data_dir))
    result = {"checkpoint": str(args.checkpoint), "split": args.split, **metrics}
    rows: list[tuple[str, Any]] = [
        ("checkpoint", result["checkpoint"]),
        ("split", args.split),
        ("accuracy", pct(metrics.get("accuracy"))),
        ("loss", metrics.get("loss")),
        *activity_rows(metrics),
    ]
    return Output(result, "Evaluation\n" + table(rows))


COMMAND = Command(
    "evaluate", "evaluate a checkpoint on a dataset split",
    "Load a checkpoint (best.pt or checkpoint.pt) and report accuracy, loss and spiking activity.",
    ("spikeforge evaluate runs/yy-small/best.pt --split test --json",), run, _arguments,
)  # fmt: skip
