"""A tiny language-model run end to end: training, checkpoint with vocabulary, generation, energy, the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from spikeforge.cli import main
from spikeforge.data.text import AUSTEN_DIR
from spikeforge.data.text import CharVocab
from spikeforge.lm.sample import generate_ids
from spikeforge.training.config import TrainConfig
from spikeforge.training.lm import evaluate_bpc
from spikeforge.training.lm import lm_defaults
from spikeforge.training.lm import train_lm
from spikeforge.training.lm_checkpoint import load_lm
from spikeforge.training.lm_checkpoint import save_lm
from spikeforge.training.lm_energy import lm_counts

pytestmark = pytest.mark.skipif(
    not Path(AUSTEN_DIR, "Rdata.rdx").is_file(), reason="needs r-cran-janeaustenr (apt-get install r-cran-janeaustenr)"
)


@pytest.fixture
def run(tmp_path):
    values = {**lm_defaults("spikegpt"), "hidden": (16, 16), "epochs": 2, "steps_per_epoch": 3, "time_steps": 16}
    cfg = TrainConfig(**{**values, "dataset": "austen", "model": "spikegpt", "batch_size": 2, "lr": 5e-3})
    return train_lm(cfg, tmp_path / "run", test=False, max_eval_chars=2000)


def test_train_checkpoint_generate(run, tmp_path, capsys):
    assert [h["epoch"] for h in run.history] == [1, 2] and run.test_bpc is None
    model, config, vocab = load_lm(run.out_dir / "best.pt")
    assert config.model == "spikegpt" and len(vocab) == 81 and model.config.d_model == 16
    prompt = vocab.encode("It is")
    a = list(generate_ids(model, prompt, 30, temperature=0.9, top_k=5, generator=torch.Generator().manual_seed(3)))
    b = list(generate_ids(model, prompt, 30, temperature=0.9, top_k=5, generator=torch.Generator().manual_seed(3)))
    c = list(generate_ids(model, prompt, 30, temperature=0.9, top_k=5, generator=torch.Generator().manual_seed(4)))
    assert a == b and a != c and all(0 <= i < 81 for i in a)
    # greedy = argmax of the parallel form on prompt + generated text
    g = list(generate_ids(model, prompt, 5, temperature=0))
    logits, _ = model(torch.cat([prompt, torch.tensor(g[:-1])]).unsqueeze(1))
    assert logits[len(prompt) - 1 :, 0].argmax(-1).tolist() == g
    assert main(["generate", str(run.out_dir / "best.pt"), "--prompt", "It is", "--tokens", "12", "--json"]) == 0
    # bits per character: one stream read in windows of 7 with the state carried == one parallel pass
    ids = vocab.encode("It is a truth universally acknowledged" * 5)
    bpc = evaluate_bpc(model, ids, context=7, streams=1)
    assert 0 < bpc < 8
    with torch.no_grad():
        logits = model(ids[:-1].unsqueeze(1))[0][:, 0]
    by_hand = torch.nn.functional.cross_entropy(logits, ids[1:]) / torch.log(torch.tensor(2.0))
    assert bpc == pytest.approx(by_hand.item(), rel=1e-5)


def test_vocab_mismatch_refused(run, tmp_path, capsys):
    model, config, _ = load_lm(run.out_dir / "best.pt")
    other = CharVocab("".join(chr(ord("A") + i) for i in range(81)))
    save_lm(tmp_path / "other.pt", model, config, other, {})
    code = main(["generate", str(tmp_path / "other.pt"), "--prompt", "AB", "--tokens", "3"])
    assert code == 1 and "different vocabulary" in capsys.readouterr().err
    assert main(["energy", str(tmp_path / "other.pt")]) == 1


def _with(model, **changes):
    other = type(model)(type(model.config)(**{**model.config.to_dict(), **changes}))
    other.load_state_dict(model.state_dict())
    return other.eval()


def test_energy_counts(run):
    model, _, vocab = load_lm(run.out_dir / "best.pt")
    assert model.config.spike_inputs == "none"
    ids = vocab.encode("It is a truth universally acknowledged, that a single man")
    n, c, h = None, 16, 64
    x = ids[: (len(ids) // 2) * 2].view(2, -1).t()
    for inputs in ("none", "att", "ffn", "all"):
        m = _with(model, spike_inputs=inputs)
        counts = lm_counts(m, ids, context=8, streams=2)
        n = counts.batch_size
        rec: dict = {}
        m(x, record=rec)
        ffn = counts.layer("blocks.1.ffn_value")
        assert ffn.synops == c * int(rec["blocks.1.ffn_hidden"].sum()) and ffn.macs == 0
        att, key = counts.layer("blocks.0.att_rkv"), counts.layer("blocks.0.ffn_key_receptance")
        names = {layer.name for layer in counts.layers}
        if inputs in ("att", "all"):  # binary inputs: two event-driven passes (s[t] and s[t-1])
            assert att.synops == 3 * c * int(rec["blocks.0.att_in"].sum() + rec["blocks.0.att_prev"].sum())
            assert att.macs == 0 and "blocks.0.sn_att" in names
        else:  # real layer-norm outputs: dense products
            assert att.macs == 3 * c * c * n and att.synops == 0 and "blocks.0.sn_att" not in names
        if inputs in ("ffn", "all"):
            assert key.synops == (h + c) * int(rec["blocks.0.ffn_in"].sum() + rec["blocks.0.ffn_prev"].sum())
            assert key.macs == 0 and "blocks.0.sn_ffn" in names
        else:
            assert key.macs == (h + c) * c * n and key.synops == 0 and "blocks.0.sn_ffn" not in names
        mixes = {"none": 5, "att": 2, "ffn": 3, "all": 0}[inputs]
        assert (counts.layer("blocks.0.token_shift_mix").macs if mixes else 0) == 2 * c * mixes * n
        assert counts.layer("blocks.0.sn_key").neuron_updates == h * n
        assert counts.layer("head").macs == (c * 81 + 2 * c) * n
    twin_counts = lm_counts(_with(model, spiking=False), ids, context=8, streams=2)
    assert twin_counts.total("synops") == 0 and twin_counts.layer("blocks.0.ffn_value").macs == (h * c + h) * n


def test_checkpoint_without_spike_inputs_loads_as_the_model_it_was(run, tmp_path):
    """Checkpoints written before ``spike_inputs`` existed were trained with every input binarised ("all")."""
    from spikeforge.training.checkpoint import atomic_save
    from spikeforge.training.checkpoint import load_weights_only

    good = load_weights_only(run.out_dir / "best.pt")
    legacy = {**good, "model_config": {k: v for k, v in good["model_config"].items() if k != "spike_inputs"}}
    atomic_save(legacy, tmp_path / "legacy.pt")
    old, _, vocab = load_lm(tmp_path / "legacy.pt")
    new, _, _ = load_lm(run.out_dir / "best.pt")
    assert (old.config.spike_inputs, new.config.spike_inputs) == ("all", "none")
    values = {**lm_defaults("spikegpt"), "hidden": (8,), "epochs": 1, "steps_per_epoch": 1, "time_steps": 8}
    cfg = TrainConfig(**{**values, "dataset": "austen", "model": "spikegpt", "batch_size": 2})
    r = train_lm(cfg, tmp_path / "ffn", test=False, max_eval_chars=200, model_options={"spike_inputs": "ffn"})
    assert load_lm(r.out_dir / "best.pt")[0].config.spike_inputs == "ffn" == r.model.config.spike_inputs
    ids = vocab.encode("It is a truth universally acknowledged").unsqueeze(1)
    torch.testing.assert_close(old(ids)[0], _with(new, spike_inputs="all")(ids)[0])


def test_damaged_lm_checkpoints_refused(run, tmp_path, capsys):
    from spikeforge.training.checkpoint import atomic_save
    from spikeforge.training.checkpoint import load_weights_only

    good = load_weights_only(run.out_dir / "best.pt")
    cases = {
        "novocab.pt": {**good, "vocab": None},
        "huge.pt": {**good, "model_config": {**good["model_config"], "d_model": 4096, "n_layers": 64}},
        "nan.pt": {**good, "model": {k: v.clone().fill_(float("nan")) if v.is_floating_point() else v
                                     for k, v in good["model"].items()}},
        "smallvocab.pt": {**good, "model_config": {**good["model_config"], "vocab_size": 5}},
    }  # fmt: skip
    for name, obj in cases.items():
        atomic_save(obj, tmp_path / name)
        with pytest.raises(ValueError):
            load_lm(tmp_path / name)
        assert main(["generate", str(tmp_path / name), "--tokens", "3"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "error:" in err[0] and "Traceback" not in err[0], (name, err)
