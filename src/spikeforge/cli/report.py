"""``spikeforge report RUN``: one self-contained HTML page of a training run.

The page (``RUN/report.html`` by default) holds the run's plots (PNGs embedded as ``data:`` URIs), the
summary (accuracies, firing rates and spikes from ``metrics.json``, energy per inference), the energy table
of ``best.pt`` on each chip (:func:`spikeforge.cli.energy.energy_summary`, what ``spikeforge energy``
prints) and ``config.json``. It needs ``metrics.json``, ``config.json`` and ``best.pt`` (a clear error
otherwise); a missing or unreadable plot is named on the page in its place. Nothing is fetched from
elsewhere: no script, inline CSS, and a Content-Security-Policy that blocks any external request.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from spikeforge.cli import _report_page as P
from spikeforge.cli._common import SPLITS
from spikeforge.cli._common import Command
from spikeforge.cli._common import Output
from spikeforge.cli._common import UsageError
from spikeforge.cli._common import activity_rows
from spikeforge.cli._common import add_data_dir
from spikeforge.cli._common import pct
from spikeforge.cli._common import read_json_file
from spikeforge.cli._common import table

if TYPE_CHECKING:
    from spikeforge.energy import EnergySummary

__all__ = ["COMMAND", "run", "write_report", "DEFAULT_NAME", "PLOT_CAPTIONS"]

#: The report's file name inside the run directory (without ``--out``).
DEFAULT_NAME = "report.html"
#: The plots ``spikeforge train`` writes, in page order, with their captions; other PNGs follow, sorted.
PLOT_CAPTIONS: dict[str, str] = {
    "learning_curves.png": "loss and accuracy per epoch",
    "raster.png": "spikes of every layer on one test sample",
    "membrane.png": "membrane potential of a few neurons per layer on one test sample",
    "firing_rates.png": "distribution of the neurons' firing rates per layer",
}
_PNG = b"\x89PNG\r\n\x1a\n"


def _arguments(r: argparse.ArgumentParser) -> None:
    r.add_argument("run", type=Path, metavar="RUN", help="run directory written by 'spikeforge train'")
    r.add_argument(
        "--out", type=Path, default=None, metavar="FILE", help=f"the HTML file (default: RUN/{DEFAULT_NAME})"
    )
    r.add_argument(
        "--hardware", default=None, help="comma-separated chips of the energy table (default: every built-in chip)"
    )
    r.add_argument("--split", choices=SPLITS, default="test", help="split the energy is counted on")
    r.add_argument("--samples", type=int, default=256, help="number of samples the energy is counted on")
    add_data_dir(r)


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise FileNotFoundError(
            f"{str(path.parent)!r} has no {path.name} ({what}); give a run directory of 'spikeforge train'"
        )
    return read_json_file(path, "give a run directory of 'spikeforge train'")


def _check_out(out: Path) -> None:
    """Refuse to replace anything but an earlier report (recognised by its generator tag)."""
    if out.is_dir():
        raise IsADirectoryError(f"--out {str(out)!r} is a directory; give a file name such as {DEFAULT_NAME}")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"the folder of --out {str(out)!r} does not exist")
    if out.exists():
        with open(out, "rb") as f:
            head = f.read(4096)
        if P.GENERATOR.encode() not in head:
            raise FileExistsError(
                f"{str(out)!r} exists and is not a spikeforge report; remove it or pick another --out"
            )


def _figures(run_dir: Path) -> list[P.Figure]:
    """The known plots (missing ones named with the reason), then any other PNG in the run directory."""
    extra = sorted(p.name for p in run_dir.glob("*.png") if p.name not in PLOT_CAPTIONS)
    out = []
    for name in [*PLOT_CAPTIONS, *extra]:
        path = run_dir / name
        caption = PLOT_CAPTIONS.get(name, "another plot found in the run directory")
        if not path.is_file():
            why = f"{name} is missing from the run directory (a run trained with --no-plots, or plotting failed)"
            out.append(P.Figure(name, caption, problem=why))
            continue
        data = path.read_bytes()
        if not data.startswith(_PNG):
            out.append(P.Figure(name, caption, problem=f"{name} is not a PNG file; it is left out"))
        else:
            out.append(P.Figure(name, caption, png=data))
    return out


def _best_entry(
    metrics: Mapping[str, Any], run_dir: Path, select: str = "best_val"
) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """``metrics.json``'s summary ({} for an unfinished run) and the history entry of the epoch it reports
    (``select``: the run's ``TrainConfig.select``)."""
    history = metrics.get("history") if isinstance(metrics, Mapping) else None
    if not isinstance(history, list) or not history or not all(isinstance(h, Mapping) for h in history):
        raise ValueError(f"{str(run_dir / 'metrics.json')!r} holds no finished epoch (no 'history' entries)")
    saved = metrics.get("summary")
    summary: Mapping[str, Any] = saved if isinstance(saved, Mapping) else {}
    best = summary.get("best_epoch")
    entry = next((h for h in history if h.get("epoch") == best), None)
    if entry is None and select == "last":  # unfinished run: the latest epoch, as training chooses it
        entry = history[-1]
    if entry is None:  # unfinished run: the best validation accuracy so far, as training chooses it
        entry = max(history, key=lambda h: h.get("val_acc") if isinstance(h.get("val_acc"), (int, float)) else -1.0)
    return summary, entry


def _fmt(value: Any, unit: str = "") -> str:
    """A number with 4 significant digits, a bool as yes/no, None as ``-``."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, (int, float)):
        return "-" if value is None else str(value)
    return f"{value:.4g}{unit}"


def _latency(seconds: float | None) -> str:
    from spikeforge.energy._caveats import si

    return "-" if seconds is None else si(seconds, "s")


def _summary_section(
    config: Mapping[str, Any], metrics: Mapping[str, Any], energy: EnergySummary, run_dir: Path
) -> P.Section:
    from spikeforge.energy import format_energy

    select = str(config.get("select", "best_val"))  # configs saved before the field: best validation
    summary, best = _best_entry(metrics, run_dir, select)
    epoch = best.get("epoch", "-")
    rows: list[tuple[str, Any]] = [
        (
            "dataset / model / neuron",
            f"{config.get('dataset', '-')} / {config.get('model', '-')} / {config.get('neuron', '-')}",
        ),
        ("epochs run", summary.get("epochs_run", len(metrics["history"]))),
        ("reported epoch (" + ("the last" if select == "last" else "highest validation accuracy") + ")", epoch),
        ("stopped early", _fmt(summary.get("stopped_early"))),
        ("train accuracy (reported epoch, during its training pass)", pct(best.get("train_acc"))),
        ("validation accuracy", pct(best.get("val_acc"))),
        ("test accuracy", pct(best.get("test_acc"))),
        ("test loss", _fmt(best.get("test_loss"))),
        *[(f"{k} (validation split, reported epoch)", v) for k, v in activity_rows(best)],
        *[(f"energy per inference on {chip}", format_energy(r.total_j)) for chip, r in energy.reports.items()],
        ("wall time", _fmt(summary.get("wall_time_s"), " s")),
    ]
    parts = [P.table(("quantity", "value"), rows, anchor="summary-table")]
    if not summary:
        parts.insert(0, P.paragraph("metrics.json has no summary yet: the run has not finished.", css="sub"))
    n, split = energy.counts.batch_size, energy.meta.get("split", "test")
    parts.append(
        P.paragraph(
            f"Accuracies, firing rates and spikes: metrics.json. Energy: best.pt on {n} {split} samples (the energy table)."
        )
    )
    return P.Section("summary", "Summary", parts)


def _energy_section(energy: EnergySummary) -> P.Section:
    from spikeforge.energy import format_energy

    c, meta = energy.counts, energy.meta
    b = c.batch_size
    counts = [
        ("checkpoint", meta.get("checkpoint", "-")),
        ("samples", f"{b} ({meta.get('split', '-')} split), T = {c.time_steps} steps"),
        ("accuracy on these samples", pct(meta.get("accuracy_on_these_samples"))),
        *[
            (f"{what} per inference", f"{c.total(key) / b:.4g}")
            for key, what in (
                ("spikes", "spikes"),
                ("synops", "SynOps"),
                ("macs", "MACs"),
                ("neuron_updates", "neuron updates"),
            )
        ],
        *[(f"firing rate {name} (spikes/neuron/step)", f"{rate:.4g}") for name, rate in c.firing_rates().items()],
    ]
    chips = [
        (name, r.description, *map(format_energy, (r.compute_j, r.memory_j, r.total_j)), _latency(r.latency_s))
        for name, r in energy.reports.items()
    ]
    parts = [
        P.table(("counted", "value"), counts),
        P.table(
            ("chip", "description", "compute", "memory", "total per inference", "latency"), chips, anchor="energy-table"
        ),
    ]
    first = next(iter(energy.reports.values()), None)
    if first is not None and first.ann:
        ann = [
            (k, f"{a['macs']:.4g}", *(format_energy(a[f]) for f in ("compute_j", "memory_j", "total_j")))
            for k, a in first.ann.items()
        ]
        parts.append(P.paragraph("Dense ANN with the same layers, one pass per inference:"))
        parts.append(P.table(("baseline", "MACs", "compute", "memory", "total"), ann))
    caveats: dict[str, list[str]] = {}
    for name, r in energy.reports.items():
        for note in r.caveats:
            caveats.setdefault(note, []).append(name)
    if caveats:
        parts.append(P.paragraph("Caveats (the chips they apply to):"))
        parts.append(P.bullets([f"[{', '.join(names)}] {note}" for note, names in caveats.items()]))
    return P.Section("energy", "Energy per inference", parts)


def write_report(
    run_dir: str | Path,
    out: str | Path | None = None,
    *,
    hardware: Sequence[str] | str | None = None,
    split: str = "test",
    n_samples: int = 256,
    data_dir: str | None = None,
) -> dict[str, Any]:
    """Write the HTML report of ``run_dir`` to ``out`` (default ``run_dir/report.html``) atomically and return
    what it holds: ``{"report", "run_dir", "plots", "missing_plots", "hardware", "bytes"}``."""
    from spikeforge import __version__
    from spikeforge._core.files import atomic_write_bytes
    from spikeforge.cli.energy import energy_summary
    from spikeforge.energy import list_cost_models

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        what = "is not a directory" if run_dir.exists() else "does not exist"
        raise FileNotFoundError(f"run directory {str(run_dir)!r} {what}")
    out_path = Path(out) if out is not None else run_dir / DEFAULT_NAME
    _check_out(out_path)
    metrics = _read_json(run_dir / "metrics.json", "the run's metrics")
    config = _read_json(run_dir / "config.json", "the run's configuration")
    if not isinstance(config, Mapping):
        raise ValueError(f"{str(run_dir / 'config.json')!r} does not hold a configuration object")
    _best_entry(metrics, run_dir)  # fail on a bad metrics.json before counting the energy
    checkpoint = run_dir / "best.pt"
    if not checkpoint.is_file():
        raise FileNotFoundError(f"{str(run_dir)!r} has no best.pt (the checkpoint the energy table is counted on)")
    chips = list_cost_models() if hardware is None else hardware
    energy = energy_summary(checkpoint, chips, split=split, n_samples=n_samples, data_dir=data_dir)
    figures = _figures(run_dir)
    sections = [
        _summary_section(config, metrics, energy, run_dir),
        P.Section("plots", "Plots", [P.figures(figures)]),
        _energy_section(energy),
        P.Section(
            "config",
            "Configuration (config.json)",
            [P.table(("option", "value"), P.key_value_rows(config), anchor="config-table")],
        ),
    ]
    title = f"spikeforge run report: {run_dir.resolve().name}"
    document = P.page(
        title, [str(run_dir.resolve())], sections, footer=f"written by spikeforge {__version__} (spikeforge report)"
    )
    data = document.encode("utf-8")
    atomic_write_bytes(out_path, data)
    return {
        "report": str(out_path),
        "run_dir": str(run_dir),
        "plots": [f.name for f in figures if f.png is not None],
        "missing_plots": [f.name for f in figures if f.png is None],
        "hardware": list(energy.reports),
        "bytes": len(data),
    }


def run(args: argparse.Namespace) -> Output:
    from spikeforge.energy import cost_models

    if args.samples < 1:
        raise UsageError(f"--samples must be at least 1, got {args.samples}")
    if args.hardware is not None:
        try:
            cost_models(args.hardware)
        except ValueError as e:
            raise UsageError(f"--hardware: {e}") from None
    result = write_report(
        args.run, args.out, hardware=args.hardware, split=args.split, n_samples=args.samples, data_dir=args.data_dir
    )
    rows: list[tuple[str, Any]] = [
        ("report", result["report"]),
        ("plots", ", ".join(result["plots"]) or "-"),
        ("energy table", ", ".join(result["hardware"])),
    ]
    if result["missing_plots"]:
        rows.append(("missing plots", ", ".join(result["missing_plots"])))
    return Output(result, "Run report\n" + table(rows))


COMMAND = Command(
    "report", "write one self-contained HTML page of a run (plots, summary, energy, config)",
    "Write RUN/report.html: the run's plots, summary, energy table and configuration in one HTML file "
    "that needs nothing else (images embedded, no scripts, no external requests).",
    ("spikeforge report runs/yy", "spikeforge report runs/yy --out yy.html --hardware loihi,cmos45"), run, _arguments,
)  # fmt: skip
