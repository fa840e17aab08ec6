"""``spikeforge train --method eventprop|ttfs`` and the commands that take its checkpoints (issue 15).

Runs are tiny: one epoch, a hidden layer of 6, and every Yin-Yang split cut to its first 48 samples (the data
loader is patched where the trainer, the checkpoint evaluator and the energy command look it up).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from spikeforge import cli
from spikeforge.cli import _common
from spikeforge.cli.plots_exact import plot_output_raster
from spikeforge.cli.plots_exact import plot_spike_times
from spikeforge.cli.train import default_out
from spikeforge.cli.train import train_config
from spikeforge.energy import estimate
from spikeforge.energy import get_cost_model
from spikeforge.training import choices
from spikeforge.training import exact_method as EM
from spikeforge.training import saved
from spikeforge.training import splits
from spikeforge.training.config import TrainConfig
from spikeforge.training.exact_models import ExactClassifier
from spikeforge.training.exact_models import exact_counts
from spikeforge.training.exact_models import recipe_config

N = 48
#: The keys of the surrogate path's ``train --json`` result (cli/train.py ``_summary`` and ``_Finish``).
SUMMARY_KEYS = {
    "run_dir", "dataset", "model", "neuron", "epochs_run", "best_epoch", "train_acc", "val_acc", "test_acc",
    "test_loss", "firing_rates", "spikes_per_sample", "wall_time_s", "threads", "threads_source", "threads_wanted",
    "checkpoint", "plots", "warnings", "energy_per_inference_j",
}  # fmt: skip
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def small_data(monkeypatch: pytest.MonkeyPatch) -> None:
    full = splits.load_splits

    def first_n(config: TrainConfig, data_dir: str | None = None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        return {k: (x[:N], y[:N]) for k, (x, y) in full(config, data_dir).items()}

    for module in (EM, saved, splits):
        monkeypatch.setattr(module, "load_splits", first_n)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    if code == 0 and "--json" in argv:
        envelope = json.loads(out)
        assert envelope["ok"] is True and envelope["command"] == argv[0]
        return code, envelope["result"], err
    return code, out, err


# ---- a whole run, then evaluate / energy / report on its checkpoint --------------------------------------------


@pytest.mark.parametrize("method", ["eventprop", "ttfs"])
def test_train_then_evaluate_energy_report(
    method: str, small_data: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    code, result, err = run(
        capsys, "train", "--method", method, "--epochs", "1", "--hidden", "20", "--seed", "2", "--batch-size", "16",
        "--out", str(out), "--json", "--quiet",
    )  # fmt: skip
    assert code == 0, err
    assert set(result) >= SUMMARY_KEYS, SUMMARY_KEYS - set(result)
    assert result["method"] == method and result["epochs_run"] == result["best_epoch"] == 1
    assert result["warnings"] == []
    for name in ("config.json", "metrics.json", "checkpoint.pt", "best.pt"):
        assert (out / name).is_file(), name
    assert [Path(p).name for p in result["plots"]] == ["learning_curves.png", "raster.png", "output_raster.png"]
    for p in result["plots"]:
        assert Path(p).read_bytes().startswith(PNG)
    config = json.loads((out / "config.json").read_text())
    assert config["method"] == method and config["hidden"] == [20]
    assert config["lr"] == EM.method_defaults(method)["lr"]  # not given: the recipe's value
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["history"]) == 1 and metrics["summary"]["test_acc"] == result["test_acc"]
    assert set(result["energy_per_inference_j"]) == {"cmos45", "loihi"}

    # the reloaded checkpoint gives what the trained network gave (equivalence of the two paths)
    code, ev, err = run(capsys, "evaluate", str(out / "best.pt"), "--json")
    assert code == 0, err
    assert ev["accuracy"] == result["test_acc"] and ev["n"] == N
    assert ev["spikes_per_sample"] == pytest.approx(result["spikes_per_sample"])
    code, en, err = run(capsys, "energy", str(out / "best.pt"), "--json", "--hardware", "loihi,cmos45")
    assert code == 0, err
    per = en["counts"]["per_inference"]
    assert per["spikes"] == pytest.approx(result["spikes_per_sample"])  # the same test samples (all N)
    assert per["synops"] > 0 and en["meta"]["method"] == method
    assert en["meta"]["accuracy_on_these_samples"] == pytest.approx(result["test_acc"])
    code, rep, err = run(capsys, "report", str(out), "--json", "--samples", "16")
    assert code == 0, err
    assert "output_raster.png" in rep["plots"] and Path(rep["report"]).is_file()
    code, _, err = run(capsys, "export", str(out / "best.pt"), "--nir", str(tmp_path / "x.nir"))
    assert code == 1 and "--method " + method in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("method", ["eventprop", "ttfs"])
def test_adapter_predicts_as_the_recipe_scores(method: str) -> None:
    """The recipe's own accuracy on its "test" data equals :func:`evaluate_exact` of the network handed back."""
    from spikeforge.data import get_dataset

    train, val = get_dataset("yinyang", "train"), get_dataset("yinyang", "validation")
    data = {"train": (train.x[:40], train.y[:40]), "validation": (val.x[:40], val.y[:40])}
    config = TrainConfig(method=method, hidden=(5,), epochs=1, batch_size=8, **_lr(method))
    model, history = EM._fit(config, EM.recipe_for(config), data, None)
    recipe_acc = history[-1].get("test_acc", history[-1].get("test_accuracy"))
    assert EM.evaluate_exact(model.eval(), *data["validation"])["accuracy"] == pytest.approx(recipe_acc, abs=1e-12)


