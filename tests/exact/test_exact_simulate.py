"""Exact event simulation: hand-solved cases, convergence of grid simulations to it (RK4 and the project's
CubaLIF, with their observed orders), the tau_syn -> 0 limit, edge cases and input validation."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from spikeforge.exact import EventConfig
from spikeforge.exact import _kernels
from spikeforge.exact import max_membrane
from spikeforge.exact import simulate

sys.path.insert(0, str(Path(__file__).parent))
from _exact_reference import cuba_first_spikes
from _exact_reference import rk4_layer

INF = math.inf


def times(*rows: list[float], k: int = 4) -> torch.Tensor:
    """One sample's ``[1, N, k]`` input from per-neuron lists."""
    out = torch.full((1, len(rows), k), INF, dtype=torch.float64)
    for j, row in enumerate(rows):
        out[0, j, : len(row)] = torch.tensor(row, dtype=torch.float64)
    return out


def w(*rows: list[float]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


def single_spike_delay(weight: float, tau_syn: float, v_th: float) -> float:
    """``tau_mem = 2 tau_syn``: V = (w / tau_syn) (x - x^2), x = exp(-s / tau_mem); first root of x - x^2 = q."""
    q = v_th * tau_syn / weight
    return -2 * tau_syn * math.log((1 + math.sqrt(1 - 4 * q)) / 2)


def test_single_input_spike_matches_closed_form() -> None:
    cfg = EventConfig(tau_mem=10.0, tau_syn=5.0, v_th=1.0, max_spikes=3)
    out = simulate(times([3.0]), [w([30.0])], cfg)[0]
    assert out[0, 0, 0].item() == pytest.approx(3.0 + single_spike_delay(30.0, 5.0, 1.0), rel=1e-14, abs=0)
    assert math.isinf(out[0, 0, 1].item())  # after the reset V = a I E(s) peaks below v_th here
    # below the peak value w / (4 tau_syn) the neuron stays silent
    assert bool(torch.isinf(simulate(times([3.0]), [w([19.9])], cfg)[0]).all())


def test_two_neuron_chain_matches_closed_form() -> None:
    cfg = EventConfig(tau_mem=10.0, tau_syn=5.0, v_th=1.0, max_spikes=2)
    hidden, out = simulate(times([1.0]), [w([25.0]), w([40.0])], cfg)
    t1 = 1.0 + single_spike_delay(25.0, 5.0, 1.0)
    assert hidden[0, 0, 0].item() == pytest.approx(t1, rel=1e-14)
    assert out[0, 0, 0].item() == pytest.approx(t1 + single_spike_delay(40.0, 5.0, 1.0), rel=1e-14)


def test_plain_lif_jumps_and_threshold_equality() -> None:
    cfg = EventConfig(tau_mem=4.0, tau_syn=0.0, v_th=1.0, max_spikes=4)  # V jumps by w / 4
    # exactly v_th is not a spike; a little more is, at the input time
    assert bool(torch.isinf(simulate(times([2.0]), [w([4.0])], cfg)[0]).all())
    assert simulate(times([2.0]), [w([4.0 + 1e-12])], cfg)[0][0, 0, 0].item() == 2.0
    # two sub-threshold inputs: V = (w1 / 4) exp(-(t2 - t1) / 4) + w2 / 4 at t2
    w1, w2 = 3.0, 2.0
    fires = w1 / 4 * math.exp(-1.5 / 4) + w2 / 4 > 1.0
    out = simulate(times([1.0], [2.5]), [w([w1, w2])], cfg)[0]
    assert fires and out[0, 0, 0].item() == 2.5 and math.isinf(out[0, 0, 1].item())
    # simultaneous inputs are summed before the threshold test: V = 9/4 fires twice at t = 1 and keeps 1/4,
    # which with the next input (3.5 / 4) passes v_th again at t = 3 (a reset to 0 would not)
    assert 0.25 * math.exp(-0.5) + 3.5 / 4 > 1.0 > 3.5 / 4
    out = simulate(times([1.0], [1.0], [3.0]), [w([6.0, 3.0, 3.5])], cfg)[0]
    assert out[0, 0, :3].tolist() == [1.0, 1.0, 3.0] and math.isinf(out[0, 0, 3].item())


def test_tau_syn_to_zero_limit() -> None:
    gen = torch.Generator().manual_seed(3)
    x = torch.where(torch.rand(2, 4, 3, generator=gen) < 0.7, torch.rand(2, 4, 3, generator=gen) * 10, INF)
    x = x.double()
    ws = [torch.randn(5, 4, generator=gen).double() * 20 + 15]
    ref = simulate(x, ws, EventConfig(tau_syn=0.0, max_spikes=12))[0]
    errors = []
    for tau_syn in (1e-3, 1e-4):
        out = simulate(x, ws, EventConfig(tau_syn=tau_syn, max_spikes=12))[0]
        assert torch.equal(torch.isinf(out), torch.isinf(ref))
        errors.append((out - ref)[torch.isfinite(ref)].abs().max().item())
    assert errors[1] < errors[0] < 0.05
    assert 0.7 < math.log10(errors[0] / errors[1]) < 1.3  # the delay shrinks like tau_syn


def _grid_network(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pre = np.where(rng.random((3, 4, 3)) < 0.8, np.round(rng.random((3, 4, 3)) * 40) * 0.5, INF)
    return pre, rng.normal(3.0, 6.0, (5, 4))


def test_converges_to_rk4_reference_with_order_two() -> None:
    pre, weights = _grid_network(0)
    cfg = EventConfig(tau_mem=20.0, tau_syn=5.0, v_th=1.0, max_spikes=20, t_end=60.0)
    exact = simulate(torch.from_numpy(pre), [torch.from_numpy(weights)], cfg)[0].numpy()
    assert np.isfinite(exact[:, :, 1]).sum() >= 3  # several neurons fire twice: resets are covered
    errors = []
    for dt in (0.05, 0.025):
        ref = rk4_layer(pre, weights, 20.0, 5.0, 1.0, dt, 60.0)
        err = 0.0
        for b in range(3):
            for i in range(5):
                mine = exact[b, i][np.isfinite(exact[b, i])]
                assert len(mine) == len(ref[b][i])
                if len(mine):
                    err = max(err, float(np.abs(mine - np.array(ref[b][i])).max()))
        errors.append(err)
    assert errors[1] < 1e-3
    assert 1.6 < math.log2(errors[0] / errors[1]) < 2.4


def test_converges_to_discrete_cuba_lif_with_order_one() -> None:
    pre, weights = _grid_network(0)
    cfg = EventConfig(tau_mem=20.0, tau_syn=5.0, v_th=1.0, max_spikes=20, t_end=60.0)
    first = simulate(torch.from_numpy(pre), [torch.from_numpy(weights)], cfg)[0].numpy()[:, :, 0]
    fired = np.isfinite(first)
    errors = []
    for dt in (0.02, 0.01):
        cuba = cuba_first_spikes(pre, weights, 20.0, 5.0, 1.0, dt, 60.0)
        assert np.array_equal(np.isfinite(cuba), fired)
        errors.append(float(np.abs(first[fired] - cuba[fired]).max()))
    assert errors[1] < 0.05
    assert 0.8 < math.log2(errors[0] / errors[1]) < 1.2  # CubaLIF holds I over a step: first order


def test_equal_time_constants_are_continuous() -> None:
    x = times([0.0, 2.0], [1.0])
    ws = [w([12.0, 9.0])]
    equal = simulate(x, ws, EventConfig(tau_mem=5.0, tau_syn=5.0, max_spikes=4))[0]
    near = simulate(x, ws, EventConfig(tau_mem=5.0, tau_syn=5.0 * (1 + 1e-9), max_spikes=4))[0]
    assert torch.isfinite(equal[0, 0, 0])
    assert torch.allclose(equal, near, rtol=1e-7, atol=0)


def test_spikes_are_roots_of_the_closed_form() -> None:
    """At each found spike, the membrane integrated in closed form from the last event equals v_th."""
    pre, weights = _grid_network(1)
    out = simulate(torch.from_numpy(pre), [torch.from_numpy(weights)], EventConfig(max_spikes=20))[0].numpy()
    a, c = 1 / 20.0, 1 / 5.0
    for b in range(3):
        for i in range(5):
            t_spk = out[b, i][np.isfinite(out[b, i])]
            events = sorted((pre[b, j, k], weights[i, j]) for j, k in zip(*np.nonzero(np.isfinite(pre[b]))))
            for n, ts in enumerate(t_spk):
                last_reset = t_spk[n - 1] if n else 0.0
                # V(t) = sum over inputs after the last reset of w c a E(t - t_k) + the current left at the reset
                i_reset = sum(wk * c * math.exp(-c * (last_reset - tk)) for tk, wk in events if tk <= last_reset)
                v = a * i_reset * _kernels.edecay(ts - last_reset, a, c)
                v += sum(wk * c * a * _kernels.edecay(ts - tk, a, c) for tk, wk in events if last_reset < tk <= ts)
                assert v == pytest.approx(1.0, abs=1e-12)


def test_input_order_and_batch_independence() -> None:
    pre, weights = _grid_network(2)
    x = torch.from_numpy(pre)
    cfg = EventConfig(max_spikes=20)
    full = simulate(x, [torch.from_numpy(weights)], cfg)[0]
    shuffled = simulate(x.flip(-1), [torch.from_numpy(weights)], cfg)[0]  # any order within a neuron's list
    one = simulate(x[1:2], [torch.from_numpy(weights)], cfg)[0]
    assert torch.equal(full, shuffled) and torch.equal(full[1:2], one)


@pytest.mark.skipif(not _kernels.HAVE_NUMBA, reason="compiled path needs numba (the fast extra)")
def test_compiled_and_interpreted_paths_agree() -> None:
    pre, weights = _grid_network(4)
    args = (pre, weights, 20.0, 5.0, 1.0, INF, 20)
    compiled = _kernels.forward_layer(*args)
    interpreted = _kernels.forward_layer.py_func(*args)  # type: ignore[attr-defined]
    for got, want in zip(compiled, interpreted, strict=True):
        assert np.array_equal(got, want)
    out, cur, _ = compiled
    g_out = np.where(np.isfinite(out), 1.0, 0.0)
    none = np.zeros((0, 0))
    back = (pre, weights, out, cur, g_out, none, none, 20.0, 5.0, 1.0)
    for got, want in zip(
        _kernels.backward_layer(*back),
        _kernels.backward_layer.py_func(*back),
        strict=True,  # type: ignore[attr-defined]
    ):
        assert np.allclose(got, want, rtol=1e-13, atol=1e-15)
    read = (pre, weights, 20.0, 5.0, 40.0)
    for got, want in zip(_kernels.readout_layer(*read), _kernels.readout_layer.py_func(*read), strict=True):  # type: ignore[attr-defined]
        assert np.array_equal(got, want)


def test_empty_input_and_silent_network() -> None:
    cfg = EventConfig(max_spikes=2)
    x = torch.full((2, 3, 4), INF, dtype=torch.float64)
    outs = simulate(x, [torch.ones(4, 3, dtype=torch.float64), torch.ones(2, 4, dtype=torch.float64)], cfg)
    assert [tuple(o.shape) for o in outs] == [(2, 4, 2), (2, 2, 2)]
    assert all(bool(torch.isinf(o).all()) for o in outs)
    assert tuple(simulate(x[:0], [torch.ones(4, 3, dtype=torch.float64)], cfg)[0].shape) == (0, 4, 2)
    vmax, tmax = max_membrane(x, [torch.ones(4, 3, dtype=torch.float64)], EventConfig(readout="max_membrane"))
    assert bool((vmax == 0).all()) and bool((tmax == 0).all())


def test_max_membrane_matches_dense_evaluation() -> None:
    pre, weights = _grid_network(5)
    cfg = EventConfig(readout="max_membrane", t_end=40.0)
    vmax, _ = max_membrane(torch.from_numpy(pre), [torch.from_numpy(weights)], cfg)
    grid = np.linspace(0.0, 40.0, 40001)
    a, c = 1 / 20.0, 1 / 5.0
    for b in range(3):
        for i in range(5):
            v = np.zeros_like(grid)
            for j, k in zip(*np.nonzero(np.isfinite(pre[b])), strict=True):
                s = np.clip(grid - pre[b, j, k], 0.0, None)
                v += weights[i, j] * c * a * (np.exp(-a * s) - np.exp(-c * s)) / (c - a)
            assert vmax[b, i].item() == pytest.approx(max(v.max(), 0.0), abs=1e-7)
            assert vmax[b, i].item() >= v.max() - 1e-12


def test_overflow_raises() -> None:
    with pytest.raises(ValueError, match="max_spikes"):
        simulate(times([0.0, 1.0, 2.0]), [w([100.0])], EventConfig(tau_syn=0.0, max_spikes=2))


@pytest.mark.parametrize(
    ("x", "weights", "match"),
    [
        (torch.zeros(2, 3), [torch.ones(1, 3)], "B, N_in, K"),
        (torch.tensor([[[math.nan]]]), [torch.ones(1, 1)], "NaN"),
        (torch.tensor([[[-1.0]]]), [torch.ones(1, 1)], ">= 0"),
        (torch.tensor([[[-INF]]]), [torch.ones(1, 1)], ">= 0"),
        (torch.zeros(1, 3, 1), [torch.ones(2, 4)], "N_out, N_in"),
        (torch.zeros(1, 3, 1), [torch.ones(2, 3), torch.ones(2, 3)], "has 3 inputs"),
        (torch.zeros(1, 3, 1), [torch.full((2, 3), math.nan)], "NaN or inf"),
        (torch.zeros(1, 3, 1), [], "at least one"),
        (torch.zeros(1, 3, 1, dtype=torch.long), [torch.ones(2, 3)], "float"),
    ],
)
def test_bad_inputs_raise(x: torch.Tensor, weights: list[torch.Tensor], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        simulate(x, weights)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tau_mem": -1.0}, "tau_mem"),
        ({"tau_mem": 0.0}, "tau_mem"),
        ({"tau_syn": -5.0}, "tau_syn"),
        ({"tau_syn": math.nan}, "tau_syn"),
        ({"v_th": 0.0}, "v_th"),
        ({"t_end": 0.0}, "t_end"),
        ({"max_spikes": 0}, "max_spikes"),
        ({"max_spikes": 2.5}, "max_spikes"),
        ({"readout": "rate"}, "readout"),
    ],
)
def test_bad_config_raises(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        EventConfig(**kwargs)  # type: ignore[arg-type]
