"""``spikeforge train --model spikegpt|rwkv``: the language-model run (:func:`spikeforge.training.lm.train_lm`),
its bits-per-character learning curve, the energy per token and the summary; ``spikeforge energy`` on an LM
checkpoint (:func:`lm_energy_output`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from spikeforge.cli._common import Output
from spikeforge.cli._common import UsageError
from spikeforge.cli.progress import ProgressCallback

__all__ = ["run_lm", "plot_bpc", "lm_summary_text", "lm_energy_output", "ENERGY_TOKENS"]

#: Test-book characters the energy per token is counted on.
ENERGY_TOKENS = 4096


class _LMProgress(ProgressCallback):
    """The progress bars of ``train``, with validation bits per character on each epoch's line."""

    def on_epoch_end(self, epoch: int, metrics: dict) -> None:
        if self.quiet:
            return
        line = (
            f"epoch {epoch}/{self.n_epochs}  loss {metrics['loss']:.4f}  train {metrics['train_bpc']:.3f} bpc  "
            f"val {metrics['val_bpc']:.3f} bpc  ({metrics['epoch_time_s']:.1f} s)"
        )
        if self._progress is None or self._tasks is None:
            self.console.print(line, markup=False)
            return
        self._progress.console.print(line, markup=False)
        self._progress.update(self._tasks[0], completed=epoch)


def plot_bpc(history: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Training and validation bits per character per epoch (PNG, through ``_core.files.save_figure``)."""
    from spikeforge.cli.plots import _figure
    from spikeforge.cli.plots import _save

    fig, (ax,) = _figure(1, row_height=3.0)
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["train_bpc"] for h in history], marker="o", ms=3, label="train (running, during the epoch)")
    ax.plot(epochs, [h["val_bpc"] for h in history], marker="o", ms=3, label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("bits per character")
    ax.set_title(f"Learning curve ({len(history)} epochs)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")
    return _save(fig, path)


def run_lm(args: argparse.Namespace, config: Any, out_dir: Path) -> Output:
    """Train ``config`` (a language model) into ``out_dir``, then plot, count the energy per token and summarise."""
    if args.resume:
        raise UsageError("--resume is not supported with --model spikegpt|rwkv; start again with --overwrite")
    from spikeforge.cli._console import uses_colour
    from spikeforge.training.lm import train_lm

    progress = _LMProgress(quiet=args.quiet)
    with progress.running(f"loading the {config.dataset} corpus and building the {config.model} model"):
        result = train_lm(config, out_dir, overwrite=args.overwrite, callbacks=[progress])
    plots, warnings = [], []
    if args.plots:
        try:
            plots.append(str(plot_bpc(result.history, Path(result.out_dir) / "learning_curves.png")))
        except ImportError as e:
            print(f"spikeforge train: note: plots skipped: {e}", file=sys.stderr)
        except Exception as e:  # the run is saved: a warning, not a failure
            warnings.append(f"plots not written ({type(e).__name__}: {e}); the run and its checkpoints are saved")
    with progress.running("counting the energy per token"):
        energy = _energy(result.model, config)
    summary = {
        "run_dir": str(result.out_dir), "dataset": config.dataset, "model": config.model,
        "parameters": result.params, "epochs_run": len(result.history), "best_epoch": result.best_epoch,
        "val_bpc": result.val_bpc, "test_bpc": result.test_bpc, "train_tokens_per_s": result.train_tokens_per_s,
        "energy_per_token_j": {k: float(r.total_j) for k, r in energy.reports.items()},
        "wall_time_s": result.wall_time_s, "checkpoint": str(Path(result.out_dir) / "best.pt"), "plots": plots,
        "warnings": warnings,
    }  # fmt: skip
    return Output(summary, lm_summary_text(summary, colour=uses_colour(sys.stdout)))


def _energy(model: Any, config: Any, hardware: str = "cmos45,loihi", extra: Any = None) -> Any:
    from spikeforge.data.text import get_corpus
    from spikeforge.training.lm_energy import lm_energy

    corpus = get_corpus(config.dataset, data_dir=config.data_dir)
    ids = corpus.vocab.encode(corpus.test[:ENERGY_TOKENS])
    return lm_energy(model, ids, hardware, extra=extra, context=config.time_steps,
                     meta={"dataset": config.dataset, "text": f"first {len(ids)} characters of the test book"})  # fmt: skip


def lm_energy_output(
    checkpoint: Path, hardware: str, extra: Any, data_dir: str | None, *, plot: Path | None = None
) -> Output:
    """``spikeforge energy`` on a language-model checkpoint: energy per token on each chip, counted on the first
    :data:`ENERGY_TOKENS` characters of the test book (``--split`` and ``--samples`` do not apply)."""
    from spikeforge.data.text import get_corpus
    from spikeforge.training.lm_checkpoint import load_lm

    model, config, vocab = load_lm(checkpoint)
    corpus = get_corpus(config.dataset, data_dir=data_dir if data_dir is not None else config.data_dir)
    corpus.vocab.check_same(vocab, f"checkpoint {str(checkpoint)!r}")
    summary = _energy(model, config, hardware, extra)
    if plot is not None:
        summary.plot(plot)
    result = {**summary.to_dict(), "energy_per_token_j": {k: float(r.total_j) for k, r in summary.reports.items()}}
    return Output(result, summary.table())


def lm_summary_text(s: Mapping[str, Any], *, colour: bool = False) -> str:
    from spikeforge.cli._console import key_value_text

    rows: list[tuple[str, Any]] = [
        ("run directory", s["run_dir"]),
        ("dataset / model", f"{s['dataset']} / {s['model']} ({s['parameters']:,} parameters)"),
        ("epochs run", s["epochs_run"]),
        ("best epoch", s["best_epoch"]),
        ("val bits/char", f"{s['val_bpc']:.3f}"),
        ("test bits/char", "-" if s["test_bpc"] is None else f"{s['test_bpc']:.3f}"),
        ("training speed", f"{s['train_tokens_per_s']:.0f} tokens/s"),
        *[(f"energy/token {chip}", f"{j * 1e9:.3g} nJ") for chip, j in s["energy_per_token_j"].items()],
        ("wall time", f"{s['wall_time_s']:.1f} s"),
        ("best checkpoint", s["checkpoint"]),
    ]
    if s["plots"]:
        rows.append(("plots", ", ".join(Path(p).name for p in s["plots"])))
    rows += [("warning", w) for w in s.get("warnings", ())]
    return key_value_text("Training summary", rows, colour=colour, styles={"test bits/char": "bold green"})
