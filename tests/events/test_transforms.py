"""Event transforms against event-by-event references written here, equivalent paths, and edge cases.

(The transforms are integer selections / pooling of events, not differentiable, so there is no gradient check;
time surfaces are checked against the formula evaluated event by event.)
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spikeforge.events import make_events
from spikeforge.events import to_frames
from spikeforge.events.stream import events_to_dense
from spikeforge.events.transforms import center_crop
from spikeforge.events.transforms import crop
from spikeforge.events.transforms import denoise
from spikeforge.events.transforms import downsample
from spikeforge.events.transforms import refractory
from spikeforge.events.transforms_frames import time_surfaces
from spikeforge.events.transforms_frames import to_count_frames

SENSOR = (12, 10, 2)


def _events(n: int = 400, seed: int = 0, t_max: int = 50_000, sensor: tuple[int, int, int] = SENSOR) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, t_max, n))
    return make_events(rng.integers(0, sensor[0], n), rng.integers(0, sensor[1], n), t, rng.integers(0, 2, n), sensor_size=sensor)  # fmt: skip


def _rows(ev: np.ndarray) -> list[tuple[int, int, int, int]]:
    return [(int(e["x"]), int(e["y"]), int(e["t"]), int(e["p"])) for e in ev]


def _empty() -> np.ndarray:
    return make_events(np.zeros(0, int), np.zeros(0, int), np.zeros(0, np.int64), np.zeros(0, int), sensor_size=SENSOR)


def test_crop_against_loop() -> None:
    ev = _events()
    before = ev.copy()
    out, sensor = crop(ev, SENSOR, (3, 2, 5, 4))
    ref = [(x - 3, y - 2, t, p) for x, y, t, p in _rows(ev) if 3 <= x < 8 and 2 <= y < 6]
    assert _rows(out) == ref and sensor == (5, 4, 2) and out.dtype == ev.dtype
    np.testing.assert_array_equal(ev, before)  # input untouched
    out, sensor = center_crop(ev, SENSOR, (4, 3))  # corner ((12-4)//2, (10-3)//2) = (4, 3)
    assert _rows(out) == [(x - 4, y - 3, t, p) for x, y, t, p in _rows(ev) if 4 <= x < 8 and 3 <= y < 6]
    assert center_crop(ev, SENSOR, 3)[1] == (3, 3, 2)
    assert crop(ev, SENSOR, (0, 0, 12, 10))[0].tolist() == ev.tolist()  # the whole sensor: unchanged
    with pytest.raises(ValueError, match=r"reaches past the sensor"):
        crop(ev, SENSOR, (10, 0, 5, 4))
    with pytest.raises(ValueError, match=r"larger than the sensor"):
        center_crop(ev, SENSOR, 13)
    with pytest.raises(ValueError, match=r"box width must be an int >= 1"):
        crop(ev, SENSOR, (0, 0, 0, 4))
    assert crop(_empty(), SENSOR, (1, 1, 2, 2))[0].size == 0


def test_downsample_against_loop_and_pooled_dense() -> None:
    ev = _events(seed=1)
    out, sensor = downsample(ev, SENSOR, (3, 2))
    assert sensor == (4, 5, 2)
    assert _rows(out) == [(x // 3, y // 2, t, p) for x, y, t, p in _rows(ev)]
    out, sensor = downsample(ev, SENSOR, 5)
    assert sensor == (3, 2, 2)  # ceil(12/5), ceil(10/5)
    # path equivalence: binning the downsampled events = sum-pooling the binned events (W, H divisible by 2)
    small, s2 = downsample(ev, SENSOR, 2)
    dense = events_to_dense(ev, SENSOR, dt=10_000, num_steps=5)
    pooled = torch.nn.functional.avg_pool2d(dense.flatten(0, 1), 2).reshape(5, 2, 5, 6) * 4
    torch.testing.assert_close(events_to_dense(small, s2, dt=10_000, num_steps=5), pooled)
    assert downsample(_empty(), SENSOR, 2)[0].size == 0
    with pytest.raises(ValueError, match=r"factor must be an int >= 1"):
        downsample(ev, SENSOR, 0)


def _denoise_ref(ev: np.ndarray, filter_time: int, neighbours: int) -> list[tuple[int, int, int, int]]:
    rows, keep = _rows(ev), []
    for i, (x, y, t, p) in enumerate(rows):
        for xj, yj, tj, _ in rows[:i]:
            dx, dy = abs(xj - x), abs(yj - y)
            near = (dx + dy == 1) if neighbours == 4 else (max(dx, dy) == 1)
            if near and t - tj < filter_time:
                keep.append((x, y, t, p))
                break
    return keep


@pytest.mark.parametrize("neighbours", [4, 8])
def test_denoise_against_pairwise_definition(neighbours: int) -> None:
    ev = _events(300, seed=2)
    for filter_time in (1, 500, 3000):
        out = denoise(ev, SENSOR, filter_time, neighbours=neighbours)
        assert _rows(out) == _denoise_ref(ev, filter_time, neighbours)
    assert set(_rows(denoise(ev, SENSOR, 3000, neighbours=4))) <= set(_rows(denoise(ev, SENSOR, 3000)))


def test_denoise_edges() -> None:
    assert denoise(_empty(), SENSOR, 100).size == 0
    one = make_events([3], [3], [5], [1], sensor_size=SENSOR)
    assert denoise(one, SENSOR, 100).size == 0  # no support
    same_pixel = make_events([3, 3], [3, 3], [5, 6], [1, 0], sensor_size=SENSOR)
    assert denoise(same_pixel, SENSOR, 100).size == 0  # the pixel itself is not a neighbour
    pair = make_events([0, 1, 1], [0, 0, 1], [10, 109, 300], [0, 1, 1], sensor_size=SENSOR)
    assert _rows(denoise(pair, SENSOR, 100)) == [(1, 0, 109, 1)]  # causal; 99 < 100 kept, 191 not
    assert _rows(denoise(pair, SENSOR, 99)) == []  # 99 is not < 99
    corner = make_events([11, 10], [9, 8], [0, 1], [0, 0], sensor_size=SENSOR)  # diagonal at the border
    assert _rows(denoise(corner, SENSOR, 5)) == [(10, 8, 1, 0)]
    assert denoise(corner, SENSOR, 5, neighbours=4).size == 0
    with pytest.raises(ValueError, match=r"neighbours must be 4 or 8"):
        denoise(corner, SENSOR, 5, neighbours=6)
    with pytest.raises(ValueError, match=r"filter_time must be an int >= 1"):
        denoise(corner, SENSOR, 0)


def test_refractory_against_loop() -> None:
    ev = _events(500, seed=3, t_max=20_000)
    for period in (0, 100, 2000):
        last: dict[tuple[int, int], int] = {}
        ref = []
        for x, y, t, p in _rows(ev):
            if (x, y) not in last or t - last[(x, y)] > period:
                ref.append((x, y, t, p))
            last[(x, y)] = t
        assert _rows(refractory(ev, SENSOR, period)) == ref
    assert refractory(_empty(), SENSOR, 10).size == 0
    one = make_events([1], [1], [0], [0], sensor_size=SENSOR)
    assert refractory(one, SENSOR, 10).tolist() == one.tolist()  # the first event of a pixel is kept, even at t=0
    burst = make_events([1, 1, 1, 1], [1, 1, 1, 1], [0, 5, 10, 16], [0, 1, 0, 0], sensor_size=SENSOR)
    assert refractory(burst, SENSOR, 5)["t"].tolist() == [0, 16]  # 5 - 0 = 5 is not > 5; 16 - 10 > 5
    with pytest.raises(ValueError, match=r"refractory_time must be an int >= 0"):
        refractory(burst, SENSOR, -1)


def _frames_ref(ev: np.ndarray, slices: list[tuple[int, int]]) -> torch.Tensor:
    out = torch.zeros(len(slices), 2, SENSOR[1], SENSOR[0])
    for k, (a, b) in enumerate(slices):
        for x, y, _, p in _rows(ev[a:b]):
            out[k, p, y, x] += 1
    return out


def test_count_frames_against_loop() -> None:
    ev = _events(103, seed=4)
    torch.testing.assert_close(to_count_frames(ev, SENSOR, event_count=25), _frames_ref(ev, [(0, 25), (25, 50), (50, 75), (75, 100)]))  # fmt: skip
    with_rest = to_count_frames(ev, SENSOR, event_count=25, include_incomplete=True)
    torch.testing.assert_close(with_rest, _frames_ref(ev, [(0, 25), (25, 50), (50, 75), (75, 100), (100, 103)]))
    overlap = to_count_frames(ev, SENSOR, event_count=40, overlap=10)  # stride 30: [0,40) [30,70) [60,100)
    torch.testing.assert_close(overlap, _frames_ref(ev, [(0, 40), (30, 70), (60, 100)]))
    overlap = to_count_frames(ev, SENSOR, event_count=40, overlap=10, include_incomplete=True)
    assert overlap.shape[0] == 4 and overlap[3].sum() == 13  # [90, 103)
    dense_overlap = to_count_frames(ev, SENSOR, event_count=5, overlap=4)  # stride 1: each event in 5 frames
    torch.testing.assert_close(dense_overlap, _frames_ref(ev, [(k, k + 5) for k in range(99)]))
    odd = to_count_frames(ev, SENSOR, event_count=9, overlap=2, include_incomplete=True)  # stride 7
    torch.testing.assert_close(odd, _frames_ref(ev, [(7 * k, min(7 * k + 9, 103)) for k in range(15)]))
    bins = to_count_frames(ev, SENSOR, n_event_bins=4)
    edges = [(i * 4) // 103 for i in range(103)]
    ref = _frames_ref(ev, [(edges.index(k), len(edges) - edges[::-1].index(k)) for k in range(4)])
    torch.testing.assert_close(bins, ref)
    assert int(bins.sum()) == 103
    # path equivalence: one bin = all events = to_frames with one bin
    torch.testing.assert_close(to_count_frames(ev, SENSOR, n_event_bins=1), to_frames(ev, SENSOR, n_bins=1))


def test_count_frames_edges() -> None:
    assert to_count_frames(_empty(), SENSOR, event_count=5).shape == (0, 2, 10, 12)
    assert to_count_frames(_empty(), SENSOR, event_count=5, include_incomplete=True).shape[0] == 0
    assert to_count_frames(_empty(), SENSOR, n_event_bins=3).sum() == 0
    one = make_events([2], [3], [7], [1], sensor_size=SENSOR)
    assert to_count_frames(one, SENSOR, event_count=5).shape[0] == 0
    single = to_count_frames(one, SENSOR, event_count=5, include_incomplete=True)
    assert single.shape[0] == 1 and single[0, 1, 3, 2] == 1 and single.sum() == 1
    assert to_count_frames(one, SENSOR, event_count=1)[0, 1, 3, 2] == 1
    with pytest.raises(ValueError, match=r"exactly one"):
        to_count_frames(one, SENSOR)
    with pytest.raises(ValueError, match=r"overlap must be an int in \[0, event_count=5\)"):
        to_count_frames(one, SENSOR, event_count=5, overlap=5)
    with pytest.raises(ValueError, match=r"overlap applies to event_count only"):
        to_count_frames(one, SENSOR, n_event_bins=2, overlap=1)
    with pytest.raises(ValueError, match=r"max_elements"):
        to_count_frames(_events(), SENSOR, event_count=1, max_elements=1000)


def _surfaces_ref(ev: np.ndarray, dt: int, tau: float, start: int, n: int) -> torch.Tensor:
    out = torch.zeros(n, 2, SENSOR[1], SENSOR[0], dtype=torch.float64)
    for k in range(n):
        tk = start + (k + 1) * dt
        last: dict[tuple[int, int, int], int] = {}
        for x, y, t, p in _rows(ev):
            if t < tk:
                last[(p, y, x)] = t
        for (p, y, x), t in last.items():
            out[k, p, y, x] = math.exp(-(tk - t) / tau)
    return out


def test_time_surfaces_against_formula() -> None:
    ev = _events(200, seed=5, t_max=10_000)
    got = time_surfaces(ev, SENSOR, dt=1500, tau=800.0, dtype=torch.float64)
    n = int((ev["t"][-1] - ev["t"][0]) // 1500) + 1
    assert got.shape == (n, 2, 10, 12)
    torch.testing.assert_close(got, _surfaces_ref(ev, 1500, 800.0, int(ev["t"][0]), n))
    got = time_surfaces(ev, SENSOR, dt=1000, tau=3000, start=0, n_frames=4, dtype=torch.float64)
    torch.testing.assert_close(got, _surfaces_ref(ev, 1000, 3000.0, 0, 4))
    # path equivalence: a very long tau leaves 1 wherever the cell has fired before T_k (cumulative frames > 0)
    flat = time_surfaces(ev, SENSOR, dt=1000, tau=1e15, start=0, dtype=torch.float64)
    fired = to_frames(ev, SENSOR, time_window=1000, start=0).cumsum(0) > 0
    torch.testing.assert_close(flat, fired.to(torch.float64), atol=1e-9, rtol=0)


def test_time_surfaces_edges() -> None:
    assert time_surfaces(_empty(), SENSOR, dt=10, tau=5.0).shape == (0, 2, 10, 12)
    assert time_surfaces(_empty(), SENSOR, dt=10, tau=5.0, n_frames=2).sum() == 0
    one = make_events([2], [3], [100], [1], sensor_size=SENSOR)
    s = time_surfaces(one, SENSOR, dt=10, tau=5.0, dtype=torch.float64)
    assert s.shape[0] == 1 and s[0, 1, 3, 2].item() == pytest.approx(math.exp(-2.0)) and s.sum() == s[0, 1, 3, 2]
    for bad in (0.0, -1.0, float("inf"), float("nan"), True):
        with pytest.raises(ValueError, match=r"tau must be a positive finite"):
            time_surfaces(one, SENSOR, dt=10, tau=bad)
    with pytest.raises(ValueError, match=r"dt must be a positive int"):
        time_surfaces(one, SENSOR, dt=0, tau=1.0)
    with pytest.raises(ValueError, match=r"before start"):
        time_surfaces(one, SENSOR, dt=10, tau=1.0, start=200)
    late = make_events([0, 0], [0, 0], [0, 10**12], [0, 0], sensor_size=SENSOR)
    with pytest.raises(ValueError, match=r"number of surfaces.*max_elements"):
        time_surfaces(late, SENSOR, dt=1, tau=1.0)


def test_transforms_reject_bad_events() -> None:
    with pytest.raises(TypeError, match=r"structured numpy array"):
        denoise(np.zeros(3), SENSOR, 10)
    ev = _events()
    with pytest.raises(ValueError, match=r"sensor_size allows"):
        refractory(ev, (4, 4, 2), 10)
