"""Whole-layer (dense) steps of the streaming engine's Conv2d layers (``conv_whole``, ``_conv_update.update_all_conv``):
a step whose inputs touch at least that fraction of a conv layer's neurons updates every neuron in one pass.

Checked against the dense :class:`SNNSequential` (the oracle: spikes), against the listed path (``conv_whole=None``),
the two conv synapse paths against each other (kernel taps vs fan-out lists run the same dense steps: bit for bit),
and the trigger rule step by step against the touched positions computed here with ``F.conv2d``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from torch import nn

from spikeforge.events import StreamingEngine
from spikeforge.events._kernel import numba_available
from spikeforge.layers import SNNSequential
from spikeforge.layers import record
from spikeforge.neurons import IF
from spikeforge.neurons import LIF
from spikeforge.neurons import CubaLIF

D = torch.float64
MODES = [False] + ([True] if numba_available() else [])
NEURONS = {
    "lif": lambda: LIF(5.0),
    "lif_to_value": lambda: LIF(4.0, reset="to_value", v_reset=-0.1),
    "if_none": lambda: IF(reset="none"),
    "if_subtract": lambda: IF(),
    "cuba": lambda: CubaLIF(5.0, 3.0),  # not run by dense steps (listed always)
}


def _net(neuron: str, bias: bool, cin: int = 2, cout: int = 4, hw: tuple[int, int] = (8, 7)) -> SNNSequential:
    torch.manual_seed(3)
    conv = nn.Conv2d(cin, cout, 3, padding=1, bias=bias)
    n_out = cout * hw[0] * hw[1]
    net = SNNSequential(conv, NEURONS[neuron](), nn.Flatten(), nn.Linear(n_out, 5, bias=False), LIF(3.0)).to(D)
    with torch.no_grad():
        for q in net.parameters():
            q.mul_(4.0)
        if bias:  # one channel fires on its own, one never does
            conv.bias.copy_(torch.linspace(-0.3, 0.4, cout, dtype=D))
    return net


def _updates(res) -> int:  # type: ignore[no-untyped-def]
    return int(res.ops.layers[0].neuron_updates)


def _same(ra, rb) -> None:  # type: ignore[no-untyped-def]
    """Bit for bit: the conv layer's state, every layer's spikes and all operation counts."""
    n = ra.layer_spikes[0].shape[-1]
    for name in ("v", "i", "last", "due"):
        assert np.array_equal(getattr(ra.state, name)[:n], getattr(rb.state, name)[:n]), name
    assert np.array_equal(ra.state.ops, rb.state.ops)
    for x, y in zip(ra.layer_spikes, rb.layer_spikes):
        assert torch.equal(x, y)


# CubaLIF after a biased layer is refused by the engine (tested in test_events_engine)
CASES = [(n, b) for n in NEURONS for b in (False, True) if not (n == "cuba" and b)]


@pytest.mark.parametrize("use_numba", MODES)
@pytest.mark.parametrize(("neuron", "bias"), CASES)
def test_dense_steps_equal_dense_model_listed_path_and_lists(neuron: str, bias: bool, use_numba: bool) -> None:
    net = _net(neuron, bias)
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand(25, 1, 2, 8, 7, generator=gen, dtype=D) < 0.3).to(D)
    x[8:11] = 0.0  # idle steps between dense ones: the lazy leak and the schedules at work
    x[15:17] *= (torch.rand(2, 1, 2, 8, 7, generator=gen, dtype=D) < 0.1).to(D)  # sparse steps: listed
    with torch.no_grad():
        (out, _), rec = record(net, x)
    conv_spikes = next(iter(rec.values())).reshape(25, 1, -1).float()
    dense = StreamingEngine(net, (2, 8, 7), use_numba=use_numba, conv_whole=0.5).run(x, record=True)
    lists = StreamingEngine(net, (2, 8, 7), use_numba=use_numba, conv_taps=False, conv_whole=0.5).run(x, record=True)
    listed = StreamingEngine(net, (2, 8, 7), use_numba=use_numba, conv_whole=None).run(x, record=True)
    _same(dense, lists)  # both synapse paths take the same dense steps
    for res in (dense, listed):
        assert torch.equal(res.layer_spikes[0], conv_spikes)
        assert torch.equal(res.spikes, out.float())
    n = 4 * 8 * 7
    assert 0 < int(conv_spikes.sum()) < conv_spikes.numel()
    if neuron == "cuba":
        assert _updates(dense) == _updates(listed)  # CubaLIF layers never take a dense step
    else:
        assert _updates(dense) > _updates(listed)  # dense steps happened (they update every neuron)
        assert _updates(dense) >= 20 * n


@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.6, 1.0])
def test_the_trigger_rule_step_by_step(fraction: float) -> None:
    """A step is dense iff its inputs touch >= ceil(fraction * N) neurons (whole positions: C_out neurons each);
    the touched positions are computed here from the input pattern (a 3x3 receptive field, padding 1)."""
    net = _net("lif", bias=False)
    gen = torch.Generator().manual_seed(4)
    dens = torch.tensor([0.0, 0.01, 0.03, 0.08, 0.2, 0.5, 1.0]).repeat(3)
    x = (torch.rand(len(dens), 1, 2, 8, 7, generator=gen, dtype=D) < dens[:, None, None, None, None]).to(D)
    eng = StreamingEngine(net, (2, 8, 7), use_numba=MODES[-1], conv_whole=fraction)
    n, need = 4 * 8 * 7, max(1, math.ceil(fraction * 4 * 8 * 7))
    state = None
    seen = set()
    for t in range(len(dens)):
        before = 0 if state is None else int(state.ops[0, 2])
        _, state = eng.step(x[t], state)
        updates = int(state.ops[0, 2]) - before
        touched = F.conv2d((x[t] != 0).to(D).sum(1, keepdim=True), torch.ones(1, 1, 3, 3, dtype=D), padding=1)
        positions = int((touched > 0).sum())
        dense = positions > 0 and positions * 4 >= need
        seen.add(dense)
        if dense:
            assert updates == n, t
        else:
            assert updates < n, t  # listed: the touched (and due) neurons only
    assert seen == {True, False}  # both kinds of step occurred


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.5, True, float("nan"), "0.5"])
def test_conv_whole_must_be_a_fraction(bad: object) -> None:
    with pytest.raises(ValueError, match=r"conv_whole must be a fraction in \(0, 1\] or None"):
        StreamingEngine(_net("lif", bias=False), (2, 8, 7), conv_whole=bad)


@settings(max_examples=25, deadline=None)
@given(
    cout=st.integers(1, 5),
    h=st.integers(3, 9),
    w=st.integers(3, 9),
    density=st.floats(0.02, 0.9),
    fraction=st.floats(0.01, 1.0),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_dense_steps_property(
    cout: int, h: int, w: int, density: float, fraction: float, bias: bool, seed: int
) -> None:
    """Any geometry, input density and fraction: the engine's spikes are the dense model's, and both conv paths
    agree bit for bit."""
    torch.manual_seed(seed)
    conv = nn.Conv2d(2, cout, 3, padding=1, bias=bias)
    net = SNNSequential(conv, LIF(4.0)).to(D)
    with torch.no_grad():
        conv.weight.mul_(3.0)
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand(12, 1, 2, h, w, generator=gen, dtype=D) < density).to(D)
    with torch.no_grad():
        out, _ = net(x)
    taps = StreamingEngine(net, (2, h, w), use_numba=MODES[-1], conv_whole=fraction).run(x, record=True)
    lists = StreamingEngine(net, (2, h, w), use_numba=MODES[-1], conv_taps=False, conv_whole=fraction)
    _same(taps, lists.run(x, record=True))
    assert torch.equal(taps.spikes, out.float())
