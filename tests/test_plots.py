"""Tests of spikeforge.cli.plots: valid PNGs, content that depends on the data, clear errors, no pyplot leaks."""

from __future__ import annotations

import re
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("matplotlib")

from spikeforge._core.reset import apply_reset  # noqa: E402
from spikeforge.cli import plots  # noqa: E402
from spikeforge.cli._stats import mean_rate  # noqa: E402
from spikeforge.data import get_dataset  # noqa: E402
from spikeforge.layers import SNNSequential  # noqa: E402
from spikeforge.neurons import IF, LI, LIF, CubaLIF  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the IHDR chunk, after checking the PNG signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def pixels(path: Path) -> np.ndarray:
    from matplotlib.image import imread

    return imread(str(path))


def assert_valid_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 2000
    w, h = png_size(path)
    assert w > 200 and h > 200
    img = pixels(path)
    assert img.shape[:2] == (h, w)
    assert img.std() > 0.01  # something is drawn, not a blank canvas


HISTORY = [
    {"epoch": 1, "loss": 1.0, "train_acc": 0.5, "val_acc": 0.55, "test_acc": 0.52},
    {"epoch": 2, "loss": 0.6, "train_acc": 0.8, "val_acc": 0.78, "test_acc": 0.77},
    {"epoch": 3, "loss": 0.4, "train_acc": 0.9, "val_acc": 0.88, "test_acc": 0.87},
]


@pytest.fixture
def no_pyplot_leak():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    yield
    assert plt.get_fignums() == before


def test_learning_curves_png(tmp_path: Path, no_pyplot_leak: None) -> None:
    out = plots.plot_learning_curves(HISTORY, tmp_path / "lc.png")
    assert out == tmp_path / "lc.png"
    assert_valid_png(out)
    # the image depends on the data: a different loss curve draws a different picture
    other = [dict(h, loss=h["loss"] * 3) for h in HISTORY]
    plots.plot_learning_curves(other, tmp_path / "lc2.png")
    assert not np.array_equal(pixels(out), pixels(tmp_path / "lc2.png"))


def test_learning_curves_without_accuracies_and_creates_dirs(tmp_path: Path) -> None:
    out = plots.plot_learning_curves([{"loss": 1.0}, {"loss": 0.5}], tmp_path / "a" / "b" / "lc.png")
    assert_valid_png(out)


