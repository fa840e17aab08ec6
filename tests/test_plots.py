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

from spikeforge.cli import plots  # noqa: E402
from spikeforge.layers import SNNSequential  # noqa: E402
from spikeforge.neurons import LI, LIF  # noqa: E402

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
