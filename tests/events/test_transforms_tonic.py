"""Tonic interop: ``tonic.transforms`` take our event arrays unchanged (and leave them unchanged), and our
transforms agree with Tonic's where the semantics match. The documented differences are avoided by the inputs
(events after ``filter_time`` / after ``t = 0``, event counts divisible by the number of bins) and, where one
side yields an extra frame, only the frames both produce are compared; each difference is also shown once.

Tonic (GPL) is an optional test dependency; the module is skipped without it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spikeforge.events import make_events
from spikeforge.events import to_frames
from spikeforge.events.transforms import center_crop
from spikeforge.events.transforms import denoise
from spikeforge.events.transforms import downsample
from spikeforge.events.transforms import refractory
from spikeforge.events.transforms_frames import time_surfaces
from spikeforge.events.transforms_frames import to_count_frames

T = pytest.importorskip("tonic.transforms", reason="tonic (optional GPL test dependency) is not installed")

SENSOR = (16, 12, 2)


def _events(n: int = 600, seed: int = 0, t_min: int = 1, t_max: int = 100_000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(t_min, t_max, n))
    return make_events(rng.integers(0, 16, n), rng.integers(0, 12, n), t, rng.integers(0, 2, n), sensor_size=SENSOR)


def _call(transform: object, ev: np.ndarray) -> np.ndarray:
    """Apply a Tonic transform to our array, checking it is accepted as is and left unmodified."""
    before = ev.copy()
    out = transform(ev)  # type: ignore[operator]
    np.testing.assert_array_equal(ev, before)
    return out


def test_denoise_agrees_with_tonic() -> None:
    ev = _events(t_min=5000)
    for filter_time in (300, 2000, 5000):
        theirs = _call(T.Denoise(filter_time=filter_time), ev)
        assert 0 < theirs.size < ev.size  # the comparison is not vacuous
        np.testing.assert_array_equal(denoise(ev, SENSOR, filter_time, neighbours=4), theirs)
    early = make_events([3], [3], [10], [0], sensor_size=SENSOR)  # the difference: Tonic keeps t < filter_time
    assert _call(T.Denoise(filter_time=100), early).size == 1 and denoise(early, SENSOR, 100).size == 0


def test_refractory_agrees_with_tonic() -> None:
    ev = _events(seed=1, t_max=30_000)
    for delta in (0, 200, 3000):
        theirs = _call(T.RefractoryPeriod(delta=delta), ev)
        assert delta == 0 or 0 < theirs.size < ev.size
        np.testing.assert_array_equal(refractory(ev, SENSOR, delta), theirs)
    at_zero = make_events([3], [3], [0], [0], sensor_size=SENSOR)  # the difference: Tonic drops it
    assert _call(T.RefractoryPeriod(delta=10), at_zero).size == 0 and refractory(at_zero, SENSOR, 10).size == 1


@pytest.mark.parametrize("factor", [2, 4])
def test_downsample_agrees_with_tonic(factor: int) -> None:
    ev = _events(seed=2)
    theirs = _call(T.Downsample(spatial_factor=1 / factor), ev)
    ours, sensor = downsample(ev, SENSOR, factor)
    np.testing.assert_array_equal(ours, theirs)
    assert sensor == (16 // factor, 12 // factor, 2)


def test_center_crop_agrees_with_tonic() -> None:
    ev = _events(seed=3)
    for size in (5, (8, 3), (16, 12)):
        ours, _ = center_crop(ev, SENSOR, size)
        np.testing.assert_array_equal(ours, _call(T.CenterCrop(sensor_size=SENSOR, size=size), ev))


def test_to_frame_by_time_and_count_agrees_with_tonic() -> None:
    ev = _events(seed=4)
    theirs = torch.from_numpy(_call(T.ToFrame(sensor_size=SENSOR, time_window=7000), ev).astype(np.float32))
    ours = to_frames(ev, SENSOR, time_window=7000)
    assert ours.shape[0] == theirs.shape[0] + 1  # Tonic drops the incomplete last window
    torch.testing.assert_close(ours[: theirs.shape[0]], theirs)
    for kwargs in ({"event_count": 70}, {"event_count": 70, "overlap": 20}, {"event_count": 70, "include_incomplete": True}):  # fmt: skip
        theirs = _call(T.ToFrame(sensor_size=SENSOR, **kwargs), ev)
        torch.testing.assert_close(to_count_frames(ev, SENSOR, **kwargs), torch.from_numpy(theirs.astype(np.float32)))
    theirs = _call(T.ToFrame(sensor_size=SENSOR, n_event_bins=6), ev)  # 600 events: divisible by 6
    torch.testing.assert_close(to_count_frames(ev, SENSOR, n_event_bins=6), torch.from_numpy(theirs.astype(np.float32)))


def test_time_surfaces_agree_with_tonic() -> None:
    ev = _events(seed=5, t_max=40_000)
    theirs = torch.from_numpy(_call(T.ToTimesurface(sensor_size=SENSOR, dt=3000, tau=2000.0), ev))
    ours = time_surfaces(ev, SENSOR, dt=3000, tau=2000.0, dtype=torch.float64)
    assert ours.shape[0] == theirs.shape[0] + 1  # Tonic keeps complete windows only
    torch.testing.assert_close(ours[: theirs.shape[0]], theirs.to(torch.float64))
