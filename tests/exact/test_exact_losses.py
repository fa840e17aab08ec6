"""Losses of spikeforge.exact.losses against hand computation, their gradients (hand formula and float64
gradcheck), finiteness when nothing fires, and bad input."""

from __future__ import annotations

import math

import pytest
import torch

from spikeforge.exact.losses import first_spike_cross_entropy
from spikeforge.exact.losses import max_voltage_cross_entropy
from spikeforge.exact.losses import silent_to_t_max
from spikeforge.exact.losses import spike_count_regulariser
from spikeforge.exact.losses import time_regulariser

F64 = torch.float64
INF = math.inf


def _hand_ce(t: list[list[float]], y: list[int], tau0: float, t_max: float, alpha: float, tau1: float) -> float:
    total = 0.0
    for row, label in zip(t, y):
        row = [t_max if math.isinf(v) else v for v in row]
        denom = sum(math.exp(-v / tau0) for v in row)
        total += -math.log(math.exp(-row[label] / tau0) / denom) + alpha * (math.exp(row[label] / tau1) - 1.0)
    return total / len(t)


def test_first_spike_cross_entropy_matches_hand_computation() -> None:
    t = [[0.5, 1.2, INF], [2.0, 0.7, 1.1], [INF, INF, 0.9]]
    y = [0, 2, 1]
    got = first_spike_cross_entropy(
        torch.tensor(t, dtype=F64), torch.tensor(y), tau0=0.2, t_max=4.0, alpha=0.005, tau1=1.0
    )
    assert abs(float(got) - _hand_ce(t, y, 0.2, 4.0, 0.005, 1.0)) < 1e-13
    plain = first_spike_cross_entropy(torch.tensor(t, dtype=F64), torch.tensor(y), tau0=0.5, t_max=3.0)
    assert abs(float(plain) - _hand_ce(t, y, 0.5, 3.0, 0.0, 1.0)) < 1e-13
    reg = time_regulariser(torch.tensor(t, dtype=F64), torch.tensor(y), t_max=4.0, alpha=0.1, tau1=2.0)
    assert abs(float(reg) - 0.1 * ((math.exp(0.25) - 1) + (math.exp(0.55) - 1) + (math.exp(2.0) - 1)) / 3) < 1e-13


def test_first_spike_cross_entropy_gradient_matches_the_hand_formula() -> None:
    t = torch.tensor([[0.5, 1.2, 0.8], [2.0, 0.7, INF]], dtype=F64, requires_grad=True)
    y = torch.tensor([1, 0])
    tau0, alpha, tau1, t_max = 0.3, 0.02, 1.5, 5.0
    first_spike_cross_entropy(t, y, tau0=tau0, t_max=t_max, alpha=alpha, tau1=tau1).backward()
    assert t.grad is not None
    tt = torch.where(torch.isinf(t.detach()), torch.full_like(t.detach(), t_max), t.detach())
    p = torch.softmax(-tt / tau0, dim=1)
    onehot = torch.nn.functional.one_hot(y, 3).to(F64)
    expected = ((onehot - p) / tau0 + onehot * alpha * torch.exp(tt / tau1) / tau1) / 2
    expected[1, 2] = 0.0  # silent neuron: its time is the constant t_max
    torch.testing.assert_close(t.grad, expected, rtol=1e-12, atol=1e-14)


def test_gradcheck_of_every_loss() -> None:
    g = torch.Generator().manual_seed(3)
    t = (torch.rand(4, 3, generator=g, dtype=F64) * 2).requires_grad_()
    y = torch.tensor([0, 2, 1, 1])
    assert torch.autograd.gradcheck(lambda a: first_spike_cross_entropy(a, y, t_max=3.0, alpha=0.01), (t,))
    assert torch.autograd.gradcheck(lambda a: max_voltage_cross_entropy(a, y), (t,))
    counts = (torch.rand(4, 5, generator=g, dtype=F64) * 6).requires_grad_()
    assert torch.autograd.gradcheck(lambda c: spike_count_regulariser(c, lower=2.0, upper=4.0, s_upper=0.5), (counts,))


