"""Decoders: hand cases, numpy references, soft first-spike time (forward, hand gradient, expectation)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from spikeforge import LIF
from spikeforge.encoding import (
    first_spike_time,
    latency,
    max_membrane,
    soft_first_spike_time,
    spike_count,
    spike_rate,
)

DTYPES = [torch.float32, torch.float64]

# T = 4, B = 3: column 0 spikes at 1 and 3, column 1 never, column 2 at 0 and 2
Z_HAND = torch.tensor([[0, 0, 1], [1, 0, 0], [0, 0, 1], [1, 0, 0]], dtype=torch.float64)


@pytest.mark.parametrize("dtype", DTYPES)
def test_count_rate_hand(dtype):
    z = Z_HAND.to(dtype)
    assert spike_count(z).dtype == dtype and spike_rate(z).dtype == dtype
    np.testing.assert_array_equal(spike_count(z).numpy(), [2, 0, 2])
    np.testing.assert_array_equal(spike_rate(z).numpy(), [0.5, 0, 0.5])


def test_count_rate_match_numpy_and_gradients(gen):
    z = (torch.rand(9, 4, 3, 2, generator=gen) < 0.3).double()
    np.testing.assert_array_equal(spike_count(z).numpy(), z.numpy().sum(0))
    np.testing.assert_allclose(spike_rate(z).numpy(), z.numpy().mean(0))
    zr = torch.rand(5, 2, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(spike_count, (zr,))
    assert torch.autograd.gradcheck(spike_rate, (zr,))


@pytest.mark.parametrize("dtype", DTYPES)
def test_first_spike_time_hand(dtype):
    z = Z_HAND.to(dtype)
    t = first_spike_time(z)
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.numpy(), [1, 4, 0])
    np.testing.assert_array_equal(first_spike_time(z, no_spike=-1).numpy(), [1, -1, 0])
    assert first_spike_time(z, no_spike=float("inf"))[1] == float("inf")


def test_first_spike_time_matches_loop_and_inverts_latency(gen):
    z = (torch.rand(12, 6, 5, generator=gen) < 0.15).float()
    ref = np.full((6, 5), 12.0)
    for t in reversed(range(12)):
        ref[z[t].numpy() > 0] = t
    np.testing.assert_array_equal(first_spike_time(z).numpy(), ref)
    x = torch.tensor([1.0, 0.5, 0.25, 0.0])
    np.testing.assert_array_equal(first_spike_time(latency(x, 5)).numpy(), [0, 2, 3, 5])


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_membrane_hand_and_gradient(dtype):
    v = torch.tensor([[0.1, -2.0], [0.7, -1.0], [0.3, -3.0]], dtype=dtype, requires_grad=True)
    m = max_membrane(v)
    assert m.dtype == dtype
    np.testing.assert_allclose(m.detach().numpy(), [0.7, -1.0])
    m.sum().backward()
    np.testing.assert_array_equal(v.grad.numpy(), [[0, 0], [1, 1], [0, 0]])


@pytest.mark.parametrize("dtype", DTYPES)
def test_soft_first_spike_time_forward_equals_hard(dtype, gen):
    z = (torch.rand(10, 50, 3, generator=gen) < 0.2).to(dtype)
    z[:, 0, 0] = 0  # at least one silent element
    soft = soft_first_spike_time(z)
    assert soft.dtype == dtype
    assert torch.equal(soft, first_spike_time(z))


def hand_grad(z_col: np.ndarray) -> np.ndarray:
    """Documented derivative at binary z: u - k (u < k), k - k' (u = k), 0 (u > k); T if absent."""
    num_steps = len(z_col)
    spikes = list(np.flatnonzero(z_col)) + [num_steps, num_steps]
    k, k2 = spikes[0], spikes[1]
    g = np.zeros(num_steps)
    for u in range(num_steps):
        if u < k:
            g[u] = u - k
        elif u == k:
            g[u] = k - k2
    return g


def test_soft_first_spike_time_gradient_hand_derived(gen):
    z = (torch.rand(8, 40, generator=gen) < 0.25).double()
    z[:, 0] = 0
    z[:, 1] = 0
    z[-1, 1] = 1  # only the last step
    z.requires_grad_(True)
    soft_first_spike_time(z).sum().backward()
    for b in range(40):
        np.testing.assert_array_equal(z.grad[:, b].numpy(), hand_grad(z[:, b].detach().numpy()))


