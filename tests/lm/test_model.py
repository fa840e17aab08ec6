"""SpikeGPT: recurrent form == parallel form, causality, the twin's parameter layout, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from spikeforge.lm import SpikeGPT
from spikeforge.lm import SpikeGPTConfig


def _model(spiking, neuron="lif", seed=0, spike_inputs="none"):
    torch.manual_seed(seed)
    cfg = SpikeGPTConfig(
        vocab_size=17, d_model=12, n_layers=2, spiking=spiking, neuron=neuron, spike_inputs=spike_inputs
    )
    m = SpikeGPT(cfg).double()
    with torch.no_grad():  # away from the zero-initialised output layers, so every path matters
        for p in m.parameters():
            p.add_(0.4 * torch.randn_like(p))
    return m


@pytest.mark.parametrize(
    ("spiking", "neuron", "spike_inputs"),
    [(True, "lif", "none"), (True, "if", "none"), (True, "lif", "att"), (True, "if", "all"), (False, "lif", "all")],
)
def test_recurrent_equals_parallel(spiking, neuron, spike_inputs):
    m = _model(spiking, neuron, spike_inputs=spike_inputs)
    tokens = torch.randint(0, 17, (30, 3), generator=torch.Generator().manual_seed(1))
    logits, _ = m(tokens)
    state, steps = None, []
    for t in range(tokens.shape[0]):
        out, state = m.step(tokens[t], state)
        steps.append(out)
    torch.testing.assert_close(torch.stack(steps), logits, rtol=1e-9, atol=1e-9)
    first, mid = m(tokens[:11])
    rest, _ = m(tokens[11:], mid)
    torch.testing.assert_close(torch.cat([first, rest]), logits, rtol=1e-9, atol=1e-9)
    if spiking:  # the spiking model really spikes, and not everywhere
        rec: dict = {}
        m(tokens, record=rec)
        z = rec["blocks.0.ffn_hidden"]
        assert set(z.unique().tolist()) <= {0.0, 1.0} and 0 < z.mean() < 1


def _binary(t):
    return set(t.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("spike_inputs", ["none", "att", "ffn", "all"])
def test_spike_inputs_choose_which_layer_norm_outputs_are_binary(spike_inputs):
    m = _model(True, spike_inputs=spike_inputs)
    tokens = torch.randint(0, 17, (25, 3), generator=torch.Generator().manual_seed(5))
    rec: dict = {}
    logits, state = m(tokens, record=rec)
    assert _binary(rec["embedding"]) and _binary(rec["blocks.1.ffn_hidden"])
    for i in range(2):
        assert _binary(rec[f"blocks.{i}.att_in"]) == (spike_inputs in ("att", "all"))
        assert _binary(rec[f"blocks.{i}.ffn_in"]) == (spike_inputs in ("ffn", "all"))
        assert (state[i].sn_att is None) == (spike_inputs not in ("att", "all"))
        assert (state[i].sn_ffn is None) == (spike_inputs not in ("ffn", "all"))
    # reference by hand: the first block's time-mixing input is LN1 of the binary embedding (real by default)
    blk = m.blocks[0]
    e = (m.embedding(tokens) > 0).double()
    ln = (e - e.mean(-1, keepdim=True)) / torch.sqrt(e.var(-1, unbiased=False, keepdim=True) + blk.ln1.eps)
    ln = ln * blk.ln1.weight + blk.ln1.bias
    if spike_inputs in ("att", "all"):  # LIF, tau_mem 2, raw input, threshold 1, reset by subtraction
        v, spikes = torch.zeros_like(ln[0]), []
        for t in range(ln.shape[0]):
            v = math.exp(-1 / 2) * v + ln[t]
            z = (v > 1).double()
            v = v - z
            spikes.append(z)
        ln = torch.stack(spikes)
    torch.testing.assert_close(rec["blocks.0.att_in"], ln)
    # and the choice matters: the same weights read with every input binarised give other logits
    other = _model(True, spike_inputs="all" if spike_inputs != "all" else "none")
    other.load_state_dict(m.state_dict())
    assert not torch.allclose(other(tokens)[0], logits)


@pytest.mark.parametrize("spiking", [True, False])
def test_causal(spiking):
    m = _model(spiking)
    tokens = torch.randint(0, 17, (20, 2), generator=torch.Generator().manual_seed(2))
    changed = tokens.clone()
    changed[12:] = (changed[12:] + 5) % 17
    a, _ = m(tokens)
    b, _ = m(changed)
    assert torch.equal(a[:12], b[:12])
    assert not torch.allclose(a[12:], b[12:])


def test_twin_has_identical_parameter_layout_and_different_function():
    s, r = _model(True), _model(False)
    assert {k: v.shape for k, v in s.state_dict().items()} == {k: v.shape for k, v in r.state_dict().items()}
    r.load_state_dict(s.state_dict())
    tokens = torch.randint(0, 17, (8, 2))
    assert not torch.allclose(s(tokens)[0], r(tokens)[0])


@pytest.mark.parametrize("spike_inputs", ["none", "all"])
def test_gradients_reach_every_parameter_through_spikes(spike_inputs):
    m = _model(True, spike_inputs=spike_inputs).float()
    tokens = torch.randint(0, 17, (16, 4))
    m.loss(tokens).backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing
    assert m.blocks[0].ffn_key.weight.grad.abs().sum() > 0  # through SN_k's surrogate
    assert m.embedding.weight.grad.abs().sum() > 0  # through the binary embedding's surrogate (and SN_a's)


@pytest.mark.parametrize("spike_inputs", ["none", "all"])
def test_gradient_matches_finite_differences_off_the_spikes(spike_inputs):
    """The last block's receptance gate reaches the logits through no spiking neuron: there autograd == central
    differences (the surrogate replaces the derivative only where a spike is)."""
    m = _model(True, spike_inputs=spike_inputs)
    tokens = torch.randint(0, 17, (10, 2), generator=torch.Generator().manual_seed(7))
    p = m.blocks[1].ffn_mix_r
    m.loss(tokens).backward()
    g = p.grad.clone()
    eps = 1e-6
    for i in range(4):
        with torch.no_grad():
            p[i] += eps
            up = float(m.loss(tokens))
            p[i] -= 2 * eps
            down = float(m.loss(tokens))
            p[i] += eps
        assert (up - down) / (2 * eps) == pytest.approx(float(g[i]), rel=1e-5, abs=1e-9)


def test_bad_input_refused():
    m = _model(True)
    with pytest.raises(ValueError, match=r"int64 ids in \[0, 17\)"):
        m(torch.full((3, 1), 17))
    with pytest.raises(ValueError, match=r"\[T, B\]"):
        m(torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="tuple of 2 BlockStates"):
        m(torch.zeros(3, 1, dtype=torch.long), state=())
    with pytest.raises(ValueError, match="neuron"):
        SpikeGPTConfig(vocab_size=5, neuron="hh")
    with pytest.raises(ValueError, match="d_model"):
        SpikeGPTConfig(vocab_size=5, d_model=0)
    with pytest.raises(ValueError, match="spike_inputs must be one of none, att, ffn, all"):
        SpikeGPTConfig(vocab_size=5, spike_inputs="both")
