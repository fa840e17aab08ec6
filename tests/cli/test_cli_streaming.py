"""``spikeforge evaluate --engine streaming`` end to end on a tiny conv checkpoint (digits, a few samples): the
streaming pipeline's predictions equal the dense model's; the energy pricing; options refused with a message."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from spikeforge import cli
from spikeforge.cli._streaming import CHIPS
from spikeforge.cli._streaming import energy_per_sample
from spikeforge.data import dataset_info
from spikeforge.data import registry as reg
from spikeforge.energy import get_cost_model

NAME = "digits"
SMALL = {"train": 96, "validation": 32, "test": 32}


@pytest.fixture
def small_digits(monkeypatch: pytest.MonkeyPatch) -> str:
    """``digits`` with 96 / 32 / 32 samples (same shape and classes): a conv run trains in seconds."""
    info, build = reg._REGISTRY[NAME]
    small = dataclasses.replace(info, splits=tuple((s, n) for s, n in SMALL.items()))

    def build_small(split: str, data_dir: Path | None) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = build(split, data_dir)
        return x[: SMALL[split]], y[: SMALL[split]]

    monkeypatch.setattr(reg, "_REGISTRY", {**reg._REGISTRY, NAME: (small, build_small)})
    assert dataset_info(NAME).input_shape == (1, 8, 8)
    return NAME


def run_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    code = cli.main([*argv, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    envelope = json.loads(captured.out)
    assert envelope["ok"]
    return envelope["result"]


def run_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code != 0
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("decoding", ["max_membrane", "spike_count"])
def test_streaming_evaluation_agrees_with_dense(
    small_digits: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], decoding: str
) -> None:
    out = tmp_path / "run"
    run_json(capsys, ["train", "--dataset", NAME, "--model", "conv", "--channels", "4", "8", "--hidden", "16",
                      "--decoding", decoding, "--dropout", "0.1", "--epochs", "1", "--batch-size", "32",
                      "--threads", "1", "--no-plots", "--quiet", "--out", str(out)])  # fmt: skip
    ckpt = str(out / "best.pt")
    r = run_json(capsys, ["evaluate", ckpt, "--engine", "streaming", "--limit", "20"])
    assert r["n"] == 20 and r["engine"] == "streaming"
    assert r["disagreements"] == 0
    assert r["accuracy"] == r["dense_accuracy"]
    assert r["spikes_per_sample"] == r["dense_spikes_per_sample"] > 0
    assert r["synops_per_sample"] > 0 and r["neuron_updates_per_sample"] > 0
    assert r["max_logit_diff"] < 1e-4
    expected = ["engine", "pool", "engine", "pool", "engine"] + (["readout"] if decoding == "max_membrane" else [])
    assert r["stages"] == expected
    for chip in CHIPS:
        e = energy_per_sample(r["synops_per_sample"], r["neuron_updates_per_sample"], r["spikes_per_sample"], chip)
        assert r["energy_j_per_sample"][chip] == pytest.approx(e) and e > 0
    assert r["engine_ms_per_sample"] > 0 and r["dense_ms_per_sample"] > 0
    # the same numbers as a table
    assert cli.main(["evaluate", ckpt, "--engine", "streaming", "--limit", "3"]) == 0
    text = capsys.readouterr().out
    assert "Streaming evaluation" in text and "disagreeing predictions" in text and "SynOps / sample" in text
    # the dense engine (the default) is today's evaluation, on the whole split
    dense = run_json(capsys, ["evaluate", ckpt])
    assert dense["n"] == SMALL["test"] and "loss" in dense
    assert "--limit applies to --engine streaming" in run_error(capsys, ["evaluate", ckpt, "--limit", "5"])
    assert "--limit must be a positive" in run_error(capsys, ["evaluate", ckpt, "--engine", "streaming",
                                                               "--limit", "0"])  # fmt: skip


def test_energy_prices_each_operation_on_the_chip() -> None:
    for chip in CHIPS:
        cm = get_cost_model(chip)
        synop = cm.e_synop + cm.bytes_per_weight * cm.e_mem_byte
        update = cm.e_neuron_active + 2 * cm.bytes_per_state * cm.e_mem_byte
        assert energy_per_sample(1, 0, 0, chip) == pytest.approx(synop)
        assert energy_per_sample(0, 1, 0, chip) == pytest.approx(update)
        assert energy_per_sample(0, 0, 1, chip) == pytest.approx(cm.e_spike)
        assert energy_per_sample(10, 3, 2, chip) == pytest.approx(10 * synop + 3 * update + 2 * cm.e_spike)
    assert energy_per_sample(1, 0, 0, "loihi") > energy_per_sample(1, 0, 0, "cmos45")  # Loihi's SynOp is dearer
