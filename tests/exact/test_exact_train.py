"""fit_eventprop: the unit weight, the latency code, learning a toy task with both readouts, bad settings."""

from __future__ import annotations

import math

import pytest
import torch

from spikeforge.exact import EventConfig
from spikeforge.exact import simulate
from spikeforge.training.exact_eventprop import EventPropTrainConfig
from spikeforge.training.exact_eventprop import fit_eventprop
from spikeforge.training.exact_eventprop import latency_code
from spikeforge.training.exact_eventprop import predict
from spikeforge.training.exact_eventprop import unit_weight


@pytest.mark.parametrize(("tau_mem", "tau_syn"), [(20.0, 5.0), (10.0, 10.0), (5.0, 8.0)])
def test_unit_weight_peaks_exactly_at_threshold(tau_mem: float, tau_syn: float) -> None:
    w = unit_weight(tau_mem, tau_syn, 1.5)
    cfg = EventConfig(tau_mem=tau_mem, tau_syn=tau_syn, v_th=1.5, max_spikes=2)
    x = torch.tensor([[[1.0]]], dtype=torch.float64)
    fired = [
        bool(torch.isfinite(simulate(x, [torch.tensor([[w * f]], dtype=torch.float64)], cfg)[0]).any())
        for f in (1 - 1e-9, 1 + 1e-9)
    ]
    assert fired == [False, True]


def test_latency_code_layout() -> None:
    feats = torch.tensor([[0.0, 1.0, 0.25], [0.5, 0.5, 1.0]], dtype=torch.float64)
    t = latency_code(feats, 10.0, 3.0)
    assert t.shape == (2, 4, 1)
    assert t[0, :, 0].tolist() == [0.0, 10.0, 2.5, 3.0] and t[1, :, 0].tolist() == [5.0, 5.0, 10.0, 3.0]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        latency_code(feats * 2, 10.0, 0.0)
    with pytest.raises(ValueError, match="B, F"):
        latency_code(feats[0], 10.0, 0.0)


@pytest.mark.parametrize(("readout", "lr"), [("first_spike", 1e-2), ("max_membrane", 2e-2)])
def test_learns_a_toy_task(readout: str, lr: float) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(240, 2, generator=gen, dtype=torch.float64)
    y = (x[:, 0] > x[:, 1]).long()
    cfg = EventPropTrainConfig(hidden=20, epochs=6, batch_size=16, lr=lr, readout=readout)  # type: ignore[arg-type]
    rows: list[dict[str, float]] = []
    result = fit_eventprop(x[:200], y[:200], x[200:], y[200:], cfg, on_epoch=rows.append)
    assert rows == result.history and len(rows) == 6
    assert all(math.isfinite(r["loss"]) and r["seconds"] > 0 for r in rows)
    assert max(r["train_acc"] for r in rows[-2:]) >= 0.8 > rows[0]["train_acc"] - 0.1  # training is noisy
    assert rows[-1]["loss"] < rows[0]["loss"]
    acc = float((predict(result.weights, x[200:], cfg) == y[200:]).double().mean())
    assert acc == rows[-1]["test_acc"]
    assert [tuple(w.shape) for w in result.weights] == [(20, 3), (2, 20)]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hidden": 0}, "hidden"),
        ({"epochs": -1}, "epochs"),
        ({"lr": 0.0}, "lr"),
        ({"t_end": math.inf}, "t_end"),
        ({"readout": "rate"}, "readout"),
        ({"init": ((0.1, 0.1),)}, "init"),
        ({"tau_syn": -1.0}, "tau_syn"),
    ],
)
def test_bad_settings_raise(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        EventPropTrainConfig(**kwargs)  # type: ignore[arg-type]
