"""SHD / SSC reader: files written with h5py directly in the published layout (Cramer et al. 2020: spikes/times as
variable-length float seconds, spikes/units as variable-length uint16, labels), and malformed files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spikeforge.events import check_events
from spikeforge.events.formats import FormatError
from spikeforge.events.formats import SpikeSamples
from spikeforge.events.formats import detect_format
from spikeforge.events.formats import read_shd
from spikeforge.events.formats import shd_to_events

h5py = pytest.importorskip("h5py", reason="h5py (optional, the nir extra) is not installed")


def _write(path: Path, times: list[np.ndarray], units: list[np.ndarray], labels: np.ndarray, **bad: object) -> Path:
    with h5py.File(path, "w") as f:
        spikes = f.create_group("spikes")
        t_ds = spikes.create_dataset(
            "times", (len(times),), dtype=h5py.vlen_dtype(np.dtype(bad.get("tdtype", np.float32)))
        )
        u_ds = spikes.create_dataset(
            "units", (len(units),), dtype=h5py.vlen_dtype(np.dtype(bad.get("udtype", np.uint16)))
        )
        for i, (tt, uu) in enumerate(zip(times, units)):
            t_ds[i], u_ds[i] = tt, uu
        f.create_dataset("labels", data=labels)
        f.create_group("extra").create_dataset("speaker", data=np.arange(len(labels), dtype=np.uint16))
    return path


def _samples(n: int, seed: int) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 400, n)
    counts[0] = 0  # an empty sample
    times = [np.sort(rng.uniform(0, 1.0, c)).astype(np.float32) for c in counts]
    units = [rng.integers(0, 700, c).astype(np.uint16) for c in counts]
    return times, units, rng.integers(0, 20, n).astype(np.uint16)


def test_reads_published_layout(tmp_path: Path) -> None:
    times, units, labels = _samples(30, 0)
    path = _write(tmp_path / "shd_train.h5", times, units, labels)
    out = read_shd(path)
    assert isinstance(out, SpikeSamples) and len(out.times) == 30
    np.testing.assert_array_equal(out.labels, labels.astype(np.int64))
    for i in range(30):
        np.testing.assert_array_equal(out.times[i], times[i].astype(np.float64))
        np.testing.assert_array_equal(out.units[i], units[i].astype(np.int64))
        assert out.times[i].dtype == np.float64 and out.units[i].dtype == np.int64
    with pytest.raises(FormatError, match=r"read_shd"):
        detect_format(path)


def test_to_events_matches_hand_conversion(tmp_path: Path) -> None:
    times, units, labels = _samples(3, 1)
    out = read_shd(_write(tmp_path / "s.h5", times, units, labels))
    ev, sensor = shd_to_events(out.times[2], out.units[2])
    assert sensor == (700, 1, 1)
    check_events(ev, sensor)
    np.testing.assert_array_equal(ev["t"], [round(float(t) * 1e6) for t in times[2].astype(np.float64)])
    np.testing.assert_array_equal(ev["x"], units[2])
    assert not ev["y"].any() and not ev["p"].any()
    empty, _ = shd_to_events(out.times[0], out.units[0])
    assert empty.size == 0
    one, _ = shd_to_events(np.array([0.5]), np.array([699]))
    assert one.tolist() == [(699, 0, 500_000, False)]
    with pytest.raises(ValueError, match=r"n_units=700"):
        shd_to_events(np.array([0.5]), np.array([700]))


def test_agrees_with_tonic_layout(tmp_path: Path) -> None:
    """Tonic's SHD loader builds (t, x, p) events with t = times * 1e6 and x = units on a (700, 1, 1) sensor."""
    pytest.importorskip("tonic", reason="tonic (optional test dependency) is not installed")
    from tonic.datasets import SHD

    assert SHD.sensor_size == (700, 1, 1)
    times, units, _ = _samples(2, 2)
    ev, _ = shd_to_events(times[1], units[1])
    ref_t = (times[1] * 1e6).astype(np.float64)  # Tonic keeps float microseconds; ours are rounded to int
    assert np.abs(ev["t"] - ref_t).max() <= 0.5 + 1e-6 * ref_t.max()


def test_malformed(tmp_path: Path) -> None:
    times, units, labels = _samples(4, 3)
    path = tmp_path / "bad.h5"
    _write(path, times, units, labels[:3])
    with pytest.raises(FormatError, match=r"4 spike-time rows, 4 unit rows and 3 labels"):
        read_shd(path)
    with h5py.File(path, "w") as f:
        f.create_dataset("labels", data=labels)
    with pytest.raises(FormatError, match=r"no 'spikes/times' dataset"):
        read_shd(path)
    back = [t.copy() for t in times]
    back[2] = back[2][::-1].copy()
    _write(path, back, units, labels)
    with pytest.raises(FormatError, match=r"sample 2's spike times go backwards"):
        read_shd(path)
    short = [u.copy() for u in units]
    short[1] = short[1][:-1]
    _write(path, times, short, labels)
    with pytest.raises(FormatError, match=r"sample 1 has .* spike times but .* units"):
        read_shd(path)
    neg = [t.copy() for t in times]
    neg[3][0] = -1.0
    _write(path, neg, units, labels)
    with pytest.raises(FormatError, match=r"sample 3 has a negative or non-finite"):
        read_shd(path)
    _write(path, times, units, labels.astype(np.float32))
    with pytest.raises(FormatError, match=r"labels must be non-negative integers"):
        read_shd(path)
    _write(path, times, units, labels)
    total = sum(t.size for t in times)
    with pytest.raises(FormatError, match=f"max_spikes={total - 1}"):
        read_shd(path, max_spikes=total - 1)
    assert sum(t.size for t in read_shd(path, max_spikes=total).times) == total
    with pytest.raises(FormatError, match=r"max_bytes=10"):
        read_shd(path, max_bytes=10)
    path.write_bytes(b"not hdf5 at all")
    with pytest.raises(FormatError, match=r"not an HDF5 file"):
        read_shd(path)
    with pytest.raises(ValueError, match=r"not a regular file"):
        read_shd(tmp_path)