def test_losses_stay_finite_when_nothing_fires() -> None:
    t = torch.full((3, 4), INF, dtype=F64, requires_grad=True)
    y = torch.tensor([0, 3, 1])
    loss = first_spike_cross_entropy(t, y, t_max=4.0, alpha=0.005, tau1=1.0)
    assert abs(float(loss.detach()) - (math.log(4.0) + 0.005 * (math.exp(4.0) - 1.0))) < 1e-13
    loss.backward()
    assert t.grad is not None and float(t.grad.abs().sum()) == 0.0
    assert float(spike_count_regulariser(torch.zeros(2, 3, dtype=F64), lower=1.5)) == pytest.approx(3 * 1.5**2)


def test_max_voltage_cross_entropy_and_count_regulariser_by_hand() -> None:
    v = [[0.2, 1.0, -0.5], [0.9, 0.1, 0.4]]
    y = [1, 2]
    hand = sum(-math.log(math.exp(r[k]) / sum(math.exp(x) for x in r)) for r, k in zip(v, y)) / 2
    assert abs(float(max_voltage_cross_entropy(torch.tensor(v, dtype=F64), torch.tensor(y))) - hand) < 1e-13
    counts = torch.tensor([[0.0, 3.0, 7.0], [2.0, 5.0, 1.0]], dtype=F64)
    # lower 2 (s=1), upper 4 (s=0.5): sample 0: 4 + 0 + 0.5*9, sample 1: 0 + 0.5*1 + 1
    assert abs(float(spike_count_regulariser(counts, lower=2.0, upper=4.0, s_upper=0.5)) - (8.5 + 1.5) / 2) < 1e-13
    assert float(spike_count_regulariser(counts, lower=0.0, upper=7.0)) == 0.0


def test_silent_to_t_max_replaces_only_inf() -> None:
    t = torch.tensor([[0.3, INF, 9.0]], dtype=F64)
    assert silent_to_t_max(t, 4.0).tolist() == [[0.3, 4.0, 9.0]]


def test_bad_input_raises_clear_errors() -> None:
    t = torch.tensor([[0.5, 1.0]], dtype=F64)
    with pytest.raises(ValueError, match="NaN or -inf"):
        first_spike_cross_entropy(torch.tensor([[math.nan, 1.0]], dtype=F64), torch.tensor([0]), t_max=2.0)
    with pytest.raises(ValueError, match="t_max"):
        first_spike_cross_entropy(t, torch.tensor([0]), t_max=INF)
    with pytest.raises(ValueError, match="tau0"):
        first_spike_cross_entropy(t, torch.tensor([0]), tau0=0.0, t_max=2.0)
    with pytest.raises(TypeError, match="long"):
        first_spike_cross_entropy(t, torch.tensor([0.0]), t_max=2.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        first_spike_cross_entropy(t, torch.tensor([2]), t_max=2.0)
    with pytest.raises(ValueError, match=r"\[B\]"):
        max_voltage_cross_entropy(t, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"\[B, C\]"):
        max_voltage_cross_entropy(torch.zeros(3, dtype=F64), torch.tensor([0, 1, 0]))
    with pytest.raises(ValueError, match="inf"):
        max_voltage_cross_entropy(torch.tensor([[INF, 0.0]], dtype=F64), torch.tensor([0]))
    with pytest.raises(ValueError, match="alpha"):
        time_regulariser(t, torch.tensor([0]), t_max=2.0, alpha=-1.0)
    with pytest.raises(ValueError, match="lower <= upper"):
        spike_count_regulariser(torch.zeros(2, 2), lower=3.0, upper=1.0)
    with pytest.raises(ValueError, match="NaN or inf"):
        spike_count_regulariser(torch.tensor([[INF]]))
