"""estimate(): priced totals equal counts times constants; ANN baseline formula; latency; caveats; outputs."""

from __future__ import annotations

import json
from pathlib import Path
import pytest
import torch
from torch import nn

from spikeforge import LI, LIF, RecurrentLIF, SNNSequential
from spikeforge.energy import ENERGY_FIELDS, TIME_FIELDS, CostModel, count, estimate, summarize


def _init(net: nn.Module, gen: torch.Generator) -> nn.Module:
    """Deterministic weights (nn.Linear/Conv initialise from the global RNG): mostly positive, so layers spike."""
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.rand(p.shape, generator=gen) * 1.2 - 0.2)
    return net.eval()


def _chip(event_driven: bool = True, timing: bool = True) -> CostModel:
    """A cost model with distinct values, so a wrong pairing of count and constant shows."""
    values = {"e_synop": 2e-12, "e_mac": 3e-12, "e_add": 5e-12, "e_neuron_active": 7e-12, "e_neuron_inactive": 11e-12,
              "e_spike": 13e-12, "e_mem_byte": 17e-12, "bytes_per_weight": 2.0, "bytes_per_state": 3.0}
    times = {"t_synop": 1e-9, "t_mac": 2e-9, "t_add": 3e-9, "t_neuron_active": 4e-9, "t_neuron_inactive": 5e-9,
             "t_spike": 6e-9, "t_step": 1e-6}
    consts = {k: {"value": v, "unit": ENERGY_FIELDS[k], "citation": "test"} for k, v in values.items()}
    if timing:
        consts.update({k: {"value": v, "unit": TIME_FIELDS[k], "citation": "test"} for k, v in times.items()})
    return CostModel.from_dict({"name": "testchip", "event_driven": event_driven, "constants": consts,
                                "caveats": ["a test chip"]})


def _net_and_input(gen: torch.Generator) -> tuple[SNNSequential, torch.Tensor]:
    net = SNNSequential(nn.Conv2d(1, 2, 3, stride=2, padding=1), LIF(2.0, v_th=0.2), nn.AvgPool2d(2), nn.Flatten(),
                        nn.Linear(8, 4), LIF(2.0, v_th=0.2), nn.Linear(4, 3), LI())
    _init(net, gen)
    x = torch.rand(4, 3, 1, 7, 7, generator=gen)  # analog input: the conv does dense MACs
    return net, x


def test_event_driven_totals_equal_counts_times_constants(gen: torch.Generator) -> None:
    net, x = _net_and_input(gen)
    counts = count(net, x)
    chip = _chip()
    r = estimate(counts, chip, ann_baselines=())
    b = counts.batch_size
    compute = memory = seconds = 0.0
    for c in counts.layers:
        compute += (c.synops * 2e-12 + c.macs * 3e-12 + c.adds * 5e-12 + c.active_updates * 7e-12
                    + (c.neuron_updates - c.active_updates) * 11e-12 + c.spikes * 13e-12) / b
        memory += (c.weight_reads * 2.0 + (c.state_reads + c.state_writes) * 3.0) * 17e-12 / b
        seconds += (c.synops * 1e-9 + c.macs * 2e-9 + c.adds * 3e-9 + c.active_updates * 4e-9
                    + (c.neuron_updates - c.active_updates) * 5e-9 + c.spikes * 6e-9) / b
    assert counts.total("macs") > 0 and counts.total("synops") > 0 and counts.total("adds") > 0
    assert r.compute_j == pytest.approx(compute, rel=1e-12)
    assert r.memory_j == pytest.approx(memory, rel=1e-12)
    assert r.total_j == pytest.approx(compute + memory, rel=1e-12)
    assert r.latency_s == pytest.approx(seconds + 4 * 1e-6, rel=1e-12)
    assert "a test chip" in r.caveats


