"""SRM (SLAYER's spike-response model): forward vs a direct simulation of the kernel sums written here, the
FFT / direct / step-loop paths against each other, SLAYER's gradient formula, gradcheck of the PSP filter,
the strict threshold, carried state, use in SNNSequential with delays, and the refusals."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from spikeforge.layers import SNNSequential
from spikeforge.synapses import SRM
from spikeforge.synapses import DelayedLinear
from spikeforge.synapses import SlayerPDF
from spikeforge.synapses import epsilon_filter

THETA, TAU_S, TAU_R, SCALE_REF = 1.0, 3.0, 5.0, 2.0


def eps(k: int) -> float:
    return (k / TAU_S) * math.exp(1 - k / TAU_S)


def nu(k: int) -> float:
    return -SCALE_REF * THETA * (k / TAU_R) * math.exp(1 - k / TAU_R)


def direct_simulation(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """u[t] = sum_k eps[k] x[t-k] + sum_k nu[k] z[t-k];  z[t] = [u[t] > theta]  (dt = 1), element by element."""
    t_len = x.shape[0]
    flat = x.reshape(t_len, -1)
    u = torch.zeros_like(flat)
    z = torch.zeros_like(flat)
    for n in range(flat.shape[1]):
        for t in range(t_len):
            acc = sum(eps(k) * flat[t - k, n].item() for k in range(t + 1))
            acc += sum(nu(k) * z[t - k, n].item() for k in range(1, t + 1))
            u[t, n] = acc
            z[t, n] = 1.0 if acc > THETA else 0.0
    return u.reshape(x.shape), z.reshape(x.shape)


def make(**kw) -> SRM:
    if kw.get("method") == "fused":
        pytest.importorskip("numba", reason="the fused SRM loop needs Numba: pip install 'spikeforge[fast]'")
    return SRM(TAU_S, TAU_R, v_th=THETA, scale_ref=SCALE_REF, **kw).double()


def current(gen: torch.Generator, t: int = 90, b: int = 2, n: int = 3) -> torch.Tensor:
    return torch.rand(t, b, n, generator=gen, dtype=torch.float64) * 0.9


@pytest.mark.parametrize("method", ["auto", "direct", "fft", "scan", "fused"])
def test_forward_equals_direct_simulation(method, gen):
    x = current(gen)
    u_ref, z_ref = direct_simulation(x)
    assert z_ref.sum() > 10 and (z_ref.sum(0) > 0).all(), "the test input should make every neuron spike"
    m = make(method=method)
    u, z, _ = m.membrane_and_spikes(x)
    assert torch.equal(z, z_ref)
    torch.testing.assert_close(u, u_ref, rtol=0, atol=1e-10)
    out, _ = m(x)
    assert torch.equal(out, z_ref)


@pytest.mark.parametrize("method", ["direct", "scan", "fused"])
def test_step_loop_equals_sequence_and_chunks(method, gen):
    x = current(gen)
    m = make(method=method)
    z, s = m(x)
    s_step, zs = None, []
    for x_t in x:
        o, s_step = m.step(x_t, s_step)
        zs.append(o)
    assert torch.equal(torch.stack(zs), z)
    a, s1 = m(x[:37])
    b, s2 = m(x[37:], s1)
    assert torch.equal(torch.cat([a, b]), z)
    for f, g, h in zip(s, s2, s_step):
        torch.testing.assert_close(f, g, rtol=0, atol=1e-10)
        torch.testing.assert_close(f, h, rtol=0, atol=1e-10)


@pytest.mark.parametrize("method", ["direct", "fft", "scan"])
def test_psp_filter_gradcheck(method, gen):
    x = torch.randn(70, 2, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: epsilon_filter(v, TAU_S, method=method), (x,))
    ref = torch.stack([sum(eps(k) * x[t - k] for k in range(t + 1)) for t in range(70)])
    torch.testing.assert_close(epsilon_filter(x, TAU_S, method=method), ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ["direct", "fft", "scan", "fused"])
def test_gradient_is_slayers_error_reassignment(method, gen):
    """dL/dx[s] = sum_{t >= s} rho(u[t] - theta) dL/dz[t] eps[t - s]  (no gradient through the refractory term)."""
    x = current(gen, t=40).requires_grad_()
    g = torch.randn(40, 2, 3, generator=gen, dtype=torch.float64)
    m = make(method=method)
    u, z, _ = m.membrane_and_spikes(x)
    (z * g).sum().backward()
    rho = (1.0 / THETA) * torch.exp(-(u.detach() - THETA).abs() / THETA)  # tau_rho = scale_rho = 1
    delta = rho * g
    ref = torch.stack([sum(eps(t - s) * delta[t] for t in range(s, 40)) for s in range(40)])
    torch.testing.assert_close(x.grad, ref, rtol=0, atol=1e-10)
    # the step loop (autograd through the recurrences) gives the same gradient
    x2 = x.detach().clone().requires_grad_()
    s, zs = None, []
    for x_t in x2:
        o, s = m.step(x_t, s)
        zs.append(o)
    (torch.stack(zs) * g).sum().backward()
    torch.testing.assert_close(x2.grad, x.grad, rtol=0, atol=1e-10)


def test_refractory_gradient_option_runs_the_step_loop(gen):
    x = current(gen, t=30)
    m_det, m_full = make(), make(detach_refractory=False)
    assert torch.equal(m_det(x)[0], m_full(x)[0])
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    m_det(xa)[0].sum().backward()
    m_full(xb)[0].sum().backward()
    assert not torch.allclose(xa.grad, xb.grad)  # the refractory path adds gradient


def test_slayer_pdf_is_the_derivative_of_its_primitive():
    sg = SlayerPDF(alpha=0.7, beta=1.9)
    x = torch.linspace(-3, 3, 61, dtype=torch.float64)
    h = 1e-6
    fd = (sg.primitive(x + h) - sg.primitive(x - h)) / (2 * h)
    keep = x.abs() > 1e-3  # the kink at 0
    torch.testing.assert_close(fd[keep], sg.grad(x)[keep], rtol=1e-6, atol=1e-8)
    assert float(sg.grad(torch.zeros(1, dtype=torch.float64))) == 0.7


def test_threshold_is_strict(gen):
    x = current(gen, t=30) * 0.2
    u, z, _ = make().membrane_and_spikes(x)
    assert z.sum() == 0
    top = float(u.max())
    # with theta equal to the highest membrane value: still no spike (strict u > theta), a hair lower: one
    at = SRM(TAU_S, TAU_R, v_th=top, scale_ref=SCALE_REF).double()
    assert at(x)[0].sum() == 0
    below = SRM(TAU_S, TAU_R, v_th=top * (1 - 1e-12), scale_ref=SCALE_REF).double()
    assert below(x)[0].sum() >= 1


def test_in_snnsequential_with_delays(gen):
    torch.manual_seed(0)
    net = SNNSequential(DelayedLinear(3, 4, 5, per="axon"), SRM(), nn.Linear(4, 2), SRM()).double()
    x = (torch.rand(30, 2, 3, generator=gen, dtype=torch.float64) < 0.3).double() * 4.0
    out, states = net(x)
    assert out.shape == (30, 2, 2) and len(states) == 2
    (out.sum() + sum(s.qs.sum() for s in states)).backward()
    assert net.layers[0].delays.grad is not None


def test_refusals(gen):
    with pytest.raises(ValueError, match="tau_s"):
        SRM(tau_s=-1.0)
    with pytest.raises(ValueError, match="v_th"):
        SRM(v_th=0.0)
    with pytest.raises(ValueError, match="method"):
        SRM(method="winograd")
    with pytest.raises(ValueError, match="method"):
        epsilon_filter(torch.zeros(3, 1), 2.0, method="winograd")
    with pytest.raises(TypeError, match="detach_refractory"):
        SRM(detach_refractory=1)  # type: ignore[arg-type]
    m = SRM()
    with pytest.raises(ValueError, match="NaN"):
        m(torch.full((4, 1, 2), float("nan")))
    with pytest.raises(ValueError, match="NaN"):
        m.membrane_and_spikes(torch.full((4, 1, 2), float("nan")))
    _, s = m(torch.zeros(4, 2, 2))
    with pytest.raises(ValueError, match="reset_states"):
        m(torch.zeros(4, 3, 2), s)
    with pytest.raises(ValueError, match=r"\[T, B"):
        m(torch.zeros(4))
    with pytest.raises(ValueError, match="method='auto'"):
        _, s = m(torch.zeros(4, 2, 2, requires_grad=True) + 1.0)
        SRM(method="fused")(torch.zeros(4, 2, 2), s)  # a carried state with gradient: the torch paths only


@pytest.mark.parametrize("surrogate", [None, "atan"])
@pytest.mark.parametrize("use", ["spikes", "membrane", "both"])
def test_fused_gradients_equal_the_torch_path(surrogate, use, gen):
    """The compiled pass (whole backward for SlayerPDF, membrane only for other surrogates) == the direct path."""
    x = current(gen, t=50)
    g1 = torch.randn(50, 2, 3, generator=gen, dtype=torch.float64)
    g2 = torch.randn(50, 2, 3, generator=gen, dtype=torch.float64)
    grads = []
    for method in ("direct", "fused"):
        xi = x.clone().requires_grad_()
        u, z, _ = make(method=method, surrogate=surrogate).membrane_and_spikes(xi)
        loss = {"spikes": (z * g1).sum(), "membrane": (u * g2).sum(), "both": (z * g1).sum() + (u * g2).sum()}[use]
        loss.backward()
        grads.append(xi.grad)
    torch.testing.assert_close(grads[1], grads[0], rtol=0, atol=1e-10)
