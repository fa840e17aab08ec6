"""Event binning with hostile time stamps (issue 13): far-future or near-2**62 time stamps give a message that
names the inferred step/frame count and the fix (never an int64 overflow or a petabyte allocation), and the
binning stays exact for any int64 time stamps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from spikeforge.events import StreamingEngine
from spikeforge.events import events_to_dense
from spikeforge.events import make_events
from spikeforge.events import to_frames
from spikeforge.layers import SNNSequential
from spikeforge.neurons import LIF

SENSOR = (2, 1, 2)


def _ev(ts: list[int]) -> np.ndarray:
    n = len(ts)
    return make_events(np.arange(n) % 2, np.zeros(n, int), np.array(ts, dtype=np.int64), np.arange(n) % 2,
                       sensor_size=SENSOR)  # fmt: skip


def _frames_by_hand(ts: list[int], n_bins: int, start: int) -> torch.Tensor:
    """Reference binning in Python ints: frame floor((t - start) * n / span), span = t_last - start + 1."""
    out = torch.zeros(n_bins, 2, 1, 2)
    span = ts[-1] - start + 1
    for k, t in enumerate(ts):
        out[((t - start) * n_bins) // span, k % 2, 0, k % 2] += 1
    return out


def test_far_future_event_names_inferred_num_steps() -> None:
    # the probe: one event at t = 1e13 (dt = 1) asked for 6.82 PiB without saying why
    ev = _ev([0, 10**13])
    with pytest.raises(
        ValueError,
        match=r"num_steps \(inferred from the last event at t=10000000000000.*= 10000000000001 steps.*pass num_steps",
    ):
        events_to_dense(ev, SENSOR, 1)
    with pytest.raises(
        ValueError, match=r"number of frames \(inferred from the last event at t=10000000000000.*time_window"
    ):
        to_frames(ev, SENSOR, time_window=1)
    # the fixes the message names work
    assert events_to_dense(ev[:1], SENSOR, 1, num_steps=3).sum() == 1
    assert to_frames(ev, SENSOR, time_window=10**12).shape == (11, 2, 1, 2)


@pytest.mark.parametrize("start", [0, 2**62 - 7, None])
@pytest.mark.parametrize("n_bins", [1, 3, 7])
def test_frames_by_bins_exact_near_2_62(start: int | None, n_bins: int) -> None:
    # (t - start) * n_bins overflowed int64 for t near 2**62: events landed in wrong (or negative) bins
    ts = [2**62 - 5, 2**62, 2**62 + 1, 2**62 + 3]
    got = to_frames(_ev(ts), SENSOR, n_bins=n_bins, start=start)
    want = _frames_by_hand(ts, n_bins, ts[0] if start is None else start)
    assert got.sum() == len(ts) and torch.equal(got, want)


def test_time_window_near_2_62() -> None:
    ts = [2**62, 2**62 + 4, 2**62 + 9]
    got = to_frames(_ev(ts), SENSOR, time_window=5)
    assert got.shape == (2, 2, 1, 2) and got[:, 0].sum() == 2 and got[1].sum() == 1
    dense = events_to_dense(_ev(ts), SENSOR, 5, t0=2**62)
    assert torch.equal(dense, got)
    with pytest.raises(ValueError, match="max_elements"):
        to_frames(_ev(ts), SENSOR, time_window=5, start=0)


def test_origin_far_before_the_events_raises() -> None:
    ev = _ev([2**62, 2**62 + 1])
    with pytest.raises(ValueError, match="too far before the last event"):
        events_to_dense(ev, SENSOR, 2**40, t0=-(2**62))
    with pytest.raises(ValueError, match="before t0"):
        events_to_dense(ev, SENSOR, 1, t0=2**62 + 1)
    with pytest.raises(TypeError, match="t0 must be an int"):
        events_to_dense(ev, SENSOR, 1, t0=1.5)


def test_max_elements_is_a_bound_not_a_guess() -> None:
    ev = _ev([0, 99])
    assert events_to_dense(ev, SENSOR, 1, max_elements=400).shape == (100, 2, 1, 2)
    with pytest.raises(ValueError, match="400 entries, more than max_elements = 399"):
        events_to_dense(ev, SENSOR, 1, max_elements=399)
    with pytest.raises(ValueError, match="n_bins"):
        to_frames(ev, SENSOR, n_bins=100, max_elements=399)


def test_engine_run_events_far_future_event() -> None:
    net = SNNSequential(nn.Linear(4, 3), LIF(3.0)).double()
    eng = StreamingEngine(net, (4,), use_numba=False)
    with pytest.raises(ValueError, match=r"num_steps \(inferred from the last event at t=10000000000000"):
        eng.run_events(_ev([0, 10**13]), SENSOR, 1)
    assert eng.run_events(_ev([0, 10**13]), SENSOR, 10**12).spikes.shape == (11, 1, 3)
