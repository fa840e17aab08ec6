"""``spikeforge train``: run :func:`spikeforge.train.train`, then evaluate, plot and summarise.

Every ``TrainConfig`` field is an option; ``--resume --out DIR`` starts from the run's ``config.json``.
Under ``torchrun`` only rank 0 evaluates, plots and reports.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from spikeforge.cli._common import PROG
from spikeforge.cli._common import Command
from spikeforge.cli._common import Output
from spikeforge.cli._common import UsageError
from spikeforge.cli._common import activity_rows
from spikeforge.cli._common import add_data_dir
from spikeforge.cli._common import pct
from spikeforge.cli._common import read_json_file
from spikeforge.cli._common import usage
from spikeforge.cli._config_options import add_config_options
from spikeforge.cli._config_options import field_default
from spikeforge.training.loop import Callback

__all__ = ["COMMAND", "run", "train_config", "default_out", "summary_text"]

#: Options of ``train`` itself (and the process options), never TrainConfig fields.
_OWN = {"out", "resume", "overwrite", "quiet", "json", "debug", "malloc", "plots", "command", "handler"}


def _arguments(t: argparse.ArgumentParser) -> None:
    from spikeforge.training.config import TrainConfig

    t.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="run directory (default: runs/<dataset>-<model or method>-<timestamp>)",
    )
    add_data_dir(t)
    t.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its checkpoint.pt (refused if it has none)",
    )
    t.add_argument("--overwrite", action="store_true", help="replace an existing, non-empty --out")
    t.add_argument("--no-plots", dest="plots", action="store_false", help="skip the PNG plots")
    t.add_argument("--quiet", action="store_true", help="no progress output on stderr")
    from spikeforge.training.choices import valid_names

    add_config_options(t, TrainConfig, skip=_OWN | {"data_dir"}, names=valid_names())


def _saved_config(args: argparse.Namespace) -> dict[str, Any]:
    """With ``--resume``: the run's ``config.json`` (empty when the run has none yet)."""
    saved = Path(args.out) / "config.json" if getattr(args, "resume", False) and args.out is not None else None
    if saved is None or not saved.is_file():
        return {}
    base = read_json_file(saved, "fix it, or start the run again with --overwrite instead of --resume")
    if not isinstance(base, dict):
        raise ValueError(f"{str(saved)!r} does not hold a TrainConfig object; fix it or drop --resume")
    return base


def train_config(args: argparse.Namespace) -> Any:
    """TrainConfig from the options given; the others come from the defaults, or with ``--resume``
    from the run's ``config.json`` (so ``spikeforge train --resume --out DIR`` needs nothing else).

    With ``--model spikformer|sdt|vit-twin``, ``--time-steps``, ``--batch-size``, ``--lr``, ``--epochs`` and
    ``--surrogate`` not given come from :func:`spikeforge.training.transformer_models.transformer_defaults`.
    With ``--dataset fashion_mnist`` and ``--model mlp|conv`` (the surrogate method), the options not given come from
    the Fashion-MNIST recipe (:func:`spikeforge.training.image_recipes.image_defaults`).
    With ``--method eventprop|ttfs``, ``--hidden``, ``--epochs``, ``--batch-size`` and ``--lr`` not given come from
    the method's recipe (:func:`spikeforge.training.exact_method.method_defaults`). TrainConfig validates every
    value (names, caps, the options a method refuses); its error becomes a usage error (exit code 2).
    """
    from spikeforge.training.config import TrainConfig

    fields = {f.name: f for f in dataclasses.fields(TrainConfig) if f.init}
    values = {k: v for k, v in _saved_config(args).items() if k in fields}
    values.update({name: getattr(args, name) for name in fields if hasattr(args, name)})
    if values.get("model") in ("spikegpt", "rwkv"):  # options not given: the language-model recipe
        from spikeforge.training.lm import lm_defaults

        values = {**lm_defaults(values["model"]), **values}
    from spikeforge.training.choices import TRANSFORMER_MODELS

    if values.get("model") in TRANSFORMER_MODELS:  # options not given: the transformer recipe
        from spikeforge.training.transformer_models import transformer_defaults

        values = {**transformer_defaults(values["model"]), **values}
    from spikeforge.training.image_recipes import image_defaults

    dataset = values.get("dataset", field_default(fields["dataset"]))
    model = values.get("model", field_default(fields["model"]))
    values = {**image_defaults(dataset, model, values.get("method", field_default(fields["method"]))), **values}
    if values.get("method") in ("eventprop", "ttfs"):  # options not given: the method's recipe, not the surrogate's
        from spikeforge.training.exact_method import method_defaults

        values = {**method_defaults(values["method"]), **values}
    from spikeforge.training.choices import sequence_defaults

    values = {**sequence_defaults(dataset), **values}
    for name, value in values.items():
        if isinstance(value, list) and isinstance(field_default(fields[name]), tuple):
            values[name] = tuple(value)
    if "data_dir" in fields and (args.data_dir is not None or "data_dir" not in values):
        values["data_dir"] = args.data_dir
    try:
        return TrainConfig(**values)
    except (TypeError, ValueError) as e:
        raise UsageError(str(e)) from e


