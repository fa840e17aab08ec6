"""The event-camera emulator against the pixel model computed independently here.

Frames are ``exp(L(t))`` with ``L`` linear in time inside every frame interval and the lin-log knee far below
them, so the emulator's log response is exactly ``L`` and its linear interpolation is exact: the expected
events follow from ``L`` in closed form (counts ``floor(|dL| / C)``, crossing times ``k C / |slope|``) or from a
scalar continuous-time loop (refractory reset). The emulator is not differentiable (events are integers), so
there is no gradient check; paths are checked for equality instead (streaming == whole sequence, uint8 table ==
float, frames == saccade frames).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spikeforge.events import EVENT_DTYPE
from spikeforge.events import check_events
from spikeforge.events.emulate import EmulatorParams
from spikeforge.events.emulate import emulate_frames
from spikeforge.events.emulate import emulator_init
from spikeforge.events.emulate import emulator_step
from spikeforge.events.emulate import log_intensity
from spikeforge.events.emulate import sensor_thresholds
from spikeforge.events.emulate_inputs import emulate_saccades
from spikeforge.events.emulate_inputs import read_video
from spikeforge.events.emulate_inputs import saccade_frames
from spikeforge.events.emulate_inputs import saccade_path
from spikeforge.events.emulate_inputs import translate_bilinear

PURE_LOG = {"lin_log_threshold": 1e-12}  # the knee far below every intensity used: L = log(I) exactly


def ramp(l0: np.ndarray, slope_per_us: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Frames ``exp(l0 + slope * t)`` ``[T, H, W]`` at ``times``."""
    return np.exp(l0[None] + slope_per_us[None] * times[:, None, None].astype(np.float64))


def per_pixel(ev: np.ndarray, w: int) -> dict[int, np.ndarray]:
    flat = ev["y"].astype(np.int64) * w + ev["x"]
    return {int(k): ev[flat == k] for k in np.unique(flat)}


def test_counts_and_times_on_log_ramps_without_refractory() -> None:
    rng = np.random.default_rng(1)
    h, w = 6, 7
    params = EmulatorParams(threshold_sigma=0.04, **PURE_LOG)
    c_on, c_off = sensor_thresholds((h, w), params, 3)
    slope = rng.uniform(-4e-5, 4e-5, (h, w))  # log units per microsecond: up to 4 per 100 ms
    times = np.arange(0, 100_001, 5_000)
    l0 = rng.uniform(-1, 0, (h, w))
    ev = emulate_frames(ramp(l0, slope, times), times, params, seed=3)
    assert ev.dtype == EVENT_DTYPE
    check_events(ev, (w, h, 2))  # sorted, in range
    total = slope * times[-1]
    c = np.where(total > 0, c_on, c_off)
    ratio = np.abs(total) / c
    assert np.min(np.abs(ratio - np.round(ratio))) > 1e-6  # no count sits on a rounding edge
    want = np.floor(ratio).astype(int)
    got = np.zeros((h, w), dtype=int)
    for k, e in per_pixel(ev, w).items():
        y, x = divmod(k, w)
        got[y, x] = e.size
        assert np.all(e["p"] == (slope[y, x] > 0))  # polarity
        exact = np.arange(1, e.size + 1) * c[y, x] / abs(slope[y, x])  # crossing k at k C / |s|
        assert np.all(np.abs(e["t"] - np.floor(exact)) <= 1)
        assert np.all(np.diff(e["t"]) >= 0)
    np.testing.assert_array_equal(got, want)
    assert want.max() >= 10 and want.min() == 0  # the case has pixels with many events and with none


