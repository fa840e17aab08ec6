"""The caveats an :class:`~spikeforge.energy.EnergyReport` carries: statements that qualify one estimate."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence

from spikeforge.energy._opcounts import OpCounts
from spikeforge.energy.costs import CostModel

__all__ = ["caveats", "si"]

_DAVIES_2021 = (
    "Davies et al. 2021 (Proc. IEEE 109(5)) measured on Loihi that 'conventional feedforward deep neural networks "
    "show modest if any benefit'; the large gains they report come from recurrent, sparse, timing-based networks. "
    "This network is feed-forward"
)


def si(value: float, unit: str) -> str:
    if value == 0:
        return f"0 {unit}"
    for scale, prefix in ((1, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"), (1e-12, "p"), (1e-15, "f")):
        if abs(value) >= scale * (1 - 1e-9):
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def caveats(
    counts: OpCounts,
    cm: CostModel,
    total: float,
    ann: Mapping[str, Mapping[str, float]],
    untimed: Sequence[str],
    used: Sequence[str],
) -> list[str]:
    notes = list(cm.caveats)
    for key in used:
        src = cm.sources.get(key)
        if src is not None and src.caveat:
            notes.append(f"{key}: {src.caveat}")
    rates = counts.firing_rates()
    if rates:
        mean_rate = sum(rates.values()) / len(rates)
        if counts.time_steps * mean_rate > 0.2:
            notes.append(
                f"T x mean firing rate = {counts.time_steps} x {mean_rate:.3g} = {counts.time_steps * mean_rate:.3g} spikes "
                "per neuron per inference (> 0.2): at 0.9 pJ per accumulate versus 4.6 pJ per MAC (45 nm) a spiking layer "
                "is cheaper than its ANN layer only below about 0.2; the advantage shrinks at high rates and many steps"
            )
    if counts.time_steps >= 100:
        notes.append(
            f"{counts.time_steps} time steps: every neuron is updated {counts.time_steps} times per inference, "
            "and dense-input layers run at every step"
        )
    dense_in = [x.name for x in counts.layers if x.kind in ("linear", "conv") and x.input_binary is False]
    if dense_in:
        notes.append(f"layers {dense_in} receive non-spike input and are priced as dense MACs at every time step")
    bn = [x.name for x in counts.layers if x.kind == "batchnorm"]
    if bn:
        notes.append(
            f"BatchNorm layers {bn} are priced as 1 MAC per element per step; fold them into the preceding "
            "layer for deployment (then they cost nothing)"
        )
    delayed = [x.name for x in counts.layers if x.delay_buffer]
    if delayed:
        notes.append(
            f"delayed layers {delayed} count their synaptic ops as the Linear of the same shape, each spike when it "
            "arrives (spikes still in flight at the last step are not counted); each delay line stores "
            "(max_delay + 1) x in_features values per sample, priced as state memory per read and write only"
        )
    srm = [x.name for x in counts.layers if x.kind == "neuron" and x.module_type == "SRM"]
    if srm:
        notes.append(
            f"SRM layers {srm} are priced as neuron updates (4 state values read and written per neuron per step); "
            "their PSP filter acts on the summed current, so it costs per neuron, not per synapse: SLAYER's "
            "per-input filtering would add 2 state updates per input channel per step"
        )
    if counts.uncounted:
        notes.append(f"modules {list(counts.uncounted)} are of a type count() does not know and were NOT counted")
    if not cm.event_driven:
        notes.append(f"{cm.name} runs spike tensors densely: sparsity saves nothing")
    for name in ("cmos45", "cmos45_int8"):
        if name in ann and ann[name]["total_j"] < total:
            notes.append(
                f"the dense ANN version on {name} ({si(ann[name]['total_j'], 'J')}) is cheaper than this "
                f"estimate ({si(total, 'J')})"
            )
    if not counts.recurrent:
        notes.append(_DAVIES_2021)
    if untimed:
        notes.append(f"latency excludes operations without a published time: {', '.join(untimed)}")
    return notes
