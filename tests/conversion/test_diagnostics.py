"""Accuracy against T (reference recomputed by hand), tables/plots, per-layer errors, convert_command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from spikeforge.cli.convert import convert_command
from spikeforge.conversion import AccuracyCurve, accuracy_over_time, convert, layer_errors
from spikeforge.training.ann import mlp, vgg_small


def _snn(gen: torch.Generator):
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3)).eval()
    x = torch.rand(30, 4, generator=gen)
    return net, x, convert(net, x)


def test_accuracy_over_time_matches_direct_computation(gen: torch.Generator) -> None:
    net, x, snn = _snn(gen)
    with torch.no_grad():
        y = net(x).argmax(-1)
        out = snn.run(snn.encode(x, 16))
    curve = accuracy_over_time(snn, x, y, (1, 4, 16), batch_size=7, chunk=3)
    for t, acc, spk in zip(curve.steps, curve.accuracy, curve.spikes_per_inference):
        ref = float((out.output[:t].mean(0).argmax(-1) == y).double().mean())
        assert acc == pytest.approx(ref)
        ref_spikes = sum(float(v[:t].sum()) for v in out.spikes_per_step.values()) / x.shape[0]
        assert spk == pytest.approx(ref_spikes)
    assert curve.accuracy[-1] >= curve.accuracy[0]


def test_curve_table_dict_and_plot(gen: torch.Generator, tmp_path: Path) -> None:
    net, x, snn = _snn(gen)
    with torch.no_grad():
        y = net(x).argmax(-1)
    curve = accuracy_over_time(snn, x, y, [2, 1], ann_accuracy=1.0, label="demo")
    assert curve.steps == [1, 2]
    d = json.loads(curve.to_json())
    assert d["steps"] == [1, 2] and d["ann_accuracy"] == 1.0 and d["num_samples"] == 30
    table = curve.table()
    assert "demo" in table and "ANN 100.00 %" in table and len(table.splitlines()) == 4
    png = curve.plot(tmp_path / "acc.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bare = AccuracyCurve([1], [0.5], [3.0], 2)
    assert "-" in bare.table().splitlines()[-1]


def test_accuracy_over_time_bad_input(gen: torch.Generator) -> None:
    _, x, snn = _snn(gen)
    y = torch.zeros(30, dtype=torch.int64)
    with pytest.raises(ValueError, match="steps"):
        accuracy_over_time(snn, x, y, (0, 4))
    with pytest.raises(ValueError, match="steps"):
        accuracy_over_time(snn, x, y, ())
    with pytest.raises(ValueError, match="same N"):
        accuracy_over_time(snn, x, y[:3], (1,))
    with pytest.raises(ValueError, match="chunk"):
        accuracy_over_time(snn, x, y, (1,), chunk=0)


def test_layer_errors_shrink_with_t_and_match_definition(gen: torch.Generator) -> None:
    net, x, snn = _snn(gen)
    e8, e256 = layer_errors(snn, x, 8), layer_errors(snn, x, 256)
    assert [e.name for e in e8] == snn.activation_names
    assert e256[0].mae < e8[0].mae and e256[0].rel_l1 < 0.02
    with torch.no_grad():
        a = torch.relu(net[0](x))
        r = snn.run(snn.encode(x, 8))
    lam = e8[0].threshold
    d = (a - lam * r.spike_counts[e8[0].name] / 8).abs()
    assert e8[0].mae == pytest.approx(float(d.mean())) and e8[0].max_abs == pytest.approx(float(d.max()))
    # first layer, constant input: |a - rate * lambda| <= lambda / T
    assert e8[0].max_abs <= lam / 8 + 1e-6
    with pytest.raises(ValueError, match="num_steps"):
        layer_errors(snn, x, 0)


def test_model_builders_shapes() -> None:
    for act in ("relu", "qcfs"):
        assert vgg_small((1, 8, 8), 10, activation=act)(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
        assert mlp((1, 8, 8), 10, activation=act)(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    with pytest.raises(ValueError, match="activation"):
        vgg_small((1, 8, 8), 10, activation="gelu")


def test_convert_command_digits_train_save_load(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    ckpt = tmp_path / "ann.pt"
    rep = convert_command(dataset="digits", arch="mlp", method="qcfs", levels=4, steps=(1, 4, 8), epochs=2,
                          test_size=100, save=str(ckpt), plot=str(tmp_path / "c.png"))
    d = rep.to_dict()
    assert d["curve"]["steps"] == [1, 4, 8] and d["method"] == "qcfs" and d["levels"] == 4
    assert 0.0 <= d["ann_accuracy"] <= 1.0 and len(d["layer_errors"]) == 2
    assert "qcfs (L=4)" in rep.table() and Path(d["plot"]).exists() and ckpt.exists()
    json.loads(rep.to_json())
    again = convert_command(dataset="digits", method="qcfs", steps=(1, 4, 8), test_size=100, load=str(ckpt),
                            errors=False)
    assert again.arch == "mlp" and again.ann_accuracy == rep.ann_accuracy
    assert again.curve.accuracy == rep.curve.accuracy  # analog input: deterministic
    with pytest.raises(ValueError, match="--method qcfs"):
        convert_command(dataset="digits", method="rueckauer", load=str(ckpt))
    with pytest.raises(ValueError, match="method"):
        convert_command(dataset="digits", method="bogus")