def test_dense_device_prices_every_step_densely(gen: torch.Generator) -> None:
    net, x = _net_and_input(gen)
    counts = count(net, x)
    r = estimate(counts, _chip(event_driven=False, timing=False), ann_baselines=())
    b = counts.batch_size
    expected = sum(c.dense_macs * 3e-12 + c.adds * 5e-12 + c.neuron_updates * 7e-12 + c.spikes * 13e-12
                   for c in counts.layers) / b
    assert r.compute_j == pytest.approx(expected, rel=1e-12)
    assert r.latency_s is None
    assert any("densely" in c for c in r.caveats)


def test_ann_baseline_macs_equal_standard_formula(gen: torch.Generator) -> None:
    net, x = _net_and_input(gen)
    r = estimate(count(net, x), "loihi")
    conv = 1 * 3 * 3 * 2 * 4 * 4  # C_in k_h k_w C_out H_out W_out, 7x7 -> 4x4 at stride 2 padding 1
    linears = 8 * 4 + 4 * 3
    assert r.ann["cmos45"]["macs"] == conv + linears
    neurons = 2 * 4 * 4 + 4 + 3
    pool_adds = 2 * 2 * 2 * (4 - 1 + 1)  # 2x2 windows of 4 real inputs: 3 adds + 1 division
    assert r.ann["cmos45"]["adds"] == neurons + pool_adds
    assert r.ann["cmos45"]["compute_j"] == pytest.approx((conv + linears) * 4.6e-12 + (neurons + pool_adds) * 0.9e-12)
    assert r.ann["cmos45_int8"]["total_j"] < r.ann["cmos45"]["total_j"]


def test_recurrent_network_omits_feedforward_caveat_and_high_rate_is_flagged(gen: torch.Generator) -> None:
    x = (torch.rand(30, 2, 3, generator=gen) < 0.8).float()
    rec = _init(SNNSequential(nn.Linear(3, 5), RecurrentLIF(5, 2.0, v_th=0.05), nn.Linear(5, 2), LI()), gen)
    ff = _init(SNNSequential(nn.Linear(3, 5), LIF(2.0, v_th=0.05), nn.Linear(5, 2), LI()), gen)
    r_rec, r_ff = estimate(count(rec, x), "loihi"), estimate(count(ff, x), "loihi")
    assert not any("Davies et al. 2021" in c for c in r_rec.caveats)
    assert any("Davies et al. 2021" in c for c in r_ff.caveats)
    assert any("firing rate" in c for c in r_ff.caveats)
    assert any("cmos45_int8" in c for c in r_ff.caveats)


def test_table_json_plot(gen: torch.Generator, tmp_path: Path) -> None:
    net, x = _net_and_input(gen)
    r = estimate(count(net, x), "loihi")
    text = r.table()
    assert "loihi" in text and "layers.4" in text and "caveats" in text
    d = json.loads(r.to_json())
    assert d["total_j"] == pytest.approx(r.total_j) and len(d["layers"]) == len(r.layers)
    png = r.plot(tmp_path / "e.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="png"):
        r.plot(tmp_path / "e.pdf")
    with pytest.raises(TypeError, match="OpCounts"):
        estimate({"synops": 1}, "loihi")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="valid cost models"):
        estimate(count(net, x), "loihi9")


def test_summarize_many_chips(gen: torch.Generator, tmp_path: Path) -> None:
    net, x = _net_and_input(gen)
    s = summarize(net, x, "loihi, cmos45,gpu_v100")
    assert list(s.reports) == ["loihi", "cmos45", "gpu_v100"]
    assert s.reports["cmos45"].total_j == pytest.approx(estimate(s.counts, "cmos45").total_j)
    assert "gpu_v100" in s.table() and json.loads(s.to_json())["reports"]["loihi"]["chip"] == "loihi"
    assert s.plot(tmp_path / "s.png").stat().st_size > 0
    with pytest.raises(ValueError, match="valid cost models"):
        summarize(net, x, ["loihi", "nope"])
    with pytest.raises(ValueError, match="at least one"):
        summarize(net, x, "")
