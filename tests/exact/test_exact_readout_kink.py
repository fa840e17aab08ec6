"""EventProp's max-membrane readout when the maximum sits at an input spike (a kink): a negative input turns a
rising membrane down, so ``V_max = V(t_in)`` moves with ``t_in`` at the rate ``dV/dt`` just before it.
Reference: the closed-form single-input membrane, and central finite differences of the forward simulation."""

from __future__ import annotations

import math

import torch

from spikeforge.exact import EventConfig
from spikeforge.exact import eventprop
from spikeforge.exact import max_membrane

TAU_MEM, TAU_SYN = 20.0, 5.0
CFG = EventConfig(tau_mem=TAU_MEM, tau_syn=TAU_SYN, readout="max_membrane", t_end=40.0)


def _net(t1: float, t2: float, w_pos: float, w_neg: float) -> tuple[torch.Tensor, list[torch.Tensor]]:
    x = torch.tensor([[[t1], [t2]]], dtype=torch.float64)
    return x, [torch.tensor([[w_pos, w_neg]], dtype=torch.float64)]


def _closed_form(t1: float, t2: float, w_pos: float) -> tuple[float, float]:
    """``(V, I)`` at ``t2`` of a neuron driven only by the input at ``t1`` (weight ``w_pos``)."""
    a, c, s = 1 / TAU_MEM, 1 / TAU_SYN, t2 - t1
    v = w_pos * c * a * (math.exp(-a * s) - math.exp(-c * s)) / (c - a)
    return v, w_pos * c * math.exp(-c * s)


def test_kink_maximum_gradient_matches_closed_form_and_finite_differences() -> None:
    t1, t2, w_pos, w_neg = 0.5, 3.0, 30.0, -60.0  # V still rises at t2; after the negative jump it falls
    x, ws = _net(t1, t2, w_pos, w_neg)
    v_max, t_max = max_membrane(x, ws, CFG)
    assert float(t_max) == t2  # the maximum is the kink
    v2, i2 = _closed_form(t1, t2, w_pos)
    assert abs(float(v_max) - v2) < 1e-12
    slope = (i2 - v2) / TAU_MEM  # dV/dt just before t2 (> 0), hand-solved
    assert slope > 0
    xg = x.clone().requires_grad_()
    wg = ws[0].clone().requires_grad_()
    eventprop(xg, [wg], CFG).sum().backward()
    assert xg.grad is not None and wg.grad is not None
    assert abs(float(xg.grad[0, 1, 0]) - slope) < 1e-12  # moving the kink input later lets V rise longer
    assert abs(float(xg.grad[0, 0, 0]) + slope) < 1e-12  # moving the driving input later: V(t2) falls back
    assert float(wg.grad[0, 1]) == 0.0  # the input at the kink acts only after the maximum
    eps = 1e-6
    for j in range(2):  # central differences of the forward simulation, both input times
        plus, minus = x.clone(), x.clone()
        plus[0, j, 0] += eps
        minus[0, j, 0] -= eps
        fd = (float(max_membrane(plus, ws, CFG)[0]) - float(max_membrane(minus, ws, CFG)[0])) / (2 * eps)
        assert abs(fd - float(xg.grad[0, j, 0])) < 1e-6 * max(1.0, abs(fd))


def test_interior_maximum_input_times_unchanged() -> None:
    """With a later, small negative input the maximum is interior (before it): no kink term applies, and the
    gradient still matches finite differences."""
    x, ws = _net(0.5, 25.0, 30.0, -1.0)
    _, t_max = max_membrane(x, ws, CFG)
    assert 0.5 < float(t_max) < 25.0
    xg = x.clone().requires_grad_()
    eventprop(xg, ws, CFG).sum().backward()
    assert xg.grad is not None
    assert float(xg.grad[0, 1, 0]) == 0.0  # an input after the maximum does not move it
    eps = 1e-6
    plus, minus = x.clone(), x.clone()
    plus[0, 0, 0] += eps
    minus[0, 0, 0] -= eps
    fd = (float(max_membrane(plus, ws, CFG)[0]) - float(max_membrane(minus, ws, CFG)[0])) / (2 * eps)
    assert abs(fd - float(xg.grad[0, 0, 0])) < 1e-6 * max(1.0, abs(fd))
