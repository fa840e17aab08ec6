"""``spikeforge energy CHECKPOINT``: spikes, SynOps and MACs of a trained network, priced on chips."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from spikeforge.cli._common import SPLITS
from spikeforge.cli._common import Command
from spikeforge.cli._common import Output
from spikeforge.cli._common import add_data_dir
from spikeforge.cli._common import existing_file
from spikeforge.cli._common import positive_int
from spikeforge.cli._common import usage
from spikeforge.cli._common import writable_file

if TYPE_CHECKING:
    from spikeforge.energy import EnergySummary

__all__ = ["COMMAND", "run", "energy_summary"]


def _arguments(en: argparse.ArgumentParser) -> None:
    en.add_argument("checkpoint", type=Path, help="a best.pt or checkpoint.pt written by 'spikeforge train'")
    en.add_argument(
        "--hardware",
        default="cmos45,loihi",
        help="comma-separated chips: cmos45, cmos45_int8, loihi, truenorth, spinnaker, gpu_v100",
    )
    en.add_argument("--split", choices=SPLITS, default="test", help="dataset split to count on (as the run split it)")
    en.add_argument("--samples", type=positive_int, default=256, help="number of samples to count over")
    add_data_dir(en)
    en.add_argument(
        "--cost-file", dest="cost_file", type=Path, default=None, help="extra cost models (costs.json format)"
    )
    en.add_argument("--plot", type=Path, default=None, help="write a PNG bar plot here")


def energy_summary(
    checkpoint: str | os.PathLike[str],
    hardware: Sequence[str] | str,
    *,
    split: str = "test",
    n_samples: int = 256,
    data_dir: str | os.PathLike[str] | None = None,
    cost_file: str | os.PathLike[str] | None = None,
    seed: int = 0,
) -> EnergySummary:
    """Load a trained classifier, encode the first ``n_samples`` of ``split`` (``"train"``, ``"validation"``
    or ``"test"``, as the run split them) of its dataset (random encoders seeded with ``seed``), count and
    price on each chip of ``hardware``: an :class:`spikeforge.energy.EnergySummary`. A checkpoint of
    ``--method eventprop`` or ``ttfs`` is counted by :func:`spikeforge.training.exact_method.exact_energy` (every
    presynaptic spike times its fan-out, one step per inference).

    ``meta`` holds the checkpoint, dataset, split, sample count and the accuracy on those samples.
    ``cost_file``: extra cost models (JSON in the ``costs.json`` format), usable by name in ``hardware``.
    Torch's thread count is chosen as for the run's training (:func:`spikeforge.training.threads.threads_for`).
    """
    from spikeforge.energy import cost_models
    from spikeforge.energy import load_cost_models

    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")
    extra = load_cost_models(cost_file) if cost_file is not None else None
    chips = cost_models(hardware, extra)  # fail before loading anything
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid choices: {', '.join(SPLITS)}")
    from spikeforge.data import dataset_info
    from spikeforge.training.memory import check_run_memory
    from spikeforge.training.models import SNNClassifier
    from spikeforge.training.saved import check_input_shape
    from spikeforge.training.saved import load_model
    from spikeforge.training.splits import load_splits
    from spikeforge.training.threads import threads_for
    from spikeforge.training.threads import use_threads

    model, config, _info = load_model(checkpoint)
    model.eval()
    x, y = load_splits(config, data_dir=None if data_dir is None else str(data_dir))[split]
    where = f"counting the energy of {str(checkpoint)!r}"
    check_input_shape(x, config, where)
    if not isinstance(model, SNNClassifier):  # an exact method: spikes and SynOps of its event simulation
        from spikeforge.training.exact_method import check_exact_memory
        from spikeforge.training.exact_method import exact_energy

        check_exact_memory(config, model.recipe, min(n_samples, len(x)), where)
        meta = {"checkpoint": str(checkpoint), "dataset": config.dataset, "split": split}
        with use_threads(threads_for(config).threads):
            return exact_energy(
                model, x[:n_samples], y[:n_samples], chips, extra=extra, meta={**meta, "samples": len(x[:n_samples])}
            )
    check_run_memory(config, dataset_info(config.dataset), min(n_samples, len(x)), where)
    with use_threads(threads_for(config).threads):  # the training's thread policy
        return _count(model, config, x[:n_samples], y[:n_samples], chips, extra, checkpoint, split, seed)


def _count(
    model: Any, config: Any, x: Any, y: Any, chips: Any, extra: Any, checkpoint: Any, split: str, seed: int
) -> EnergySummary:
    import torch

    from spikeforge.energy import summarize

    param = next(model.parameters(), None)
    if param is not None:
        x = x.to(device=param.device, dtype=param.dtype)
    x_seq = model.encode(x, generator=torch.Generator(device=x.device).manual_seed(seed))
    with torch.no_grad():
        accuracy = float((model(x_seq, encoded=True).argmax(-1).cpu() == y).float().mean())
    meta = {
        "checkpoint": str(checkpoint),
        "dataset": config.dataset,
        "split": split,
        "samples": int(x.shape[0]),
        "encoding": model.encoding,
        "time_steps": model.time_steps,
        "accuracy_on_these_samples": accuracy,
    }
    return summarize(model, x_seq, chips, extra_models=extra, meta=meta)


def run(args: argparse.Namespace) -> Output:
    from spikeforge.energy import cost_models
    from spikeforge.energy import load_cost_models

    extra = load_cost_models(args.cost_file) if args.cost_file is not None else None
    usage(cost_models, args.hardware, extra)  # an unknown chip name is a usage error, found before loading
    existing_file(args.checkpoint, "checkpoint")
    writable_file(args.plot, "--plot")
    if _is_lm(args.checkpoint):  # a language model: energy per generated token (spikeforge.cli._lm)
        from spikeforge.cli._lm import lm_energy_output

        return lm_energy_output(args.checkpoint, args.hardware, extra, args.data_dir, plot=args.plot)
    summary = energy_summary(
        args.checkpoint,
        args.hardware,
        split=args.split,
        n_samples=args.samples,
        data_dir=args.data_dir,
        cost_file=args.cost_file,
    )
    if args.plot:
        summary.plot(args.plot)
    return Output(summary.to_dict(), summary.table())


def _is_lm(path: Path) -> bool:
    """True for a checkpoint of ``train --model spikegpt|rwkv`` (read through the checked loader)."""
    from spikeforge.training.checkpoint import load_weights_only
    from spikeforge.training.lm_checkpoint import is_lm_checkpoint

    return is_lm_checkpoint(load_weights_only(path))


COMMAND = Command(
    "energy", "count spikes/SynOps/MACs of a checkpoint and price them on chips",
    "Energy per inference of a trained checkpoint on neuromorphic and dense hardware (cited constants).",
    ("spikeforge energy runs/yy/best.pt --hardware loihi,cmos45,gpu_v100 --plot energy.png",), run, _arguments,
)  # fmt: skip
