"""The tool subcommands end to end: energy, export/import (NIR) and convert."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from spikeforge import cli

TINY = ["--epochs", "1", "--hidden", "16", "--time-steps", "4", "--batch-size", "128", "--seed", "1", "--quiet", "--no-plots"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def result_of(stdout: str, command: str) -> Any:
    """The ``result`` of the one success envelope on ``stdout`` (the --json schema of every subcommand)."""
    envelope = json.loads(stdout)
    assert envelope == {"command": command, "ok": True, "result": envelope["result"]}
    return envelope["result"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tools") / "run"
    assert cli.main(["train", *TINY, "--out", str(out), "--json"]) == 0
    return out / "best.pt"


def test_energy_json_prices_each_chip(checkpoint: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, "energy", str(checkpoint), "--hardware", "loihi,cmos45", "--samples", "32", "--json",
                         "--plot", str(tmp_path / "e.png"))
    assert code == 0, err
    data = result_of(out, "energy")
    assert set(data) == {"meta", "counts", "reports"} and set(data["reports"]) == {"loihi", "cmos45"}
    assert data["meta"]["samples"] == 32 and data["meta"]["checkpoint"] == str(checkpoint)
    assert (tmp_path / "e.png").read_bytes()[:4] == b"\x89PNG"


def test_energy_unknown_chip_lists_valid_ones(checkpoint: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "energy", str(checkpoint), "--hardware", "loihi,abacus")
    assert code == 2 and "abacus" in err and "truenorth" in err  # an unknown name: a usage error
    assert len(err.strip().splitlines()) == 1


def test_energy_missing_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "energy", str(tmp_path / "nope.pt"))
    assert code == 1 and "does not exist" in err


def test_export_refuses_lossy_reset_then_roundtrips_with_opt_in(checkpoint: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("nir")
    target = tmp_path / "net.nir"
    code, _, err = run(capsys, "export", str(checkpoint), "--nir", str(target))
    assert code == 2 and not target.exists() and len(err.strip().splitlines()) == 1  # a flag to add: usage
    assert "--approximate subtract_as_reset" in err and "approximate=(" not in err  # names the flag, not a keyword
    code, out, err = run(capsys, "export", str(checkpoint), "--nir", str(target), "--approximate", "subtract_as_reset")
    assert code == 0, err
    assert err.startswith("spikeforge export: warning: layer 1 (LIF): reset by subtraction is written as reset")
    assert len(err.strip().splitlines()) == 1  # one line, no Python source line
    assert target.is_file() and out.startswith(f"wrote {target}:")
    code, out, err = run(capsys, "import", str(target), "--dt", "1.0")
    assert code == 0, err
    assert "LIF" in out or "lif" in out
    code, out, err = run(capsys, "export", str(checkpoint), "--nir", str(target), "--approximate",
                         "subtract_as_reset", "--json")
    assert code == 0, err
    exported = result_of(out, "export")
    assert exported["nir"] == str(target) and exported["approximate"] == ["subtract_as_reset"]
    assert len(exported["warnings"]) == 1 and "reset to v_reset" in exported["warnings"][0]
    assert exported["nodes"] >= 2 and any("LIF" in line for line in exported["layers"])
    code, out, err = run(capsys, "import", str(target), "--dt", "1.0", "--json")
    assert code == 0, err
    imported = result_of(out, "import")
    assert imported["path"] == str(target) and imported["dt"] == 1.0 and imported["parameters"] > 0
    assert [line.split("(")[0] for line in imported["layers"]] == [line.split("(")[0] for line in exported["layers"]]


def test_import_garbage_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("nir")
    bad = tmp_path / "bad.nir"
    bad.write_bytes(b"not hdf5")
    code, _, err = run(capsys, "import", str(bad))
    assert code == 1 and len(err.strip().splitlines()) == 1


def test_convert_digits_json(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("sklearn")
    code, out, err = run(capsys, "convert", "--dataset", "digits", "--arch", "mlp", "--epochs", "2", "--steps", "4", "16",
                         "--test-size", "100", "--calib-size", "100", "--no-errors", "--json")
    assert code == 0, err
    data = result_of(out, "convert")
    assert data["curve"]["steps"] == [4, 16] and data["arch"] == "mlp" and 0.0 <= data["ann_accuracy"] <= 1.0


@pytest.mark.parametrize("command", ["energy", "export", "import", "convert"])
def test_tool_help_has_example(capsys: pytest.CaptureFixture[str], command: str) -> None:
    code, out, _ = run(capsys, command, "--help")
    assert code == 0 and "example:" in out and f"spikeforge {command}" in out


def test_convert_correction_flags(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("sklearn")
    code, out, err = run(capsys, "convert", "--dataset", "digits", "--arch", "mlp", "--epochs", "2", "--steps", "4",
                         "--test-size", "100", "--calib-size", "100", "--no-errors", "--json",
                         "--correction", "membrane", "--correction-steps", "4")
    assert code == 0, err
    data = result_of(out, "convert")
    assert data["correction"] == "membrane" and data["correction_steps"] == 4
    code, out, err = run(capsys, "convert", "--dataset", "digits", "--correction", "sideways")
    assert code != 0


def _save_checkpoint(path: Path) -> Any:
    from spikeforge.data import dataset_info
    from spikeforge.models import build_model
    from spikeforge.train import TrainConfig
    from spikeforge.training.checkpoint import FORMAT, atomic_save

    config = TrainConfig(dataset="yinyang", hidden=(8,), time_steps=4, encoding="rate")
    model = build_model(config, dataset_info("yinyang"))
    atomic_save({"format": FORMAT, "config": config.to_dict(), "model": model.state_dict(), "epoch": 1}, path)
    return model


def test_energy_summary_of_a_checkpoint(tmp_path: Path) -> None:
    from spikeforge.cli.energy import energy_summary

    path = tmp_path / "best.pt"
    _save_checkpoint(path)
    s = energy_summary(path, ["loihi", "cmos45"], n_samples=16)
    assert s.counts.batch_size == 16 and s.counts.time_steps == 4
    assert s.meta["dataset"] == "yinyang" and 0.0 <= s.meta["accuracy_on_these_samples"] <= 1.0
    assert s.counts.input_spikes is not None  # rate-coded input is counted as spikes
    again = energy_summary(path, "loihi,cmos45", n_samples=16)
    assert again.reports["loihi"].total_j == s.reports["loihi"].total_j  # seeded encoder: repeatable
    with pytest.raises(ValueError, match="valid cost models"):
        energy_summary(path, ["loihi2"])
    with pytest.raises(ValueError, match="split"):
        energy_summary(path, ["loihi"], split="dev")
    with pytest.raises(ValueError, match="n_samples"):
        energy_summary(path, ["loihi"], n_samples=0)


def test_convert_picks_an_ann_that_fits_the_data(capsys: pytest.CaptureFixture[str]) -> None:
    from spikeforge.training.ann import default_arch, default_epochs

    assert default_arch((4,)) == "mlp" and default_arch((1, 8, 8)) == "mlp" and default_arch((1, 28, 28)) == "vgg"
    assert default_epochs(1087) == 20 and default_epochs(55000) == 3
    code, out, err = run(capsys, "convert", "--dataset", "yinyang", "--epochs", "2", "--steps", "4", "--test-size",
                         "100", "--calib-size", "100", "--no-errors", "--json")
    assert code == 0, err
    data = result_of(out, "convert")
    assert data["arch"] == "mlp" and data["epochs"] == 2 and data["dataset"] == "yinyang"
    code, out, err = run(capsys, "convert", "--dataset", "yinyang", "--arch", "vgg")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "--arch mlp" in err


def test_convert_warns_when_the_ann_is_near_chance(capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sklearn")
    from spikeforge.training import ann

    assert ann.near_chance(0.13, 10) and not ann.near_chance(0.9, 10) and ann.near_chance(0.45, 3)
    monkeypatch.setattr(ann, "ann_accuracy", lambda *a, **k: 0.13)
    argv = ["convert", "--dataset", "digits", "--arch", "mlp", "--epochs", "1", "--steps", "4", "--test-size", "50",
            "--no-errors"]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert "warning: the ANN reached only 13.0 % test accuracy (chance 10.0 %)" in out
    assert err.startswith("spikeforge convert: warning:") and "--epochs" in err
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0 and len(result_of(out, "convert")["warnings"]) == 1


def test_convert_load_refuses_a_foreign_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    bad = tmp_path / "ann.pt"
    torch.save({"weights": torch.zeros(2)}, bad)
    code, _, err = run(capsys, "convert", "--dataset", "yinyang", "--load", str(bad))
    assert code == 1 and "spikeforge convert --save" in err and len(err.strip().splitlines()) == 1
