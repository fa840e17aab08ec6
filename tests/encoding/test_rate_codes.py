"""constant / rate / poisson: references, statistics, RNG discipline, dtypes, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spikeforge.encoding import constant, poisson, rate

DTYPES = [torch.float32, torch.float64]


def binomial_band(p: np.ndarray, n: int, z: float = 5.0) -> np.ndarray:
    """Half-width of a z-sigma normal band for a binomial mean of n trials (plus a tiny floor)."""
    return z * np.sqrt(p * (1 - p) / n) + 1e-12


# ---------------------------------------------------------------- constant


@pytest.mark.parametrize("dtype", DTYPES)
def test_constant_repeats_input(dtype, gen):
    x = torch.randn(3, 4, 2, generator=gen, dtype=dtype) * 5
    out = constant(x, 6)
    assert out.shape == (6, 3, 4, 2) and out.dtype == dtype
    ref = np.broadcast_to(x.numpy(), (6, 3, 4, 2))
    np.testing.assert_array_equal(out.numpy(), ref)


def test_constant_is_a_copy_and_differentiable(gen):
    x = torch.randn(2, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    out = constant(x, 4)
    out.sum().backward()
    torch.testing.assert_close(x.grad, torch.full_like(x, 4.0))
    out2 = constant(x.detach(), 4)
    out2[0].zero_()  # must not write through to x or to the other steps
    assert bool((out2[1] == x.detach()).all())
    assert torch.autograd.gradcheck(lambda a: constant(a, 3), (x.detach().clone().requires_grad_(),))


# ---------------------------------------------------------------- rate


@pytest.mark.parametrize("dtype", DTYPES)
def test_rate_empirical_mean_in_binomial_band(dtype):
    g = torch.Generator().manual_seed(7)
    probs = torch.tensor([0.0, 0.05, 0.3, 0.5, 0.77, 1.0], dtype=dtype)
    x = probs.repeat(200, 1)  # [200, 6]
    num_steps = 50
    z = rate(x, num_steps, generator=g)
    assert z.shape == (num_steps, 200, 6) and z.dtype == dtype
    assert set(torch.unique(z).tolist()) <= {0.0, 1.0}
    mean = z.double().mean(dim=(0, 1)).numpy()
    n = num_steps * 200
    p = probs.double().numpy()
    assert np.all(np.abs(mean - p) <= binomial_band(p, n))
    assert mean[0] == 0.0 and mean[-1] == 1.0  # exact at the ends


def test_rate_gain_scales_probability():
    g = torch.Generator().manual_seed(3)
    x = torch.full((400, 3), 0.8, dtype=torch.float64)
    z = rate(x, 40, gain=0.5, generator=g)
    mean = z.mean().item()
    assert abs(mean - 0.4) <= binomial_band(np.array(0.4), z.numel())


def test_rate_matches_documented_uniform_rule():
    # documented rule: z_t = [u_t < g x] with u ~ U[0, 1) drawn as torch.rand([T, *x.shape]) in float32
    x = torch.tensor([[0.1, 0.5, 0.9]], dtype=torch.float32)
    z = rate(x, 30, gain=1.0, generator=torch.Generator().manual_seed(11))
    u = torch.rand((30, 1, 3), generator=torch.Generator().manual_seed(11)).numpy()
    ref = (u < x.numpy()).astype(np.float32)
    np.testing.assert_array_equal(z.numpy(), ref)


def test_rate_seed_reproducible_and_global_rng_untouched():
    x = torch.full((5, 7), 0.4)
    before = torch.random.get_rng_state()
    a = rate(x, 20, generator=torch.Generator().manual_seed(42))
    b = rate(x, 20, generator=torch.Generator().manual_seed(42))
    c = rate(x, 20, generator=torch.Generator().manual_seed(43))
    after = torch.random.get_rng_state()
    assert torch.equal(before, after)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_rate_without_generator_uses_global_rng():
    x = torch.full((5, 7), 0.4)
    torch.manual_seed(0)
    a = rate(x, 10)
    torch.manual_seed(0)
    b = rate(x, 10)
    assert torch.equal(a, b)


def test_rate_half_precision_output():
    x = torch.full((100, 10), 0.25, dtype=torch.float16)
    z = rate(x, 20, generator=torch.Generator().manual_seed(0))
    assert z.dtype == torch.float16
    assert abs(z.float().mean().item() - 0.25) <= binomial_band(np.array(0.25), z.numel())


def test_rate_empty_batch():
    z = rate(torch.zeros(0, 3), 4)
    assert z.shape == (4, 0, 3)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(x=torch.tensor([0.5, 1.5])), ValueError, "clamp"),
        (dict(x=torch.tensor([-0.1, 0.5])), ValueError, r"\[0.0, 1.0\]"),
        (dict(x=torch.tensor([float("nan")])), ValueError, "NaN"),
        (dict(x=torch.tensor([1, 0])), TypeError, "float"),
        (dict(x=[0.5]), TypeError, "torch.Tensor"),
        (dict(num_steps=0), ValueError, "num_steps"),
        (dict(num_steps=2.0), TypeError, "num_steps"),
        (dict(num_steps=True), TypeError, "num_steps"),
        (dict(gain=-1.0), ValueError, "gain"),
        (dict(gain=3.0), ValueError, "lower gain"),
        (dict(generator=123), TypeError, "torch.Generator"),
    ],
)
def test_rate_bad_input(kwargs, exc, match):
    args = dict(x=torch.tensor([0.2, 0.6]), num_steps=3)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        rate(args.pop("x"), args.pop("num_steps"), **args)


# ---------------------------------------------------------------- poisson


@pytest.mark.parametrize("dtype", DTYPES)
def test_poisson_probability_per_bin(dtype):
    g = torch.Generator().manual_seed(5)
    rates_hz = torch.tensor([0.0, 20.0, 100.0, 700.0], dtype=dtype)
    dt = 1e-3  # seconds, so rates are in Hz
    z = poisson(rates_hz.repeat(300, 1), 100, dt=dt, generator=g)
    assert z.shape == (100, 300, 4) and z.dtype == dtype
    assert set(torch.unique(z).tolist()) <= {0.0, 1.0}
    p = np.array([1 - math.exp(-r * dt) for r in rates_hz.double().tolist()])
    assert abs(p[2] - 0.09516258) < 1e-7  # 100 Hz at 1 ms
    mean = z.double().mean(dim=(0, 1)).numpy()
    assert np.all(np.abs(mean - p) <= binomial_band(p, 100 * 300))
    assert mean[0] == 0.0


def test_poisson_units_only_product_matters():
    # 50 Hz with dt = 1 ms is the same process as 0.05 per ms with dt = 1 (ms)
    r = torch.full((20, 5), 50.0, dtype=torch.float64)
    a = poisson(r, 30, dt=1e-3, generator=torch.Generator().manual_seed(1))
    b = poisson(r / 1000.0, 30, dt=1.0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


def test_poisson_global_rng_untouched():
    before = torch.random.get_rng_state()
    a = poisson(torch.full((4, 4), 30.0), 10, dt=0.01, generator=torch.Generator().manual_seed(9))
    b = poisson(torch.full((4, 4), 30.0), 10, dt=0.01, generator=torch.Generator().manual_seed(9))
    assert torch.equal(torch.random.get_rng_state(), before)
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    "rate_hz, kwargs, exc, match",
    [
        (torch.tensor([-1.0]), dict(dt=1e-3), ValueError, "rate_hz"),
        (torch.tensor([float("inf")]), dict(dt=1e-3), ValueError, "inf"),
        (torch.tensor([1.0]), dict(dt=0.0), ValueError, "dt"),
        (torch.tensor([1.0]), dict(dt=float("nan")), ValueError, "finite"),
        (torch.tensor([3]), dict(dt=1e-3), TypeError, "float"),
    ],
)
def test_poisson_bad_input(rate_hz, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        poisson(rate_hz, 5, **kwargs)


def test_poisson_requires_dt_keyword():
    with pytest.raises(TypeError):
        poisson(torch.tensor([1.0]), 5, 1e-3)  # type: ignore[misc]
