"""Energy and operation accounting: count operations exactly, then price them on a chip.

::

    from spikeforge.energy import count, estimate, summarize
    counts = count(net.eval(), x_seq)              # exact per-layer SynOps, MACs, spikes, updates, bytes
    report = estimate(counts, "loihi")             # per-layer energy, totals, latency, ANN baseline, caveats
    print(report.table()); report.plot("loihi.png"); report.to_json()
    print(summarize(net, x_seq, ["loihi", "cmos45", "gpu_v100"]).table())

Chips (``list_cost_models()``): ``cmos45``, ``cmos45_int8``, ``loihi``, ``truenorth``, ``spinnaker``,
``gpu_v100``; every constant carries its citation and caveat (``spikeforge/energy/costs.json``).
"""

from spikeforge.energy.costs import (
    ENERGY_FIELDS,
    TIME_FIELDS,
    Constant,
    CostModel,
    get_cost_model,
    list_cost_models,
    load_cost_models,
)
from spikeforge.energy.counts import SUPPORTED_MODULES, LayerCounts, OpCounts, conv_fanout, count
from spikeforge.energy.report import ANN_BASELINES, EnergyReport, LayerEnergy, estimate, format_energy
from spikeforge.energy.summary import DEFAULT_HARDWARE, EnergySummary, cost_models, summarize

__all__ = [
    "count",
    "OpCounts",
    "LayerCounts",
    "conv_fanout",
    "SUPPORTED_MODULES",
    "CostModel",
    "Constant",
    "load_cost_models",
    "get_cost_model",
    "list_cost_models",
    "ENERGY_FIELDS",
    "TIME_FIELDS",
    "estimate",
    "EnergyReport",
    "LayerEnergy",
    "ANN_BASELINES",
    "format_energy",
    "summarize",
    "EnergySummary",
    "cost_models",
    "DEFAULT_HARDWARE",
]