def default_out(config: Any) -> Path:
    kind = config.model if config.method == "surrogate" else config.method
    return Path("runs") / f"{config.dataset}-{kind}-{time.strftime('%Y%m%d-%H%M%S')}"


def run(args: argparse.Namespace) -> Output | None:
    """Train, then evaluate on the test split, plot and summarise (None on ranks other than 0).

    The evaluation, plots and energy count run in the training's ``on_train_end`` (:class:`_Finish`), so the
    run directory stays locked (:class:`spikeforge.training.rundir.RunLock`) until the last plot is written.
    """
    from spikeforge.data import dataset_info
    from spikeforge.training.memory import check_buildable

    config = train_config(args)  # epochs and time steps capped there (MAX_EPOCHS, MAX_TIME_STEPS)
    if config.method != "surrogate":
        return _run_exact(args, config)
    if config.model in ("spikegpt", "rwkv"):  # language models: spikeforge.cli._lm
        from spikeforge.cli._lm import run_lm

        return run_lm(args, config, args.out if args.out is not None else default_out(config))
    usage(check_buildable, config, dataset_info(config.dataset))  # neuron_kwargs, sizes: a usage error, exit 2
    if args.resume and args.out is None:
        raise UsageError("--resume needs --out DIR (the run directory to continue)")
    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite exclude each other; pick one")
    if args.resume and not (Path(args.out) / "checkpoint.pt").is_file():
        if (Path(args.out) / "config.json").is_file():
            raise UsageError(
                f"--resume: the run in {str(args.out)!r} stopped before its first checkpoint (config.json but no "
                "checkpoint.pt), so there is no run to resume; start it again with --overwrite instead of --resume"
            )
        raise UsageError(
            f"--resume: {str(args.out)!r} holds no run to resume (no checkpoint.pt); check --out, or drop --resume "
            "to start a new run there (with --overwrite if the folder is not empty)"
        )
    from spikeforge.cli._event_data import prepare_event_data
    from spikeforge.cli.progress import ProgressCallback
    from spikeforge.training.distributed import env_ranks
    from spikeforge.training.loop import train

    prepare_event_data(config.dataset, config.data_dir, quiet=args.quiet)  # emulated event data: first use

    out_dir = args.out if args.out is not None else default_out(config)
    progress = ProgressCallback(quiet=args.quiet or env_ranks()[0] != 0)  # under torchrun, rank 0 reports
    finish = _Finish(args, progress)
    with progress.running(f"loading the {config.dataset} data and building the {config.model} model"):
        train(config, out_dir, resume=args.resume, overwrite=args.overwrite, callbacks=[progress, finish])
    return finish.output  # None on ranks other than 0 (on_train_end runs on rank 0 only)


class _Finish(Callback):
    """Evaluate the best model on the test split, plot and summarise, inside the training call (rank 0)."""

    def __init__(self, args: argparse.Namespace, progress: Any) -> None:
        self.args, self.progress = args, progress
        self.output: Output | None = None

    def on_train_end(self, result: Any) -> None:
        from spikeforge.cli._console import uses_colour
        from spikeforge.cli._stats import firing_rates
        from spikeforge.data import get_dataset
        from spikeforge.training.saved import evaluate

        args, progress, config = self.args, self.progress, result.config
        warnings: list[str] = []
        with progress.running("evaluating the best model on the test split"):
            # inside train(): the training's thread count for the evaluation, plots and energy count too
            test_ds = get_dataset(config.dataset, "test", data_dir=config.data_dir)
            test_metrics = evaluate(result.model, test_ds, batch_size=config.eval_batch_size)
            rates = firing_rates(result.model, test_ds.x, batch_size=config.eval_batch_size)  # summary and plot
            plots: list[str] = []
            if args.plots:
                progress.status("drawing the plots")
                plots = _make_plots(result, test_ds, Path(result.out_dir), rates, quiet=args.quiet, warnings=warnings)
            summary = _summary(result, {**test_metrics, "firing_rates": rates.means()}, plots)
            summary["warnings"] = warnings
            progress.status("counting the energy per inference")
            summary["energy_per_inference_j"] = _energy_per_inference(result.model, test_ds)
        self.output = Output(summary, summary_text(summary, colour=uses_colour(sys.stdout)))


