"""latency / phase / burst: numpy-loop references, hand cases, round trips, dtypes, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spikeforge.encoding import burst, latency, phase, phase_decode

DTYPES = [torch.float32, torch.float64]


def spikes_from_times(times: list[list[int]], num_steps: int) -> np.ndarray:
    """[B] lists of spike steps -> [T, B] binary array."""
    out = np.zeros((num_steps, len(times)))
    for b, ts in enumerate(times):
        for t in ts:
            out[t, b] = 1.0
    return out


# ---------------------------------------------------------------- latency


def np_latency(x, num_steps, mode="linear", tau=5.0, theta=None, normalize=False, clip=False):
    times = []
    for v in x:
        if mode == "linear":
            th = 0.0 if theta is None else theta
            if v <= th:
                times.append([])
                continue
            times.append([int(np.round((1 - v) * (num_steps - 1)))])
        else:
            th = 0.2 if theta is None else theta
            if v <= th:
                times.append([])
                continue
            s = tau * math.log(v / (v - th))
            if normalize:
                s -= tau * math.log(1 / (1 - th))
            t = int(np.round(s))
            if t > num_steps - 1:
                times.append([num_steps - 1] if clip else [])
            else:
                times.append([t])
    return spikes_from_times(times, num_steps)


def test_latency_hand_cases():
    x = torch.tensor([1.0, 0.0, 0.5, 0.25])
    z = latency(x, 5)
    # x=1 -> step 0; x=0 -> no spike; 0.5 -> round(2) = 2; 0.25 -> round(3) = 3
    expected = spikes_from_times([[0], [], [2], [3]], 5)
    np.testing.assert_array_equal(z.numpy(), expected)


@pytest.mark.parametrize("num_steps", [1, 2, 7, 33])
def test_latency_linear_matches_reference(num_steps, gen):
    x = torch.rand(200, generator=gen, dtype=torch.float64)
    x[:3] = torch.tensor([0.0, 1.0, 1e-9], dtype=torch.float64)
    z = latency(x, num_steps)
    np.testing.assert_array_equal(z.numpy(), np_latency(x.numpy(), num_steps))
    assert bool((z.sum(0) <= 1).all())


@pytest.mark.parametrize("theta", [0.0, 0.3])
def test_latency_linear_threshold_silences(theta, gen):
    x = torch.rand(4, 50, generator=gen, dtype=torch.float64)
    x[0, 0] = theta  # exactly at threshold: silent
    z = latency(x, 10, threshold=theta)
    ref = np_latency(x.flatten().numpy(), 10, theta=theta).reshape(10, 4, 50)
    np.testing.assert_array_equal(z.numpy(), ref)
    assert z[:, 0, 0].sum() == 0


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("clip", [False, True])
def test_latency_log_matches_reference(normalize, clip, gen):
    x = torch.rand(300, generator=gen, dtype=torch.float64)
    x[:3] = torch.tensor([1.0, 0.2, 0.2000001], dtype=torch.float64)
    z = latency(x, 12, mode="log", tau=4.0, threshold=0.2, normalize=normalize, clip=clip)
    ref = np_latency(x.numpy(), 12, mode="log", tau=4.0, theta=0.2, normalize=normalize, clip=clip)
    np.testing.assert_array_equal(z.numpy(), ref)
    assert z[:, 1].sum() == 0  # x == threshold never fires


def test_latency_log_hand_case():
    x = torch.tensor([1.0, 0.5, 0.25], dtype=torch.float64)
    # tau = 5, theta = 0.2: s = 5 ln(x / (x - 0.2)) = 1.116, 2.554, 8.047 -> steps 1, 3, 8
    z = latency(x, 10, mode="log", tau=5.0, threshold=0.2)
    np.testing.assert_array_equal(z.numpy(), spikes_from_times([[1], [3], [8]], 10))
    z_n = latency(x, 10, mode="log", tau=5.0, threshold=0.2, normalize=True)
    # minus s(1) = 1.116: 0, 1.438 -> 1, 6.931 -> 7
    np.testing.assert_array_equal(z_n.numpy(), spikes_from_times([[0], [1], [7]], 10))
    z_short = latency(x, 5, mode="log", tau=5.0, threshold=0.2)
    np.testing.assert_array_equal(z_short.numpy(), spikes_from_times([[1], [3], []], 5))
    z_clip = latency(x, 5, mode="log", tau=5.0, threshold=0.2, clip=True)
    np.testing.assert_array_equal(z_clip.numpy(), spikes_from_times([[1], [3], [4]], 5))


def test_latency_monotone_larger_spikes_earlier(gen):
    x = torch.sort(torch.rand(100, generator=gen, dtype=torch.float64) * 0.7 + 0.3).values
    for kw in (dict(), dict(mode="log", tau=3.0, clip=True)):
        z = latency(x, 20, **kw)
        t = z.argmax(0).numpy()
        assert np.all(np.diff(t) <= 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_latency_dtype_and_shape(dtype):
    x = torch.tensor([[0.0, 0.25], [0.75, 1.0]], dtype=dtype)
    for mode in ("linear", "log"):
        z = latency(x, 5, mode=mode)
        assert z.shape == (5, 2, 2) and z.dtype == dtype
        ref = latency(x.double(), 5, mode=mode)
        assert torch.equal(z.double(), ref)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(mode="exp"), ValueError, "linear"),
        (dict(mode="log", threshold=0.0), ValueError, r"\(0, 1\)"),
        (dict(mode="log", threshold=1.0), ValueError, "threshold"),
        (dict(threshold=1.0), ValueError, r"\[0, 1\)"),
        (dict(mode="log", tau=0.0), ValueError, "tau"),
        (dict(num_steps=0), ValueError, "num_steps"),
        (dict(x=torch.tensor([1.2])), ValueError, "clamp"),
        (dict(x=torch.tensor([float("nan")])), ValueError, "NaN"),
        (dict(x=torch.tensor([1])), TypeError, "float"),
    ],
)
def test_latency_bad_input(kwargs, exc, match):
    args = dict(x=torch.tensor([0.5]), num_steps=4)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        latency(args.pop("x"), args.pop("num_steps"), **args)


# ---------------------------------------------------------------- phase


def np_phase(x, num_steps, bits):
    out = np.zeros((num_steps, len(x)))
    for b, v in enumerate(x):
        q = min(int(np.floor(v * 2**bits)), 2**bits - 1)
        code = format(q, f"0{bits}b")  # MSB first
        for t in range(num_steps):
            out[t, b] = float(code[t % bits] == "1")
    return out


def test_phase_hand_cases():
    x = torch.tensor([0.5, 0.75, 0.0, 1.0, 0.125])
    z = phase(x, 4, bits=4)
    expected = np.array(
        [
            [1, 0, 0, 0],  # 0.5  = .1000
            [1, 1, 0, 0],  # 0.75 = .1100
            [0, 0, 0, 0],  # 0
            [1, 1, 1, 1],  # 1 -> 15/16
            [0, 0, 1, 0],  # 0.125 = .0010
        ],
        dtype=np.float32,
    ).T
    np.testing.assert_array_equal(z.numpy(), expected)


@pytest.mark.parametrize("bits", [1, 3, 8, 12])
def test_phase_matches_reference_and_repeats(bits, gen):
    x = torch.rand(64, generator=gen, dtype=torch.float64)
    num_steps = 2 * bits + 3
    z = phase(x, num_steps, bits=bits)
    np.testing.assert_array_equal(z.numpy(), np_phase(x.numpy(), num_steps, bits))
    assert torch.equal(z[bits : 2 * bits], z[:bits])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bits", [4, 8, 16])
def test_phase_round_trip_within_quantisation(dtype, bits, gen):
    x = torch.rand(3, 50, generator=gen, dtype=torch.float64).to(dtype)
    x[0, :2] = torch.tensor([0.0, 1.0], dtype=dtype)
    z = phase(x, bits, bits=bits)
    assert z.dtype == dtype and z.shape == (bits, 3, 50)
    xh = phase_decode(z, bits=bits)
    assert xh.dtype == dtype and xh.shape == x.shape
    err = (x.double() - xh.double()).numpy()
    assert np.all(err >= 0) and np.all(err < 2.0**-bits + 1e-12)


def test_phase_decode_hand_and_gradient():
    z = torch.tensor([[1.0], [0.0], [1.0], [1.0], [1.0]], dtype=torch.float64)  # T=5, bits=4: first period
    assert phase_decode(z, bits=4).item() == 0.5 + 0.125 + 0.0625
    zr = torch.rand(6, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).requires_grad_()
    assert torch.autograd.gradcheck(lambda a: phase_decode(a, bits=5), (zr,))
    phase_decode(zr, bits=5).sum().backward()
    w = np.array([0.5, 0.25, 0.125, 0.0625, 0.03125, 0.0])
    np.testing.assert_allclose(zr.grad[:, 0, 0].numpy(), w)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: phase(torch.tensor([0.5]), 4, bits=0), ValueError, "bits"),
        (lambda: phase(torch.tensor([0.5]), 4, bits=53), ValueError, "bits"),
        (lambda: phase(torch.tensor([0.5]), 4, bits=2.0), TypeError, "bits"),
        (lambda: phase(torch.tensor([-0.5]), 4), ValueError, "clamp"),
        (lambda: phase_decode(torch.zeros(3, 2), bits=4), ValueError, "num_steps >= bits"),
        (lambda: phase_decode(torch.zeros(8), bits=4), ValueError, "unsqueeze"),
        (lambda: phase_decode(torch.zeros(8, 2, dtype=torch.int64), bits=4), TypeError, "float"),
    ],
)
def test_phase_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ---------------------------------------------------------------- burst


def np_burst(x, num_steps, n_max, isi_min, isi_max, period=None):
    out = np.zeros((num_steps, len(x)))
    for b, v in enumerate(x):
        n = int(np.ceil(n_max * v))
        isi = int(np.ceil(-(isi_max - isi_min) * v + isi_max))
        pattern = [i * isi for i in range(n)]
        for t in range(num_steps):
            tt = t if period is None else t % period
            out[t, b] = float(tt in pattern)
    return out


def test_burst_hand_cases():
    x = torch.tensor([1.0, 0.0, 0.3, 0.5], dtype=torch.float64)
    z = burst(x, 14, max_spikes=5, isi_min=2, isi_max=10)
    # x=1: 5 spikes, isi 2; x=0: none; x=0.3: n=ceil(1.5)=2, isi=ceil(7.6)=8; x=0.5: n=3, isi=6 -> 0,6,12
    expected = spikes_from_times([[0, 2, 4, 6, 8], [], [0, 8], [0, 6, 12]], 14)
    np.testing.assert_array_equal(z.numpy(), expected)


@pytest.mark.parametrize("params", [(5, 2, 10, None), (3, 1, 1, None), (8, 1, 6, None), (4, 2, 5, 9)])
def test_burst_matches_reference(params, gen):
    n_max, isi_min, isi_max, period = params
    x = torch.rand(80, generator=gen, dtype=torch.float64)
    z = burst(x, 40, max_spikes=n_max, isi_min=isi_min, isi_max=isi_max, period=period)
    np.testing.assert_array_equal(z.numpy(), np_burst(x.numpy(), 40, n_max, isi_min, isi_max, period))


def test_burst_more_spikes_and_shorter_isi_for_larger_x():
    x = torch.linspace(0.01, 1.0, 100, dtype=torch.float64)
    z = burst(x, 200, max_spikes=6, isi_min=1, isi_max=12)
    counts = z.sum(0).numpy()
    assert np.all(np.diff(counts) >= 0) and counts[0] == 1 and counts[-1] == 6
    isis = [np.diff(np.flatnonzero(z[:, b].numpy())) for b in range(100)]
    first_isi = np.array([d[0] if len(d) else np.inf for d in isis])
    finite = np.isfinite(first_isi)
    assert np.all(np.diff(first_isi[finite]) <= 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_burst_dtype(dtype):
    z = burst(torch.tensor([[0.0, 0.5], [0.25, 1.0]], dtype=dtype), 8)
    assert z.dtype == dtype and z.shape == (8, 2, 2)
    assert torch.equal(z.double(), burst(torch.tensor([[0.0, 0.5], [0.25, 1.0]], dtype=torch.float64), 8))


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(max_spikes=0), ValueError, "max_spikes"),
        (dict(isi_min=0), ValueError, "isi_min"),
        (dict(isi_min=4, isi_max=3), ValueError, "isi_max"),
        (dict(period=0), ValueError, "period"),
        (dict(max_spikes=2.5), TypeError, "max_spikes"),
    ],
)
def test_burst_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        burst(torch.tensor([0.5]), 10, **kwargs)
