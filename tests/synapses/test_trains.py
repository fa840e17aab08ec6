"""van Rossum distance: against a loop written here, known closed forms, gradient, refusals."""

from __future__ import annotations

import math

import pytest
import torch

from spikeforge.synapses import exp_filter
from spikeforge.synapses import van_rossum_distance


def test_exp_filter_matches_the_sum(gen):
    z = (torch.rand(30, 2, 3, generator=gen, dtype=torch.float64) < 0.3).double()
    ref = torch.stack([sum(math.exp(-k / 4.0) * z[t - k] for k in range(t + 1)) for t in range(30)])
    torch.testing.assert_close(exp_filter(z, 4.0), ref, rtol=0, atol=1e-12)


def test_distance_closed_forms():
    t_len, tau = 400, 5.0
    a = torch.zeros(t_len, 1, dtype=torch.float64)
    b = torch.zeros(t_len, 1, dtype=torch.float64)
    assert float(van_rossum_distance(a, b, tau=tau)) == 0.0
    a[10] = 1.0
    one = sum(math.exp(-2 * k / tau) for k in range(t_len - 10)) / tau  # a lone spike against silence
    assert float(van_rossum_distance(a, b, tau=tau)) == pytest.approx(one, rel=1e-12)
    b[11] = 1.0  # one step late: much closer than a missing spike, and growing with the shift
    d1 = float(van_rossum_distance(a, b, tau=tau))
    b[11], b[15] = 0.0, 1.0
    d5 = float(van_rossum_distance(a, b, tau=tau))
    assert 0 < d1 < d5 < 2 * one


def test_distance_gradient(gen):
    out = torch.rand(20, 2, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    target = (torch.rand(20, 2, 2, generator=gen, dtype=torch.float64) < 0.2).double()
    assert torch.autograd.gradcheck(lambda o: van_rossum_distance(o, target, tau=3.0), (out,))


def test_refusals():
    z = torch.zeros(5, 2)
    with pytest.raises(ValueError, match="must match"):
        van_rossum_distance(z, torch.zeros(5, 3))
    with pytest.raises(ValueError, match="tau must be > 0"):
        van_rossum_distance(z, z, tau=0.0)
    with pytest.raises(ValueError, match="NaN"):
        van_rossum_distance(torch.full((5, 2), float("nan")), z)