@pytest.mark.parametrize(
    "history, exc, match",
    [
        ([], ValueError, "empty"),
        ([{"epoch": 1}], ValueError, "'loss'"),
        ([{"loss": float("nan")}], ValueError, "NaN"),
        ({"loss": 1.0}, TypeError, "list of per-epoch dicts"),
    ],
)
def test_learning_curves_bad_input(tmp_path: Path, history, exc, match) -> None:
    with pytest.raises(exc, match=match):
        plots.plot_learning_curves(history, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_missing_matplotlib_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # makes the import fail
    with pytest.raises(ImportError, match=re.escape("pip install 'spikeforge[plot]'")):
        plots.plot_learning_curves(HISTORY, tmp_path / "lc.png")


def test_non_png_path_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.png"):
        plots.plot_learning_curves(HISTORY, tmp_path / "lc.jpg")


def test_raster_png_depends_on_spikes(tmp_path: Path, no_pyplot_leak: None) -> None:
    g = torch.Generator().manual_seed(0)
    spikes = {"layers.1": (torch.rand(20, 30, generator=g) < 0.2).float(), "layers.3": torch.zeros(20, 2, 3)}
    out = plots.plot_raster(spikes, tmp_path / "r.png")
    assert_valid_png(out)
    silent = {"layers.1": torch.zeros(20, 30), "layers.3": torch.zeros(20, 6)}
    plots.plot_raster(silent, tmp_path / "r0.png")
    assert not np.array_equal(pixels(out), pixels(tmp_path / "r0.png"))


@pytest.mark.parametrize(
    "spikes, exc, match",
    [
        ({}, ValueError, "empty"),
        ({"a": np.zeros(5)}, ValueError, r"\[T, N\]"),
        ({"a": np.zeros((0, 4))}, ValueError, "empty"),
        ([np.zeros((3, 3))], TypeError, "mapping"),
    ],
)
def test_raster_bad_input(tmp_path: Path, spikes, exc, match) -> None:
    with pytest.raises(exc, match=match):
        plots.plot_raster(spikes, tmp_path / "r.png")


def test_membrane_png(tmp_path: Path, no_pyplot_leak: None) -> None:
    t = np.arange(25)[:, None]
    v = np.sin(t / 3.0 + np.arange(3)[None, :])  # [T, 3]
    s = (v > 0.9).astype(float)
    out = plots.plot_membrane({"lif": v, "readout": v[:, :2]}, tmp_path / "m.png", thresholds={"lif": 1.0}, spikes={"lif": s})
    assert_valid_png(out)


def test_membrane_bad_input(tmp_path: Path) -> None:
    v = np.zeros((10, 3))
    with pytest.raises(ValueError, match="match"):
        plots.plot_membrane({"lif": v}, tmp_path / "m.png", spikes={"lif": np.zeros((10, 2))})
    with pytest.raises(ValueError, match="match"):
        plots.plot_membrane({"lif": v}, tmp_path / "m.png", spikes={"other": v})
    with pytest.raises(ValueError, match="NaN"):
        plots.plot_membrane({"lif": np.full((4, 2), np.nan)}, tmp_path / "m.png")


def test_firing_rates_png(tmp_path: Path, no_pyplot_leak: None) -> None:
    rates = {"layers.1": torch.linspace(0, 0.5, 64), "layers.3": np.zeros(8)}
    out = plots.plot_firing_rates(rates, tmp_path / "f.png", bins=10)
    assert_valid_png(out)


@pytest.mark.parametrize(
    "rates, kwargs, match",
    [
        ({}, {}, "empty"),
        ({"a": np.array([])}, {}, "empty"),
        ({"a": np.array([0.2, 1.5])}, {}, r"\[0, 1\]"),
        ({"a": np.array([-0.1])}, {}, r"\[0, 1\]"),
        ({"a": np.array([0.1])}, {"bins": 0}, "bins"),
    ],
)
def test_firing_rates_bad_input(tmp_path: Path, rates, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        plots.plot_firing_rates(rates, tmp_path / "f.png", **kwargs)


# ---- collect_activity / plot_run on a small hand-built classifier --------------------------------


class TinyClassifier(nn.Module):
    """Minimal stand-in with the SNNClassifier surface used by plots: .network and .encode."""

    def __init__(self, time_steps: int = 12) -> None:
        super().__init__()
        self.time_steps = time_steps
        with torch.random.fork_rng():  # deterministic init without touching the caller's RNG
            torch.manual_seed(0)
            self.network = SNNSequential(
                nn.Linear(4, 16), LIF(tau_mem=5.0), nn.Linear(16, 8), LIF(v_th=0.5), nn.Linear(8, 3), LI()
            )
        with torch.no_grad():
            self.network.layers[0].weight.mul_(4.0)

    def encode(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        return x.unsqueeze(0).expand(self.time_steps, *x.shape)  # constant current [T, B, 4]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(self.encode(x))[0].max(0).values


def test_collect_activity_matches_layer_by_layer_reference() -> None:
    model = TinyClassifier()
    x = torch.rand(5, 4, generator=torch.Generator().manual_seed(1))
    act = plots.collect_activity(model, x)
    assert model.training  # mode restored
    # reference: run the layers by hand, tracing each neuron
    layers = model.network.layers
    h = model.encode(x)
    ref_spikes, ref_v = {}, {}
    with torch.no_grad():
        for i, layer in enumerate(layers):
            if isinstance(layer, (LIF, LI)):
                out, states = layer.trace(h)
                ref_v[f"layers.{i}"] = states.v
                if layer.spiking:
                    ref_spikes[f"layers.{i}"] = out
                h = out
            else:
                h = layer(h)
    assert set(act.spikes) == {"layers.1", "layers.3"} == set(ref_spikes)
    assert set(act.membrane) == {"layers.1", "layers.3", "layers.5"}
    for k in ref_spikes:
        torch.testing.assert_close(act.spikes[k], ref_spikes[k])
    for k in ref_v:
        torch.testing.assert_close(act.membrane[k], ref_v[k])
    assert act.thresholds == {"layers.1": 1.0, "layers.3": 0.5, "layers.5": None}
    assert act.spikes["layers.1"].sum() > 0  # the test model does spike
    # no hooks left on the modules
    assert all(not m._forward_pre_hooks and not m._forward_hooks for m in model.modules())


def test_collect_activity_rejects_non_classifier() -> None:
    with pytest.raises(TypeError, match="network"):
        plots.collect_activity(nn.Linear(2, 2), torch.zeros(1, 2))


def test_pick_neurons_prefers_partially_active() -> None:
    s = torch.zeros(10, 7)
    s[:, 4] = 1  # saturated
    s[:3, 1] = 1  # 3 spikes
    s[:1, 5] = 1  # 1 spike
    s[:6, 2] = 1  # 6 spikes
    assert plots._pick_neurons(s, 7, 2).tolist() == [2, 5]  # extremes of the partially active ones
    assert plots._pick_neurons(s, 7, 3).tolist() == [1, 2, 5]
    assert plots._pick_neurons(s, 7, 5).tolist() == [0, 1, 2, 4, 5]  # then saturated, then silent
    assert plots._pick_neurons(s, 7, 99).tolist() == list(range(7))
    assert plots._pick_neurons(None, 3, 5).tolist() == [0, 1, 2]


def test_plot_run_writes_all_files(tmp_path: Path, no_pyplot_leak: None) -> None:
    model = TinyClassifier()
    x = torch.rand(8, 4, generator=torch.Generator().manual_seed(2))
    paths = plots.plot_run(model, x, HISTORY, tmp_path)
    assert [p.name for p in paths] == list(plots.PLOT_FILES)
    for p in paths:
        assert_valid_png(p)
    with pytest.raises(ValueError, match="empty batch"):
        plots.plot_run(model, x[:0], HISTORY, tmp_path / "empty")
    with pytest.raises(ValueError, match="n_traces"):
        plots.plot_run(model, x, HISTORY, tmp_path / "bad", n_traces=0)


# ---- trustworthy figures: titles and labels, threshold crossings and resets, one firing-rate statistic ----


def _capture_figures(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict]:
    """Record every figure that plots writes (by file name): its title and each panel's title, labels, lines."""
    seen: dict[str, dict] = {}
    save = plots._save

    def recording_save(fig, path):
        suptitle = fig._suptitle.get_text() if fig._suptitle is not None else ""
        panels = [
            {"title": ax.get_title(), "xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(),
             "lines": {ln.get_label(): np.asarray(ln.get_ydata(), dtype=float) for ln in ax.get_lines()}}
            for ax in fig.axes
        ]  # fmt: skip
        seen[Path(path).name] = {"title": suptitle, "panels": panels}
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", recording_save)
    return seen


def test_every_run_figure_is_titled_and_labelled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _capture_figures(monkeypatch)
    x = torch.rand(8, 4, generator=torch.Generator().manual_seed(2))
    plots.plot_run(TinyClassifier(), x, HISTORY, tmp_path)
    assert sorted(seen) == sorted(plots.PLOT_FILES)
    for name, fig in seen.items():
        assert fig["title"], f"{name} has no title"
        for panel in fig["panels"]:
            assert panel["title"] and panel["xlabel"] and panel["ylabel"], (name, panel)
    titles = [p["title"] for p in seen["membrane.png"]["panels"]]
    # the counts in the titles are the counts drawn: 4 of the 16 hidden neurons, every readout neuron
    assert titles[0].startswith("layers.1: 4 of 16 neurons") and titles[1].startswith("layers.3: 4 of 8 neurons")
    assert titles[2] == "layers.5: all 3 neurons (readout, no spikes)"
    assert [len([k for k in p["lines"] if k.startswith("neuron")]) for p in seen["membrane.png"]["panels"]] == [4, 4, 3]
    assert seen["firing_rates.png"]["title"] == "Firing rates over 8 test samples"


def test_membrane_of_a_neuron_firing_every_step_crosses_the_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = TinyClassifier()
    with torch.no_grad():
        model.network.layers[0].weight[0] = 0.0  # hidden neuron 0 receives a constant current of 6: with
        model.network.layers[0].bias[0] = 6.0  # tau_mem = 5 it crosses the threshold 1 on every step
    x = torch.rand(4, 4, generator=torch.Generator().manual_seed(3))
    act = plots.collect_activity(model, x)
    t = model.time_steps
    assert act.spikes["layers.1"][:, 0, 0].sum() == t  # it fires on every step
    after = act.membrane["layers.1"][:, 0, 0]
    assert (after < 1.0).all()  # after the reset it never reaches the threshold: drawn alone, a smooth curve
    seen = _capture_figures(monkeypatch)
    plots.plot_run(model, x, HISTORY, tmp_path, n_traces=16)
    panel = seen["membrane.png"]["panels"][0]
    assert "vertical drops: resets" in panel["title"]
    assert "threshold 1" in panel["lines"]
    y = panel["lines"]["neuron 0"]  # before and after the reset of every step
    assert (y[0::2] > 1.0).all() and (y[1::2] < 1.0).all() and len(y) == 2 * t
    spike_dots = [ln for ln in panel["lines"].values() if len(ln) == t and np.allclose(ln, y[0::2])]
    assert spike_dots  # a spike marker on every crossing


@pytest.mark.parametrize(
    "neuron",
    [LIF(tau_mem=5.0), LIF(tau_mem=5.0, reset="to_value", v_reset=-0.3), IF(), CubaLIF(tau_mem=5.0, tau_syn=2.0)],
    ids=["lif-subtract", "lif-to-value", "if", "cuba"],
)
def test_pre_reset_membrane_is_what_the_spike_test_sees(neuron: nn.Module) -> None:
    model = TinyClassifier()
    model.network = SNNSequential(nn.Linear(4, 16), neuron, nn.Linear(16, 3), LI())
    with torch.random.fork_rng():
        torch.manual_seed(1)
        nn.init.uniform_(model.network.layers[0].weight, 0.0, 3.0)
    act = plots.collect_activity(model, torch.rand(6, 4, generator=torch.Generator().manual_seed(4)))
    z, pre, post = act.spikes["layers.1"], act.pre_reset["layers.1"], act.membrane["layers.1"]
    assert 0 < z.mean() < 1
    torch.testing.assert_close(z, (pre > 1.0).to(z.dtype))  # the spike test: V' above the threshold
    torch.testing.assert_close(post, apply_reset(pre, z, 1.0, neuron.v_reset, neuron.reset))  # then the reset
    assert "layers.3" not in act.pre_reset  # the readout has no reset


def test_summary_and_firing_rate_plot_share_one_statistic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from spikeforge import cli

    drawn: dict[str, dict] = {}
    draw = plots.plot_firing_rates

    def recording_plot(rates, path, **kwargs):
        drawn.update(rates=dict(rates), **kwargs)
        return draw(rates, path, **kwargs)

    monkeypatch.setattr(plots, "plot_firing_rates", recording_plot)
    seen = _capture_figures(monkeypatch)
    argv = ["--epochs", "1", "--hidden", "32", "--time-steps", "4", "--batch-size", "64", "--seed", "3"]
    assert cli.main(["train", *argv, "--out", str(tmp_path / "run"), "--json", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)["result"]
    (layer,) = summary["firing_rates"]
    mean = summary["firing_rates"][layer]
    assert mean_rate(drawn["rates"][layer]) == mean  # the same number from the same function and samples
    assert f"mean {mean:.4f}" in seen["firing_rates.png"]["panels"][0]["title"]
    n_test = len(get_dataset("yinyang", "test").y)
    assert drawn["title"] == f"Firing rates over {n_test} test samples"  # the whole test split, as the summary
    assert cli.main(["evaluate", str(tmp_path / "run" / "best.pt"), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)["result"]
    assert evaluated["firing_rates"][layer] == pytest.approx(mean, rel=1e-9)  # and spikeforge evaluate agrees


def test_adaptive_threshold_is_labelled_as_a_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from spikeforge.neurons import ALIF

    model = TinyClassifier(time_steps=30)
    model.network = SNNSequential(nn.Linear(4, 16), ALIF(tau_mem=5.0, tau_adapt=20.0, adapt=1.0), nn.Linear(16, 3), LI())
    with torch.random.fork_rng():
        torch.manual_seed(1)
        nn.init.uniform_(model.network.layers[0].weight, 0.0, 4.0)
    seen = _capture_figures(monkeypatch)
    plots.plot_run(model, torch.rand(4, 4, generator=torch.Generator().manual_seed(3)), HISTORY, tmp_path)
    labels = seen["membrane.png"]["panels"][0]["lines"]
    assert "base threshold 1 (it adapts)" in labels  # V' above v_th without a spike: the line is not the threshold