def test_soft_first_spike_time_gradcheck_and_finite_differences(gen):
    z = (torch.rand(6, 3, 2, generator=gen, dtype=torch.float64) * 0.9 + 0.05).requires_grad_()
    assert torch.autograd.gradcheck(soft_first_spike_time, (z,))
    # central finite difference on one relaxed element
    eps = 1e-6
    zp, zm = z.detach().clone(), z.detach().clone()
    zp[2, 1, 0] += eps
    zm[2, 1, 0] -= eps
    fd = (soft_first_spike_time(zp)[1, 0] - soft_first_spike_time(zm)[1, 0]) / (2 * eps)
    soft_first_spike_time(z)[1, 0].backward()
    assert abs(float(fd) - float(z.grad[2, 1, 0])) < 1e-6


def test_soft_first_spike_time_is_expected_first_spike_of_bernoulli(gen):
    num_steps = 5
    p = torch.rand(num_steps, 3, generator=gen, dtype=torch.float64)
    expected = np.zeros(3)
    for pattern in itertools.product([0.0, 1.0], repeat=num_steps):
        zb = torch.tensor(pattern, dtype=torch.float64).view(num_steps, 1).expand(num_steps, 3)
        prob = torch.prod(torch.where(zb > 0, p, 1 - p), dim=0).numpy()
        expected += prob * first_spike_time(zb).numpy()
    np.testing.assert_allclose(soft_first_spike_time(p).numpy(), expected, rtol=1e-12)


def test_soft_first_spike_time_passes_surrogate_gradient_to_inputs(gen):
    lif = LIF(5.0, v_th=0.5)
    x = (torch.rand(20, 4, 3, generator=gen, dtype=torch.float64) * 0.8).requires_grad_()
    z, _ = lif(x)
    t = soft_first_spike_time(z)
    assert torch.equal(t, first_spike_time(z))
    t.sum().backward()
    assert x.grad is not None and bool((x.grad != 0).any())
    assert float(x.grad.sum()) < 0  # more input current -> earlier spikes


@pytest.mark.parametrize("fn", [spike_count, spike_rate, first_spike_time, soft_first_spike_time, max_membrane])
def test_decoder_bad_input(fn):
    with pytest.raises(ValueError, match="unsqueeze"):
        fn(torch.zeros(5))
    with pytest.raises(TypeError, match="float"):
        fn(torch.zeros(5, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="NaN"):
        fn(torch.full((5, 2), float("nan")))
    with pytest.raises(ValueError, match="T = 0"):
        fn(torch.zeros(0, 2))


def test_first_spike_time_bad_no_spike():
    with pytest.raises(TypeError, match="no_spike"):
        first_spike_time(Z_HAND, no_spike="never")  # type: ignore[arg-type]


# ---- low-precision spike times (issue 13): exact, or an error naming the fix -----------------------------
@pytest.mark.parametrize("dtype, exact", [(torch.float16, 2048), (torch.bfloat16, 256)])
def test_first_spike_time_low_precision_exact_or_raises(dtype, exact):
    # the probe: a spike at step 2049 (float16) / 257 (bfloat16) was reported at 2048 / 256, with no error
    for T in (exact - 1, exact):  # every index 0..T (T = the silent value) is exact: results are right
        z = torch.zeros(T, 1, 3, dtype=dtype)
        z[T - 1, 0, 0] = 1
        z[T - 2, 0, 1] = 1
        want = torch.tensor([[T - 1, T - 2, T]], dtype=torch.float64)
        assert torch.equal(first_spike_time(z).double(), want)
        assert torch.equal(soft_first_spike_time(z).double(), want)
    z = torch.zeros(exact + 3, 1, 1, dtype=dtype)
    z[exact + 1] = 1
    for fn in (first_spike_time, soft_first_spike_time):
        with pytest.raises(
            ValueError, match=rf"holds step indices exactly only up to {exact}, but T = {exact + 3}.*z_seq.float\(\)"
        ):
            fn(z)
    assert first_spike_time(z.float()).item() == exact + 1  # the fix the message names