def test_predictions_per_sample_equal_the_recipes_predict() -> None:
    from spikeforge.training.exact_eventprop import predict
    from spikeforge.training.exact_eventprop import unit_weight
    from spikeforge.training.exact_ttfs import ttfs_predict

    x = torch.rand(64, 4, generator=torch.Generator().manual_seed(0))
    ep = ExactClassifier("eventprop", 4, 6, 3, recipe_config("eventprop", {"hidden": 6}))
    unit = unit_weight(ep.recipe.tau_mem, ep.recipe.tau_syn, ep.recipe.v_th)
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for w, mean in zip(ep.weights, (0.5, 0.3), strict=True):
            w.copy_((torch.randn(w.shape, generator=gen, dtype=torch.float64) + mean) * unit)
    want = predict([w.detach() for w in ep.weights], x.double(), ep.recipe)
    assert torch.equal(ep.predict(x), want)
    assert len(set(want.tolist())) > 1  # the case is not degenerate
    tt = ExactClassifier("ttfs", 4, 6, 3, recipe_config("ttfs", {"hidden": 6}))
    with torch.no_grad():
        for layer in tt.net.layers:
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen, dtype=torch.float64) + 1.5)
    want = ttfs_predict(tt.net(tt.encode(x)))
    assert torch.equal(tt.predict(x), want)
    assert len(set(want.tolist())) > 1


def _lr(method: str) -> dict[str, float]:
    return {"lr": EM.method_defaults(method)["lr"]}