def _run_exact(args: argparse.Namespace, config: Any) -> Output:
    """``--method eventprop|ttfs``: :func:`spikeforge.training.exact_method.train_exact`, then the plots of
    :mod:`spikeforge.cli.plots_exact` and the summary, inside the run's lock (:class:`_FinishExact`)."""
    if args.resume:
        raise UsageError(
            f"--resume is not supported with --method {config.method}: its recipe keeps no optimiser state between "
            "runs, so a stopped run cannot be continued; start it again with --overwrite instead of --resume"
        )
    from spikeforge.cli.progress import ProgressCallback
    from spikeforge.training.exact_method import train_exact

    out_dir = args.out if args.out is not None else default_out(config)
    progress = ProgressCallback(quiet=args.quiet)
    finish = _FinishExact(args, progress)
    with progress.running(f"loading the {config.dataset} data for --method {config.method}"):
        train_exact(config, out_dir, overwrite=args.overwrite, callbacks=[progress, finish])
    assert finish.output is not None  # on_train_end always runs (one process)
    return finish.output


class _FinishExact(Callback):
    """The exact methods' :class:`_Finish`: test metrics, plots (spike-time rasters), energy, summary."""

    def __init__(self, args: argparse.Namespace, progress: Any) -> None:
        self.args, self.progress = args, progress
        self.output: Output | None = None

    def on_train_end(self, result: Any) -> None:
        from spikeforge.cli._console import uses_colour
        from spikeforge.data import get_dataset
        from spikeforge.energy import DEFAULT_HARDWARE
        from spikeforge.training.exact_method import exact_energy

        args, progress, config = self.args, self.progress, result.config
        warnings: list[str] = []
        with progress.running("evaluating the trained network on the test split"):
            test_ds = get_dataset(config.dataset, "test", data_dir=config.data_dir)
            test = result.test_metrics  # evaluate_exact on the test split, by train_exact
            plots: list[str] = []
            if args.plots:
                progress.status("drawing the plots")
                plots = _plots_or_warning(lambda: _exact_plots(result, test_ds), quiet=args.quiet, warnings=warnings)
            summary = _summary(result, test, plots)
            summary.update(warnings=warnings, firing_rate_unit=test["firing_rate_unit"])
            progress.status("counting the energy per inference")
            energy = exact_energy(result.model, test_ds.x[:256], test_ds.y[:256], DEFAULT_HARDWARE)
            summary["energy_per_inference_j"] = {chip: float(r.total_j) for chip, r in energy.reports.items()}
        self.output = Output(summary, summary_text(summary, colour=uses_colour(sys.stdout)))


def _exact_plots(result: Any, test_ds: Any) -> list[str]:
    from spikeforge.cli.plots_exact import plot_exact_run

    return [
        str(p) for p in plot_exact_run(result.model, test_ds.x[:256], test_ds.y[:256], result.history, result.out_dir)
    ]


def _plots_or_warning(make: Any, *, quiet: bool, warnings: list[str]) -> list[str]:
    """``make()``; without matplotlib a note, any other failure a warning (the run is saved either way)."""
    try:
        return list(make())
    except ImportError as e:  # an optional extra: a note, not a warning
        if not quiet:
            print(f"{PROG} train: note: plots skipped: {e}", file=sys.stderr)
    except Exception as e:  # the run is saved: report the plot failure, keep the summary
        message = " ".join(
            f"plots not written ({type(e).__name__}: {e}); the run and its checkpoints are saved".split()
        )
        warnings.append(message)
        print(f"{PROG} train: warning: {message}", file=sys.stderr)
    return []


def _make_plots(result: Any, test_ds: Any, out_dir: Path, rates: Any, *, quiet: bool, warnings: list[str]) -> list[str]:
    """The PNGs of :func:`spikeforge.cli.plots.plot_run` on the first 256 test samples, the firing rates of the
    summary (``rates``, the whole test split) in the histogram.

    Training has succeeded and its files are saved, so plotting never fails the run: without matplotlib the
    plots are skipped with a note; any other plotting error (a full disk, a matplotlib failure) becomes a
    warning on stderr and in the summary's ``warnings``, and the command still prints the summary and exits 0.
    """
    from spikeforge.cli.plots import plot_run
    from spikeforge.cli.plots_delays import plot_run_delays  # delays.png for a model with delays

    x = test_ds.x[:256].to(next(result.model.parameters()).device)
    return _plots_or_warning(
        lambda: (
            [str(p) for p in plot_run(result.model, x, result.history, out_dir, rates=rates)]
            + [str(p) for p in plot_run_delays(result, out_dir)]
        ),
        quiet=quiet,
        warnings=warnings,
    )


