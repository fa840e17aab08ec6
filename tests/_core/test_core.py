from __future__ import annotations

import math

import pytest
import torch

from spikeforge._core.discretize import check_positive, decay, tau_from_decay
from spikeforge._core.reset import apply_reset
from spikeforge._core.scan import scan, scan_record
from spikeforge._core.spike import heaviside, spike
from spikeforge.surrogate import ATan, FastSigmoid


def test_decay_is_exact_exponential_and_inverts():
    assert decay(10.0, 1.0) == pytest.approx(math.exp(-0.1), rel=1e-15)
    tau = torch.tensor([1.0, 5.0, 50.0], dtype=torch.float64)
    torch.testing.assert_close(decay(tau, 0.5), torch.exp(-0.5 / tau))
    torch.testing.assert_close(tau_from_decay(decay(tau, 0.5), 0.5), tau)
    assert tau_from_decay(decay(7.0, 0.25), 0.25) == pytest.approx(7.0, rel=1e-12)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_check_positive_rejects(bad):
    with pytest.raises(ValueError, match="must be finite and > 0"):
        check_positive("tau_mem", bad)
    with pytest.raises(ValueError, match="must be finite and > 0"):
        check_positive("tau_mem", torch.tensor([1.0, bad]))


@pytest.mark.parametrize("beta", [0.0, 1.0, 1.5, -0.1])
def test_tau_from_decay_rejects_out_of_range(beta):
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        tau_from_decay(beta, 1.0)


def test_heaviside_strict_and_keeps_dtype():
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        x = torch.tensor([-1.0, 0.0, 1e-6, 2.0], dtype=dtype)
        z = heaviside(x)
        assert z.dtype == dtype
        assert z.tolist() == [0.0, 0.0, 1.0, 1.0]


def test_spike_forward_and_surrogate_backward():
    x = torch.linspace(-2, 2, 41, dtype=torch.float64, requires_grad=True)
    sg = ATan(alpha=3.0)
    z = spike(x, sg)
    assert torch.equal(z.detach(), (x.detach() > 0).double())
    (g,) = torch.autograd.grad(z, x, torch.ones_like(z))
    expected = 1.5 / (1 + (math.pi / 2 * 3.0 * x.detach()) ** 2)  # independent formula
    torch.testing.assert_close(g, expected)


def test_spike_without_grad_is_plain_heaviside():
    x = torch.randn(5)
    assert spike(x, FastSigmoid()).grad_fn is None


def test_reset_modes_only_touch_spiking_neurons():
    v = torch.tensor([0.5, 1.2, 2.5])
    z = torch.tensor([0.0, 1.0, 1.0])
    torch.testing.assert_close(apply_reset(v, z, 1.0, -0.1, "to_value"), torch.tensor([0.5, -0.1, -0.1]))
    torch.testing.assert_close(apply_reset(v, z, 1.0, -0.1, "subtract"), torch.tensor([0.5, 0.1, 1.4]))
    torch.testing.assert_close(apply_reset(v, z, 1.0, 0.0, "none"), v)
    with pytest.raises(ValueError, match="unknown reset mode"):
        apply_reset(v, z, 1.0, 0.0, "zero")


def _cumsum_step(x_t, s):
    s = s + x_t
    return 2 * s, s


def test_scan_matches_hand_loop_and_records():
    x = torch.randn(6, 3, 2)
    y, s = scan(_cumsum_step, x, torch.zeros(3, 2))
    torch.testing.assert_close(y, 2 * x.cumsum(0))
    torch.testing.assert_close(s, x.sum(0))


def test_scan_record_stacks_namedtuple_states():
    from typing import NamedTuple

    class St(NamedTuple):
        a: torch.Tensor
        b: torch.Tensor

    def step(x_t, st):
        a = st.a + x_t
        return a, St(a, st.b + 1)

    x = torch.randn(4, 2)
    y, states = scan_record(step, x, St(torch.zeros(2), torch.zeros(2)))
    assert isinstance(states, St)
    torch.testing.assert_close(states.a, x.cumsum(0))
    torch.testing.assert_close(states.b[:, 0], torch.arange(1.0, 5.0))


@pytest.mark.parametrize("shape", [(0, 2), (3,)])
def test_scan_rejects_bad_sequences(shape):
    with pytest.raises(ValueError, match="T = 0|time-major"):
        scan(_cumsum_step, torch.zeros(shape), torch.zeros(2))
    with pytest.raises(TypeError, match="torch.Tensor"):
        scan(_cumsum_step, [1, 2], torch.zeros(2))  # type: ignore[arg-type]


def test_check_seq_is_the_one_sequence_check():
    from spikeforge._core.checks import check_seq

    x = torch.zeros(3, 2)
    assert check_seq(x, "x_seq") is x
    with pytest.raises(ValueError, match=r"x_seq must be time-major \[T, B, \.\.\.\]"):
        check_seq(torch.zeros(3), "x_seq")
    with pytest.raises(ValueError, match="T = 0"):
        check_seq(torch.zeros(0, 2), "x_seq")
    with pytest.raises(TypeError, match="floating-point"):
        check_seq(torch.zeros(3, 2, dtype=torch.int64), "x_seq")
    assert check_seq(torch.zeros(3, 2, dtype=torch.int64), "x_seq", floating=False) is not None
    with pytest.raises(ValueError, match="NaN"):
        check_seq(torch.full((3, 2), float("nan")), "x_seq")
    assert check_seq(torch.full((3, 2), float("nan")), "x_seq", finite=False) is not None
