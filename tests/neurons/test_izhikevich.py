"""Izhikevich (2003) neuron: firing patterns of the five named cell classes, an independent plain-Python
reference, gradients, path equivalence and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spikeforge._core.scan import scan
from spikeforge.neurons.base import get_neuron
from spikeforge.neurons.izhikevich import (
    IZHIKEVICH_PRESETS,
    Izhikevich,
    IzhikevichParams,
    IzhikevichState,
    izhikevich_init,
    izhikevich_preset,
    izhikevich_step,
)
from spikeforge.surrogate import FastSigmoid

DT = 0.1  # ms (the module default)
T_MS = 300.0
I_STEP = 10.0  # the paper's standard DC drive
NAMES = list(IZHIKEVICH_PRESETS)


def population(dtype: torch.dtype = torch.float64) -> Izhikevich:
    """One module holding all five presets as per-neuron parameters (last dim = preset)."""
    p = torch.tensor(list(IZHIKEVICH_PRESETS.values()), dtype=torch.float64)
    return Izhikevich(a=p[:, 0], b=p[:, 1], c=p[:, 2], d=p[:, 3]).to(dtype)


def step_current(dtype: torch.dtype = torch.float64, n: int = len(NAMES)) -> torch.Tensor:
    return torch.full((int(round(T_MS / DT)), 1, n), I_STEP, dtype=dtype)


def reference_spike_steps(a: float, b: float, c: float, d: float, current: float, steps: int) -> list[int]:
    """Plain-Python loop of the documented equations (no torch)."""
    v = -65.0
    u = b * v
    out = []
    for t in range(steps):
        v_new = v + DT * (0.04 * v * v + 5.0 * v + 140.0 - u + current)
        u_new = u + DT * a * (b * v_new - u)
        if v_new > 30.0:
            out.append(t)
            v, u = c, u_new + d
        else:
            v, u = v_new, u_new
    return out


def spike_times(z: torch.Tensor) -> np.ndarray:
    """Spike times in ms (end of the spiking step) of a ``[T]`` spike train."""
    return (torch.nonzero(z).flatten().numpy() + 1) * DT


@pytest.fixture(scope="module")
def runs() -> dict[str, np.ndarray]:
    """Spike times per preset module under I = 10 for 300 ms; computed once (read-only)."""
    return {name: spike_times(Izhikevich(name)(step_current(n=1))[0][:, 0, 0]) for name in NAMES}


# ---- (a) independent reference ---------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_spike_times_equal_plain_python_loop(name, runs):
    a, b, c, d = IZHIKEVICH_PRESETS[name]
    ref = reference_spike_steps(a, b, c, d, I_STEP, int(round(T_MS / DT)))
    got = np.round(runs[name] / DT).astype(int) - 1
    assert got.tolist() == ref


def test_one_step_matches_hand_computation():
    v, u, current = -60.0, -12.0, 7.5
    p = izhikevich_preset("RS")
    x = torch.tensor([[current]], dtype=torch.float64)
    state = IzhikevichState(torch.full_like(x, v), torch.full_like(x, u))
    z, s = izhikevich_step(x, state, p, dt=0.25, surrogate=FastSigmoid())
    v_ref = v + 0.25 * (0.04 * v * v + 5 * v + 140 - u + current)
    u_ref = u + 0.25 * 0.02 * (0.2 * v_ref - u)
    assert z.item() == 0.0
    assert s.v.item() == pytest.approx(v_ref, abs=1e-12) and s.u.item() == pytest.approx(u_ref, abs=1e-12)
    # above the peak: reset v <- c and u <- u' + d
    state = IzhikevichState(torch.full_like(x, 29.0), torch.full_like(x, u))
    z, s = izhikevich_step(x, state, p, dt=0.25, surrogate=FastSigmoid())
    v_pre = 29.0 + 0.25 * (0.04 * 29.0**2 + 5 * 29.0 + 140 - u + current)
    assert z.item() == 1.0 and s.v.item() == -65.0
    assert s.u.item() == pytest.approx(u + 0.25 * 0.02 * (0.2 * v_pre - u) + 8.0, abs=1e-12)


def test_strict_threshold_at_v_peak():
    # v' lands exactly on v_peak = 30 (dt = 1, u chosen to cancel the drift): no spike; just above: spike
    p = IzhikevichParams()
    v = torch.tensor([[20.0]], dtype=torch.float64)
    drift = 0.04 * 400 + 100 + 140  # dv at v = 20 with u = I = 0 is 256
    for u0, expected in ((drift - 10.0, 0.0), (drift - 10.5, 1.0)):
        z, _ = izhikevich_step(torch.zeros_like(v), IzhikevichState(v, torch.full_like(v, u0)), p, dt=1.0,
                               surrogate=FastSigmoid())  # fmt: skip
        assert z.item() == expected


# ---- firing patterns of Izhikevich 2003, Fig. 2 (measured at dt = 0.1 ms, I = 10, 300 ms) -------------
def test_regular_spiking_adapts(runs):
    t = runs["regular_spiking"]
    isi = np.diff(t)
    assert len(t) == 8
    assert np.all(np.diff(isi) > -0.2)  # intervals never shorten (beyond one step of jitter)
    assert isi[0] < 26.0 and isi[-1] > 44.0 and isi[-1] / isi[0] > 1.7  # frequency adaptation, ~22 Hz steady


def test_intrinsically_bursting_burst_then_tonic(runs):
    t = runs["intrinsically_bursting"]
    isi = np.diff(t)
    assert len(t) == 11
    assert np.all(isi[:2] < 6.0)  # initial burst of 3 spikes
    assert np.all(isi[2:] > 30.0)  # then single spikes
    assert np.ptp(isi[3:]) < 0.3  # regular tonic firing


def test_chattering_repeated_bursts(runs):
    t = runs["chattering"]
    isi = np.diff(t)
    assert len(t) == 27
    short, long_ = isi < 7.0, isi > 40.0
    assert np.all(short | long_)  # bimodal: nothing in between
    assert long_.sum() == 4  # five bursts in 300 ms
    bursts = np.split(t, np.nonzero(long_)[0] + 1)
    assert all(len(burst) >= 4 for burst in bursts)


def test_fast_spiking_high_rate_no_adaptation(runs):
    t = runs["fast_spiking"]
    isi = np.diff(t)
    assert len(t) == 38  # ~125 Hz
    steady = isi[3:]
    assert steady.mean() < 8.5 and np.ptp(steady) < 0.5  # no slow adaptation after the first spikes
    assert len(t) > 4 * len(runs["regular_spiking"])


def test_low_threshold_spiking_high_rate_with_adaptation(runs):
    t = runs["low_threshold_spiking"]
    isi = np.diff(t)
    assert len(t) == 25
    assert isi[0] < 4.0  # > 250 Hz at onset
    assert np.all(np.diff(isi[:6]) > 0)  # gradual slowing over the first spikes
    assert isi[-1] / isi[0] > 3.0 and isi[-1] < 15.0  # adapted, still ~70 Hz


def test_zero_input_rests_without_spiking():
    z, s = Izhikevich("RS")(torch.zeros(2000, 1, 1, dtype=torch.float64))
    assert z.sum() == 0
    assert s.v.item() == pytest.approx(-70.0, abs=0.05)  # stable rest of 0.04v^2 + 4.8v + 140 = 0


# ---- presets ---------------------------------------------------------------------------------------
def test_presets_and_aliases():
    assert izhikevich_preset("regular_spiking")[:4] == (0.02, 0.2, -65.0, 8.0)
    assert izhikevich_preset("LTS")[:4] == (0.02, 0.25, -65.0, 2.0)
    assert izhikevich_preset("fs") == izhikevich_preset("fast_spiking")
    m = Izhikevich.from_preset("chattering", dt=0.5)
    assert (m.a, m.b, m.c, m.d, m.dt) == (0.02, 0.2, -50.0, 2.0, 0.5)
    assert Izhikevich("IB", d=5.0).d == 5.0  # explicit values override the preset
    assert isinstance(get_neuron("izhikevich", preset="FS"), Izhikevich)


def test_unknown_preset_lists_valid_names():
    with pytest.raises(ValueError, match="regular_spiking.*low_threshold_spiking"):
        Izhikevich("thalamo_cortical")
    with pytest.raises(ValueError, match="unknown Izhikevich preset"):
        Izhikevich.from_preset("XX")
    with pytest.raises(TypeError, match="string"):
        izhikevich_preset(3)  # type: ignore[arg-type]


# ---- (b) gradients ---------------------------------------------------------------------------------
def test_gradcheck_subthreshold_step():
    p = izhikevich_preset("RS")
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(3, 4, generator=g, dtype=torch.float64) * 10).requires_grad_()
    v = (-70 + 10 * torch.rand(3, 4, generator=g, dtype=torch.float64)).requires_grad_()
    u = (-14 + torch.rand(3, 4, generator=g, dtype=torch.float64)).requires_grad_()

    def f(x: torch.Tensor, v: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, ...]:
        _, s = izhikevich_step(x, IzhikevichState(v, u), p, dt=0.1, surrogate=FastSigmoid())
        return tuple(s)

    assert torch.autograd.gradcheck(f, (x, v, u))


def test_spike_gradient_is_surrogate_of_distance_to_peak():
    sg = FastSigmoid(slope=0.1)
    p = izhikevich_preset("RS")
    x = torch.tensor([[5.0, 5.0]], dtype=torch.float64, requires_grad=True)
    state = IzhikevichState(torch.tensor([[-60.0, 29.0]], dtype=torch.float64), torch.full((1, 2), -12.0).double())
    z, s = izhikevich_step(x, state, p, dt=0.1, surrogate=sg)
    assert z.tolist() == [[0.0, 1.0]]
    (gx,) = torch.autograd.grad(z.sum(), x)
    v_pre = state.v + 0.1 * (0.04 * state.v**2 + 5 * state.v + 140 - state.u + x.detach())
    torch.testing.assert_close(gx, 0.1 * sg.grad(v_pre - 30.0))


def test_detach_reset_controls_gradient_through_the_jump():
    sg = FastSigmoid(slope=0.1)
    p = izhikevich_preset("RS")
    state = IzhikevichState(torch.tensor([[29.0]], dtype=torch.float64), torch.tensor([[-12.0]], dtype=torch.float64))
    grads = {}
    for detach in (True, False):
        x = torch.tensor([[5.0]], dtype=torch.float64, requires_grad=True)
        _, s = izhikevich_step(x, state, p, dt=0.1, surrogate=sg, detach_reset=detach)
        grads[detach] = torch.autograd.grad(s.v.sum(), x)[0].item()
    assert grads[True] == 0.0  # v <- c: constant once the reset is detached
    v_pre = 29.0 + 0.1 * (0.04 * 29.0**2 + 5 * 29.0 + 140 + 12.0 + 5.0)
    # v_next = v'(1 - z) + c z, z = 1:  d/dx = 0.1 [(1 - z) + (c - v') sg'(v' - 30)]
    expected = 0.1 * (-65.0 - v_pre) * sg.grad(torch.tensor(v_pre - 30.0, dtype=torch.float64)).item()
    assert grads[False] == pytest.approx(expected, rel=1e-10)


def test_gradient_flows_through_a_spike_train():
    m = Izhikevich("RS", surrogate=FastSigmoid(slope=0.1))
    x = torch.full((500, 1, 1), 10.0, dtype=torch.float64, requires_grad=True)
    z, _ = m(x)
    assert z.sum() >= 1
    (g,) = torch.autograd.grad(z.sum(), x)
    assert torch.isfinite(g).all() and g.abs().sum() > 0


# ---- (c) path equivalence --------------------------------------------------------------------------
def test_module_equals_functional_equals_step_loop():
    m = population()
    x = step_current()[:400] + torch.linspace(-3, 3, 400, dtype=torch.float64).view(-1, 1, 1)
    out, s_mod = m(x)
    p = m.params(x)
    opts = m.step_options()
    out_fun, s_fun = scan(lambda xt, s: izhikevich_step(xt, s, p, dt=m.dt, surrogate=m.surrogate, **opts), x,
                          izhikevich_init(x[0], p))  # fmt: skip
    s, outs = None, []
    for x_t in x:
        o, s = m.step(x_t, s)
        outs.append(o)
    assert out.sum() > 0
    assert torch.equal(out, out_fun) and torch.equal(out, torch.stack(outs))
    for a, b, c in zip(s_mod, s_fun, s):
        assert torch.equal(a, b) and torch.equal(a, c)


def test_population_equals_single_modules():
    # per-neuron tensor parameters vs one module per preset holding the same (stored) values
    pop = population()
    z, _ = pop(step_current())
    for i in range(len(NAMES)):
        single = Izhikevich(a=pop.a[i], b=pop.b[i], c=pop.c[i], d=pop.d[i]).double()
        z1, _ = single(step_current(n=1))
        assert torch.equal(z[:, 0, i], z1[:, 0, 0])


def test_float32_matches_float64(runs):
    z, s = population(torch.float32)(step_current(torch.float32))
    assert z.dtype == torch.float32 and s.v.dtype == torch.float32 and s.u.dtype == torch.float32
    for i, name in enumerate(NAMES):
        t32 = spike_times(z[:, 0, i])
        # same pattern; spike times drift by rounding only slowly (a few steps over 300 ms for FS)
        assert len(t32) == len(runs[name])
        np.testing.assert_allclose(t32[:10], runs[name][:10], atol=1.01 * DT)


def test_init_state():
    x = torch.zeros(2, 3, dtype=torch.float64)
    s = izhikevich_init(x, izhikevich_preset("LTS"))
    assert torch.equal(s.v, torch.full_like(x, -65.0)) and torch.allclose(s.u, torch.full_like(x, 0.25 * -65.0))


# ---- (d) edges and bad input -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad, err, match",
    [
        (torch.full((4, 2, 3), float("nan")), ValueError, "NaN"),
        (torch.zeros(0, 2, 3), ValueError, "T = 0"),
        (torch.zeros(3), ValueError, "at least 2 dims"),
        (torch.zeros(4, 2, 3, dtype=torch.int64), TypeError, "floating-point"),
    ],
)
def test_bad_input(bad, err, match):
    with pytest.raises(err, match=match):
        Izhikevich()(bad)


def test_bad_parameters_and_state():
    with pytest.raises(ValueError, match="dt"):
        Izhikevich(dt=0.0)
    with pytest.raises(ValueError, match="dt"):
        Izhikevich(dt=-0.1)
    with pytest.raises(ValueError, match="finite"):
        Izhikevich(a=math.nan)
    m = Izhikevich()
    x = torch.zeros(5, 2, 3)
    _, s = m(x)
    with pytest.raises(ValueError, match="reset_states"):
        m(x[:, :1], s)
    with pytest.raises(TypeError, match="state=None"):
        m(x, (s.v, s.u))
