r"""Price an :class:`~spikeforge.energy.OpCounts` on one chip: :func:`estimate` -> :class:`EnergyReport`.

Per layer and per inference (batch totals divided by ``B``), on an **event-driven** chip:

.. math::

    E_\text{compute} = N_\text{synop} e_\text{synop} + N_\text{MAC} e_\text{MAC} + N_\text{add} e_\text{add}
        + N_\text{active} e_\text{active} + (N_\text{upd} - N_\text{active}) e_\text{inactive}
        + N_\text{spike} e_\text{spike}

    E_\text{memory} = \big(N_\text{weight reads} b_w + (N_\text{state reads} + N_\text{state writes}) b_s\big)
        e_\text{byte}

A **dense** device (``event_driven=False``, the GPU) runs every synaptic layer as MACs at every step
(``dense_macs``) and updates every neuron as active. The latency, where the chip has timing, is the
serial sum of operation times plus ``T * t_step``. The **dense ANN baseline** is the same layers run
once without time: MACs = ``dense_macs / T`` per layer (the standard formula), one activation per
neuron and the pooling adds, priced on ``cmos45``, ``cmos45_int8`` and ``gpu_v100``, one weight read
per MAC.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from spikeforge._core.files import save_figure
from spikeforge.energy._caveats import caveats as _caveats
from spikeforge.energy._caveats import si as _si
from spikeforge.energy.costs import CostModel
from spikeforge.energy.costs import get_cost_model
from spikeforge.energy.counts import OpCounts

__all__ = ["LayerEnergy", "EnergyReport", "estimate", "ANN_BASELINES", "format_energy"]

#: Cost models on which the dense ANN version of the network is priced.
ANN_BASELINES: tuple[str, ...] = ("cmos45", "cmos45_int8", "gpu_v100")


def format_energy(joules: float) -> str:
    """``1.23e-9`` -> ``'1.23 nJ'``."""
    return _si(joules, "J")


@dataclass(frozen=True)
class LayerEnergy:
    """Energy of one layer per inference (J), split by operation type and memory."""

    name: str
    kind: str
    synop_j: float = 0.0
    mac_j: float = 0.0
    add_j: float = 0.0
    neuron_j: float = 0.0
    spike_j: float = 0.0
    memory_j: float = 0.0

    @property
    def compute_j(self) -> float:
        return self.synop_j + self.mac_j + self.add_j + self.neuron_j + self.spike_j

    @property
    def total_j(self) -> float:
        return self.compute_j + self.memory_j

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "synop_j": self.synop_j,
            "mac_j": self.mac_j,
            "add_j": self.add_j,
            "neuron_j": self.neuron_j,
            "spike_j": self.spike_j,
            "compute_j": self.compute_j,
            "memory_j": self.memory_j,
            "total_j": self.total_j,
        }


@dataclass(frozen=True)
class EnergyReport:
    """Energy of one network run on one chip, per inference. Build with :func:`estimate`.

    Attributes:
        chip, description: the cost model's name and description.
        time_steps, batch_size: of the counted run (energies are batch totals / ``batch_size``).
        layers: per-layer :class:`LayerEnergy`.
        compute_j / memory_j / total_j: per-inference sums (J); ``total = compute + memory``.
        latency_s: serial latency estimate per inference (s), None if the chip has no timing.
        ops: per-inference operation counts of the whole network.
        layer_ops: per layer, the SynOps and MACs priced on this chip (per inference).
        ann: dense ANN baseline per baseline chip: ``{"macs", "adds", "compute_j", "memory_j", "total_j"}``.
        caveats: statements that qualify this estimate.
    """

    chip: str
    description: str
    time_steps: int
    batch_size: int
    layers: tuple[LayerEnergy, ...]
    latency_s: float | None
    ops: Mapping[str, float]
    ann: Mapping[str, Mapping[str, float]]
    caveats: tuple[str, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict)
    layer_ops: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    @property
    def compute_j(self) -> float:
        return sum(layer.compute_j for layer in self.layers)

    @property
    def memory_j(self) -> float:
        return sum(layer.memory_j for layer in self.layers)

    @property
    def total_j(self) -> float:
        return self.compute_j + self.memory_j

    def to_dict(self) -> dict[str, Any]:
        return {
            "chip": self.chip,
            "description": self.description,
            "time_steps": self.time_steps,
            "batch_size": self.batch_size,
            "per": "inference",
            "compute_j": self.compute_j,
            "memory_j": self.memory_j,
            "total_j": self.total_j,
            "latency_s": self.latency_s,
            "ops": dict(self.ops),
            "ann": {k: dict(v) for k, v in self.ann.items()},
            "layers": [layer.to_dict() for layer in self.layers],
            "caveats": list(self.caveats),
            "sources": dict(self.sources),
            "layer_ops": {k: dict(v) for k, v in self.layer_ops.items()},
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def table(self) -> str:
        """Human-readable per-layer table, totals, latency, ANN baselines and caveats."""
        lines = [
            f"{self.chip}: {self.description}",
            f"per inference; T = {self.time_steps} steps, averaged over {self.batch_size} samples",
            f"{'layer':<22}{'kind':<11}{'SynOps':>12}{'MACs':>12}{'compute':>12}{'memory':>12}{'total':>12}",
        ]
        for layer in self.layers:
            o = self.layer_ops.get(layer.name, {})
            lines.append(
                f"{layer.name[:21]:<22}{layer.kind:<11}{o.get('synops', 0):>12.4g}{o.get('macs', 0):>12.4g}"
                f"{_si(layer.compute_j, 'J'):>12}{_si(layer.memory_j, 'J'):>12}{_si(layer.total_j, 'J'):>12}"
            )
        lines.append(
            f"{'total':<55}{_si(self.compute_j, 'J'):>12}{_si(self.memory_j, 'J'):>12}{_si(self.total_j, 'J'):>12}"
        )
        lines.append(
            f"spikes {self.ops['spikes']:.4g}, SynOps {self.ops['synops']:.4g}, MACs {self.ops['macs']:.4g}, "
            f"neuron updates {self.ops['neuron_updates']:.4g} per inference"
        )
        lines.append(
            "latency: " + (_si(self.latency_s, "s") if self.latency_s is not None else "no timing data for this chip")
        )
        if self.ann:
            first = next(iter(self.ann.values()))
            parts = [f"{k} {_si(v['total_j'], 'J')}" for k, v in self.ann.items()]
            lines.append(f"dense ANN baseline ({first['macs']:.4g} MACs, one pass): " + "; ".join(parts))
        if self.caveats:
            lines.append("caveats:")
            lines.extend(f"  - {c}" for c in self.caveats)
        return "\n".join(lines)

    def plot(self, path: str | Path) -> Path:
        """Bar plot (PNG) of compute and memory energy per layer, with the ANN baselines' totals."""
        fig, ax = _figure()
        names = [layer.name for layer in self.layers]
        comp = [layer.compute_j for layer in self.layers]
        mem = [layer.memory_j for layer in self.layers]
        ax.bar(names, comp, label="compute")
        ax.bar(names, mem, bottom=comp, label="memory")
        for i, (k, v) in enumerate(self.ann.items()):
            ax.axhline(v["total_j"], linestyle="--", color=f"C{i + 2}", label=f"ANN on {k} (whole net)")
        ax.set_xlabel("layer")
        ax.set_ylabel("energy per inference (J)")
        ax.set_title(f"{self.chip}: total {_si(self.total_j, 'J')} per inference, T = {self.time_steps}")
        ax.tick_params(axis="x", labelrotation=45)
        ax.legend(fontsize=7)
        return _save(fig, path)


