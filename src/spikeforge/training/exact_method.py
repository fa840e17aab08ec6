"""``TrainConfig(method="eventprop" | "ttfs")``: a run of an exact-gradient recipe with the run directory, checkpoints,
evaluation and energy accounting of the surrogate path.

This module is the one place that calls the recipes (:func:`~spikeforge.training.exact_eventprop.fit_eventprop`,
:func:`~spikeforge.training.exact_ttfs.fit_ttfs`); the rest of the package sees :class:`ExactTrainResult` and
:class:`~spikeforge.training.exact_models.ExactClassifier`.

A run (:func:`train_exact`): the run directory is checked and locked as :func:`spikeforge.train.train` does it
(:mod:`~spikeforge.training.rundir`), the recipe trains on the ``train`` split of Yin-Yang and reports each epoch
on the ``validation`` split (the recipes' "test" data), then the final network is evaluated on ``validation`` and
``test``. The recipes return only their final network, so ``best.pt`` and ``checkpoint.pt`` both hold it (``best``
is the last epoch) and a run cannot be resumed. Files: ``config.json``, ``metrics.json`` (history rows with
``epoch, loss, train_acc, val_acc, epoch_time_s`` and, on the last row, ``val_loss, test_acc, test_loss``),
``checkpoint.pt`` and ``best.pt`` (the checkpoint format of :mod:`~spikeforge.training.checkpoint` plus
``"recipe"``: the recipe's settings, from which :func:`load_exact` rebuilds the network).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from spikeforge.training import resume as R
from spikeforge.training import threads as TH
from spikeforge.training.checked import build_checked
from spikeforge.training.checkpoint import FORMAT
from spikeforge.training.checkpoint import atomic_save
from spikeforge.training.config import TrainConfig
from spikeforge.training.exact_models import ExactClassifier
from spikeforge.training.exact_models import exact_counts
from spikeforge.training.exact_models import recipe_config
from spikeforge.training.exact_models import recipe_dict
from spikeforge.training.rundir import RunLock
from spikeforge.training.rundir import check_out_dir
from spikeforge.training.rundir import start_out_dir
from spikeforge.training.splits import load_splits

__all__ = [
    "method_defaults", "recipe_for", "build_exact", "load_exact", "ExactTrainResult", "train_exact", "evaluate_exact",
    "exact_energy", "check_exact_memory", "CONTINUOUS_TIME_NOTE",
]  # fmt: skip

#: TrainConfig fields that the command line fills from the method's recipe when they are not given.
RECIPE_FIELDS = ("hidden", "epochs", "batch_size", "lr")
#: The caveat every energy report of an exact model carries.
CONTINUOUS_TIME_NOTE = (
    "continuous-time event simulation: no time grid, counted as one step per inference (one update per neuron, "
    "active if it received a spike); SynOps = presynaptic spikes (bias spikes included) x fan-out"
)


def method_defaults(method: str) -> dict[str, Any]:
    """``hidden``, ``epochs``, ``batch_size``, ``lr`` of ``method``'s recipe (``spikeforge train --method`` uses
    them for the options not given)."""
    recipe = recipe_config(method)
    return {"hidden": (int(recipe.hidden),), "epochs": recipe.epochs, "batch_size": recipe.batch_size, "lr": recipe.lr}


def recipe_for(config: TrainConfig) -> Any:
    """The recipe settings of ``config``: the recipe's defaults with ``hidden``, ``epochs``, ``batch_size``,
    ``lr`` and ``seed`` from ``config``."""
    values = {"hidden": config.hidden[0], "epochs": config.epochs, "batch_size": config.batch_size}
    return recipe_config(config.method, {**values, "lr": config.lr, "seed": config.seed})


def build_exact(config: TrainConfig, recipe: Any) -> ExactClassifier:
    """An untrained :class:`ExactClassifier` of ``config`` (widths of ``config.dataset`` and ``config.hidden``)."""
    from spikeforge.data import dataset_info

    info = dataset_info(config.dataset)
    return ExactClassifier(config.method, int(info.input_shape[0]), config.hidden[0], info.num_classes, recipe)


def check_exact_memory(config: TrainConfig, recipe: Any, batch_size: int, what: str) -> None:
    """``ValueError`` (before any work) when one batch of ``batch_size`` samples would need more than this
    machine's memory: TTFS evaluates every prefix of every neuron's inputs at once (``B x N_in x N_out`` per layer,
    float64, with a factor of 16 for the temporaries and autograd); EventProp stores ``max_spikes`` times and
    currents per neuron (a factor of 4)."""
    from spikeforge.data import dataset_info
    from spikeforge.training.memory import physical_memory

    info = dataset_info(config.dataset)
    n_in, hidden, n_out = int(info.input_shape[0]) + 1, config.hidden[0], info.num_classes
    if config.method == "ttfs":
        need = 8 * 16 * batch_size * max(n_in * hidden, (hidden + 1) * n_out)
    else:
        need = 8 * 4 * batch_size * (hidden + n_out) * int(recipe.max_spikes)
    have = physical_memory()
    if need > have:
        raise ValueError(
            f"{what} would need at least {need / 2**30:,.1f} GiB for one batch of {batch_size} samples with "
            f"--hidden {hidden}, more than this machine's {have / 2**30:,.1f} GiB of memory; give a smaller --hidden, "
            "--batch-size or --eval-batch-size"
        )


def load_exact(ckpt: dict[str, Any], config: TrainConfig, where: str) -> ExactClassifier:
    """The network of a checkpoint dict of an exact method, through the checked build of
    :func:`spikeforge.training.checked.build_checked` (the config's widths must match the weights' shapes)."""
    saved = ckpt.get("recipe")
    if not isinstance(saved, dict):
        raise ValueError(f"{where} lacks the {config.method} recipe settings ('recipe'); it is incomplete, retrain")
    try:
        recipe = recipe_config(config.method, saved)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where} holds invalid {config.method} settings ({' '.join(str(err).split())})") from None
    return build_checked(lambda: build_exact(config, recipe), ckpt["model"], where)


@dataclass
class ExactTrainResult:
    """Outcome of :func:`train_exact`: the fields of :class:`spikeforge.training.loop.TrainResult` (``best_epoch``
    is the last one), the recipe's settings and :func:`evaluate_exact` of the network on the test split."""

    config: TrainConfig
    out_dir: Path
    history: list[dict[str, Any]]
    best_epoch: int
    test_acc: float
    val_acc: float
    wall_time_s: float
    threads: TH.ThreadChoice
    model: ExactClassifier = field(repr=False)
    recipe: Any = None
    test_metrics: dict[str, Any] = field(default_factory=dict)
    stopped_early: bool = False


