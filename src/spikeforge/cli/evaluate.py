"""``spikeforge evaluate CHECKPOINT``: accuracy, loss and spiking activity of a saved model on one split."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from spikeforge.cli._common import SPLITS, Output, activity_rows, add_command, existing_file, pct, table

__all__ = ["NAME", "add_parser", "run"]

NAME = "evaluate"
EXAMPLES = ("spikeforge evaluate runs/yy-small/best.pt --split test --json",)


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    e = add_command(
        sub, common, NAME, examples=EXAMPLES, help="evaluate a checkpoint on a dataset split",
        description="Load a checkpoint (best.pt or checkpoint.pt) and report accuracy, loss and spiking activity.",
    )  # fmt: skip
    e.add_argument("checkpoint", type=Path, help="path to a checkpoint written by 'spikeforge train'")
    e.add_argument("--split", choices=SPLITS, default="test", help="dataset split")
    e.add_argument("--data-dir", dest="data_dir", type=str, default=None, metavar="DIR",
                   help="folder with dataset files (for datasets read from files)")
    e.set_defaults(handler=run)


def run(args: argparse.Namespace) -> Output:
    from spikeforge.train import evaluate_checkpoint

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