def test_several_events_in_one_frame_interval() -> None:
    params = EmulatorParams(threshold_sigma=0.0, **PURE_LOG)
    jump = 3.5 * 0.2  # one frame interval, 3.5 thresholds
    frames = np.exp(np.array([[[0.0]], [[jump]], [[jump - 2.6 * 0.2]]]))
    ev = emulate_frames(frames, np.array([0, 1000, 2000]), params)
    # up: 3 events at 1000 k / 3.5; down from the memorised level 0.6 to 0.18: 0.42 / 0.2 = 2 events
    assert ev["p"].tolist() == [True, True, True, False, False]
    np.testing.assert_array_equal(ev["t"][:3], np.floor(np.arange(1, 4) * 1000 / 3.5))
    # OFF crossings of levels 0.4 and 0.2 (after the last ON event the reference is 0.6) on the way to 0.18
    slope = -2.6 * 0.2 / 1000
    np.testing.assert_array_equal(ev["t"][3:], np.floor(1000 + (np.array([0.4, 0.2]) - jump) / slope))


def reference_refractory(levels: np.ndarray, times: np.ndarray, c: float, r: float) -> list[float]:
    """Scalar continuous-time model: event when L - L_ref reaches +-c; the reference follows L for r after it."""
    events: list[float] = []
    ref, release = levels[0], -math.inf
    for k in range(1, len(times)):
        t0, t1, l0, l1 = float(times[k - 1]), float(times[k]), levels[k - 1], levels[k]
        slope = (l1 - l0) / (t1 - t0)
        if release > t0:
            if release > t1:
                continue
            ref = l0 + slope * (release - t0)
        while slope != 0:
            target = ref + math.copysign(c, slope)
            tc = t0 + (target - l0) / slope
            if tc > t1:
                break
            events.append(tc)
            release = tc + r
            if release > t1:
                break
            ref = l0 + slope * (release - t0)
    return events


@pytest.mark.parametrize("refractory", [0.0, 700.0, 4000.0])
def test_refractory_on_a_ramp_matches_the_formula_and_the_scalar_model(refractory: float) -> None:
    c, s = 0.2, 1e-4  # threshold crossed every C / s = 2000 us
    duration = 61_500  # not a multiple of any event period below
    times = np.arange(0, duration + 1, 1_500)
    params = EmulatorParams(threshold_sigma=0.0, refractory_us=refractory, **PURE_LOG)
    frames = ramp(np.zeros((1, 1)), np.full((1, 1), s), times)
    ev = emulate_frames(frames, times, params)
    # events at C/s + k (R + C/s) <= duration
    want = math.floor((duration + refractory) / (refractory + c / s))
    assert ev.size == want
    ref = reference_refractory(s * times.astype(float), times, c, refractory)
    assert len(ref) == want
    assert np.all(np.abs(ev["t"] - np.floor(ref)) <= 1)  # the same crossings, computed another way
    if refractory:
        assert np.all(np.diff(ev["t"]) >= refractory)


def test_refractory_on_an_irregular_sequence_matches_the_scalar_model() -> None:
    rng = np.random.default_rng(5)
    times = np.cumsum(rng.integers(200, 3000, 80))
    levels = np.cumsum(rng.normal(0, 0.3, 80))
    params = EmulatorParams(threshold_sigma=0.0, refractory_us=900.0, **PURE_LOG)
    ev = emulate_frames(np.exp(levels)[:, None, None], times, params)
    ref = reference_refractory(levels, times, 0.2, 900.0)
    assert ev.size == len(ref) > 20
    assert np.all(np.abs(ev["t"] - np.floor(ref)) <= 1)


def test_sub_threshold_changes_make_no_events() -> None:
    params = EmulatorParams(threshold_sigma=0.0, **PURE_LOG)
    levels = np.array([0.0, 0.05, 0.19, 0.1, -0.19, 0.0])  # never 0.2 away from the first frame
    frames = np.broadcast_to(np.exp(levels)[:, None, None], (6, 3, 4))
    assert emulate_frames(frames, np.arange(6) * 1000, params).size == 0
    assert emulate_frames(np.ones((5, 3, 4)), np.arange(5) * 1000).size == 0  # a static scene, default params


