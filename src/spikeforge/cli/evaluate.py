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
    e.add_argument(
        "--engine", choices=("dense", "streaming"), default="dense",
        help="dense: batched evaluation (default); streaming: event-driven batch-1 inference side by side with the "
        "dense model (accuracy, disagreements, spikes, SynOps, energy and time per sample)",
    )  # fmt: skip
    e.add_argument("--limit", type=int, default=None, metavar="N", help="--engine streaming: first N samples only")


def run(args: argparse.Namespace) -> Output:
    from spikeforge.training.saved import evaluate_checkpoint

    existing_file(args.checkpoint, "checkpoint")
    if args.engine == "streaming":
        return _streaming(args)
    if args.limit is not None:
        raise ValueError("--limit applies to --engine streaming only; drop it or add --engine streaming")
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


def _streaming(args: argparse.Namespace) -> Output:
    from spikeforge.cli._streaming import streaming_evaluation
    from spikeforge.cli._streaming import streaming_rows

    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be a positive number of samples, got {args.limit}")
    metrics = streaming_evaluation(args.checkpoint, args.split, data_dir=args.data_dir, limit=args.limit)
    result = {"checkpoint": str(args.checkpoint), "split": args.split, **metrics}
    rows = [("checkpoint", result["checkpoint"]), ("split", args.split), *streaming_rows(metrics)]
    return Output(result, "Streaming evaluation\n" + table(rows))


COMMAND = Command(
    "evaluate", "evaluate a checkpoint on a dataset split",
    "Load a checkpoint (best.pt or checkpoint.pt) and report accuracy, loss and spiking activity.",
    ("spikeforge evaluate runs/yy-small/best.pt --split test --json",
     "spikeforge evaluate runs/nmnist-conv/best.pt --engine streaming --limit 200"), run, _arguments,
)  # fmt: skip