# ---- refusals ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--method", "eventprop", "--dataset", "digits"], "--dataset yinyang"),
        (["--method", "ttfs", "--neuron", "alif"], "--neuron"),
        (["--method", "ttfs", "--surrogate", "atan"], "--surrogate"),
        (["--method", "eventprop", "--time-steps", "5"], "--time-steps"),
        (["--method", "eventprop", "--encoding", "latency"], "--encoding"),
        (["--method", "ttfs", "--hidden", "4", "4"], "one hidden layer"),
        (["--method", "ttfs", "--device", "cuda"], "--device cpu"),
        (["--method", "no_such"], "valid choices: surrogate, eventprop, ttfs"),
        (["--method", "ttfs", "--resume", "--out", "{tmp}"], "--resume is not supported"),
        (["--epochs", str(choices.MAX_EPOCHS + 1)], "MAX_EPOCHS"),
    ],
)
def test_refused_with_one_line(
    argv: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "train", *[a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert code == 2
    assert needle in err and len(err.strip().splitlines()) == 1, err


def test_resume_of_an_exact_run_is_refused_from_its_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "config.json").write_text(json.dumps(TrainConfig(method="ttfs", hidden=(5,)).to_dict()))
    (tmp_path / "checkpoint.pt").write_bytes(b"")
    code, _, err = run(capsys, "train", "--resume", "--out", str(tmp_path))
    assert code == 2 and "--resume is not supported with --method ttfs" in err and "--overwrite" in err
    with pytest.raises(ValueError, match="not supported"):
        EM.train_exact(TrainConfig(method="ttfs", hidden=(5,)), tmp_path, resume=True)


def test_a_network_too_large_for_the_memory_is_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def builds_the_model(*args: object, **kwargs: object) -> None:  # would allocate the 10**9-wide layer
        raise AssertionError("the thread choice ran before the memory check")

    monkeypatch.setattr("spikeforge.training.threads.step_macs", builds_the_model)
    for method in ("ttfs", "eventprop"):
        config = TrainConfig(method=method, hidden=(10**9,), **_lr(method))
        with pytest.raises(ValueError, match="GiB of memory"):
            EM.train_exact(config, tmp_path / "run")
        assert not (tmp_path / "run").exists()


def test_occupied_out_dir_advice_does_not_offer_resume(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    with pytest.raises(FileExistsError, match="--overwrite") as info:
        EM.train_exact(TrainConfig(method="ttfs", hidden=(5,)), tmp_path)
    assert "--resume" not in str(info.value)


def test_library_validation_and_caps() -> None:
    assert _common.MAX_EPOCHS is choices.MAX_EPOCHS and _common.MAX_TIME_STEPS is choices.MAX_TIME_STEPS
    with pytest.raises(ValueError, match="MAX_EPOCHS"):
        TrainConfig(epochs=choices.MAX_EPOCHS + 1)
    with pytest.raises(ValueError, match="MAX_TIME_STEPS"):
        TrainConfig(time_steps=choices.MAX_TIME_STEPS + 1)
    TrainConfig(epochs=choices.MAX_EPOCHS, time_steps=choices.MAX_TIME_STEPS)  # the caps themselves are fine
    with pytest.raises(ValueError, match="--neuron, --dropout do not apply"):
        TrainConfig(method="eventprop", neuron="alif", dropout=0.1)
    with pytest.raises(ValueError, match="--dataset yinyang"):
        TrainConfig(method="ttfs", dataset="digits")
    # fields at their defaults (a JSON list for a tuple too) are accepted; so is every field the methods use
    TrainConfig.from_dict({**TrainConfig(method="ttfs").to_dict(), "channels": [16, 32]})
    TrainConfig(method="eventprop", hidden=(7,), epochs=2, batch_size=3, lr=0.1, seed=4, threads=1, eval_batch_size=9)


def test_cli_fills_the_recipe_defaults_only_for_options_not_given() -> None:
    parser = cli.build_parser()
    for method in ("eventprop", "ttfs"):
        cfg = train_config(parser.parse_args(["train", "--method", method]))
        want = EM.method_defaults(method)
        assert (cfg.hidden, cfg.epochs, cfg.batch_size, cfg.lr) == (
            want["hidden"], want["epochs"], want["batch_size"], want["lr"])  # fmt: skip
        cfg = train_config(parser.parse_args(["train", "--method", method, "--lr", "0.125", "--hidden", "9"]))
        assert (cfg.lr, cfg.hidden) == (0.125, (9,))
        assert f"yinyang-{method}-" in default_out(cfg).name
    assert train_config(parser.parse_args(["train"])) == TrainConfig()  # the surrogate path is unchanged


def test_checkpoint_with_other_widths_or_bad_recipe_is_refused(
    small_data: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    code, _, err = run(capsys, "train", "--method", "ttfs", "--epochs", "1", "--hidden", "6", "--out", str(out), "--quiet", "--no-plots")  # fmt: skip
    assert code == 0, err
    ckpt = torch.load(out / "best.pt", weights_only=True)
    bad = dict(ckpt, config={**ckpt["config"], "hidden": [7]})
    torch.save(bad, tmp_path / "widths.pt")
    with pytest.raises(ValueError, match="do not match the model"):
        saved.load_model(tmp_path / "widths.pt")
    torch.save(dict(ckpt, recipe={**ckpt["recipe"], "no_such_setting": 1}), tmp_path / "recipe.pt")
    with pytest.raises(ValueError, match="invalid ttfs settings"):
        saved.load_model(tmp_path / "recipe.pt")
    torch.save({k: v for k, v in ckpt.items() if k != "recipe"}, tmp_path / "norecipe.pt")
    with pytest.raises(ValueError, match="lacks the ttfs recipe settings"):
        saved.load_model(tmp_path / "norecipe.pt")
    with pytest.raises(ValueError, match="not an SNNClassifier"):
        saved.load_checkpoint(out / "best.pt")


# ---- SynOps and spikes, counted by hand --------------------------------------------------------------------------


def _ttfs(weight_hidden: float, weight_out: float) -> ExactClassifier:
    model = ExactClassifier("ttfs", 4, 3, 3, recipe_config("ttfs", {"hidden": 3}))
    with torch.no_grad():
        model.net.layers[0].weight.fill_(weight_hidden)
        model.net.layers[1].weight.fill_(weight_out)
    return model.eval()


def test_synops_by_hand_every_neuron_fires() -> None:
    """4 inputs + 1 bias spike, each reaching 3 hidden neurons; 3 hidden + 1 bias spike, each reaching 3 outputs."""
    model, x = _ttfs(10.0, 10.0), torch.rand(5, 4)
    counts = exact_counts(model, x)
    assert counts.per_inference("synops") == (4 + 1) * 3 + (3 + 1) * 3 == 27
    assert counts.per_inference("spikes") == 3 + 3
    assert counts.input_spikes == 5 * (4 + 1)
    assert counts.layer("fc1").dense_macs == 5 * 5 * 3 and counts.layer("fc2").dense_macs == 5 * 4 * 3
    loihi = get_cost_model("loihi")
    report = estimate(counts, loihi)
    assert report.ops["synops"] == 27
    assert sum(layer.synop_j for layer in report.layers) == pytest.approx(27 * loihi.e_synop)  # priced, not re-typed


def test_synops_by_hand_silent_hidden_layer() -> None:
    """Negative hidden weights: no hidden spike; the outputs get the hidden layer's bias spike only."""
    model = _ttfs(-10.0, 10.0)
    counts = exact_counts(model, torch.rand(4, 4))
    assert counts.per_inference("synops") == (4 + 1) * 3 + 1 * 3 == 18
    assert counts.layer("lif1").spikes == 0 and counts.layer("lif2").spikes == 4 * 3


def test_synops_by_hand_eventprop_silent_network() -> None:
    """Zero weights: nothing fires; only the 4 input spikes and the bias spike reach the 6 hidden neurons."""
    model = ExactClassifier("eventprop", 4, 6, 3, recipe_config("eventprop", {"hidden": 6})).eval()
    counts = exact_counts(model, torch.rand(3, 4))
    assert counts.per_inference("synops") == (4 + 1) * 6 == 30
    assert counts.per_inference("spikes") == 0
    assert counts.per_inference("neuron_updates") == 6 + 3


# ---- the spike-time plots ------------------------------------------------------------------------------------------


def test_spike_time_plots(tmp_path: Path) -> None:
    inf = float("inf")
    times = torch.tensor([[[0.5], [inf], [1.0]], [[inf], [0.7], [inf]]])
    path = plot_output_raster(times, torch.tensor([0, 1]), tmp_path / "out.png")
    assert path.read_bytes().startswith(PNG)
    path = plot_spike_times({"input": torch.tensor([[0.1], [inf]]), "output": times[0]}, tmp_path / "r.png")
    assert path.read_bytes().startswith(PNG)
    with pytest.raises(ValueError, match="NaN"):
        plot_output_raster(torch.tensor([[float("nan")]]), torch.tensor([0]), tmp_path / "nan.png")
    with pytest.raises(ValueError, match="len\\(labels\\)"):
        plot_output_raster(times, torch.tensor([0]), tmp_path / "bad.png")
    with pytest.raises(ValueError, match="non-empty"):
        plot_spike_times({}, tmp_path / "empty.png")


def test_run_plots_leave_out_learning_curves_without_a_gradient_step(tmp_path: Path) -> None:
    from spikeforge.cli.plots_exact import plot_exact_run

    history = [{"epoch": 1, "loss": None, "train_acc": 0.3, "val_acc": 0.4}]
    paths = plot_exact_run(_ttfs(10.0, 10.0), torch.rand(3, 4), torch.tensor([0, 1, 2]), history, tmp_path)
    assert [p.name for p in paths] == ["raster.png", "output_raster.png"]


def test_progress_lines_and_rate_unit(small_data: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "train", "--method", "ttfs", "--epochs", "2", "--hidden", "20", "--batch-size", "16", "--no-plots",
        "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert code == 0, err
    assert "training: 2 epochs of 3 batches" in err  # 48 samples / 16
    assert "epoch 1/2" in err and "epoch 2/2" in err
    assert "spikes/neuron/inference" in out and "spikes/neuron/step" not in out
