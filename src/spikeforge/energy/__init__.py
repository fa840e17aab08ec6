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

from spikeforge.energy.costs import ENERGY_FIELDS
from spikeforge.energy.costs import TIME_FIELDS
from spikeforge.energy.costs import Constant
from spikeforge.energy.costs import CostModel
from spikeforge.energy.costs import get_cost_model
from spikeforge.energy.costs import list_cost_models
from spikeforge.energy.costs import load_cost_models
from spikeforge.energy.counts import SUPPORTED_MODULES
from spikeforge.energy.counts import LayerCounts
from spikeforge.energy.counts import OpCounts
from spikeforge.energy.counts import conv_fanout
from spikeforge.energy.counts import count
from spikeforge.energy.report import ANN_BASELINES
from spikeforge.energy.report import EnergyReport
from spikeforge.energy.report import LayerEnergy
from spikeforge.energy.report import estimate
from spikeforge.energy.report import format_energy
from spikeforge.energy.summary import DEFAULT_HARDWARE
from spikeforge.energy.summary import EnergySummary
from spikeforge.energy.summary import cost_models
from spikeforge.energy.summary import summarize

__all__ = [
    "count", "OpCounts", "LayerCounts", "conv_fanout", "SUPPORTED_MODULES", "CostModel", "Constant",
    "load_cost_models", "get_cost_model", "list_cost_models", "ENERGY_FIELDS", "TIME_FIELDS", "estimate",
    "EnergyReport", "LayerEnergy", "ANN_BASELINES", "format_energy", "summarize", "EnergySummary", "cost_models",
    "DEFAULT_HARDWARE",
]  # fmt: skip