def test_leak_events_on_a_static_scene() -> None:
    rate = 20.0  # Hz: the reference sinks by rate * C_on per second
    params = EmulatorParams(threshold_sigma=0.05, leak_rate_hz=rate, **PURE_LOG)
    ev = emulate_frames(np.ones((11, 3, 3)), np.arange(11) * 102_000, params, seed=2)  # 1.02 seconds
    assert np.all(ev["p"])
    counts = np.bincount(ev["y"].astype(int) * 3 + ev["x"], minlength=9)
    np.testing.assert_array_equal(counts, np.full(9, 20))  # floor(rate * 1.02 s), whatever the threshold
    for e in per_pixel(ev, 3).values():
        assert np.all(np.abs(e["t"] - np.arange(1, 21) * 1e6 / rate) <= 1)  # every 1 / rate


def test_shot_noise_rate_and_reproducibility() -> None:
    params = EmulatorParams(shot_noise_rate_hz=5.0)
    frames = np.full((21, 20, 30), 0.5)
    ev = emulate_frames(frames, np.arange(21) * 50_000, params, seed=9)  # one second, 600 pixels
    expected = 5.0 * 600
    assert abs(ev.size - expected) < 5 * math.sqrt(expected)
    assert 0.4 < ev["p"].mean() < 0.6
    check_events(ev, (30, 20, 2))
    again = emulate_frames(frames, np.arange(21) * 50_000, params, seed=9)
    assert again.tobytes() == ev.tobytes()


def test_fixed_seed_is_bit_identical_and_seeds_differ() -> None:
    rng = np.random.default_rng(0)
    frames = rng.random((12, 9, 11))
    ts = np.arange(12) * 2_000
    params = EmulatorParams(threshold_sigma=0.05, refractory_us=300.0, leak_rate_hz=1.0, shot_noise_rate_hz=10.0)
    a = emulate_frames(frames, ts, params, seed=4)
    b = emulate_frames(torch.from_numpy(frames), torch.from_numpy(ts), params, seed=4)
    assert a.size > 100 and a.tobytes() == b.tobytes()
    assert emulate_frames(frames, ts, params, seed=5).tobytes() != a.tobytes()


def test_streaming_equals_whole_sequence_and_uint8_table_equals_float() -> None:
    rng = np.random.default_rng(3)
    f8 = rng.integers(0, 256, (10, 8, 9), dtype=np.uint8)
    ts = np.arange(10) * 1_000 + 17
    params = EmulatorParams(refractory_us=200.0)
    whole = emulate_frames(f8, ts, params, seed=1)
    state = emulator_init(f8[0], ts[0], params, seed=1)
    parts = []
    for k in range(1, 10):
        ev, new = emulator_step(state, f8[k], ts[k], params)
        assert new is not state and state.steps == k - 1  # the old state is untouched
        parts.append(ev)
        state = new
    assert np.concatenate(parts).tobytes() == whole.tobytes()
    as_float = emulate_frames(f8.astype(np.float64) / 255.0, ts, params, seed=1)
    assert as_float.tobytes() == whole.tobytes()
    assert np.all(np.diff(whole["t"]) >= 0) and whole["t"].min() > ts[0]


def test_log_response_is_lin_log() -> None:
    params = EmulatorParams(lin_log_threshold=0.1)
    i = np.array([0.0, 0.05, 0.1, 0.5, 1.0])
    want = np.array([math.log(0.1) - 1.0, math.log(0.1) - 0.5, math.log(0.1), math.log(0.5), 0.0])
    np.testing.assert_allclose(log_intensity(i, params), want, rtol=0, atol=1e-15)
    np.testing.assert_allclose(log_intensity(i, EmulatorParams(lin_log_threshold=None, log_eps=0.01)), np.log(i + 0.01))
    assert np.all(np.diff(log_intensity(np.linspace(0, 1, 1000), params)) > 0)  # monotone


def test_bilinear_translation_against_the_formula() -> None:
    rng = np.random.default_rng(0)
    img = rng.random((2, 5, 4))
    for ox, oy in ((0.0, 0.0), (1.0, 2.0), (1.25, 0.5), (-0.75, 2.4), (3.9, 3.1)):
        out = translate_bilinear(img, (ox, oy), (7, 6))
        want = np.zeros((2, 7, 6))
        for v in range(7):
            for u in range(6):
                x, y = u - ox, v - oy  # image coordinates seen by sensor pixel (v, u)
                for yy in (math.floor(y), math.floor(y) + 1):
                    for xx in (math.floor(x), math.floor(x) + 1):
                        if 0 <= yy < 5 and 0 <= xx < 4:
                            want[:, v, u] += (1 - abs(y - yy)) * (1 - abs(x - xx)) * img[:, yy, xx]
        np.testing.assert_allclose(out, want, atol=1e-12)


