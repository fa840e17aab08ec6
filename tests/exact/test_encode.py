"""Yin-Yang latency coding (spikeforge.exact.encode): the published constants, hand values, bias spikes,
agreement with the data generator, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spikeforge.data.yinyang import make_yinyang
from spikeforge.exact.encode import T_BIAS
from spikeforge.exact.encode import T_EARLY
from spikeforge.exact.encode import T_LATE
from spikeforge.exact.encode import append_bias_spikes
from spikeforge.exact.encode import latency_times
from spikeforge.exact.encode import yinyang_spike_times

F64 = torch.float64


def test_constants_are_the_published_ones() -> None:
    assert (T_EARLY, T_LATE, T_BIAS) == (0.15, 2.0, 0.9)


def test_latency_by_hand_and_time_scale() -> None:
    x = torch.tensor([0.0, 0.5, 1.0, 0.25], dtype=F64)
    assert latency_times(x).tolist() == pytest.approx([0.15, 1.075, 2.0, 0.6125], abs=1e-15)
    assert latency_times(x, t_early=1.0, t_late=3.0, time_scale=5.0).tolist() == pytest.approx([5.0, 10.0, 15.0, 7.5])


def test_yinyang_spike_times_from_the_generator() -> None:
    feats, _ = make_yinyang(50, 42)
    times = yinyang_spike_times(feats)
    assert times.shape == (50, 4) and times.dtype == F64
    expected = 0.15 + torch.from_numpy(feats) * 1.85
    torch.testing.assert_close(times, expected, rtol=0, atol=1e-15)
    # mirrored features: t(x) + t(1 - x) = t_early + t_late
    torch.testing.assert_close(times[:, 0] + times[:, 2], torch.full((50,), 2.15, dtype=F64), rtol=0, atol=1e-14)
    assert float(times.min()) >= 0.15 and float(times.max()) <= 2.0
    with_bias = yinyang_spike_times(torch.from_numpy(feats).float(), bias_times=(0.9,), time_scale=2.0)
    assert with_bias.shape == (50, 5) and with_bias.dtype == torch.float32
    assert bool((with_bias[:, 4] == 1.8).all())


def test_append_bias_spikes() -> None:
    t = torch.zeros(3, 2, dtype=F64)
    out = append_bias_spikes(t, (0.9, 0.1))
    assert out.tolist() == [[0.0, 0.0, 0.9, 0.1]] * 3
    assert append_bias_spikes(t, ()).shape == (3, 2)


def test_bad_input_raises_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        latency_times(torch.tensor([1.5]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        latency_times(torch.tensor([float("nan")]))
    with pytest.raises(ValueError, match="t_early < t_late"):
        latency_times(torch.tensor([0.5]), t_early=2.0, t_late=1.0)
    with pytest.raises(ValueError, match="time_scale"):
        latency_times(torch.tensor([0.5]), time_scale=0.0)
    with pytest.raises(ValueError, match=r"\[N, 4\]"):
        yinyang_spike_times(np.zeros((3, 2)))
    with pytest.raises(TypeError, match="floating point"):
        yinyang_spike_times(torch.zeros(3, 4, dtype=torch.int64))
    with pytest.raises(TypeError, match="numpy"):
        yinyang_spike_times([[0.1, 0.2, 0.9, 0.8]])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        append_bias_spikes(torch.zeros(2, 1), (float("inf"),))
