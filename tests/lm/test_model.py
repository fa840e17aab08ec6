"""SpikeGPT: recurrent form == parallel form, causality, the twin's parameter layout, bad input."""

from __future__ import annotations

import pytest
import torch

from spikeforge.lm import SpikeGPT
from spikeforge.lm import SpikeGPTConfig


def _model(spiking, neuron="lif", seed=0):
    torch.manual_seed(seed)
    m = SpikeGPT(SpikeGPTConfig(vocab_size=17, d_model=12, n_layers=2, spiking=spiking, neuron=neuron)).double()
    with torch.no_grad():  # away from the zero-initialised output layers, so every path matters
        for p in m.parameters():
            p.add_(0.4 * torch.randn_like(p))
    return m


@pytest.mark.parametrize(("spiking", "neuron"), [(True, "lif"), (True, "if"), (False, "lif")])
def test_recurrent_equals_parallel(spiking, neuron):
    m = _model(spiking, neuron)
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


def test_gradients_reach_every_parameter_through_spikes():
    m = _model(True).float()
    tokens = torch.randint(0, 17, (16, 4))
    m.loss(tokens).backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing
    assert m.blocks[0].ffn_key.weight.grad.abs().sum() > 0  # through SN_k's surrogate


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
