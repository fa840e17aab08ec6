"""Streaming engine against the dense SNNSequential (the oracle), a hand-computed lazy leak, edge cases."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import pytest
import torch
from torch import nn

from spikeforge.events import StreamingEngine, dense_to_events
from spikeforge.events._kernel import numba_available
from spikeforge.layers import SNNSequential, record
from spikeforge.neurons import ALIF, IF, LI, LIF, CubaLIF, Izhikevich, RecurrentLIF

D = torch.float64
MODES = [False] + ([True] if numba_available() else [])


def _scaled(net: SNNSequential, scale: float) -> SNNSequential:
    net = net.to(D)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(scale)
    return net


def _compare(net: SNNSequential, shape: tuple[int, ...], gen: torch.Generator, use_numba: bool, *, T: int = 25,
             density: float = 0.3, active: bool = True) -> None:
    x = (torch.rand(T, 1, *shape, generator=gen, dtype=D) < density).to(D)
    with torch.no_grad():
        (out, _), rec = record(net, x)
    res = StreamingEngine(net, shape, use_numba=use_numba).run(x, record=True)
    assert torch.equal(res.spikes, out.float())
    for got, ref in zip(res.layer_spikes, rec.values()):
        assert torch.equal(got, ref.reshape(T, 1, -1).float())
        if active:  # a test that cannot fail is a defect: every layer must fire, but not always
            assert 0 < int(ref.sum()) < ref.numel()


NETS: dict[str, Callable[[torch.Generator], tuple[SNNSequential, tuple[int, ...]]]] = {
    "if_subtract_bias": lambda g: (_scaled(SNNSequential(nn.Linear(16, 24), IF(), nn.Linear(24, 8), IF(v_th=0.7)), 1.5), (16,)),
    "lif_subtract": lambda g: (_scaled(SNNSequential(nn.Linear(16, 24, bias=False), LIF(5.0), nn.Linear(24, 8, bias=False),
                                                     LIF(4.0)), 12.0), (16,)),
    "lif_to_value_bias": lambda g: (_scaled(SNNSequential(nn.Linear(16, 24), LIF(5.0, reset="to_value", v_reset=-0.2),
                                                          nn.Linear(24, 8), LIF(4.0, reset="to_value")), 6.0), (16,)),
    "lif_none_raw": lambda g: (_scaled(SNNSequential(nn.Linear(16, 24), LIF(5.0, reset="none", input_scaling="none"),
                                                     nn.Linear(24, 8), LIF(3.0, reset="none", input_scaling="none")), 0.7), (16,)),
    "cuba": lambda g: (_scaled(SNNSequential(nn.Linear(16, 24, bias=False), CubaLIF(5.0, 3.0), nn.Linear(24, 8, bias=False),
                                             CubaLIF(4.0, 2.0, reset="to_value")), 6.0), (16,)),
    "recurrent": lambda g: (_scaled(SNNSequential(nn.Linear(16, 24), RecurrentLIF(24, 5.0, generator=g),
                                                  nn.Linear(24, 8), LIF(4.0)), 5.0), (16,)),
    "per_neuron": lambda g: (_scaled(SNNSequential(nn.Linear(16, 24), LIF(torch.rand(24, generator=g) * 8 + 1, v_rest=0.1,
                                                                         v_th=torch.rand(24, generator=g) + 0.5, size=24),
                                                   nn.Linear(24, 8), IF(c_mem=2.0, reset="to_value")), 5.0), (16,)),
    "per_neuron_simple": lambda g: (_scaled(SNNSequential(nn.Linear(16, 24, bias=False),
                                                          LIF(torch.rand(24, generator=g) * 8 + 1, size=24),
                                                          nn.Linear(24, 8, bias=False),
                                                          LIF(4.0, v_th=torch.rand(8, generator=g) + 0.5, size=8)), 12.0), (16,)),
    "conv": lambda g: (_scaled(SNNSequential(nn.Conv2d(2, 3, 3, stride=2, padding=1), LIF(5.0), nn.Flatten(),
                                             nn.Linear(48, 6), IF()), 4.0), (2, 8, 8)),
}


@pytest.mark.parametrize("use_numba", MODES)
@pytest.mark.parametrize("name", list(NETS))
def test_engine_spikes_equal_dense(name: str, use_numba: bool, gen: torch.Generator) -> None:
    torch.manual_seed(0)  # nn.Linear default init
    net, shape = NETS[name](gen)
    _compare(net, shape, gen, use_numba)


def test_engine_spikes_equal_dense_larger_random(gen: torch.Generator) -> None:
    for seed in range(3):
        torch.manual_seed(seed)
        net = _scaled(SNNSequential(nn.Linear(64, 96), LIF(8.0, input_scaling="none"), nn.Linear(96, 96),
                                    LIF(6.0, reset="to_value", input_scaling="none"), nn.Linear(96, 10), IF()), 2.0)
        _compare(net, (64,), gen, use_numba=MODES[-1], T=60, density=0.1)


@pytest.mark.parametrize("use_numba", MODES)
def test_sparse_input_idle_layers_catch_up_exactly(use_numba: bool, gen: torch.Generator) -> None:
    """Layers that receive nothing for several steps are updated later with the closed-form leak (uniform
    and per-neuron parameters, every reset mode); spikes and final membranes equal the dense model's."""
    for k, reset in enumerate(("subtract", "to_value", "none")):
        torch.manual_seed(10 + k)
        tau = torch.rand(40, generator=gen) * 6 + 2
        net = _scaled(SNNSequential(nn.Linear(30, 40, bias=False), LIF(tau, size=40, reset=reset, input_scaling="none"),
                                    nn.Linear(40, 20, bias=False), LIF(5.0, reset=reset, input_scaling="none")), 3.0)
        x = (torch.rand(80, 1, 30, generator=gen, dtype=D) < 0.02).to(D)
        with torch.no_grad():
            (out, states), rec = record(net, x)
        res = StreamingEngine(net, (30,), use_numba=use_numba).run(x, record=True)
        assert torch.equal(res.spikes, out.float())
        for got, ref in zip(res.layer_spikes, rec.values()):
            assert torch.equal(got, ref.reshape(80, 1, -1).float())
        assert int(list(rec.values())[0].sum()) > 0
        assert res.ops.layers[0].neuron_updates < 80 * 40  # idle steps were skipped
        # the engine's membranes are those of its last update: bring them to step T-1 by hand
        beta = np.exp(-1.0 / tau.double().numpy())
        k_left = 79 - res.state.last[:40]
        v_end = beta**k_left * res.state.v[:40]
        np.testing.assert_allclose(v_end, states[0].v.reshape(-1).numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("width", [150, 32])
def test_dense_input_scan_equals_nonzero(width: int, gen: torch.Generator) -> None:
    """The compiled input scan (64-byte blocks, then a row's tail) against torch.nonzero, float32 and float64."""
    from spikeforge.events._kernel import get_advance

    x = torch.rand(9, width, generator=gen) * (torch.rand(9, width, generator=gen) < 0.05)
    x[3, 7], x[4, width - 1], x[5, 0], x[2, 15], x[2, 16] = -0.0, 2.5, -1.0, 0.5, 0.25  # block edges, row end
    x[6] = 0.0
    for mode in MODES:
        dense_csr = get_advance(mode)[2]
        for xt in (x, x.double()):
            xn = xt.numpy()
            ptr, idx, val = np.empty(10, np.int64), np.empty(xn.size, np.int64), np.empty(xn.size)
            nnz = dense_csr(xn, xn.view(np.uint64), ptr, idx, val)
            nz = torch.nonzero(xt)
            assert nnz == nz.shape[0]
            np.testing.assert_array_equal(idx[:nnz], nz[:, 1].numpy())
            np.testing.assert_array_equal(val[:nnz], xt[nz[:, 0], nz[:, 1]].double().numpy())
            np.testing.assert_array_equal(np.diff(ptr), torch.bincount(nz[:, 0], minlength=9).numpy())
            for col in (100 % width, width - 1):  # inf inside a block and in the tail
                xn2 = xn.copy()
                xn2[8, col] = np.inf
                assert dense_csr(xn2, xn2.view(np.uint64), ptr, idx, val) == -1


def test_odd_width_and_half_inputs_equal_dense(gen: torch.Generator) -> None:
    """float32 rows of odd width and float16 inputs go through the float64 scan; spikes equal the model's."""
    torch.manual_seed(4)
    net = SNNSequential(nn.Linear(15, 20, bias=False), LIF(5.0, input_scaling="none"), nn.Linear(20, 7, bias=False), IF())
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(3.0)
    x = (torch.rand(30, 1, 15, generator=gen) < 0.3).float()
    with torch.no_grad():
        out, _ = net(x)
    assert 0 < int(out.sum()) < out.numel()
    for mode in MODES:
        eng = StreamingEngine(net, (15,), use_numba=mode)
        assert torch.equal(eng.run(x).spikes, out)
        assert torch.equal(eng.run(x.half()).spikes, out)


def test_chained_runs_and_deferred_bookkeeping_equal_one_run(gen: torch.Generator) -> None:
    """Whole-layer updates defer ``last`` and ``due`` within a call: runs chained through the state, and the
    compiled and interpreted paths, give the same spikes and state as one run; a resting potential above
    threshold makes neurons due without input (per-neuron updates between whole-layer ones)."""
    torch.manual_seed(5)
    net = _scaled(SNNSequential(nn.Linear(8, 6, bias=False), LIF(20.0, reset="to_value", v_rest=1.3, input_scaling="none"),
                                nn.Linear(6, 5, bias=False), LIF(4.0, input_scaling="none")), 2.5)
    x = (torch.rand(60, 1, 8, generator=gen, dtype=D) < 0.04).to(D)
    with torch.no_grad():
        (out, _), rec = record(net, x)
    assert 0 < int(out.sum()) and int((x.sum((1, 2)) == 0).sum()) > 10  # output spikes and input-free steps
    results = []
    for mode in MODES:
        eng = StreamingEngine(net, (8,), use_numba=mode)
        full = eng.run(x, record=True)
        assert torch.equal(full.spikes, out.float())
        for got, ref in zip(full.layer_spikes, rec.values()):
            assert torch.equal(got, ref.reshape(60, 1, -1).float())
        n_upd = full.ops.layers[0].neuron_updates
        assert n_upd % 6 != 0 and n_upd < 60 * 6  # some neurons were updated alone, some steps skipped
        state, outs = None, []
        for t0, t1 in ((0, 7), (7, 8), (8, 33), (33, 60)):
            part = eng.run(x[t0:t1], state)
            state = part.state
            outs.append(part.spikes)
        assert torch.equal(torch.cat(outs), full.spikes)
        for name in ("v", "last", "due", "min_due"):
            np.testing.assert_array_equal(getattr(state, name), getattr(full.state, name))
        # deferred fields written back: last = step of the last update, due as the per-neuron rule gives it
        st = full.state
        beta = math.exp(-1.0 / 20.0)
        soon = beta * st.v[:6] - 1.0 > 0.0
        assert np.all(st.last[:6] <= 59) and np.all(st.last[:6] >= 0)
        np.testing.assert_array_equal(st.due[:6] == st.last[:6] + 1, soon)
        results.append(full.state)
    if len(results) == 2:  # beta**k: Numba's integer power and numpy's pow() may differ in the last bit
        np.testing.assert_allclose(results[0].v, results[1].v, rtol=1e-14, atol=1e-15)
        for name in ("last", "due", "min_due"):
            np.testing.assert_array_equal(getattr(results[0], name), getattr(results[1], name))


def test_lazy_leak_matches_hand_computation() -> None:
    """One LIF neuron, input spikes at steps 0 and 5 only: two updates, membrane by hand."""
    net = SNNSequential(nn.Linear(1, 1, bias=False), LIF(4.0, v_rest=0.1, v_th=10.0)).to(D)
    with torch.no_grad():
        net.layers[0].weight.fill_(2.0)
    x = torch.zeros(8, 1, 1, dtype=D)
    x[0] = x[5] = 1.0
    eng = StreamingEngine(net, (1,), use_numba=False)
    res = eng.run(x)
    beta = math.exp(-1.0 / 4.0)
    v = 0.1 + beta * (0.1 - 0.1) + (1 - beta) * 2.0  # step 0
    v = 0.1 + beta**4 * (v - 0.1)  # steps 1..4, no input: one closed-form catch-up
    v = 0.1 + beta * (v - 0.1) + (1 - beta) * 2.0  # step 5
    assert res.state.v[0] == pytest.approx(v, rel=1e-14)
    assert res.state.last[0] == 5
    assert res.ops.total("neuron_updates") == 2 and res.ops.total("synops") == 2
    with torch.no_grad():
        _, states = net(x[:6])
    assert float(states[0].v) == pytest.approx(v, rel=1e-14)


def test_bias_drive_fires_without_input_and_is_evaluated_lazily() -> None:
    net = SNNSequential(nn.Linear(3, 4), LIF(5.0), nn.Linear(4, 2, bias=False), IF()).to(D)
    with torch.no_grad():
        net.layers[0].weight.zero_()
        net.layers[0].bias.copy_(torch.tensor([1.5, 2.0, 0.5, 3.0], dtype=D))  # v_inf = bias: 3 of 4 fire
        net.layers[2].weight.fill_(0.4)
    x = torch.zeros(120, 1, 3, dtype=D)
    with torch.no_grad():
        (out, _), rec = record(net, x)
    res = StreamingEngine(net, (3,), use_numba=MODES[-1]).run(x, record=True)
    first = list(rec.values())[0]
    assert torch.equal(res.layer_spikes[0], first.reshape(120, 1, -1).float()) and torch.equal(res.spikes, out.float())
    assert first[:, 0, 2].sum() == 0 and first[:, 0, 3].sum() > 0
    assert res.ops.layers[0].neuron_updates < 4 * 120 and res.ops.layers[0].synops == 0


def test_step_by_step_and_events_equal_one_run(gen: torch.Generator) -> None:
    torch.manual_seed(1)
    net = _scaled(SNNSequential(nn.Flatten(), nn.Linear(2 * 3 * 4, 12), LIF(5.0), nn.Linear(12, 5), LIF(3.0)), 5.0)
    x = (torch.rand(20, 1, 2, 3, 4, generator=gen, dtype=D) < 0.3).to(D)
    eng = StreamingEngine(net, (2, 3, 4), use_numba=False)
    full = eng.run(x)
    state, outs = None, []
    for t in range(20):
        o, state = eng.step(x[t], state)
        outs.append(o)
    assert torch.equal(torch.stack(outs), full.spikes)
    ev = dense_to_events(x[:, 0], dt=1000)
    res = eng.run_events(ev, (4, 3, 2), dt=1000, num_steps=20)
    assert torch.equal(res.spikes, full.spikes) and res.ops == full.ops


@pytest.mark.parametrize("fill", [0.0, 1.0])
def test_no_spikes_and_all_spikes(fill: float) -> None:
    torch.manual_seed(2)
    net = _scaled(SNNSequential(nn.Linear(10, 12, bias=False), LIF(5.0), nn.Linear(12, 4, bias=False), IF()), 2.0)
    x = torch.full((15, 1, 10), fill, dtype=D)
    with torch.no_grad():
        out, _ = net(x)
    res = StreamingEngine(net, (10,), use_numba=False).run(x)
    assert torch.equal(res.spikes, out.float())
    if fill == 0.0:
        assert res.ops.total("synops") == 0 and res.ops.total("neuron_updates") == 0 and res.spikes.sum() == 0
    else:
        assert res.ops.layers[0].synops == 15 * 10 * 12


def test_engine_synops_equal_energy_count(gen: torch.Generator) -> None:
    energy = pytest.importorskip("spikeforge.energy")
    torch.manual_seed(3)
    net = _scaled(SNNSequential(nn.Conv2d(2, 3, 3, padding=1), LIF(5.0, input_scaling="none"), nn.Flatten(),
                                nn.Linear(3 * 6 * 6, 20), RecurrentLIF(20, 4.0, input_scaling="none", generator=gen),
                                nn.Linear(20, 5), IF()), 3.0)
    x = (torch.rand(12, 1, 2, 6, 6, generator=gen, dtype=D) < 0.2).to(D)
    res = StreamingEngine(net, (2, 6, 6), use_numba=MODES[-1]).run(x)
    counts = energy.count(net, x)
    for lay in res.ops.layers:
        assert lay.synops == counts.layer(lay.synapse).synops > 0
        assert lay.recurrent_synops == counts.layer(lay.neuron).synops
        assert lay.spikes == counts.layer(lay.neuron).spikes
    assert res.ops.layers[1].recurrent_synops > 0


def test_unsupported_networks_and_inputs_raise() -> None:
    lin = nn.Linear(4, 4)
    with pytest.raises(TypeError, match="ALIF"):
        StreamingEngine(SNNSequential(lin, ALIF()), (4,))
    with pytest.raises(TypeError, match="LI"):
        StreamingEngine(SNNSequential(lin, LI()), (4,))
    with pytest.raises(ValueError, match="two synaptic"):
        StreamingEngine(SNNSequential(lin, nn.Linear(4, 4), LIF()), (4,))
    with pytest.raises(ValueError, match="end with"):
        StreamingEngine(SNNSequential(lin, LIF(), nn.Linear(4, 2)), (4,))
    with pytest.raises(ValueError, match="CubaLIF"):
        StreamingEngine(SNNSequential(nn.Linear(4, 4, bias=True), CubaLIF()), (4,))
    with pytest.raises(TypeError, match="ReLU"):
        StreamingEngine(SNNSequential(lin, nn.ReLU(), LIF()), (4,))
    with pytest.raises(ValueError, match="groups"):
        StreamingEngine(SNNSequential(nn.Conv2d(2, 2, 3, groups=2), LIF()), (2, 5, 5))
    with pytest.raises(ValueError, match="input gain"):
        StreamingEngine(SNNSequential(lin, LIF(r=-1.0)), (4,))
    with pytest.raises(ValueError, match="input_shape"):
        StreamingEngine(SNNSequential(lin, LIF()), 4)  # type: ignore[arg-type]
    eng = StreamingEngine(SNNSequential(lin, LIF()), (4,), use_numba=False)
    with pytest.raises(ValueError, match="batch 1"):
        eng.run(torch.zeros(3, 2, 4))
    with pytest.raises(TypeError, match="floating"):
        eng.run(torch.zeros(3, 1, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="NaN"):
        eng.run(torch.full((3, 1, 4), float("nan")))
    with pytest.raises(TypeError, match="EngineState"):
        eng.run(torch.zeros(3, 1, 4), state=object())  # type: ignore[arg-type]
    res = eng.run_events(np.zeros(0, dtype=[("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", bool)]), (4, 1, 1),
                         dt=10, num_steps=5)
    assert res.spikes.shape == (5, 1, 4) and res.spikes.sum() == 0


def test_engine_asks_the_neuron_not_its_class(gen: torch.Generator) -> None:
    """A LIF-family layer the engine has never heard of runs (its constants come from membrane_spec());
    a layer whose capabilities say it is not a spiking LIF-family membrane is refused by name."""

    class ScaledLIF(LIF):  # a new type with the LIF membrane
        pass

    torch.manual_seed(4)
    net = _scaled(SNNSequential(nn.Linear(16, 24, bias=False), ScaledLIF(5.0), nn.Linear(24, 8, bias=False), LIF(4.0)),
                  12.0)
    for mode in MODES:
        _compare(net, (16,), gen, mode)
    with pytest.raises(TypeError, match="Izhikevich is not a spiking LIF-family layer"):
        StreamingEngine(SNNSequential(nn.Linear(4, 4), Izhikevich()), (4,))
    with pytest.raises(TypeError, match="ALIF has an adaptive threshold"):
        StreamingEngine(SNNSequential(nn.Linear(4, 4), ALIF(torch.rand(4, generator=gen) + 5, size=4)), (4,))
