"""Losses and regularisers: independent numpy formulas, gradcheck, dtypes, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spikeforge import LIF
from spikeforge.losses import first_spike_time_loss
from spikeforge.losses import max_membrane_cross_entropy
from spikeforge.losses import rate_cross_entropy
from spikeforge.losses import rate_l2_per_neuron
from spikeforge.losses import spike_count_mse
from spikeforge.losses import spike_l1

DTYPES = [torch.float32, torch.float64]


def np_ce(logits: np.ndarray, target: np.ndarray) -> float:
    m = logits.max(1, keepdims=True)
    logp = logits - m - np.log(np.exp(logits - m).sum(1, keepdims=True))
    return float(-logp[np.arange(len(target)), target].mean())


def np_first_times(z: np.ndarray) -> np.ndarray:
    num_steps = z.shape[0]
    out = np.full(z.shape[1:], float(num_steps))
    for t in reversed(range(num_steps)):
        out[z[t] > 0] = t
    return out


@pytest.fixture
def binary(gen):
    z = (torch.rand(10, 4, 3, generator=gen) < 0.3).double()
    target = torch.tensor([0, 2, 1, 2])
    return z, target


# ---------------------------------------------------------------- rate cross-entropy


def test_rate_cross_entropy_hand_counts():
    # counts [[3, 0], [1, 1]] over T = 3
    z = torch.zeros(3, 2, 2, dtype=torch.float64)
    z[:, 0, 0] = 1
    z[0, 1, 0] = 1
    z[2, 1, 1] = 1
    target = torch.tensor([0, 1])
    expected = 0.5 * (np.log(1 + np.exp(-3.0)) + np.log(2.0))
    assert abs(rate_cross_entropy(z, target).item() - expected) < 1e-12
    ref = torch.nn.functional.cross_entropy(torch.tensor([[3.0, 0.0], [1.0, 1.0]], dtype=torch.float64), target)
    assert abs(rate_cross_entropy(z, target).item() - ref.item()) < 1e-12


@pytest.mark.parametrize("dtype", DTYPES)
def test_rate_cross_entropy_matches_numpy(dtype, binary):
    z, target = binary
    loss = rate_cross_entropy(z.to(dtype), target)
    assert loss.dtype == dtype and loss.shape == ()
    assert abs(loss.item() - np_ce(z.numpy().sum(0), target.numpy())) < 1e-5


def test_rate_cross_entropy_gradcheck(gen):
    z = torch.rand(5, 3, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    target = torch.tensor([3, 0, 1])
    assert torch.autograd.gradcheck(lambda a: rate_cross_entropy(a, target), (z,))


# ---------------------------------------------------------------- spike-count MSE


@pytest.mark.parametrize("dtype", DTYPES)
def test_spike_count_mse_matches_numpy(dtype, binary):
    z, target = binary
    loss = spike_count_mse(z.to(dtype), target, correct_rate=0.7, incorrect_rate=0.1)
    counts = z.numpy().sum(0)
    goal = np.full(counts.shape, 10 * 0.1)
    for b, c in enumerate(target.numpy()):
        goal[b, c] = 10 * 0.7
    assert loss.dtype == dtype
    assert abs(loss.item() - float(((counts - goal) ** 2).mean())) < 1e-5


def test_spike_count_mse_zero_at_target_and_gradcheck(gen):
    z = torch.zeros(10, 2, 3, dtype=torch.float64)
    z[:8, 0, 1] = 1
    z[:2, 0, 0] = 1
    z[:2, 0, 2] = 1
    z[:8, 1, 0] = 1
    z[:2, 1, 1] = 1
    z[:2, 1, 2] = 1
    assert spike_count_mse(z, torch.tensor([1, 0])).item() == 0.0
    zr = torch.rand(4, 2, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: spike_count_mse(a, torch.tensor([2, 0])), (zr,))


# ---------------------------------------------------------------- max-membrane cross-entropy


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_membrane_cross_entropy_matches_numpy(dtype, gen):
    v = torch.randn(7, 5, 4, generator=gen, dtype=torch.float64)
    target = torch.tensor([0, 3, 3, 1, 2])
    loss = max_membrane_cross_entropy(v.to(dtype), target)
    assert loss.dtype == dtype
    assert abs(loss.item() - np_ce(v.numpy().max(0), target.numpy())) < 1e-5


def test_max_membrane_cross_entropy_gradcheck(gen):
    v = torch.randn(6, 3, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    target = torch.tensor([1, 1, 3])
    assert torch.autograd.gradcheck(lambda a: max_membrane_cross_entropy(a, target), (v,))


# ---------------------------------------------------------------- first-spike-time loss


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tau, reg_weight, reg_tau", [(1.0, 0.0, None), (2.5, 0.3, None), (2.0, 0.1, 4.0)])
def test_first_spike_time_loss_matches_numpy(dtype, tau, reg_weight, reg_tau, binary):
    z, target = binary
    loss = first_spike_time_loss(z.to(dtype), target, tau=tau, reg_weight=reg_weight, reg_tau=reg_tau)
    t = np_first_times(z.numpy())
    tr = tau if reg_tau is None else reg_tau
    t_true = t[np.arange(4), target.numpy()]
    ref = np_ce(-t / tau, target.numpy()) + reg_weight * float(np.mean(np.exp(t_true / tr) - 1))
    assert loss.dtype == dtype
    assert abs(loss.item() - ref) < 1e-4 * max(1.0, abs(ref))


def test_first_spike_time_loss_gradcheck(gen):
    z = (torch.rand(6, 3, 4, generator=gen, dtype=torch.float64) * 0.9 + 0.05).requires_grad_()
    target = torch.tensor([0, 3, 2])
    assert torch.autograd.gradcheck(
        lambda a: first_spike_time_loss(a, target, tau=2.0, reg_weight=0.2, reg_tau=5.0), (z,)
    )


def test_first_spike_time_loss_prefers_earlier_correct_spike():
    z = torch.zeros(6, 1, 2, dtype=torch.float64)
    z[3, 0, 0] = 1  # correct class fires at 3
    z[1, 0, 1] = 1  # wrong class fires at 1
    z.requires_grad_(True)
    target = torch.tensor([0])
    loss = first_spike_time_loss(z, target)
    loss.backward()
    # d loss / d z at the correct neuron before its spike < 0 (a spike there would lower the loss) ...
    assert bool((z.grad[:3, 0, 0] < 0).all())
    # ... and the wrong neuron is pushed later: at its only spike dt/dz = 1 - T < 0 and dL/dt_wrong < 0,
    # so dL/dz > 0 (removing that spike lowers the loss).
    assert float(z.grad[1, 0, 1]) > 0
    swapped = torch.zeros(6, 1, 2, dtype=torch.float64)
    swapped[1, 0, 0] = 1
    swapped[3, 0, 1] = 1
    assert first_spike_time_loss(swapped, target).item() < loss.item()


def test_first_spike_time_loss_trains_lif_inputs(gen):
    lif = LIF(5.0, v_th=0.5)
    x = (torch.rand(15, 3, 2, generator=gen, dtype=torch.float64) * 0.8).requires_grad_()
    z, _ = lif(x)
    first_spike_time_loss(z, torch.tensor([0, 1, 0])).backward()
    assert x.grad is not None and bool((x.grad != 0).any())


# ---------------------------------------------------------------- spike L1


@pytest.mark.parametrize("dtype", DTYPES)
def test_spike_l1_single_and_layers(dtype, gen):
    a = (torch.rand(5, 4, 3, generator=gen) < 0.4).to(dtype)
    b = (torch.rand(5, 4, 2, 2, generator=gen) < 0.4).to(dtype)
    one = spike_l1(a, weight=0.5)
    assert one.dtype == dtype and one.shape == ()
    assert abs(one.item() - 0.5 * a.numpy().sum() / 4) < 1e-6
    both = spike_l1([a, b], weight=2.0)
    assert abs(both.item() - 2.0 * (a.numpy().sum() + b.numpy().sum()) / 4) < 1e-5
    assert abs(spike_l1(iter([a, b]), weight=2.0).item() - both.item()) < 1e-6  # any iterable


def test_spike_l1_gradient_reaches_silent_neurons():
    z = torch.zeros(3, 2, 4, dtype=torch.float64, requires_grad=True)
    spike_l1(z, weight=0.3).backward()
    torch.testing.assert_close(z.grad, torch.full_like(z, 0.3 / 2))
    zr = torch.rand(3, 2, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: spike_l1([a, a * 2]), (zr,))


# ---------------------------------------------------------------- per-neuron rate L2


def np_rate_l2(z: np.ndarray, nu: float, weight: float, side: str) -> float:
    r = z.reshape(z.shape[0] * z.shape[1], -1).mean(0)
    d = {"both": r - nu, "upper": np.maximum(r - nu, 0), "lower": np.maximum(nu - r, 0)}[side]
    return float(weight * (d**2).mean())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("side", ["both", "upper", "lower"])
def test_rate_l2_per_neuron_matches_numpy(dtype, side, gen):
    z = (torch.rand(20, 6, 3, 5, generator=gen) < torch.linspace(0.05, 0.6, 5)).to(dtype)
    loss = rate_l2_per_neuron(z, target_rate=0.25, weight=3.0, side=side)
    assert loss.dtype == dtype and loss.shape == ()
    ref = np_rate_l2(z.double().numpy(), 0.25, 3.0, side)
    assert abs(loss.item() - ref) < 1e-6
    assert ref > 0


def test_rate_l2_per_neuron_one_sided_zero_inside_bound():
    z = torch.zeros(10, 2, 3)
    z[:2] = 1  # rate 0.2 everywhere
    assert rate_l2_per_neuron(z, target_rate=0.3, side="upper").item() == 0.0
    assert rate_l2_per_neuron(z, target_rate=0.1, side="lower").item() == 0.0
    assert abs(rate_l2_per_neuron(z).item() - 0.04) < 1e-7  # default: target 0, two-sided


@pytest.mark.parametrize("side", ["both", "upper", "lower"])
def test_rate_l2_per_neuron_gradcheck(side, gen):
    # rates spread around the bound but never on the kink
    z = (torch.rand(4, 3, 5, generator=gen, dtype=torch.float64) * 0.2 + torch.linspace(0.0, 0.8, 5)).requires_grad_()
    assert torch.autograd.gradcheck(lambda a: rate_l2_per_neuron(a, target_rate=0.45, side=side), (z,))


# ---------------------------------------------------------------- bad input


Z = torch.zeros(4, 2, 3)
T_OK = torch.tensor([0, 2])


@pytest.mark.parametrize("fn", [rate_cross_entropy, spike_count_mse, max_membrane_cross_entropy, first_spike_time_loss])
@pytest.mark.parametrize(
    "seq, target, exc, match",
    [
        (torch.zeros(4, 2), T_OK, ValueError, r"\[T, B, C\]"),
        (torch.zeros(4, 2, 3, 1), T_OK, ValueError, r"\[T, B, C\]"),
        (Z, torch.tensor([0.0, 2.0]), TypeError, "target.long"),
        (Z, torch.tensor([0, 1, 2]), ValueError, "shape"),
        (Z, torch.tensor([0, 3]), ValueError, "class indices"),
        (Z, torch.tensor([-1, 0]), ValueError, "class indices"),
        (Z, [0, 2], TypeError, "torch.Tensor"),
        (torch.zeros(4, 2, 3, dtype=torch.int64), T_OK, TypeError, "float"),
        (torch.full((4, 2, 3), float("nan")), T_OK, ValueError, "NaN"),
        (torch.zeros(4, 0, 3), torch.zeros(0, dtype=torch.int64), ValueError, "B >= 1"),
    ],
)
def test_classification_losses_bad_input(fn, seq, target, exc, match):
    with pytest.raises(exc, match=match):
        fn(seq, target)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: spike_count_mse(Z, T_OK, correct_rate=1.5), ValueError, "correct_rate"),
        (lambda: spike_count_mse(Z, T_OK, incorrect_rate=-0.1), ValueError, "incorrect_rate"),
        (lambda: first_spike_time_loss(Z, T_OK, tau=0.0), ValueError, "tau"),
        (lambda: first_spike_time_loss(Z, T_OK, reg_weight=-1.0), ValueError, "reg_weight"),
        (lambda: first_spike_time_loss(Z, T_OK, reg_tau=-1.0), ValueError, "reg_tau"),
        (lambda: spike_l1([]), ValueError, "non-empty"),
        (lambda: spike_l1([Z, torch.zeros(4, 3, 3)]), ValueError, "batch size"),
        (lambda: spike_l1(-Z - 1), ValueError, "non-negative"),
        (lambda: spike_l1(Z, weight=-1.0), ValueError, "weight"),
        (lambda: spike_l1(torch.zeros(4)), ValueError, "unsqueeze"),
        (lambda: rate_l2_per_neuron(Z, target_rate=2.0), ValueError, "target_rate"),
        (lambda: rate_l2_per_neuron(Z, side="above"), ValueError, "side"),
        (lambda: rate_l2_per_neuron(Z, weight=float("inf")), ValueError, "finite"),
        (lambda: rate_l2_per_neuron(torch.zeros(4, 2, dtype=torch.int64)), TypeError, "float"),
    ],
)
def test_regulariser_and_option_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ---------------------------------------------------------------- hostile input (issue 13)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("T", [10, 100, 250])
def test_first_spike_time_loss_finite_when_nothing_fires(dtype, T):
    # the probe: silent outputs (t = T) gave inf through exp(T / reg_tau); the loss must be finite, equal to
    # the reference where that is representable, and its gradient finite
    z = torch.zeros(T, 2, 3, dtype=dtype, requires_grad=True)
    target = torch.tensor([0, 2])
    for tau, reg_weight, reg_tau in ((1.0, 0.0, None), (1.0, 1.0, None), (1e-30, 0.5, 0.1), (3.0, 2.0, 1.0)):
        loss = first_spike_time_loss(z, target, tau=tau, reg_weight=reg_weight, reg_tau=reg_tau)
        (g,) = torch.autograd.grad(loss, z)
        assert loss.dtype == dtype and bool(torch.isfinite(loss))
        if tau >= 1.0:  # (a gradient scaled by 1 / tau = 1e30 overflows float16 and bfloat16 legitimately)
            assert bool(torch.isfinite(g).all())
        # every class ties: the cross-entropy is exactly log C; the regulariser is at least the linear part
        assert loss.item() >= math.log(3) * (1 - 1e-2)
        if reg_weight == 0.0:
            assert loss.item() == pytest.approx(math.log(3), rel=1e-2)


def test_first_spike_time_regulariser_exact_below_the_cap_and_linear_beyond():
    from spikeforge.losses import _expm1_capped

    u = torch.tensor([0.0, 1.0, 30.0, 80.0, 200.0, 1e4], dtype=torch.float64, requires_grad=True)
    got = _expm1_capped(u, bound=1e4, weight=1.0)
    cap = math.log(torch.finfo(torch.float64).max) - math.log(8) - math.log(2 + 1e4)  # about 700
    assert cap > 200
    torch.testing.assert_close(got[:5], torch.expm1(u[:5].detach()), rtol=1e-12, atol=0)
    assert math.isclose(got[5].item(), math.exp(cap) * (1 + 1e4 - cap) - 1, rel_tol=1e-12)
    # float32: beyond the cap the value continues with the slope at the cap (continuous, increasing)
    v = torch.tensor([10.0, 200.0, 400.0], dtype=torch.float32, requires_grad=True)
    out = _expm1_capped(v, bound=400.0, weight=1.0)
    (g,) = torch.autograd.grad(out.sum(), v)
    cap32 = math.log(torch.finfo(torch.float32).max) - math.log(8) - math.log(402)
    assert torch.isfinite(out).all() and out[1] < out[2]
    assert g[1].item() == pytest.approx(math.exp(cap32), rel=1e-5) == pytest.approx(g[2].item(), rel=1e-5)
    assert out[0].item() == pytest.approx(math.expm1(10.0), rel=1e-6)
    with pytest.raises(ValueError, match="lower reg_weight"):
        first_spike_time_loss(torch.zeros(100, 1, 2, dtype=torch.float16), torch.tensor([1]), reg_weight=1e30)


@pytest.mark.parametrize("shape", [(5, 0, 3), (5, 2, 0), (5, 0)])
def test_rate_l2_per_neuron_empty_batch_is_zero_not_nan(shape):
    z = torch.zeros(shape, requires_grad=True)
    for side in ("both", "upper", "lower"):
        loss = rate_l2_per_neuron(z, target_rate=0.3, side=side)
        assert loss.item() == 0.0
        (g,) = torch.autograd.grad(loss, z)
        assert g.shape == z.shape
    assert spike_l1(z).item() == 0.0
    with pytest.raises(ValueError, match="side"):
        rate_l2_per_neuron(z, side="above")