def test_saccades_make_nmnist_like_samples() -> None:
    times, pos = saccade_path(((0, 0), (4, 0), (2, 3), (0, 0)), 100_000, 10)
    assert times[0] == 0 and times[-1] == 300_000 and pos.shape == (31, 2)
    np.testing.assert_array_equal(pos[10], [4, 0])
    img = np.zeros((28, 28))
    img[8:20, 10:18] = 1.0
    ev = emulate_saccades(img, seed=0)
    check_events(ev, (34, 34, 2))
    assert ev.size > 200 and ev["t"].min() > 0 and ev["t"].max() <= 300_000
    assert 0.3 < ev["p"].mean() < 0.7  # moving edges make both polarities
    frames, _ = saccade_frames(img[None], (34, 34), steps_per_saccade=10)
    assert frames.shape == (31, 1, 34, 34)
    assert (
        emulate_frames(frames[:, 0], _, seed=0).tobytes()
        == emulate_saccades(img, seed=0, steps_per_saccade=10).tobytes()
    )


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: emulate_frames(-np.ones((2, 2, 2)), [0, 1]), "intensities >= 0"),
        (lambda: emulate_frames(np.full((2, 2, 2), np.nan), [0, 1]), "NaN"),
        (lambda: emulate_frames(np.ones((3, 2, 2)), [0, 2, 2]), "strictly increasing"),
        (lambda: emulate_frames(np.ones((3, 2, 2)), [0, 1]), "length T=3"),
        (lambda: emulate_frames(np.ones((2, 2)), [0, 1]), r"\[T, H, W\]"),
        (lambda: emulate_frames(np.ones((2, 2, 2), dtype=np.int32), [0, 1]), "uint8"),
        (lambda: EmulatorParams(pos_threshold=0.0), "pos_threshold must be > 0"),
        (lambda: EmulatorParams(refractory_us=-1.0), "refractory_us must be >= 0"),
        (lambda: EmulatorParams(threshold_sigma=float("nan")), "finite"),
        (lambda: emulate_frames(np.ones((2, 2, 2)), [0, 1], seed=-1), "seed"),
    ],
)
def test_bad_input_gives_one_clear_error(call: object, match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        call()  # type: ignore[operator]


def test_step_refuses_a_frame_of_another_shape_or_time() -> None:
    state = emulator_init(np.ones((3, 3)), 0, EmulatorParams())
    with pytest.raises(ValueError, match="resize"):
        emulator_step(state, np.ones((3, 4)), 10, EmulatorParams())
    with pytest.raises(ValueError, match="increase"):
        emulator_step(state, np.ones((3, 3)), 0, EmulatorParams())


def test_video_reader_names_the_extra_or_reads_a_written_file(tmp_path: object) -> None:
    try:
        import cv2
    except ImportError:
        with pytest.raises(ImportError, match=r"spikeforge\[video\]"):
            read_video("missing.avi")
        return
    from pathlib import Path

    path = str(Path(str(tmp_path)) / "clip.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (40, 30), False)
    for k in range(8):
        frame = np.zeros((30, 40), dtype=np.uint8)
        frame[10:20, 4 * k : 4 * k + 10] = 255
        writer.write(frame)
    writer.release()
    frames, times = read_video(path, size=(20, 15))
    assert frames.shape == (8, 15, 20) and frames.dtype == np.uint8
    np.testing.assert_array_equal(times, np.round(np.arange(8) * 40_000))
    ev = emulate_frames(frames, times)
    check_events(ev, (20, 15, 2))
    assert ev["p"].any() and (~ev["p"]).any()  # a moving bright bar: ON at its front, OFF at its back
