"""Event arrays: validation, dense round trips, binning to frames (against hand-built references)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spikeforge.events import EVENT_DTYPE, check_events, dense_to_events, events_to_dense, make_events, to_frames

SENSOR = (5, 4, 2)  # W, H, P


def _events(n: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, 10_000, n))
    return make_events(rng.integers(0, 5, n), rng.integers(0, 4, n), t, rng.integers(0, 2, n), sensor_size=SENSOR)


def test_make_events_layout_matches_tonic_fields() -> None:
    ev = _events()
    assert ev.dtype.names == ("x", "y", "t", "p") and ev.dtype == EVENT_DTYPE
    assert ev["t"].dtype == np.int64 and ev["p"].dtype == np.bool_


def test_events_to_dense_against_hand_loop() -> None:
    ev = _events()
    dense = events_to_dense(ev, SENSOR, dt=1000, num_steps=10)
    ref = np.zeros((10, 2, 4, 5))
    for e in ev:
        ref[int(e["t"]) // 1000, int(e["p"]), int(e["y"]), int(e["x"])] += 1
    assert dense.shape == (10, 2, 4, 5) and dense.dtype == torch.float32
    np.testing.assert_array_equal(dense.numpy(), ref)
    np.testing.assert_array_equal(events_to_dense(ev, SENSOR, 1000, num_steps=10, binary=True).numpy(), ref > 0)


def test_tonic_style_array_with_int_fields_is_accepted() -> None:
    dtype = np.dtype([("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])
    ev = np.array([(1, 2, 5, 1), (0, 0, 7, 0)], dtype=dtype)
    d = events_to_dense(ev, SENSOR, dt=5)
    assert d.shape == (2, 2, 4, 5) and d[1, 1, 2, 1] == 1 and d[1, 0, 0, 0] == 1 and d.sum() == 2


def test_dense_round_trip_is_exact(gen: torch.Generator) -> None:
    spikes = (torch.rand(7, 2, 4, 5, generator=gen) < 0.3).float()
    spikes[3, 1, 2, 2] = 3.0  # counts become repeated events
    ev = dense_to_events(spikes, dt=100, t0=50)
    assert len(ev) == int(spikes.sum())
    assert np.all(np.diff(ev["t"]) >= 0)
    back = events_to_dense(ev, (5, 4, 2), dt=100, t0=50, num_steps=7)
    assert torch.equal(back, spikes)


def test_events_round_trip_keeps_every_event_at_bin_start() -> None:
    ev = _events()
    back = dense_to_events(events_to_dense(ev, SENSOR, dt=1000), dt=1000)
    key = lambda a: sorted(zip(a["t"] // 1000, a["p"].astype(int), a["y"], a["x"]))  # noqa: E731
    assert key(back) == key(ev)


def test_frames_by_time_window_and_by_bins() -> None:
    ev = make_events(np.array([0, 1, 2, 3]), np.array([0, 0, 1, 1]), np.array([100, 150, 390, 400]), np.array([0, 1, 1, 0]),
                     sensor_size=SENSOR)
    fr = to_frames(ev, SENSOR, time_window=100)  # start = 100: bins [100,200), [200,300), [300,400), [400,500)
    assert fr.shape == (4, 2, 4, 5)
    assert fr[0, 0, 0, 0] == 1 and fr[0, 1, 0, 1] == 1 and fr[2, 1, 1, 2] == 1 and fr[3, 0, 1, 3] == 1
    assert fr[1].sum() == 0
    fb = to_frames(ev, SENSOR, n_bins=2)  # span 301 us: 100..250 -> bin 0, 251..400 -> bin 1
    assert fb.shape == (2, 2, 4, 5) and fb[0].sum() == 2 and fb[1].sum() == 2
    assert fb.sum() == len(ev)


def test_empty_event_array() -> None:
    ev = make_events(np.array([], int), np.array([], int), np.array([], np.int64), np.array([], int), sensor_size=SENSOR)
    assert len(ev) == 0
    assert events_to_dense(ev, SENSOR, 10, num_steps=3).sum() == 0
    with pytest.raises(ValueError, match="num_steps"):
        events_to_dense(ev, SENSOR, 10)
    assert to_frames(ev, SENSOR, n_bins=4).shape == (4, 2, 4, 5)
    assert to_frames(ev, SENSOR, time_window=10).shape == (0, 2, 4, 5)
    assert len(dense_to_events(torch.zeros(3, 2, 4, 5), dt=10)) == 0


def test_validation_errors_name_the_problem() -> None:
    ev = _events()
    bad = ev.copy()
    bad["t"][[3, 4]] = bad["t"][[4, 3]] + np.array([0, 1])
    bad["t"][3] = bad["t"][4] + 1
    with pytest.raises(ValueError, match="sorted"):
        check_events(bad, SENSOR)
    with pytest.raises(ValueError, match="negative"):
        make_events(np.array([-1]), np.array([0]), np.array([0]), np.array([0]), sensor_size=SENSOR)
    with pytest.raises(ValueError, match="sensor_size"):
        make_events(np.array([5]), np.array([0]), np.array([0]), np.array([0]), sensor_size=SENSOR)
    neg = ev.copy()
    neg["y"][0] = -2
    with pytest.raises(ValueError, match="negative"):
        check_events(neg, SENSOR)
    out = ev.copy()
    out["y"][0] = 4
    with pytest.raises(ValueError, match="sensor_size"):
        check_events(out, SENSOR)
    wrong_t = np.zeros(2, dtype=[("x", np.int16), ("y", np.int16), ("t", np.float64), ("p", bool)])
    with pytest.raises(TypeError, match="int64"):
        check_events(wrong_t, SENSOR)
    with pytest.raises(TypeError, match="structured"):
        check_events(np.zeros((3, 4)), SENSOR)
    with pytest.raises(TypeError, match="fields"):
        check_events(np.zeros(2, dtype=[("x", int), ("t", np.int64)]), SENSOR)
    with pytest.raises(TypeError, match="integer microseconds"):
        make_events(np.array([0]), np.array([0]), np.array([0.5]), np.array([0]), sensor_size=SENSOR)
    with pytest.raises(ValueError, match="num_steps"):
        events_to_dense(ev, SENSOR, dt=1000, num_steps=2)
    with pytest.raises(ValueError, match="dt"):
        events_to_dense(ev, SENSOR, dt=0)
    with pytest.raises(ValueError, match="exactly one"):
        to_frames(ev, SENSOR)
    with pytest.raises(ValueError, match="integer counts"):
        dense_to_events(torch.full((1, 1, 1, 1), 0.5), dt=1)
    with pytest.raises(ValueError, match=r"\[T, P, H, W\]"):
        dense_to_events(torch.zeros(3, 4), dt=1)
    with pytest.raises(ValueError, match="sensor_size"):
        check_events(ev, (5, 4))  # type: ignore[arg-type]
