"""Hodgkin-Huxley (1952) neuron: resting state, action-potential shape, tonic firing above rheobase, an
independent ODE-solver reference, rate-function singularities, gradients, path equivalence, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spikeforge._core.scan import scan
from spikeforge.neurons.base import get_neuron
from spikeforge.neurons.hh import HHParams, HHState, HodgkinHuxley, hh_init, hh_rates, hh_step
from spikeforge.surrogate import FastSigmoid

DT = 0.01  # ms (the module default)
T_MS = 150.0
CURRENTS = [0.0, 2.0, 6.1, 6.3, 7.0, 10.0, 20.0, 40.0]  # uA/cm^2
COL = {c: i for i, c in enumerate(CURRENTS)}


# ---- numpy reference of the equations (independent of the torch code) ------------------------------
def np_rates(v: np.ndarray) -> tuple[np.ndarray, ...]:
    am = 0.1 * (v + 40) / (1 - np.exp(-(v + 40) / 10))
    bm = 4 * np.exp(-(v + 65) / 18)
    ah = 0.07 * np.exp(-(v + 65) / 20)
    bh = 1 / (1 + np.exp(-(v + 35) / 10))
    an = 0.01 * (v + 55) / (1 - np.exp(-(v + 55) / 10))
    bn = 0.125 * np.exp(-(v + 65) / 80)
    return am, bm, ah, bh, an, bn


def np_rhs(y: np.ndarray, current: float) -> np.ndarray:
    v, m, h, n = y
    am, bm, ah, bh, an, bn = np_rates(v)
    dv = current - 120 * m**3 * h * (v - 50) - 36 * n**4 * (v + 77) - 0.3 * (v + 54.387)
    return np.array([dv, am * (1 - m) - bm * m, ah * (1 - h) - bh * h, an * (1 - n) - bn * n])


def np_rest(v: float = -65.0) -> np.ndarray:
    am, bm, ah, bh, an, bn = np_rates(np.float64(v))
    return np.array([v, am / (am + bm), ah / (ah + bh), an / (an + bn)])


def spike_times(z: torch.Tensor) -> np.ndarray:
    return (torch.nonzero(z).flatten().numpy() + 1) * DT


@pytest.fixture(scope="module")
def run() -> tuple[torch.Tensor, HHState]:
    """Spikes and state trace ``[T, len(CURRENTS)]`` for constant currents from rest (computed once, read-only)."""
    x = torch.tensor(CURRENTS, dtype=torch.float64).expand(int(round(T_MS / DT)), -1).contiguous()
    with torch.no_grad():
        return HodgkinHuxley().trace(x)


# ---- physiology -------------------------------------------------------------------------------------
def test_rest_is_stable_near_minus_65(run):
    z, s = run
    v0 = s.v[: int(50 / DT), COL[0.0]]
    assert z[:, COL[0.0]].sum() == 0
    assert (v0 + 65.0).abs().max() < 0.05


def test_initial_gates_are_textbook_steady_state():
    s = hh_init(torch.zeros(1, dtype=torch.float64), HHParams())
    # m_inf, h_inf, n_inf at -65 mV for these rate functions (classic values 0.0529, 0.5961, 0.3177)
    torch.testing.assert_close(torch.cat([s.m, s.h, s.n]), torch.tensor([0.0529, 0.5961, 0.3177]).double(),
                               atol=1e-4, rtol=0)  # fmt: skip
    torch.testing.assert_close(torch.cat([s.v, s.m, s.h, s.n]), torch.from_numpy(np_rest()), atol=1e-14, rtol=0)


def test_action_potential_shape(run):
    _, s = run
    v = s.v[: int(50 / DT), COL[10.0]]
    peak, trough = v.max().item(), v.min().item()
    assert 38.0 < peak < 42.0  # textbook peak about +40 mV (overshoot above 0 mV)
    assert 95.0 < peak - (-65.0) < 110.0  # amplitude about 100 mV from rest
    assert -77.0 < trough < -74.0  # after-hyperpolarisation below rest, above E_K


def test_one_spike_per_action_potential(run):
    z, s = run
    for c in (7.0, 10.0, 40.0):
        v = s.v[:, COL[c]].numpy()
        crossings = np.count_nonzero((v[:-1] <= 0.0) & (v[1:] > 0.0)) + int(v[0] > 0.0)
        assert z[:, COL[c]].sum().item() == crossings > 3
    assert set(z.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("current, isi", [(6.3, 19.1), (7.0, 17.15), (10.0, 14.64)])
def test_tonic_firing_above_rheobase(run, current, isi):
    z, _ = run
    t = spike_times(z[:, COL[current]])
    assert t[-1] > T_MS - 25.0  # still firing at the end: sustained, not an onset transient
    steady = np.diff(t)[-4:]
    assert np.ptp(steady) < 0.05 and steady.mean() == pytest.approx(isi, abs=0.1)  # periodic


def test_below_rheobase_only_onset_transient(run):
    z, _ = run
    assert z[:, COL[2.0]].sum() == 0  # well below: no spike at all
    t = spike_times(z[:, COL[6.1]])  # just below the ~6.26 sustained-firing rheobase
    assert 1 <= len(t) <= 2 and t[-1] < 30.0


def test_frequency_rises_with_current(run):
    z, _ = run
    rates = [1000.0 / np.diff(spike_times(z[:, COL[c]]))[-3:].mean() for c in (6.3, 7.0, 10.0, 20.0, 40.0)]
    assert np.all(np.diff(rates) > 0)
    assert 65.0 < rates[2] < 71.0  # ~68 Hz at 10 uA/cm^2


# ---- (a) independent references ---------------------------------------------------------------------
def test_trajectory_matches_tight_tolerance_ode_solver(run):
    integrate = pytest.importorskip("scipy.integrate")
    _, s = run

    def crossing(t: float, y: np.ndarray, current: float) -> float:
        return y[0]

    crossing.direction = 1  # type: ignore[attr-defined]
    sol = integrate.solve_ivp(lambda t, y, c: np_rhs(y, c), (0.0, 50.0), np_rest(), args=(10.0,), method="DOP853",
                              rtol=1e-10, atol=1e-10, events=crossing, dense_output=True)  # fmt: skip
    steps = int(round(50 / DT))
    t_grid = np.arange(1, steps + 1) * DT
    v_ref = sol.sol(t_grid)[0]
    v = s.v[:steps, COL[10.0]].numpy()
    assert np.abs(v - v_ref).max() < 1.0  # mV, worst case on the ~400 mV/ms upstroke
    t_spk = spike_times(run[0][:steps, COL[10.0]])
    np.testing.assert_allclose(t_spk, sol.t_events[0], atol=2 * DT)
    assert len(t_spk) == 4


def test_one_step_matches_numpy_exponential_euler():
    g = torch.Generator().manual_seed(3)
    v = -90 + 140 * torch.rand(64, generator=g, dtype=torch.float64)
    m, h, n = (torch.rand(64, generator=g, dtype=torch.float64) for _ in range(3))
    x = 30 * torch.rand(64, generator=g, dtype=torch.float64) - 10
    dt = 0.05
    z, s = hh_step(x, HHState(v, m, h, n), HHParams(), dt=dt, surrogate=FastSigmoid())
    vn, gates, xn = v.numpy(), [m.numpy(), h.numpy(), n.numpy()], x.numpy()
    am, bm, ah, bh, an, bn = np_rates(vn)
    new = [a / (a + b) + (q - a / (a + b)) * np.exp(-dt * (a + b))
           for q, a, b in zip(gates, (am, ah, an), (bm, bh, bn))]  # fmt: skip
    gna, gk = 120 * new[0] ** 3 * new[1], 36 * new[2] ** 4
    gt = gna + gk + 0.3
    vinf = (gna * 50 + gk * -77 + 0.3 * -54.387 + xn) / gt
    v_ref = vinf + (vn - vinf) * np.exp(-dt * gt)
    np.testing.assert_allclose(s.v.numpy(), v_ref, rtol=1e-12, atol=1e-10)
    for got, ref in zip((s.m, s.h, s.n), new):
        np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(z.numpy(), ((vn <= 0) & (v_ref > 0)).astype(float))


def test_rates_match_numpy_formulas():
    v = torch.linspace(-100, 60, 1601, dtype=torch.float64)
    v = v[(v != -55.0) & (v != -40.0)]
    for got, ref in zip(hh_rates(v), np_rates(v.numpy())):
        np.testing.assert_allclose(got.numpy(), ref, rtol=1e-10)


# ---- singularities and gradients ---------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_removable_singularities_finite_values_and_gradients(dtype):
    v = torch.tensor([-55.0, -40.0], dtype=dtype, requires_grad=True)
    r = hh_rates(v)
    assert r.alpha_n[0].item() == pytest.approx(0.1) and r.alpha_m[1].item() == pytest.approx(1.0)
    (gn,) = torch.autograd.grad(r.alpha_n[0], v, retain_graph=True)
    (gm,) = torch.autograd.grad(r.alpha_m[1], v)
    # d/dV of 0.1 x / (1 - e^-x), x = (V + 55)/10, at x = 0 is 0.1 * 1/2 * 1/10; alpha_m likewise * 10
    assert gn[0].item() == pytest.approx(0.005, rel=1e-5) and gm[1].item() == pytest.approx(0.05, rel=1e-5)
    # continuous across the Taylor/exact switch (|x| = 1e-4, i.e. 1e-3 mV away)
    for dv in (-2e-3, -5e-4, 5e-4, 2e-3):
        near = hh_rates(torch.tensor([-55.0 + dv], dtype=torch.float64)).alpha_n.item()
        assert near == pytest.approx(np_rates(np.float64(-55.0 + dv))[4], rel=1e-12)


def test_step_at_singular_voltages_has_finite_gradients():
    v = torch.tensor([-55.0, -40.0], dtype=torch.float64, requires_grad=True)
    x = torch.tensor([1.0, 1.0], dtype=torch.float64, requires_grad=True)
    s0 = hh_init(x.detach(), HHParams())
    z, s = hh_step(x, HHState(v, s0.m, s0.h, s0.n), HHParams(), dt=DT, surrogate=FastSigmoid())
    grads = torch.autograd.grad(sum(t.sum() for t in s) + z.sum(), (v, x))
    assert all(torch.isfinite(t).all() for t in (*s, *grads))


def test_gradcheck_step_wrt_input_and_state():
    g = torch.Generator().manual_seed(5)
    x = (20 * torch.rand(2, 3, generator=g, dtype=torch.float64)).requires_grad_()
    v = torch.tensor([[-55.0, -40.0, -65.0], [-20.0, 10.0, -70.0]], dtype=torch.float64, requires_grad=True)
    gates = [(0.1 + 0.8 * torch.rand(2, 3, generator=g, dtype=torch.float64)).requires_grad_() for _ in range(3)]

    def f(*args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x, v, m, h, n = args
        return tuple(hh_step(x, HHState(v, m, h, n), HHParams(), dt=0.02, surrogate=FastSigmoid())[1])

    assert torch.autograd.gradcheck(f, (x, v, *gates))


def test_spike_detection_and_surrogate_gradient():
    sg = FastSigmoid(slope=0.2)
    p = HHParams()
    v = torch.tensor([-1.0, 0.0, 5.0, -30.0], dtype=torch.float64)  # below, exactly at, above, far below
    s0 = hh_init(v, p)
    x = torch.full_like(v, 500.0, requires_grad=True)
    z, s = hh_step(x, HHState(v, s0.m, s0.h, s0.n), p, dt=0.02, surrogate=sg)
    assert (s.v[:3] > 0).all() and s.v[3] < 0
    assert z.tolist() == [1.0, 1.0, 0.0, 0.0]  # upward crossings only; V == v_th counts as below
    (gx,) = torch.autograd.grad(z.sum(), x)
    g_tot = 120 * s.m**3 * s.h + 36 * s.n**4 + 0.3
    dv_dx = -torch.expm1(-0.02 * g_tot) / g_tot  # exponential-Euler sensitivity of V' to I
    expected = sg.grad(s.v.detach()) * dv_dx.detach() * torch.tensor([1.0, 1.0, 0.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(gx, expected)


# ---- (c) path equivalence and precision -------------------------------------------------------------
def test_module_equals_functional_equals_step_loop():
    m = HodgkinHuxley(g_na=torch.tensor([120.0, 100.0]), size=2)
    x = torch.tensor([10.0, 20.0], dtype=torch.float64).expand(400, 3, 2).contiguous()
    out, s_mod = m.double()(x)
    p = m.params(x)
    out_fun, s_fun = scan(lambda xt, s: hh_step(xt, s, p, dt=m.dt, surrogate=m.surrogate), x, hh_init(x[0], p))
    s, outs = None, []
    for x_t in x:
        o, s = m.step(x_t, s)
        outs.append(o)
    assert out.sum() == 6  # one spike per neuron in 4 ms
    assert torch.equal(out, out_fun) and torch.equal(out, torch.stack(outs))
    for a, b, c in zip(s_mod, s_fun, s):
        assert torch.equal(a, b) and torch.equal(a, c)
    assert isinstance(get_neuron("hh", dt=0.02), HodgkinHuxley)


def test_float32_matches_float64(run):
    x = torch.full((int(50 / DT), 1), 10.0, dtype=torch.float32)
    z, s = HodgkinHuxley()(x)
    assert z.dtype == s.v.dtype == s.m.dtype == torch.float32
    np.testing.assert_allclose(spike_times(z[:, 0]), spike_times(run[0][: int(50 / DT), COL[10.0]]), atol=1.01 * DT)


# ---- (d) bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad, err, match",
    [
        (torch.full((4, 2), float("nan")), ValueError, "NaN"),
        (torch.zeros(0, 2), ValueError, "T = 0"),
        (torch.zeros(3), ValueError, "at least 2 dims"),
        (torch.zeros(4, 2, dtype=torch.int32), TypeError, "floating-point"),
    ],
)
def test_bad_input(bad, err, match):
    with pytest.raises(err, match=match):
        HodgkinHuxley()(bad)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"dt": 0.0}, "dt"), ({"dt": -0.01}, "dt"), ({"c_m": 0.0}, "c_m"), ({"g_l": -0.3}, "g_l"),
     ({"g_na": -1.0}, "g_na"), ({"g_k": torch.tensor([36.0, -1.0])}, "g_k"), ({"e_na": float("nan")}, "finite")],
)  # fmt: skip
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HodgkinHuxley(**kwargs)


def test_mismatched_state_raises():
    m = HodgkinHuxley()
    x = torch.zeros(3, 2, 4)
    _, s = m(x)
    with pytest.raises(ValueError, match="reset_states"):
        m(x[:, :1], s)
    with pytest.raises(TypeError, match="state=None"):
        m(x, tuple(s))
