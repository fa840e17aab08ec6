"""The tool subcommands end to end: energy, export/import (NIR) and convert."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spikeforge import cli

TINY = ["--epochs", "1", "--hidden", "16", "--time-steps", "4", "--batch-size", "128", "--seed", "1", "--quiet", "--no-plots"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tools") / "run"
    assert cli.main(["train", *TINY, "--out", str(out), "--json"]) == 0
    return out / "best.pt"


def test_energy_json_prices_each_chip(checkpoint: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, "energy", str(checkpoint), "--hardware", "loihi,cmos45", "--samples", "32", "--json",
                         "--plot", str(tmp_path / "e.png"))
    assert code == 0, err
    data = json.loads(out)
    text = json.dumps(data)
    assert "loihi" in text and "cmos45" in text
    assert (tmp_path / "e.png").read_bytes()[:4] == b"\x89PNG"


def test_energy_unknown_chip_lists_valid_ones(checkpoint: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "energy", str(checkpoint), "--hardware", "loihi,abacus")
    assert code == 1 and "abacus" in err and "truenorth" in err
    assert len(err.strip().splitlines()) == 1


def test_energy_missing_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "energy", str(tmp_path / "nope.pt"))
    assert code == 1 and "does not exist" in err


def test_export_refuses_lossy_reset_then_roundtrips_with_opt_in(checkpoint: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("nir")
    from spikeforge.nir import NIRApproximationWarning

    target = tmp_path / "net.nir"
    code, _, err = run(capsys, "export", str(checkpoint), "--nir", str(target))
    assert code == 1 and "subtract_as_reset" in err and not target.exists()
    with pytest.warns(NIRApproximationWarning):
        code, out, err = run(capsys, "export", str(checkpoint), "--nir", str(target), "--approximate", "subtract_as_reset")
    assert code == 0, err
    assert target.is_file()
    code, out, err = run(capsys, "import", str(target), "--dt", "1.0")
    assert code == 0, err
    assert "LIF" in out or "lif" in out


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
    data = json.loads(out)
    assert "16" in json.dumps(data) or 16 in json.dumps(data)


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
    data = json.loads(out)
    assert data["correction"] == "membrane" and data["correction_steps"] == 4
    code, out, err = run(capsys, "convert", "--dataset", "digits", "--correction", "sideways")
    assert code != 0
