"""One network, several chips: :func:`summarize` counts one run and prices it on each chip.

``spikeforge energy`` (:mod:`spikeforge.cli.energy`) loads a checkpoint and calls :func:`summarize`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from torch import Tensor
from torch import nn

from spikeforge.energy.costs import CostModel
from spikeforge.energy.costs import get_cost_model
from spikeforge.energy.counts import OpCounts
from spikeforge.energy.counts import _run_counted
from spikeforge.energy.report import EnergyReport
from spikeforge.energy.report import _figure
from spikeforge.energy.report import _save
from spikeforge.energy.report import _si
from spikeforge.energy.report import estimate

__all__ = ["EnergySummary", "summarize", "cost_models", "DEFAULT_HARDWARE"]

#: Chips shown when none are named (e.g. in the training summary).
DEFAULT_HARDWARE: tuple[str, ...] = ("cmos45", "loihi")


def _energy_row(label: str, compute_j: float, memory_j: float, total_j: float) -> str:
    return f"{label:<14}{_si(compute_j, 'J'):>12}{_si(memory_j, 'J'):>12}{_si(total_j, 'J'):>12}"


@dataclass(frozen=True)
class EnergySummary:
    """Counts of one run and its :class:`EnergyReport` on each chip; ``meta`` describes the run."""

    counts: OpCounts
    reports: Mapping[str, EnergyReport]
    meta: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "meta": dict(self.meta),
            "counts": self.counts.to_dict(),
            "reports": {k: r.to_dict() for k, r in self.reports.items()},
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def table(self) -> str:
        """Counts per inference, one line per chip, the dense ANN baselines, and every caveat once."""
        c = self.counts
        b = c.batch_size
        lines = [f"{k}: {v}" for k, v in self.meta.items()]
        lines.append(
            f"per inference (T = {c.time_steps}, averaged over {b} samples): "
            f"spikes {c.total('spikes') / b:.4g}, SynOps {c.total('synops') / b:.4g}, "
            f"MACs {c.total('macs') / b:.4g}, "
            f"neuron updates {c.total('neuron_updates') / b:.4g}"
        )
        rates = c.firing_rates()
        if rates:
            lines.append("firing rate (spikes/neuron/step): " + ", ".join(f"{k} {v:.3g}" for k, v in rates.items()))
        lines.append(f"{'chip':<14}{'compute':>12}{'memory':>12}{'total':>12}{'latency':>12}")
        for name, r in self.reports.items():
            lat = _si(r.latency_s, "s") if r.latency_s is not None else "-"
            lines.append(_energy_row(name, r.compute_j, r.memory_j, r.total_j) + f"{lat:>12}")
        first = next(iter(self.reports.values()), None)
        if first is not None and first.ann:
            macs = next(iter(first.ann.values()))["macs"]
            lines.append(f"dense ANN, same layers, one pass ({macs:.4g} MACs):")
            for name, a in first.ann.items():
                lines.append(_energy_row("  " + name, a["compute_j"], a["memory_j"], a["total_j"]))
        chips_of: dict[str, list[str]] = {}
        for name, r in self.reports.items():
            for note in r.caveats:
                chips_of.setdefault(note, []).append(name)
        if chips_of:
            lines.append("caveats ([chips they apply to]):")
            lines.extend(f"  - [{', '.join(chips)}] {note}" for note, chips in chips_of.items())
        return "\n".join(lines)

    def plot(self, path: str | Path) -> Path:
        """Bar plot (PNG, log scale) of the total energy per inference on each chip and of the ANN baselines."""
        fig, ax = _figure()
        names = list(self.reports)
        values = [self.reports[n].total_j for n in names]
        colors = ["C0"] * len(names)
        first = next(iter(self.reports.values()), None)
        if first is not None:
            for k, a in first.ann.items():
                names.append(f"ANN {k}")
                values.append(a["total_j"])
                colors.append("C1")
        ax.bar(names, values, color=colors)
        if all(v > 0 for v in values):
            ax.set_yscale("log")
        ax.set_xlabel("chip (SNN) or dense ANN baseline")
        ax.set_ylabel("energy per inference (J)")
        ax.set_title(f"SNN (T = {self.counts.time_steps}) per chip vs dense ANN baselines")
        ax.tick_params(axis="x", labelrotation=45)
        return _save(fig, path)


def cost_models(
    hardware: Sequence[str | CostModel] | str, extra_models: Mapping[str, CostModel] | None = None
) -> list[CostModel]:
    """The cost models of ``hardware`` (names, :class:`CostModel` objects, or a comma-separated string of
    names), looked up in the built-ins and ``extra_models``; an unknown name raises ``ValueError``."""
    items = hardware.split(",") if isinstance(hardware, str) else list(hardware)
    names = [n.strip() if isinstance(n, str) else n for n in items]
    names = [n for n in names if isinstance(n, CostModel) or (isinstance(n, str) and n)]
    if not names:
        raise ValueError("name at least one chip, e.g. hardware=['loihi', 'cmos45']")
    return [get_cost_model(n, extra_models) for n in names]


def summarize(
    model: nn.Module,
    x_seq: Tensor,
    hardware: Sequence[str | CostModel] | str = DEFAULT_HARDWARE,
    *,
    extra_models: Mapping[str, CostModel] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> EnergySummary:
    """Count one run of ``model`` on ``x_seq [T, B, ...]`` and price it on each chip in ``hardware``
    (see :func:`cost_models`). Unknown chip names raise before the model runs."""
    models = cost_models(hardware, extra_models)
    _, counts = _run_counted(model, x_seq)
    reports = {m.name: estimate(counts, m, extra_models=extra_models) for m in models}
    return EnergySummary(counts=counts, reports=reports, meta=dict(meta or {}))