def _figure() -> tuple[Any, Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("energy plots need matplotlib: pip install 'spikeforge[plot]'") from e
    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"energy plots are written as PNG; give a path ending in .png, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, path, format="png", dpi=110)  # atomic, never through a planted link


def _price_layers(counts: OpCounts, cm: CostModel) -> tuple[list[LayerEnergy], float | None, list[str]]:
    b = counts.batch_size
    out: list[LayerEnergy] = []
    seconds = 0.0
    untimed: set[str] = set()

    def t(name: str, n: float) -> float:
        value = getattr(cm, name)
        if value is None:
            if n:
                untimed.add(name)
            return 0.0
        return value * n

    for x in counts.layers:
        upd, act = x.neuron_updates / b, x.active_updates / b
        if cm.event_driven:
            synops, macs, wreads = x.synops / b, x.macs / b, x.weight_reads / b
            neuron_j = act * cm.e_neuron_active + (upd - act) * cm.e_neuron_inactive
            seconds += t("t_synop", synops) + t("t_neuron_active", act) + t("t_neuron_inactive", upd - act)
        else:
            synops, macs, wreads = 0.0, x.dense_macs / b, x.dense_macs / b
            neuron_j = upd * cm.e_neuron_active
            seconds += t("t_neuron_active", upd)
        adds, spikes = x.adds / b, x.spikes / b
        seconds += t("t_mac", macs) + t("t_add", adds) + t("t_spike", spikes)
        mem_bytes = wreads * cm.bytes_per_weight + (x.state_reads + x.state_writes) / b * cm.bytes_per_state
        out.append(
            LayerEnergy(
                name=x.name,
                kind=x.kind,
                synop_j=synops * (cm.e_synop or 0.0),
                mac_j=macs * cm.e_mac,
                add_j=adds * cm.e_add,
                neuron_j=neuron_j,
                spike_j=spikes * cm.e_spike,
                memory_j=mem_bytes * cm.e_mem_byte,
            )
        )
    if not cm.has_timing:
        return out, None, []
    seconds += (cm.t_step or 0.0) * counts.time_steps
    return out, seconds, sorted(untimed)


def _ann(counts: OpCounts, baselines: Sequence[CostModel]) -> dict[str, dict[str, float]]:
    tb = counts.time_steps * counts.batch_size
    macs = sum(x.dense_macs for x in counts.layers) / tb
    adds = sum(x.adds + x.neuron_updates for x in counts.layers) / tb
    out: dict[str, dict[str, float]] = {}
    for cm in baselines:
        compute = macs * cm.e_mac + adds * cm.e_add
        memory = macs * cm.bytes_per_weight * cm.e_mem_byte
        out[cm.name] = {
            "macs": macs,
            "adds": adds,
            "compute_j": compute,
            "memory_j": memory,
            "total_j": compute + memory,
        }
    return out


def estimate(
    counts: OpCounts,
    cost_model: CostModel | str,
    *,
    ann_baselines: Sequence[CostModel | str] = ANN_BASELINES,
    extra_models: Mapping[str, CostModel] | None = None,
) -> EnergyReport:
    """Price ``counts`` on ``cost_model`` (a :class:`CostModel` or a built-in name, e.g. ``"loihi"``).

    Args:
        counts: from :func:`~spikeforge.energy.count`.
        cost_model: the chip.
        ann_baselines: chips on which the dense ANN version is priced (empty for none).
        extra_models: user cost models looked up by name besides the built-ins.
    Returns:
        :class:`EnergyReport` with per-inference energies (J) and, where the chip has timing, latency (s).
    """
    if not isinstance(counts, OpCounts):
        raise TypeError(f"counts must be an OpCounts from spikeforge.energy.count, got {type(counts).__name__}")
    cm = get_cost_model(cost_model, extra_models)
    baselines = [get_cost_model(m, extra_models) for m in ann_baselines]
    layers, latency, untimed = _price_layers(counts, cm)
    total = sum(x.total_j for x in layers)
    ann = _ann(counts, baselines)
    b = counts.batch_size
    ops = {
        k: counts.total(k) / b
        for k in ("synops", "macs", "dense_macs", "adds", "neuron_updates", "active_updates", "spikes")
    }
    layer_ops = {
        x.name: {
            "synops": (x.synops if cm.event_driven else 0) / b,
            "macs": (x.macs if cm.event_driven else x.dense_macs) / b,
        }
        for x in counts.layers
    }
    used = [
        f
        for f, n in (
            ("e_synop", ops["synops"] if cm.event_driven else 0),
            ("e_mac", ops["macs"] if cm.event_driven else ops["dense_macs"]),
            ("e_neuron_active", ops["neuron_updates"]),
            ("e_mem_byte", 1),
            ("t_step", 1 if latency is not None else 0),
        )
        if n
    ]
    caveats = _caveats(counts, cm, total, ann, untimed, used)
    sources = {k: c.citation for k, c in cm.sources.items()}
    return EnergyReport(
        chip=cm.name,
        description=cm.description,
        time_steps=counts.time_steps,
        batch_size=b,
        layers=tuple(layers),
        latency_s=latency,
        ops=ops,
        ann=ann,
        caveats=tuple(caveats),
        sources=sources,
        layer_ops=layer_ops,
    )