def evaluate_exact(model: ExactClassifier, x: Tensor, y: Tensor, *, batch_size: int = 1000) -> dict[str, Any]:
    """``{"accuracy", "loss", "firing_rates", "spikes_per_sample", "firing_rate_unit", "n"}`` of ``model`` on
    features ``x`` and labels ``y``; a firing rate is spikes per neuron per inference (no time grid)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    n = int(y.shape[0])
    correct, loss_sum, spikes = 0, 0.0, {"hidden": 0, "output": 0}
    for i in range(0, n, batch_size):
        xb, yb = x[i : i + batch_size], y[i : i + batch_size].to(torch.int64)
        out = model.run(xb)  # one simulation: predictions, loss and spikes
        correct += int((out.predictions == yb).sum())
        loss_sum += float(F.cross_entropy(out.scores, yb)) * len(yb)
        for name, times in out.populations[1:]:
            spikes[name] += int(torch.isfinite(times).sum())
    widths = {"hidden": model.sizes[1], "output": model.sizes[2]}
    if not model.spiking_output:
        del spikes["output"]
    rates = {name: s / (widths[name] * max(1, n)) for name, s in spikes.items()}
    return {
        "accuracy": correct / max(1, n),
        "loss": loss_sum / max(1, n),
        "firing_rates": rates,
        "spikes_per_sample": sum(spikes.values()) / max(1, n),
        "firing_rate_unit": "spikes/neuron/inference",
        "n": n,
    }


def exact_energy(
    model: ExactClassifier, x: Tensor, y: Tensor, chips: Sequence[Any], *, extra: Any = None, meta: dict | None = None
) -> Any:
    """An :class:`spikeforge.energy.EnergySummary` of ``model`` on features ``x``: :func:`exact_counts` priced by
    :func:`spikeforge.energy.estimate` on each chip, with :data:`CONTINUOUS_TIME_NOTE` among the caveats."""
    from spikeforge.energy import EnergySummary
    from spikeforge.energy import estimate

    out = model.run(x)
    counts = exact_counts(model, x, out)
    accuracy = float((out.predictions == y.to(torch.int64)).double().mean())
    reports = {}
    for chip in chips:
        report = estimate(counts, chip, extra_models=extra)
        reports[report.chip] = replace(report, caveats=(CONTINUOUS_TIME_NOTE, *report.caveats))
    info = {**(meta or {}), "method": model.method, "encoding": "latency code with bias spikes", "time_steps": 1}
    return EnergySummary(counts, reports, {**info, "accuracy_on_these_samples": accuracy})


def _fit(config: TrainConfig, recipe: Any, data: dict[str, tuple[Tensor, Tensor]], on_epoch: Any) -> Any:
    """Run the recipe; returns ``(trained ExactClassifier, the recipe's history rows)``."""
    (x_tr, y_tr), (x_val, y_val) = data["train"], data["validation"]
    model = build_exact(config, recipe)
    data_in = (x_tr.double(), y_tr.to(torch.int64), x_val.double(), y_val.to(torch.int64))
    if config.method == "eventprop":
        from spikeforge.training.exact_eventprop import fit_eventprop as fit_ep

        result = fit_ep(recipe, data=data_in, on_epoch=on_epoch)
        with torch.no_grad():
            for param, weight in zip(model.weights, result.model, strict=True):
                param.copy_(weight.detach().to(torch.float64))
        return model, list(result.history)
    from spikeforge.training.exact_ttfs import fit_ttfs

    fitted = fit_ttfs(recipe, data=data_in, on_epoch=on_epoch)
    model.net.load_state_dict(fitted.model.state_dict())
    return model, list(fitted.history)


def _row(raw: dict[str, Any]) -> dict[str, Any]:
    """A recipe's history row in the trainer's names (``train_acc``, ``val_acc``, ``epoch_time_s``), JSON-safe."""
    names = {"test_acc": "val_acc", "seconds": "epoch_time_s"}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        value = float(value) if isinstance(value, (int, float)) else value
        out[names.get(key, key)] = value if not isinstance(value, float) or math.isfinite(value) else None
    out["epoch"] = int(out.get("epoch") or 0)
    return out


def train_exact(
    config: TrainConfig, out_dir: str | Path, *, resume: bool = False, overwrite: bool = False, callbacks: Sequence[Any] = ()
) -> ExactTrainResult:  # fmt: skip
    """Train ``config.method``'s recipe on Yin-Yang into ``out_dir`` (see the module docstring).

    ``callbacks`` are :class:`spikeforge.training.loop.Callback` objects: ``on_train_start(config, epochs,
    n_batches)``, per epoch (the recipes report whole epochs) ``on_batch_end`` for its first and last batch with the
    epoch's mean loss and ``on_epoch_end(epoch, row)``, then ``on_train_end(result)`` while the run directory is
    still locked.

    Raises:
        ValueError: ``config.method`` is not exact, or ``resume`` (these runs cannot be resumed).
        FileExistsError, RunDirBusyError: as :func:`spikeforge.train.train`.
    """
    if not isinstance(config, TrainConfig) or config.method not in ("eventprop", "ttfs"):
        raise ValueError("train_exact needs a TrainConfig with method 'eventprop' or 'ttfs'")
    if resume:
        raise ValueError(
            f"--resume is not supported with --method {config.method}: its recipe keeps no optimiser state between "
            "calls; start the run again with --overwrite, or train into a new --out"
        )
    # the memory check first: the thread choice builds the model of the config to count its work
    check_exact_memory(
        config, recipe_for(config), max(config.batch_size, config.eval_batch_size), f"--method {config.method}"
    )
    lock = RunLock(out_dir)
    try:
        choice = TH.threads_for(config)
        with TH.use_threads(choice.threads):
            return _train(config, Path(out_dir), overwrite, list(callbacks), choice, lock)
    finally:
        lock.release()


def _train(
    config: TrainConfig, out_dir: Path, overwrite: bool, callbacks: list[Any], threads: TH.ThreadChoice, lock: RunLock
) -> ExactTrainResult:
    t_call = time.perf_counter()
    if out_dir.is_dir():
        lock.acquire()
    try:
        check_out_dir(out_dir, False, overwrite)
    except FileExistsError as err:  # the advice to resume does not apply here
        raise FileExistsError(
            f"{str(err).split('; ')[0]}; pass overwrite=True (--overwrite) to replace it, or choose a new directory "
            f"(a --method {config.method} run cannot be resumed)"
        ) from None
    recipe = recipe_for(config)
    check_exact_memory(config, recipe, max(config.batch_size, config.eval_batch_size), f"--method {config.method}")
    data = load_splits(config)
    start_out_dir(out_dir, config.to_dict(), False, overwrite, lock)
    n_batches = math.ceil(len(data["train"][1]) / config.batch_size)
    for cb in callbacks:
        cb.on_train_start(config, config.epochs, n_batches)
    reported: list[int] = []

    def on_epoch(raw: dict[str, Any]) -> None:  # the recipes report whole epochs: the batch bar jumps to its end
        row = _row(raw)
        reported.append(row["epoch"])
        for cb in callbacks:
            for index in sorted({0, n_batches - 1}):
                cb.on_batch_end(row["epoch"], index, n_batches, row.get("loss") or math.nan)
            cb.on_epoch_end(row["epoch"], row)

    model, raw_history = _fit(config, recipe, data, on_epoch)
    history = [_row(raw) for raw in raw_history]
    for row in history:  # a recipe without a progress callback: report its epochs now
        if row["epoch"] not in reported:
            on_epoch(row)
    if not history:
        raise ValueError("the recipe ran no epoch; give --epochs 1 or more")
    model.eval()
    val = evaluate_exact(model, *data["validation"], batch_size=config.eval_batch_size)
    test = evaluate_exact(model, *data["test"], batch_size=config.eval_batch_size)
    last = history[-1]
    last.update(
        val_acc=val["accuracy"], val_loss=val["loss"], test_acc=test["accuracy"], test_loss=test["loss"],
        firing_rates=val["firing_rates"], spikes_per_sample=val["spikes_per_sample"],
    )  # fmt: skip
    epoch = last["epoch"]
    ckpt = {
        "format": FORMAT, "config": config.to_dict(), "model": model.state_dict(), "epoch": epoch, "metrics": last,
        "recipe": recipe_dict(recipe),
    }  # fmt: skip
    for name, kind in (("checkpoint.pt", "last"), ("best.pt", "best")):
        try:
            atomic_save({**ckpt, "kind": kind}, out_dir / name)
        except OSError as err:
            raise R.RunWriteError(
                f"{str(out_dir / name)!r} could not be written ({err}); the run is not saved"
            ) from None
    wall = time.perf_counter() - t_call
    summary = {
        "best_epoch": epoch, "val_acc": val["accuracy"], "test_acc": test["accuracy"], "epochs_run": len(history),
        "stopped_early": False, "wall_time_s": wall, "world_size": 1, "threads": threads.threads,
        "method": config.method,
    }  # fmt: skip
    R.write_metrics(out_dir, history, summary, epoch)
    result = ExactTrainResult(
        config=config, out_dir=out_dir, history=history, best_epoch=epoch, test_acc=test["accuracy"],
        val_acc=val["accuracy"], wall_time_s=wall, threads=threads, model=model, recipe=recipe, test_metrics=test,
    )  # fmt: skip
    for cb in callbacks:
        cb.on_train_end(result)
    return result
