"""Streaming engine with DelayedLinear layers (integer delays, issue 16): a delay line per synapse group.

The oracle is the dense SNNSequential run of the same network (rounded delays run as exact shifts there); a
hand-computed case pins the timing (a spike sent at ``t`` arrives at ``t + d``), and the state carries
the delay lines across calls and steps."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from spikeforge.events import StreamingEngine
from spikeforge.events._kernel import numba_available
from spikeforge.layers import SNNSequential
from spikeforge.layers import record
from spikeforge.neurons import IF
from spikeforge.neurons import LIF
from spikeforge.synapses import DelayedLinear

D = torch.float64
MODES = [False] + ([True] if numba_available() else [])
PER = ["axon", "synapse"]


def _delays(per: str, n_in: int, n_out: int, max_delay: int, g: torch.Generator) -> torch.Tensor:
    """Random integer delays in [0, max_delay] that include both ends (delay 0 and the largest delay)."""
    shape = (n_in,) if per == "axon" else (n_out, n_in)
    d = torch.randint(0, max_delay + 1, shape, generator=g).to(torch.get_default_dtype())
    d.view(-1)[0], d.view(-1)[1] = 0.0, float(max_delay)
    return d


def _net(per: str, g: torch.Generator, *, max_delay: int = 5, dtype: torch.dtype = D) -> SNNSequential:
    torch.manual_seed(int(torch.randint(0, 10**6, (1,), generator=g)))  # layer initialisation
    first = DelayedLinear(12, 16, max_delay, per=per, delays=_delays(per, 12, 16, max_delay, g), bias=False)
    second = DelayedLinear(16, 6, 3, per=per, delays=_delays(per, 16, 6, 3, g))
    net = SNNSequential(first.rounded(), LIF(5.0), second.rounded(), LIF(4.0, reset="to_value"), nn.Linear(6, 4), IF())
    net = net.to(dtype)
    with torch.no_grad():
        for p, scale in zip([p for p in net.parameters() if p.dim() == 2], (12.0, 30.0, 3.0)):
            p.mul_(scale)
    return net.eval()


def _dense(net: SNNSequential, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    with torch.no_grad():
        (out, _), rec = record(net, x)
    return out, [r.reshape(x.shape[0], 1, -1) for r in rec.values()]


@pytest.mark.parametrize("use_numba", MODES)
@pytest.mark.parametrize("per", PER)
def test_delays_equal_dense(per: str, use_numba: bool, gen: torch.Generator) -> None:
    for trial in range(3):
        net = _net(per, gen, dtype=D if trial < 2 else torch.float32)
        x = (torch.rand(40, 1, 12, generator=gen) < 0.25).to(D if trial < 2 else torch.float32)
        out, layers = _dense(net, x)
        res = StreamingEngine(net, (12,), use_numba=use_numba).run(x, record=True)
        assert torch.equal(res.spikes, out.float())
        for got, ref in zip(res.layer_spikes, layers):
            assert torch.equal(got, ref.float())
            assert 0 < int(ref.sum()) < ref.numel()  # every layer fires, but not always


@pytest.mark.parametrize("per", PER)
def test_delays_are_not_ignored(per: str, gen: torch.Generator) -> None:
    # the same weights with every delay 0 (a plain shift-free layer) give other spikes: the test above can fail
    net = _net(per, gen)
    flat = copy.deepcopy(net)
    for m in flat.layers:
        if isinstance(m, DelayedLinear):
            m.delays.zero_()
    x = (torch.rand(40, 1, 12, generator=gen) < 0.25).to(D)
    a = StreamingEngine(net, (12,)).run(x, record=True)
    b = StreamingEngine(flat, (12,)).run(x, record=True)
    assert not torch.equal(a.layer_spikes[0], b.layer_spikes[0])
    ref, _ = _dense(flat, x)
    assert torch.equal(b.spikes, ref.float())  # delay 0 everywhere: a plain Linear


@pytest.mark.parametrize("use_numba", MODES)
@pytest.mark.parametrize("per", PER)
def test_arrival_step_by_hand(per: str, use_numba: bool) -> None:
    # input 0 reaches output 0 after 2 steps, input 1 reaches output 1 after 4 (and output 0 after 0 per synapse);
    # IF neurons with threshold 0.5 and weight 1 fire exactly at the arrival step
    w = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=D)
    if per == "axon":
        delays = torch.tensor([2.0, 4.0])
    else:
        delays, w[0, 1] = torch.tensor([[2.0, 0.0], [1.0, 4.0]]), 1.0
    lin = DelayedLinear(2, 2, 4, per=per, delays=delays, bias=False).rounded().to(D)
    with torch.no_grad():
        lin.weight.copy_(w)
    net = SNNSequential(lin, IF(v_th=0.5, reset="to_value"))
    x = torch.zeros(8, 1, 2, dtype=D)
    x[1, 0, 0] = 1.0  # sent at 1: arrives at 3
    x[3, 0, 1] = 1.0  # sent at 3: arrives at 7 (and at 3 on output 0 per synapse, delay 0)
    res = StreamingEngine(net, (2,), use_numba=use_numba).run(x)
    got = res.spikes[:, 0].nonzero().tolist()
    assert got == [[3, 0], [7, 1]]
    assert torch.equal(res.spikes, _dense(net, x)[0].float())
    assert res.ops.total("synops") == 4  # per axon two rows of 2; per synapse 4 synapses (one of weight 0)


@pytest.mark.parametrize("use_numba", MODES)
@pytest.mark.parametrize("per", PER)
def test_state_carries_the_delay_lines(per: str, use_numba: bool, gen: torch.Generator) -> None:
    # spikes sent near the end of one call arrive in the next: chunks, single steps and the event path all
    # equal one run, and one run equals the dense net
    net = _net(per, gen)
    x = (torch.rand(36, 1, 12, generator=gen) < 0.3).to(D)
    x[30:] = 0.0
    x[29] = 1.0  # every input fires just before a silent tail: the delayed arrivals alone drive it
    eng = StreamingEngine(net, (12,), use_numba=use_numba)
    full = eng.run(x, record=True)
    out, layers = _dense(net, x)
    assert torch.equal(full.spikes, out.float()) and int(layers[0][30:].sum()) > 0
    state, parts, synops = None, [], 0
    for t0, t1 in ((0, 4), (4, 5), (5, 29), (29, 30), (30, 36)):
        part = eng.run(x[t0:t1], state)
        state, parts, synops = part.state, [*parts, part.spikes], synops + part.ops.total("synops")
    assert torch.equal(torch.cat(parts), full.spikes) and synops == full.ops.total("synops")
    np.testing.assert_array_equal(state.hcnt, full.state.hcnt)
    state, steps = eng.init_state(), []
    for t in range(36):
        s, state = eng.step(x[t], state)
        steps.append(s)
    assert torch.equal(torch.stack(steps), full.spikes)


@pytest.mark.parametrize("per", PER)
def test_synops_count_the_delivered_synapses(per: str, gen: torch.Generator) -> None:
    # independent count: input j sent at t is delivered through a synapse with delay d when t + d < T
    lin = DelayedLinear(12, 16, 5, per=per, delays=_delays(per, 12, 16, 5, gen)).rounded().to(D)
    net = SNNSequential(lin, LIF(5.0))
    x = (torch.rand(20, 1, 12, generator=gen) < 0.3).to(D)
    res = StreamingEngine(net, (12,)).run(x)
    t_send, j = x[:, 0].nonzero(as_tuple=True)
    d = lin.delays.to(torch.long)
    arrive = (t_send[:, None] + (d[j][:, None] if per == "axon" else d[:, j].t())) < 20  # [spikes, 1 or out]
    expected = int(arrive.sum()) * (16 if per == "axon" else 1)
    assert res.ops.layers[0].synops == expected


def test_interpolated_delays_refused_and_tampered_rings_raise() -> None:
    layer = DelayedLinear(4, 3, 2, per="synapse", delays=torch.zeros(3, 4))
    with pytest.raises(TypeError, match=r"layer 0: .*integer delays only.*layer\.rounded\(\)"):
        StreamingEngine(SNNSequential(layer, LIF()), (4,))
    eng = StreamingEngine(SNNSequential(layer.rounded(), LIF()), (4,))
    x = torch.ones(1, 4)
    for edit, match in (
        (lambda s: s.hcnt.__setitem__(0, 99), r"state\.hcnt"),
        (lambda s: (s.hcnt.__setitem__(0, 1), s.hidx.__setitem__(0, 7)), r"state\.hidx"),
        (lambda s: setattr(s, "hval", s.hval[:-1].copy()), r"state\.hval must be a contiguous float64"),
    ):
        _, state = eng.step(x)
        edit(state)
        with pytest.raises(ValueError, match=match):
            eng.step(x, state)
    _, state = eng.step(x)
    state.hval[0] = np.nan  # a value check: run() checks it, step() (the per-step path) does not
    with pytest.raises(ValueError, match=r"state\.hval contains NaN"):
        eng.run(x[None], state)