def _energy_per_inference(model: Any, test_ds: Any) -> dict[str, float]:
    """Energy per inference (J, memory included) on the default chips, counted on 256 test samples."""
    import torch

    from spikeforge.energy import DEFAULT_HARDWARE
    from spikeforge.energy import summarize

    model.eval()
    x = test_ds.x[:256].to(next(model.parameters()).device)
    with torch.no_grad():
        x_seq = model.encode(x, generator=torch.Generator(device=x.device).manual_seed(0))
        energy = summarize(model, x_seq, hardware=DEFAULT_HARDWARE)
    return {chip: float(r.total_j) for chip, r in energy.reports.items()}


def _best_entry(history: Sequence[Mapping[str, Any]], best_epoch: int) -> Mapping[str, Any]:
    for h in history:
        if h.get("epoch") == best_epoch:
            return h
    return history[-1] if history else {}


def _summary(result: Any, test_metrics: Mapping[str, Any], plots: list[str]) -> dict[str, Any]:
    cfg = result.config
    best = _best_entry(result.history, result.best_epoch)
    out_dir = Path(result.out_dir)
    return {
        "run_dir": str(out_dir),
        "dataset": cfg.dataset,
        "method": cfg.method,
        "model": cfg.model if cfg.method == "surrogate" else cfg.method,
        "neuron": cfg.neuron if cfg.method == "surrogate" else "current-based LIF, continuous time",
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch,
        "train_acc": best.get("train_acc"),
        "val_acc": result.val_acc,
        "test_acc": result.test_acc,
        "test_loss": test_metrics.get("loss"),
        "firing_rates": dict(test_metrics.get("firing_rates", {})),
        "spikes_per_sample": test_metrics.get("spikes_per_sample"),
        "wall_time_s": result.wall_time_s,
        "threads": result.threads.threads,
        "threads_source": result.threads.source,
        "threads_wanted": result.threads.wanted,
        "checkpoint": str(out_dir / "best.pt"),
        "plots": plots,
    }


def summary_text(s: Mapping[str, Any], *, colour: bool = False) -> str:
    """The human-readable training summary of a ``train`` result (ANSI colours with ``colour``)."""
    from spikeforge.training.threads import ThreadChoice

    energy = s.get("energy_per_inference_j", {})
    wall = s["wall_time_s"]
    rows: list[tuple[str, Any]] = [
        ("run directory", s["run_dir"]),
        ("dataset / model", f"{s['dataset']} / {s['model']} ({s['neuron']})"),
        ("epochs run", s["epochs_run"]),
        ("reported epoch", s["best_epoch"]),
        ("train accuracy (running)", pct(s["train_acc"])),
        ("val accuracy", pct(s["val_acc"])),
        ("test accuracy", pct(s["test_acc"])),
        *activity_rows(s),
        *[(f"energy/inference {chip}", f"{j * 1e9:.3g} nJ") for chip, j in energy.items()],
        ("wall time", f"{wall:.1f} s" if isinstance(wall, (int, float)) else "-"),
        ("CPU threads", ThreadChoice(s["threads"], s["threads_source"], s["threads_wanted"]).describe()),
        ("best checkpoint", s["checkpoint"]),
    ]
    if s["plots"]:
        rows.append(("plots", ", ".join(Path(p).name for p in s["plots"])))
    rows += [("warning", w) for w in s.get("warnings", ())]
    from spikeforge.cli._console import key_value_text

    styles = {
        "test accuracy": "bold green",
        "val accuracy": "green",
        "train accuracy (running)": "green",
        "warning": "yellow",
    }
    return key_value_text("Training summary", rows, colour=colour, styles=styles)


COMMAND = Command(
    "train", "train a model (default: the Yin-Yang main job)",
    "Train an SNN classifier and write config.json, metrics.json, checkpoints and plots into a run directory.",
    ("spikeforge train --epochs 5 --hidden 64 --out runs/yy-small",
     "spikeforge train --dataset yinyang --neuron alif --surrogate atan --json > summary.json",
     "spikeforge train --method ttfs --epochs 20 --out runs/yy-ttfs",
     "spikeforge train --dataset delayed_coincidence --model delay-mlp --hidden 32 --epochs 12 --batch-size 100 "
     "--lr 0.03 --neuron-kwargs '{\"tau_mem\": 1.0, \"input_scaling\": \"none\"}'"), run, _arguments,
)  # fmt: skip
