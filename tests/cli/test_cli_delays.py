"""``spikeforge train --model delay-mlp|srm`` on the delayed-coincidence task end to end (run directory, checkpoints,
evaluation, ``--json`` summary, plots including ``delays.png``), the commands that read its checkpoint, the delay
plot itself, and bad combinations refused on the command line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from spikeforge import cli
from spikeforge.cli.plots_delays import DELAY_PLOT
from spikeforge.cli.plots_delays import delay_values
from spikeforge.cli.plots_delays import plot_delays
from spikeforge.cli.plots_delays import plot_run_delays
from spikeforge.data import dataset_info
from spikeforge.data.temporal_registry import COINCIDENCE
from spikeforge.data.temporal_tasks import make_delayed_coincidence
from spikeforge.train import TrainConfig
from spikeforge.training.models import build_model

pytest.importorskip("matplotlib", reason="the plots need matplotlib (pip install 'spikeforge[plot]')")

NAME = "delayed_coincidence"
SMALL = {"train": (64, 0), "validation": (32, 1), "test": (32, 2)}


@pytest.fixture
def small_coincidence(shrink_dataset: Callable[..., str]) -> str:
    """``delayed_coincidence`` with 64 / 32 / 32 samples (same T, channels and classes): fast end-to-end runs."""

    def build(split: str, data_dir: Path | None) -> tuple[torch.Tensor, torch.Tensor]:
        n, seed = SMALL[split]
        return make_delayed_coincidence(n, seed=seed, **COINCIDENCE)

    return shrink_dataset(NAME, {s: n for s, (n, _) in SMALL.items()}, build)


def test_delay_mlp_end_to_end(small_coincidence: str, tmp_path: Path, cli_json: Callable[[list[str]], dict]) -> None:
    out = tmp_path / "run"
    s = cli_json(["train", "--dataset", NAME, "--model", "delay-mlp", "--hidden", "8", "--epochs", "1",
                  "--batch-size", "32", "--model-kwargs", '{"per": "axon", "max_delay": 20}',
                  "--out", str(out), "--quiet"])  # fmt: skip
    assert s["model"] == "delay-mlp" and s["epochs_run"] == 1 and 0.0 <= s["test_acc"] <= 1.0
    names = {Path(p).name for p in s["plots"]}
    assert DELAY_PLOT in names and "learning_curves.png" in names
    assert (out / DELAY_PLOT).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for f in ("config.json", "metrics.json", "best.pt", "checkpoint.pt"):
        assert (out / f).is_file()
    saved = json.loads((out / "config.json").read_text())
    assert saved["encoding"] == "sequence" and saved["time_steps"] == 64
    assert saved["model_kwargs"] == {"per": "axon", "max_delay": 20}
    ev = cli_json(["evaluate", str(out / "best.pt")])
    assert ev["accuracy"] == pytest.approx(s["test_acc"])  # the checkpoint evaluates as the run did
    energy = cli_json(["energy", str(out / "best.pt"), "--samples", "8"])
    assert energy  # counted on the inference model (integer delays)
    nir = pytest.importorskip("nir", reason="NIR export needs the nir package")
    assert nir is not None
    cli_json(["export", str(out / "best.pt"), "--nir", str(tmp_path / "net.nir"), "--approximate",
              "subtract_as_reset"])  # fmt: skip
    assert (tmp_path / "net.nir").is_file()  # per-axon delays have a NIR form (a Delay node)


def test_srm_end_to_end(
    small_coincidence: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_json: Callable[[list[str]], dict]
) -> None:
    out = tmp_path / "srm"
    args = ["train", "--dataset", NAME, "--model", "srm", "--hidden", "8", "--batch-size", "32", "--out", str(out),
            "--quiet", "--model-kwargs", '{"tau_s": 2.0, "tau_r": 2.0}']  # fmt: skip
    s = cli_json([*args, "--epochs", "1"])
    assert s["model"] == "srm" and DELAY_PLOT not in {Path(p).name for p in s["plots"]}  # no delays: no histogram
    assert not (out / DELAY_PLOT).exists()
    code = cli.main(["export", str(out / "best.pt"), "--nir", str(tmp_path / "srm.nir")])
    assert code != 0 and "NIR has no spike-response-model node" in capsys.readouterr().err
    ev = cli_json(["evaluate", str(out / "best.pt")])
    assert ev["accuracy"] == pytest.approx(s["test_acc"])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "mlp", "--model-kwargs", '{"per": "axon"}'], "model 'mlp' takes no model_kwargs"),
        (["--model", "srm", "--neuron", "alif"], "--neuron alif does not apply to model 'srm'"),
        (["--model", "delay-mlp", "--model-kwargs", '{"max_delay": 64}'], "raise --time-steps"),
        (["--model", "delay-mlp", "--encoding", "latency"], "needs encoding 'sequence'"),
        (["--model", "conv"], "model 'conv' needs (C, H, W) inputs"),
    ],
)
def test_bad_combinations_are_usage_errors(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["train", "--dataset", NAME, "--epochs", "1", "--out", str(tmp_path / "x"), "--quiet", *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_plot_delays_draws_before_and_after(tmp_path: Path) -> None:
    config = TrainConfig(dataset=NAME, model="delay-mlp", encoding="sequence", time_steps=64, hidden=(6, 5))
    model = build_model(config, dataset_info(NAME))
    before = delay_values(model)
    assert list(before) == ["network.layers.0", "network.layers.2"]
    assert before["network.layers.0"].shape == (6, 4) and before["network.layers.2"].shape == (5, 6)
    with torch.no_grad():
        model.network.layers[0].delays.add_(1.0)  # "trained"
    path = plot_delays(model, tmp_path / "d.png", initial=before)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match=r"initial delays of 'network\.layers\.0' have shape"):
        plot_delays(model, tmp_path / "e.png", initial={"network.layers.0": torch.zeros(3)})
    with pytest.raises(ValueError, match="no such layer"):
        plot_delays(model, tmp_path / "e.png", initial={"nope": torch.zeros(3)})
    result = SimpleNamespace(model=model, config=config)
    assert [p.name for p in plot_run_delays(result, tmp_path)] == [DELAY_PLOT]
    plain = TrainConfig(dataset=NAME, encoding="sequence", time_steps=64, hidden=(6,))
    assert plot_run_delays(SimpleNamespace(model=build_model(plain, dataset_info(NAME)), config=plain), tmp_path) == []
    with pytest.raises(ValueError, match="no DelayedLinear layer"):
        plot_delays(build_model(plain, dataset_info(NAME)), tmp_path / "f.png")
