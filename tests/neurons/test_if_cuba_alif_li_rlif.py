"""IF, current-based LIF, adaptive LIF, leaky integrator and recurrent LIF against hand loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spikeforge import ALIF, IF, LI, CubaLIF, RecurrentLIF


def test_if_matches_hand_loop_and_conserves_charge(gen):
    x = torch.rand(100, 4, 5, generator=gen, dtype=torch.float64) * 0.7
    m = IF(v_th=1.0, reset="subtract", dt=0.5, c_mem=0.25)  # gain dt / C = 2
    z, st = m.trace(x)
    v = np.zeros((4, 5))
    for t in range(100):
        v = v + 2 * x[t].numpy()
        zt = (v > 1.0).astype(float)
        v = v - zt
        np.testing.assert_array_equal(z[t].numpy(), zt)
    # reset by subtraction conserves charge: total input = spikes * v_th + residual
    torch.testing.assert_close(2 * x.sum(0), z.sum(0) + st.v[-1])


def test_if_to_value_reset():
    z, st = IF(v_th=1.0, v_reset=0.25, reset="to_value").trace(torch.full((3, 1, 1), 0.8, dtype=torch.float64))
    assert z.flatten().tolist() == [0.0, 1.0, 1.0]  # starts at 0: 0.8, 1.6 -> 0.25, 1.05 -> 0.25
    torch.testing.assert_close(st.v.flatten(), torch.tensor([0.8, 0.25, 0.25], dtype=torch.float64))


def test_cuba_matches_hand_loop(gen):
    x = (torch.rand(60, 2, 3, generator=gen, dtype=torch.float64) < 0.3).double() * 2.5
    tm, ts, dt = 10.0, 4.0, 1.0
    m = CubaLIF(tm, ts, dt=dt, reset="to_value", v_reset=0.0)
    z, st = m.trace(x)
    a, b = math.exp(-dt / ts), math.exp(-dt / tm)
    i = np.zeros((2, 3))
    v = np.zeros((2, 3))
    for t in range(60):
        i = a * i + x[t].numpy()
        v = b * v + (1 - b) * i
        zt = (v > 1.0).astype(float)
        v = np.where(zt > 0, 0.0, v)
        np.testing.assert_array_equal(z[t].numpy(), zt)
        np.testing.assert_allclose(st.i[t].numpy(), i, rtol=1e-12)
        np.testing.assert_allclose(st.v[t].numpy(), v, rtol=1e-12, atol=1e-14)
    assert z.sum() > 0


def test_cuba_psp_shape_is_difference_of_exponentials():
    # one input impulse at t=0; membrane (no spikes) follows the discrete double-exponential kernel
    tm, ts = 10.0, 3.0
    x = torch.zeros(40, 1, 1, dtype=torch.float64)
    x[0] = 1.0
    _, st = CubaLIF(tm, ts, v_th=1e9, reset="none").trace(x)
    a, b = math.exp(-1 / ts), math.exp(-1 / tm)
    k = torch.arange(40, dtype=torch.float64)
    # v[k] = (1-b) * sum_{j=0..k} b^(k-j) a^j = (1-b) (b^(k+1) - a^(k+1)) / (b - a)
    expected = (1 - b) * (b ** (k + 1) - a ** (k + 1)) / (b - a)
    torch.testing.assert_close(st.v[:, 0, 0], expected)


def test_alif_threshold_adapts_like_bellec(gen):
    x = torch.full((300, 1, 1), 3.0, dtype=torch.float64)
    m = ALIF(tau_mem=20.0, tau_adapt=100.0, adapt=1.8)
    z, st = m.trace(x)
    # hand loop
    beta, rho = math.exp(-1 / 20), math.exp(-1 / 100)
    v = a = 0.0
    zs = []
    for t in range(300):
        th = 1.0 + 1.8 * a
        v = beta * v + (1 - beta) * 3.0
        zt = float(v > th)
        v = v - zt * th
        a = rho * a + (1 - rho) * zt
        zs.append(zt)
    assert z.flatten().tolist() == zs
    spikes = torch.nonzero(z.flatten()).flatten()
    isi = spikes.diff()
    assert isi[-1] > isi[0]  # spike-frequency adaptation
    assert st.a[-1].item() == pytest.approx(a, rel=1e-12)


def test_alif_without_adaptation_is_lif():
    from spikeforge import LIF

    x = torch.rand(50, 2, 4, dtype=torch.float64) * 3
    za, _ = ALIF(tau_mem=7.0, adapt=1e-12)(x)
    zl, _ = LIF(7.0)(x)
    assert torch.equal(za, zl)


def test_li_is_exact_low_pass():
    x = torch.randn(30, 2, 3, dtype=torch.float64)
    out, st = LI(5.0, dt=0.5)(x)
    beta = math.exp(-0.5 / 5.0)
    v = torch.zeros(2, 3, dtype=torch.float64)
    for t in range(30):
        v = beta * v + (1 - beta) * x[t]
        torch.testing.assert_close(out[t], v)
    assert not LI.capabilities.spiking
    assert torch.autograd.gradcheck(lambda x: LI(3.0)(x)[0], (x[:5].clone().requires_grad_(),))


def test_rlif_matches_hand_loop(gen):
    n = 5
    w = torch.randn(n, n, generator=gen, dtype=torch.float64)
    m = RecurrentLIF(n, 6.0, w_rec=w).double()
    x = torch.rand(40, 3, n, generator=gen, dtype=torch.float64) * 4
    z, _ = m(x)
    beta = math.exp(-1 / 6.0)
    v = torch.zeros(3, n, dtype=torch.float64)
    zp = torch.zeros(3, n, dtype=torch.float64)
    for t in range(40):
        v = beta * v + (1 - beta) * (x[t] + zp @ w.t())
        zt = (v > 1).double()
        v = v - zt
        assert torch.equal(z[t], zt)
        zp = zt
    assert z.sum() > 0


def test_rlif_recurrent_weight_gets_gradient_and_zero_diagonal():
    m = RecurrentLIF(6, generator=torch.Generator().manual_seed(0))
    assert torch.all(m.w_rec.diagonal() == 0)
    z, _ = m(torch.rand(25, 2, 6) * 5)
    z.sum().backward()
    assert m.w_rec.grad is not None and m.w_rec.grad.abs().sum() > 0


def test_rlif_bad_input():
    with pytest.raises(ValueError, match="size"):
        RecurrentLIF(0)
    with pytest.raises(ValueError, match="w_rec must have shape"):
        RecurrentLIF(3, w_rec=torch.zeros(2, 2))
    with pytest.raises(ValueError, match="last dim"):
        RecurrentLIF(3)(torch.zeros(4, 2, 5))


@pytest.mark.parametrize("cls, kw", [(CubaLIF, dict(tau_syn=0.0)), (ALIF, dict(tau_adapt=-2.0)), (IF, dict(c_mem=0.0)), (LI, dict(tau_mem=0.0))])
def test_bad_time_constants(cls, kw):
    with pytest.raises(ValueError, match="> 0"):
        cls(**kw)
