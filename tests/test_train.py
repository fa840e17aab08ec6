"""Trainer: config round trip, learning, determinism, resume, atomic checkpoints, out_dir protection,
evaluation. Runs are tiny (a few seconds each); no timing assertions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from spikeforge.layers import record
from spikeforge.train import (
    Callback,
    TrainConfig,
    TrainResult,
    evaluate,
    evaluate_checkpoint,
    load_checkpoint,
    load_splits,
    train,
)
from spikeforge.training import checkpoint as ckpt_mod
from spikeforge.training import loop, saved

TIME_KEYS = ("train_time_s", "epoch_time_s")
_SPLITS: dict = {}  # generated Yin-Yang data is immutable and deterministic: build it once per session


@pytest.fixture(autouse=True)
def cached_splits(monkeypatch: pytest.MonkeyPatch) -> None:
    real = loop.load_splits

    def cached(config: TrainConfig, data_dir: str | None = None) -> dict:
        key = (config.dataset, config.val_fraction, data_dir or config.data_dir)
        if key not in _SPLITS:
            _SPLITS[key] = real(config, data_dir)
        return _SPLITS[key]

    monkeypatch.setattr(loop, "load_splits", cached)
    monkeypatch.setattr(saved, "load_splits", cached)


def tiny(**kw: object) -> TrainConfig:
    """A few-second Yin-Yang run that exercises both RNG paths (rate encoding, dropout)."""
    base: dict[str, object] = dict(
        hidden=(16,), time_steps=4, epochs=3, batch_size=250, encoding="rate", dropout=0.1, lr=0.02, seed=3
    )
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def strip_times(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in h.items() if k not in TIME_KEYS} for h in history]


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


class Recorder(Callback):
    def __init__(self, stop_at: tuple[int, int] | None = None) -> None:
        self.calls: list[tuple] = []
        self.stop_at = stop_at

    def on_train_start(self, config: TrainConfig, n_epochs: int, n_batches: int) -> None:
        self.calls.append(("start", n_epochs, n_batches))

    def on_batch_end(self, epoch: int, batch_idx: int, n_batches: int, loss: float) -> None:
        self.calls.append(("batch", epoch, batch_idx))
        if self.stop_at == (epoch, batch_idx):
            raise KeyboardInterrupt

    def on_epoch_end(self, epoch: int, metrics: dict) -> None:
        self.calls.append(("epoch", epoch, metrics["val_acc"]))

    def on_train_end(self, result: TrainResult) -> None:
        self.calls.append(("end", result.best_epoch))


# ---- configuration -----------------------------------------------------------------------------


def test_config_round_trip_is_json_safe() -> None:
    c = TrainConfig(hidden=(8, 4), neuron_kwargs={"tau_mem": 3.0}, patience=2, data_dir=None)
    d = json.loads(json.dumps(c.to_dict()))
    assert d["hidden"] == [8, 4]
    assert TrainConfig.from_dict(d) == c
    with pytest.raises(ValueError, match="unknown TrainConfig fields \\['colour'\\]; valid fields: dataset"):
        TrainConfig.from_dict({**d, "colour": "red"})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dataset": "cifar"}, "unknown dataset 'cifar'; valid choices: .*yinyang"),
        ({"model": "resnet"}, "unknown model 'resnet'; valid choices: mlp, conv"),
        ({"neuron": "no_such_neuron"}, "unknown neuron 'no_such_neuron'; valid choices: .*lif"),
        ({"surrogate": "no_such_sg"}, "unknown surrogate 'no_such_sg'; valid choices: .*fast_sigmoid"),
        ({"encoding": "morse"}, "unknown encoding"),
        ({"decoding": "vote"}, "unknown decoding"),
        ({"epochs": 0}, "epochs must be a positive int"),
        ({"lr": -1.0}, "lr must be a finite number > 0"),
        ({"lr": float("nan")}, "lr must be a finite number"),
        ({"grad_clip": 0.0}, "grad_clip"),
        ({"patience": 0}, "patience must be a positive int or None"),
        ({"dropout": 1.5}, "dropout"),
        ({"device": "tpu"}, "device"),
        ({"device": "cuda:x"}, "TrainConfig.device='cuda:x' is not a torch device .*use 'cpu', 'cuda', 'cuda:N'"),
        ({"device": "meta"}, "does not run on 'meta' devices; use 'cpu'"),
        ({"neuron": "li"}, "does not spike, but hidden layers must spike.*choose a spiking neuron: .*lif"),
        ({"hidden": ()}, "TrainConfig.hidden is empty, but hidden layers must spike.*hidden=\\(128,\\)"),
        ({"model": "conv", "channels": ()}, "channels must not be empty"),
        ({"encoding_kwargs": {"gain": 2.0}}, "constant encoding takes no options"),
        ({"seed": -1}, "seed"),
    ],
)
def test_config_bad_values(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


def test_config_bad_types() -> None:
    with pytest.raises(TypeError, match="tuple of positive ints"):
        TrainConfig(hidden=64)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="neuron_kwargs must be a dict"):
        TrainConfig(neuron_kwargs=[1])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="TrainConfig"):
        train({"epochs": 1}, "x")  # type: ignore[arg-type]


# ---- learning and outputs ----------------------------------------------------------------------


def test_short_run_learns_and_writes_run_files(tmp_path: Path) -> None:
    rec = Recorder()
    config = TrainConfig(epochs=3, batch_size=32)
    result = train(config, tmp_path / "run", callbacks=[rec])
    assert result.test_acc > 0.8  # chance is 1/3; 3 epochs of the default model reach about 0.9
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["best.pt", "checkpoint.pt", "config.json", "metrics.json"]
    assert json.loads((tmp_path / "run" / "config.json").read_text()) == config.to_dict()
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [h["epoch"] for h in metrics["history"]] == [1, 2, 3]
    assert metrics["summary"]["best_epoch"] == result.best_epoch and metrics["summary"]["test_acc"] == result.test_acc
    h = result.history[0]
    assert set(h["firing_rates"]) == {"layers.1"} and 0 < h["firing_rates"]["layers.1"] < 1
    assert h["spikes_per_sample"] == pytest.approx(h["firing_rates"]["layers.1"] * result.config.hidden[0] * result.config.time_steps)
    assert result.history[-1]["lr"] == pytest.approx(0.0, abs=1e-12)  # cosine annealed to 0
    assert result.best_epoch == max(range(1, 4), key=lambda e: (result.history[e - 1]["val_acc"], -e))
    n_batches = 157  # ceil(5000 / 32)
    assert rec.calls[0] == ("start", 3, n_batches)
    assert sum(c[0] == "batch" for c in rec.calls) == 3 * n_batches
    assert [c[1] for c in rec.calls if c[0] == "epoch"] == [1, 2, 3]
    assert rec.calls[-1] == ("end", result.best_epoch)


def test_same_seed_is_bit_identical_and_other_seed_differs(tmp_path: Path) -> None:
    a = train(tiny(epochs=2), tmp_path / "a")
    b = train(tiny(epochs=2), tmp_path / "b")
    assert strip_times(a.history) == strip_times(b.history)
    assert same_weights(a.model, b.model)
    c = train(tiny(epochs=2, seed=4), tmp_path / "c")
    assert not same_weights(a.model, c.model)


def test_interrupt_then_resume_equals_uninterrupted(tmp_path: Path) -> None:
    full = train(tiny(), tmp_path / "full")
    run = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        train(tiny(), run, callbacks=[Recorder(stop_at=(2, 5))])  # killed in the middle of epoch 2
    assert not list(run.glob(".*tmp*"))  # no half-written file left behind
    model, _, info = load_checkpoint(run / "checkpoint.pt")  # the last good checkpoint: epoch 1
    assert info["epoch"] == 1 and info["kind"] == "last"
    resumed = train(tiny(), run, resume=True)
    assert strip_times(resumed.history) == strip_times(full.history)
    assert same_weights(resumed.model, full.model)
    last_full, _, _ = load_checkpoint(tmp_path / "full" / "checkpoint.pt")
    last_resumed, _, _ = load_checkpoint(run / "checkpoint.pt")
    assert same_weights(last_full, last_resumed)
    again = train(tiny(), run, resume=True)  # resuming a finished run changes nothing
    assert strip_times(again.history) == strip_times(full.history) and same_weights(again.model, full.model)


def test_interrupt_while_writing_keeps_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_save = torch.save
    calls = {"n": 0}

    def flaky_save(obj: object, f: object) -> None:
        calls["n"] += 1
        if calls["n"] == 4:  # epoch 2 writes best.pt (maybe) then checkpoint.pt: cut one write in half
            f.write(b"PK\x03\x04partial")  # type: ignore[attr-defined]
            raise KeyboardInterrupt
        real_save(obj, f)

    monkeypatch.setattr(ckpt_mod.torch, "save", flaky_save)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(tiny(lr=0.05), run)
    assert not list(run.glob(".*tmp*"))
    for name in ("checkpoint.pt", "best.pt"):
        _, _, info = load_checkpoint(run / name)
        assert info["epoch"] in (1, 2)


@pytest.mark.parametrize(("select", "reported"), [("best_val", 1), ("last", 3)])
def test_early_stopping(tmp_path: Path, select: str, reported: int) -> None:
    # patience counts epochs without a better validation accuracy under either rule; the rule picks the weights
    cfg = tiny(epochs=6, patience=2, lr=1e-12, dropout=0.0, encoding="constant", select=select)
    result = train(cfg, tmp_path / "run")
    assert result.stopped_early and len(result.history) == 3 and result.best_epoch == reported
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["summary"]["stopped_early"] is True and metrics["summary"]["epochs_run"] == 3


def _weights_of_epoch(run: Path, epoch: int) -> dict[str, torch.Tensor]:
    model, _, info = load_checkpoint(run / "best.pt")
    assert info["epoch"] == epoch
    return model.state_dict()


def test_select_rules_report_their_epoch(tmp_path: Path) -> None:
    """``last`` reports the final epoch and ``best_val`` the first epoch with the highest validation accuracy
    (computed here from the history); the returned model, best.pt and the summary agree with the rule."""
    results = {}
    for select in ("last", "best_val"):
        run = tmp_path / select
        r = train(tiny(epochs=4, lr=0.05, select=select), run)
        vals = [h["val_acc"] for h in r.history]
        expect = len(vals) if select == "last" else vals.index(max(vals)) + 1
        assert r.best_epoch == expect
        assert r.val_acc == r.history[expect - 1]["val_acc"] and r.test_acc == r.history[expect - 1]["test_acc"]
        saved = _weights_of_epoch(run, expect)
        live = r.model.state_dict()
        assert all(torch.equal(saved[k], live[k]) for k in live)
        assert json.loads((run / "metrics.json").read_text())["summary"]["best_epoch"] == expect
        results[select] = r
    # the two rules train identically: only the selection differs
    assert strip_times(results["last"].history) == strip_times(results["best_val"].history)


def test_select_last_is_the_default_and_old_configs_load_as_best_val() -> None:
    assert TrainConfig().select == "last"
    old = TrainConfig().to_dict()
    del old["select"]  # a config.json written before the field existed
    assert TrainConfig.from_dict(old).select == "best_val"
    with pytest.raises(ValueError, match="--select best_val"):
        TrainConfig(select="best")


# ---- checkpoints -------------------------------------------------------------------------------


def test_checkpoint_errors(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(tiny(epochs=1), run)
    data = (run / "checkpoint.pt").read_bytes()
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="could not be loaded"):
        load_checkpoint(bad)
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="could not be loaded"):
        load_checkpoint(bad)
    torch.save({"weights": torch.zeros(2)}, bad)
    with pytest.raises(ValueError, match="not a spikeforge checkpoint"):
        load_checkpoint(bad)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    (run / "checkpoint.pt").write_bytes(data[:100])
    with pytest.raises(ValueError, match="could not be loaded"):
        train(tiny(epochs=1), run, resume=True)


def test_checkpoint_loads_with_weights_only_and_holds_everything(tmp_path: Path) -> None:
    result = train(tiny(epochs=1), tmp_path / "run")
    ck = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert {"model", "optimizer", "scheduler", "rng", "config", "history"} <= set(ck)
    assert {"python", "numpy", "torch", "generator"} <= set(ck["rng"])
    assert ck["config"] == result.config.to_dict()
    model, config, info = load_checkpoint(tmp_path / "run" / "best.pt")
    assert config == result.config and info["kind"] == "best" and same_weights(model, result.model)
    assert not model.training


# ---- out_dir protection ------------------------------------------------------------------------


def test_out_dir_protection(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="--overwrite.*--resume"):
        train(tiny(epochs=1), run)
    with pytest.raises(FileExistsError, match="no checkpoint.pt"):
        train(tiny(epochs=1), run, resume=True)
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]  # nothing was written
    first = train(tiny(epochs=1), run, overwrite=True)
    assert (run / "notes.txt").read_text() == "mine"  # overwrite replaces only the run's own files
    second = train(tiny(epochs=1, seed=9), run, overwrite=True)
    assert not same_weights(first.model, second.model)
    assert json.loads((run / "config.json").read_text())["seed"] == 9
    with pytest.raises(ValueError, match="different configuration.*lr"):
        train(tiny(epochs=1, seed=9, lr=0.5), run, resume=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        train(tiny(epochs=1), tmp_path / "file")


# ---- evaluation --------------------------------------------------------------------------------


def test_evaluate_and_evaluate_checkpoint(tmp_path: Path) -> None:
    config = tiny(epochs=2, encoding="constant", dropout=0.0)
    result = train(config, tmp_path / "run")
    best = result.history[result.best_epoch - 1]
    test = evaluate_checkpoint(tmp_path / "run" / "best.pt", "test")
    assert test["accuracy"] == pytest.approx(best["test_acc"]) and test["loss"] == pytest.approx(best["test_loss"])
    val = evaluate_checkpoint(tmp_path / "run" / "best.pt", "validation")
    assert val["accuracy"] == pytest.approx(result.val_acc)
    assert val["firing_rates"] == pytest.approx(best["firing_rates"])
    with pytest.raises(ValueError, match="unknown split 'dev'; valid choices: train, validation, test"):
        evaluate_checkpoint(tmp_path / "run" / "best.pt", "dev")

    # independent reference for the activity numbers, and batch-size invariance
    x, y = load_splits(config)["test"]
    ref = evaluate(result.model, (x, y), batch_size=7)
    with torch.no_grad():
        (out_seq, _), rec = record(result.model.network, result.model.encode(x))
    logits = out_seq.max(0).values
    assert ref["accuracy"] == pytest.approx(float((logits.argmax(1) == y).float().mean()))
    assert ref["loss"] == pytest.approx(float(torch.nn.functional.cross_entropy(logits, y)), rel=1e-5)
    assert ref["firing_rates"]["layers.1"] == pytest.approx(float(rec["layers.1"].mean()), rel=1e-6)
    assert ref["spikes_per_sample"] == pytest.approx(float(rec["layers.1"].sum()) / len(y), rel=1e-6)
    assert ref["n"] == len(y) == 1000
    with pytest.raises(TypeError, match="SplitDataset"):
        evaluate(result.model, [x, y])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        evaluate(result.model, (x[:0], y[:0]))


def test_every_config_field_has_help_metadata() -> None:
    import dataclasses

    for f in dataclasses.fields(TrainConfig):
        assert isinstance(f.metadata.get("help"), str) and f.metadata["help"], f.name


def test_training_package_has_no_import_cycle() -> None:
    """The implementation imports spikeforge.training.*, never the public re-export modules."""
    import subprocess
    import sys

    code = (
        "import sys; import spikeforge.training.models, spikeforge.training.loop, spikeforge.training.saved; "
        "bad = [m for m in ('spikeforge.train', 'spikeforge.models', 'spikeforge.distributed') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_valid_names_are_exactly_what_the_config_accepts() -> None:
    from spikeforge.training.choices import sequence_defaults
    from spikeforge.training.choices import valid_names

    names = valid_names()
    for field, values in names.items():
        for value in values:
            if (field, value) == ("encoding", "sequence"):  # for sequence datasets only (test_sequence_datasets.py)
                with pytest.raises(ValueError, match="has static samples"):
                    TrainConfig(encoding="sequence")
                continue
            extra = sequence_defaults(value) if field == "dataset" else {}  # a sequence dataset's encoding and T
            if (field, value) in (("dataset", "austen"), ("model", "spikegpt"), ("model", "rwkv")):  # go together
                extra = {"model": "spikegpt"} if field == "dataset" else {"dataset": "austen"}
            TrainConfig(**{field: value.replace("cuda:N", "cuda:0")}, **extra)  # every listed name is accepted
        with pytest.raises(ValueError, match=f"(unknown {field}|{field})"):
            TrainConfig(**{field: "no_such_name"})
    assert "li" not in names["neuron"]


def test_resume_a_run_saved_before_select_existed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpoint whose config lacks ``select`` was trained under ``best_val``: resuming it with that rule is
    accepted, with the new default (``last``) refused as a changed configuration."""
    from spikeforge.training import resume as resume_mod

    run = tmp_path / "run"
    train(tiny(epochs=2, select="best_val"), run)
    real = resume_mod.read_checkpoint

    def saved_before_the_field(path: Path) -> dict:
        state = real(path)
        state["config"] = {k: v for k, v in state["config"].items() if k != "select"}
        return state

    monkeypatch.setattr(resume_mod, "read_checkpoint", saved_before_the_field)
    with pytest.raises(ValueError, match="select: 'best_val' -> 'last'"):
        train(tiny(epochs=2), run, resume=True)
    assert train(tiny(epochs=2, select="best_val"), run, resume=True).best_epoch in (1, 2)
