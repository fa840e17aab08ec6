"""``spikeforge evaluate --engine streaming`` end to end on a tiny conv checkpoint (digits, a few samples): the
streaming pipeline's predictions equal the dense model's; the energy pricing; options refused with a message."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from spikeforge import cli
from spikeforge.cli._streaming import CHIPS
from spikeforge.cli._streaming import energy_per_sample
from spikeforge.data import dataset_info
from spikeforge.energy import get_cost_model

NAME = "digits"
SMALL = {"train": 96, "validation": 32, "test": 32}


@pytest.fixture
def small_digits(shrink_dataset: Callable[..., str]) -> str:
    """``digits`` with 96 / 32 / 32 samples (same shape and classes): a conv run trains in seconds."""
    shrink_dataset(NAME, SMALL)
    assert dataset_info(NAME).input_shape == (1, 8, 8)
    return NAME


@pytest.mark.parametrize(("decoding", "encoding"), [("max_membrane", "constant"), ("spike_count", "constant"),
                                                     ("max_membrane", "rate")])  # fmt: skip
def test_streaming_evaluation_agrees_with_dense(
    small_digits: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    cli_json: Callable[[list[str]], dict],
    cli_error: Callable[[list[str]], str],
    decoding: str,
    encoding: str,
) -> None:
    """The two paths run in passes of their own; a random code (rate) must give both the same draws."""
    out = tmp_path / "run"
    cli_json(["train", "--dataset", NAME, "--model", "conv", "--channels", "4", "8", "--hidden", "16",
              "--decoding", decoding, "--encoding", encoding, "--dropout", "0.1", "--epochs", "1",
              "--batch-size", "32", "--threads", "1", "--no-plots", "--quiet", "--out", str(out)])  # fmt: skip
    ckpt = str(out / "best.pt")
    r = cli_json(["evaluate", ckpt, "--engine", "streaming", "--limit", "20"])
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
    dense = cli_json(["evaluate", ckpt])
    assert dense["n"] == SMALL["test"] and "loss" in dense
    assert "--limit applies to --engine streaming" in cli_error(["evaluate", ckpt, "--limit", "5"])
    assert "--limit must be a positive" in cli_error(["evaluate", ckpt, "--engine", "streaming", "--limit", "0"])


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
