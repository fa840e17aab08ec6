"""Language-model names in TrainConfig and on the command line: what is accepted and what is refused."""

from __future__ import annotations

import itertools

import pytest

from spikeforge.cli import main
from spikeforge.training.config import TrainConfig
from spikeforge.training.lm import _lr
from spikeforge.training.lm import lm_defaults
from spikeforge.training.lm_checkpoint import lm_config


def _lm(**kw):
    return TrainConfig(**{**lm_defaults("spikegpt"), "dataset": "austen", "model": "spikegpt", **kw})


def test_accepted_and_mapped_to_model_sizes():
    cfg = _lm(hidden=(48, 48, 48), steps_per_epoch=7)
    m = lm_config(cfg, 81)
    assert (m.d_model, m.n_layers, m.spiking, m.surrogate) == (48, 3, True, "atan")
    assert not lm_config(_lm(model="rwkv"), 81).spiking
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert m.spike_inputs == "none" and lm_config(cfg, 81, {"spike_inputs": "all"}).spike_inputs == "all"
    with pytest.raises(ValueError, match="spike_inputs must be one of"):
        lm_config(cfg, 81, {"spike_inputs": "yes"})


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"dataset": "yinyang"}, "needs a text corpus"),
        ({"hidden": (32, 64)}, "one width per block, all equal"),
        ({"encoding": "rate"}, "--encoding do"),
        ({"neuron": "alif"}, "--neuron lif or if"),
        ({"steps_per_epoch": 0}, "steps_per_epoch"),
    ],
)
def test_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        _lm(**kw)


def test_corpus_needs_a_language_model_and_steps_per_epoch_needs_one_too():
    with pytest.raises(ValueError, match="cannot train on a text corpus"):
        TrainConfig(dataset="austen")
    with pytest.raises(ValueError, match="applies to --model spikegpt"):
        TrainConfig(steps_per_epoch=5)


def test_command_line_refusals_are_usage_errors(capsys):
    assert main(["train", "--dataset", "austen", "--model", "spikegpt", "--hidden", "8", "16"]) == 2
    assert "one width per block" in capsys.readouterr().err
    assert main(["train", "--dataset", "austen", "--model", "rwkv", "--resume", "--out", "x"]) == 2
    assert main(["generate", "no/such.pt"]) == 1


def test_learning_rate_schedule():
    lrs = [_lr(s, 1000, 1.0) for s in range(1000)]
    assert lrs[0] == pytest.approx(1 / 50) and lrs[49] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(lrs[50:])) and lrs[-1] < 1e-4
    assert _lr(0, 10, 1.0) == 1.0  # a short run warms up in a tenth of its steps (here one)
