"""delta (send-on-delta): numpy-loop reference, hand cases, round trip, step/loop equivalence, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spikeforge.encoding import DeltaState, delta, delta_reconstruct, delta_step


def np_delta(x, theta, initial=None):
    """Independent loop over every element. x: [T, N] -> on, off [T, N]."""
    num_steps, n = x.shape
    on = np.zeros_like(x)
    off = np.zeros_like(x)
    for i in range(n):
        ref = x[0, i] if initial is None else initial
        th = theta[i] if np.ndim(theta) else theta
        for t in range(num_steps):
            if x[t, i] - ref > th:
                on[t, i] = 1
                ref += th
            elif ref - x[t, i] > th:
                off[t, i] = 1
                ref -= th
    return on, off


def random_walk(gen, num_steps, *shape, step=0.1, dtype=torch.float64):
    inc = (torch.rand(num_steps, *shape, generator=gen, dtype=dtype) * 2 - 1) * step
    return torch.cumsum(inc, 0)


def test_delta_hand_ramp():
    x = torch.tensor([0.0, 0.3, 0.6, 0.9, 1.2, 1.2, 0.6], dtype=torch.float64).view(7, 1)
    z = delta(x, 0.25)
    assert z.shape == (7, 1, 2)
    # refs: 0 -> .25 -> .5 -> .75 -> 1.0 -> (1.2-1.0 = .2, silent) -> (0.6-1.0 = -.4: OFF) .75
    np.testing.assert_array_equal(z[:, 0, 0].numpy(), [0, 1, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(z[:, 0, 1].numpy(), [0, 0, 0, 0, 0, 0, 1])
    rec = delta_reconstruct(z, 0.25, initial=0.0)
    np.testing.assert_allclose(rec[:, 0].numpy(), [0, 0.25, 0.5, 0.75, 1.0, 1.0, 0.75])


def test_delta_strict_threshold_and_constant_signal():
    x = torch.tensor([[0.0], [0.5], [0.5]])
    assert delta(x, 0.5).sum() == 0  # moved by exactly the threshold: no spike
    assert delta(torch.full((10, 3, 4), 2.7), 0.1).sum() == 0


@pytest.mark.parametrize("theta", [0.05, 0.13])
def test_delta_matches_reference(theta, gen):
    x = random_walk(gen, 60, 4, 5, step=0.2)
    z = delta(x, theta)
    assert z.shape == (60, 4, 2, 5)
    on, off = np_delta(x.reshape(60, -1).numpy(), theta)
    np.testing.assert_array_equal(z[:, :, 0].reshape(60, -1).numpy(), on)
    np.testing.assert_array_equal(z[:, :, 1].reshape(60, -1).numpy(), off)
    assert not bool(((z[:, :, 0] > 0) & (z[:, :, 1] > 0)).any())  # never ON and OFF together


def test_delta_initial_and_per_channel_threshold(gen):
    x = random_walk(gen, 40, 3, 2, step=0.3)
    theta = torch.tensor([0.1, 0.25], dtype=torch.float64)
    z = delta(x, theta, initial=0.0)
    on, off = np_delta(x.reshape(40, -1).numpy(), np.tile(theta.numpy(), 3), initial=0.0)
    np.testing.assert_array_equal(z[:, :, 0].reshape(40, -1).numpy(), on)
    np.testing.assert_array_equal(z[:, :, 1].reshape(40, -1).numpy(), off)
    # per-channel tensor threshold == running each channel with its scalar threshold
    for c in range(2):
        assert torch.equal(z[..., c], delta(x[..., c], float(theta[c]), initial=0.0))


def test_delta_on_only(gen):
    x = random_walk(gen, 30, 2, 3)
    z = delta(x, 0.05)
    z_on = delta(x, 0.05, off_spikes=False)
    assert z_on.shape == (30, 2, 3)
    assert torch.equal(z_on, z[:, :, 0])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_delta_round_trip_within_threshold(dtype, gen):
    theta = 0.1
    x = random_walk(gen, 200, 3, 4, step=theta, dtype=dtype)  # |x_t - x_{t-1}| <= theta: slew condition
    z = delta(x, theta)
    assert z.dtype == dtype
    rec = delta_reconstruct(z, theta, initial=x[0])
    assert rec.shape == x.shape and rec.dtype == dtype
    assert float((x - rec).abs().max()) <= theta * (1 + 1e-5)


def test_delta_lags_on_fast_jumps():
    # a jump of 1.0 with theta 0.1 needs 10 steps to catch up (one spike per step)
    x = torch.cat([torch.zeros(1, 1), torch.ones(14, 1)]).double()
    z = delta(x, 0.1)
    assert z[:, 0, 0].sum() == 10 and z[1:11, 0, 0].sum() == 10
    rec = delta_reconstruct(z, 0.1)
    assert abs(float(rec[1, 0]) - 0.1) < 1e-12 and abs(float(rec[-1, 0]) - 1.0) < 1e-9


def test_delta_step_loop_equals_delta(gen):
    x = random_walk(gen, 25, 2, 3)
    state = DeltaState(x[0].clone())
    outs = []
    for t in range(25):
        y, state = delta_step(x[t], state, 0.07)
        outs.append(y)
    assert torch.equal(torch.stack(outs), delta(x, 0.07))


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: delta(torch.zeros(5), 0.1), ValueError, "unsqueeze"),
        (lambda: delta(torch.zeros(5, 2), 0.0), ValueError, "threshold"),
        (lambda: delta(torch.zeros(5, 2), torch.tensor([0.1, -0.1])), ValueError, "threshold"),
        (lambda: delta(torch.zeros(5, 2), torch.tensor([0.1, 0.2, 0.3])), ValueError, "broadcast"),
        (lambda: delta(torch.zeros(5, 2, dtype=torch.int64), 0.1), TypeError, "float"),
        (lambda: delta(torch.full((5, 2), float("nan")), 0.1), ValueError, "NaN"),
        (lambda: delta(torch.zeros(0, 2), 0.1), ValueError, "T = 0"),
        (lambda: delta_reconstruct(torch.zeros(5, 2, 3), 0.1), ValueError, "ON/OFF"),
        (lambda: delta_reconstruct(torch.zeros(5, 2), 0.1), ValueError, "ON/OFF"),
    ],
)
def test_delta_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
