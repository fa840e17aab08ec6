"""LIF: independent references, closed-form ODE, reset modes, gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spikeforge import LIF
from spikeforge.neurons.lif import LIFParams, LIFState, lif_init, lif_step
from spikeforge.surrogate import FastSigmoid, Triangle


def np_lif(x, tau, dt, v_rest, v_th, v_reset, r, reset, scaling="exact"):
    """Independent numpy reference of the documented discretisation."""
    beta = np.exp(-dt / tau)
    g = (1 - beta) * r if scaling == "exact" else r
    v = np.full(x.shape[1:], v_rest, dtype=np.float64)
    zs, vs = [], []
    for t in range(x.shape[0]):
        v = v_rest + beta * (v - v_rest) + g * x[t]
        z = (v > v_th).astype(np.float64)
        if reset == "to_value":
            v = np.where(z > 0, v_reset, v)
        elif reset == "subtract":
            v = v - z * (v_th - v_reset)
        zs.append(z)
        vs.append(v.copy())
    return np.stack(zs), np.stack(vs)


@pytest.mark.parametrize("reset", ["to_value", "subtract", "none"])
@pytest.mark.parametrize("scaling", ["exact", "none"])
def test_matches_numpy_reference(reset, scaling, gen):
    x = torch.rand(50, 3, 7, generator=gen, dtype=torch.float64) * 4
    kw = dict(tau=8.0, dt=0.5, v_rest=-0.2, v_th=0.9, v_reset=-0.3, r=1.5)
    zr, vr = np_lif(x.numpy(), reset=reset, scaling=scaling, **kw)
    m = LIF(kw["tau"], dt=kw["dt"], v_rest=kw["v_rest"], v_th=kw["v_th"], v_reset=kw["v_reset"], r=kw["r"], reset=reset, input_scaling=scaling)
    z, states = m.trace(x)
    assert zr.sum() > 10  # the test exercises spikes
    np.testing.assert_array_equal(z.numpy(), zr)
    np.testing.assert_allclose(states.v.numpy(), vr, rtol=1e-12, atol=1e-12)


def test_constant_input_follows_closed_form_ode():
    # no spikes (high threshold): V(t) = v_rest + R I (1 - exp(-t / tau)) exactly at the grid points
    tau, dt, r, i, v_rest = 12.0, 0.3, 2.0, 0.7, -0.5
    steps = 200
    m = LIF(tau, dt=dt, r=r, v_rest=v_rest, v_th=1e9, reset="none")
    x = torch.full((steps, 1, 1), i, dtype=torch.float64)
    _, st = m.trace(x)
    t = dt * torch.arange(1, steps + 1, dtype=torch.float64)
    expected = v_rest + r * i * (1 - torch.exp(-t / tau))
    torch.testing.assert_close(st.v[:, 0, 0], expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("ri", [1.5, 3.0])
def test_isi_for_reset_to_rest_converges_to_analytic(ri):
    tau, v_rest, v_th = 10.0, -65.0, -50.0
    theta = v_th - v_rest
    ri_mv = ri * theta  # R I above threshold distance
    analytic = tau * math.log(ri_mv / (ri_mv - theta))
    errs = []
    for dt in (0.1, 0.01, 0.001):
        steps = int(4 * analytic / dt) + 10
        m = LIF(tau, dt=dt, v_rest=v_rest, v_th=v_th, v_reset=v_rest, r=1.0, reset="to_value")
        z, _ = m(torch.full((steps, 1, 1), ri_mv, dtype=torch.float64))
        idx = torch.nonzero(z[:, 0, 0]).flatten().double()
        isi = (idx.diff() * dt).mean().item()
        errs.append(abs(isi - analytic))
        assert abs(isi - analytic) <= 1.01 * dt  # discrete firing is quantised to the step
    assert errs[-1] < errs[0]


def test_beta_form_equals_tau_form():
    beta, dt = 0.9, 0.5
    x = torch.rand(30, 2, 5, dtype=torch.float64) * 3
    a, _ = LIF(beta=beta, dt=dt)(x)
    b, _ = LIF(-dt / math.log(beta), dt=dt)(x)
    assert torch.equal(a, b)


def test_threshold_equality_does_not_spike():
    # exact arithmetic: with input scaling "none", v_rest = 0, beta irrelevant at step 0: v = x
    m = LIF(10.0, input_scaling="none", v_th=1.0)
    z, st = m(torch.tensor([[[1.0, 1.0 + 1e-6, 0.999]]], dtype=torch.float64))
    assert z[0, 0].tolist() == [0.0, 1.0, 0.0]


def _hand_bptt(x, w, beta, g, th, sg):
    """Hand-written BPTT for LIF with subtract reset (detached), loss = sum_t <w_t, z_t>."""
    T = x.shape[0]
    v = torch.zeros_like(x[0])
    vpre = []
    for t in range(T):
        v = beta * v + g * x[t]
        vpre.append(v.clone())
        v = v - (v > th).to(v.dtype) * th
    gv = torch.zeros_like(x[0])
    gx = torch.zeros_like(x)
    for t in reversed(range(T)):
        gvp = w[t] * sg.grad(vpre[t] - th) + gv
        gx[t] = g * gvp
        gv = beta * gvp
    return gx


@pytest.mark.parametrize("sg", [FastSigmoid(slope=5.0), Triangle(width=0.8)])
def test_surrogate_bptt_matches_hand_backward(sg, gen):
    T, tau, th = 40, 5.0, 0.8
    x = (torch.rand(T, 2, 6, generator=gen, dtype=torch.float64) * 3).requires_grad_()
    w = torch.randn(T, 2, 6, generator=gen, dtype=torch.float64)
    m = LIF(tau, v_th=th, reset="subtract", surrogate=sg, detach_reset=True)
    z, _ = m(x)
    (gx,) = torch.autograd.grad((z * w).sum(), x)
    beta = math.exp(-1.0 / tau)
    torch.testing.assert_close(gx, _hand_bptt(x.detach(), w, beta, 1 - beta, th, sg))


def test_detach_reset_changes_gradient_only():
    x = (torch.rand(30, 1, 4, dtype=torch.float64) * 4).requires_grad_()
    outs = []
    for detach in (True, False):
        m = LIF(5.0, surrogate="atan", detach_reset=detach)
        z, _ = m(x)
        (g,) = torch.autograd.grad(z.sum(), x)
        outs.append((z.detach(), g))
    assert torch.equal(outs[0][0], outs[1][0])
    assert not torch.allclose(outs[0][1], outs[1][1])


def test_gradcheck_smooth_membrane_wrt_input_and_tau():
    # reset="none" and a readout of the membrane: smooth in x and tau -> gradcheck applies
    x = torch.rand(6, 2, 3, dtype=torch.float64, requires_grad=True)
    tau = torch.tensor(4.0, dtype=torch.float64, requires_grad=True)

    def f(x, tau):
        p = LIFParams(tau_mem=tau, v_th=1e9, reset="none")
        s = lif_init(x[0], p)
        vs = []
        for t in range(x.shape[0]):
            _, s = lif_step(x[t], s, p, dt=0.7, surrogate=FastSigmoid())
            vs.append(s.v)
        return torch.stack(vs)

    assert torch.autograd.gradcheck(f, (x, tau))


def test_learnable_tau_and_threshold_receive_gradients():
    m = LIF(5.0, learn_tau=True, learn_threshold=True, size=4, surrogate="sigmoid")
    names = {n for n, _ in m.named_parameters()}
    assert names == {"log_tau_mem", "v_th"}
    z, _ = m(torch.rand(20, 3, 4) * 3)
    z.sum().backward()
    assert m.log_tau_mem.grad is not None and m.log_tau_mem.grad.abs().sum() > 0
    assert m.v_th.grad is not None and m.v_th.grad.abs().sum() > 0
    torch.testing.assert_close(m.params(torch.zeros(1)).tau_mem, torch.full((4,), 5.0))


def test_per_neuron_parameters_broadcast():
    tau = torch.tensor([2.0, 20.0])
    m = LIF(tau, v_th=torch.tensor([0.5, 100.0]))
    z, _ = m(torch.ones(10, 1, 2))
    assert z[:, 0, 1].sum() == 0 and z[:, 0, 0].sum() > 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(tau_mem=0.0), "tau_mem"),
        (dict(tau_mem=-1.0), "tau_mem"),
        (dict(dt=0.0), "dt"),
        (dict(dt=-0.1), "dt"),
        (dict(reset="zero"), "reset mode"),
        (dict(input_scaling="euler"), "input_scaling"),
        (dict(surrogate="nope"), "registered"),
        (dict(beta=1.0), r"\(0, 1\)"),
    ],
)
def test_bad_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LIF(**kwargs)


def test_functional_state_type():
    s = lif_init(torch.zeros(2, 3), LIFParams(v_rest=-1.0))
    assert isinstance(s, LIFState) and bool((s.v == -1.0).all())
