"""``nmnist`` and ``shd`` read from tiny folders in the published formats (the expected counts are patched to
the tiny folder's, in the registry only, for the duration of each test)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from spikeforge import cli
from spikeforge.data import dataset_info
from spikeforge.data import get_dataset
from spikeforge.data import recorded as rec
from spikeforge.data import registry as reg
from spikeforge.events.formats import FormatError
from spikeforge.events.formats import write_nmnist
from spikeforge.events.stream import EVENT_DTYPE

h5py = pytest.importorskip("h5py")

PER_DIGIT = {"Train": 3, "Test": 1}  # 30 training files: every 12th -> 2 validation, 28 train
SHD_N = {"shd_train.h5": 12, "shd_test.h5": 5}  # every 10th -> 1 validation, 11 train


def _tiny(monkeypatch: pytest.MonkeyPatch, name: str, n_train: int, n_test: int, every: int) -> None:
    info, builder = reg._REGISTRY[name]
    small = dataclasses.replace(info, splits=rec.recorded_splits(n_train, n_test, every))
    monkeypatch.setitem(reg._REGISTRY, name, (small, builder))


def _random_events(rng: np.random.Generator, n: int) -> np.ndarray:
    ev = np.zeros(n, dtype=EVENT_DTYPE)
    ev["t"] = np.sort(rng.integers(0, 320_000, n))  # some past 300 ms: they land in the last bin
    ev["x"], ev["y"] = rng.integers(0, 34, n), rng.integers(0, 34, n)
    ev["p"] = rng.integers(0, 2, n).astype(bool)
    return ev


HAND = [(1, 2, 1, 100), (33, 0, 0, 299_999), (5, 6, 1, 300_050)]  # (x, y, p, t); the last after a marker, past 300 ms


def _hand_packed() -> bytes:
    """Three events written byte by byte in the N-MNIST layout, with one overflow marker (y = 240) before the last."""
    out = b""
    for k, (x, y, p, t) in enumerate(HAND):
        if k == 2:
            out += bytes([0, 240, 0, 0, 0])
            t -= 8192
        out += bytes([x, y, (p << 7) | (t >> 16), (t >> 8) & 0xFF, t & 0xFF])
    return out


@pytest.fixture
def nmnist_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, list[tuple[Path, int, list]]]]:
    """``Train/<d>/0000k.bin`` (3 per digit; digit 3 has ``hand.bin`` instead of its third) and ``Test/<d>/``."""
    rng = np.random.default_rng(0)
    truth: dict[str, list[tuple[Path, int, list]]] = {}
    for part, k in PER_DIGIT.items():
        truth[part] = []
        for d in range(10):
            folder = tmp_path / part / str(d)
            folder.mkdir(parents=True)
            for j in range(k):
                if part == "Train" and d == 3 and j == 2:
                    path = folder / "hand.bin"
                    path.write_bytes(_hand_packed())
                    evs = list(HAND)
                else:
                    path = folder / f"{j:05d}.bin"
                    ev = _random_events(rng, int(rng.integers(1, 60)))
                    write_nmnist(path, ev, (34, 34, 2))
                    evs = [(int(e["x"]), int(e["y"]), int(e["p"]), int(e["t"])) for e in ev]
                truth[part].append((path, d, evs))
    _tiny(monkeypatch, "nmnist", 30, 10, rec.NMNIST_EVERY)
    return tmp_path, truth


def _nmnist_reference(samples: list[tuple[Path, int, list]]) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.zeros(len(samples), 10, 2, 34, 34)
    for i, (_, _, evs) in enumerate(samples):
        for ex, ey, ep, et in evs:
            x[i, min(et // 30_000, 9), ep, ey, ex] += 1
    return x, torch.tensor([d for _, d, _ in samples])


def test_nmnist_shapes_binning_labels(nmnist_dir) -> None:
    root, truth = nmnist_dir
    train_files = truth["Train"]  # digit, then name order ("00000.bin" < "hand.bin")
    want = {
        "train": [s for i, s in enumerate(train_files) if i % 12 != 11],
        "validation": [s for i, s in enumerate(train_files) if i % 12 == 11],
        "test": truth["Test"],
    }
    assert [len(v) for v in want.values()] == [28, 2, 10]
    for split, samples in want.items():
        ds = get_dataset("nmnist", split, data_dir=root)
        rx, ry = _nmnist_reference(samples)
        assert ds.x.shape == (len(samples), 10, 2, 34, 34) and ds.x.dtype == torch.float32
        assert torch.equal(ds.x, rx) and torch.equal(ds.y, ry)
    assert want["validation"][0][0].name == "hand.bin"  # position 11: digit 3's third file
    hand = get_dataset("nmnist", "validation", data_dir=root).x[0]
    assert hand.sum() == 3 and hand[0, 1, 2, 1] == 1 and hand[9, 0, 0, 33] == 1 and hand[9, 1, 6, 5] == 1
    assert dataset_info("nmnist").sequence and dataset_info("nmnist").needs_files


def test_validation_split_is_deterministic_and_disjoint(nmnist_dir) -> None:
    root, _ = nmnist_dir
    a = get_dataset("nmnist", "validation", data_dir=root)
    b = get_dataset("nmnist", "validation", data_dir=root)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    train = get_dataset("nmnist", "train", data_dir=root)
    rows = {tuple(r.flatten().tolist()) for r in torch.cat([train.x, a.x])}
    assert len(rows) == 30  # every training file lands in exactly one of the two splits
    assert a.y.tolist() == [3, 7]  # positions 11 and 23 in digit order, 3 files per digit


def test_published_sizes() -> None:
    assert dataset_info("nmnist").splits == (("train", 55000), ("validation", 5000), ("test", 10000))
    assert dataset_info("shd").splits == (("train", 7341), ("validation", 815), ("test", 2264))
    assert dataset_info("nmnist").input_shape == (10, 2, 34, 34) and dataset_info("shd").input_shape == (100, 700)


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_nmnist_errors(nmnist_dir, tmp_path: Path) -> None:
    root, truth = nmnist_dir
    with pytest.raises(FileNotFoundError, match="pass --data-dir DIR") as e1:
        get_dataset("nmnist", "train")
    assert "DIR/Train/<0-9>/*.bin and DIR/Test/<0-9>/*.bin" in _one_line(e1)
    with pytest.raises(FileNotFoundError, match="is not a folder") as e2:
        get_dataset("nmnist", "test", data_dir=tmp_path / "nowhere")
    _one_line(e2)
    bad = truth["Test"][4][0]
    bad.write_bytes(bad.read_bytes()[:-2])  # truncated: not a multiple of 5 bytes
    with pytest.raises(FormatError, match="multiple of 5") as e3:
        get_dataset("nmnist", "test", data_dir=root)
    assert str(bad) in _one_line(e3)
    (root / "Train" / "5" / "extra.bin").write_bytes(b"")
    with pytest.raises(ValueError, match=r"found 31 \.bin files .* published N-MNIST has 30") as e4:
        get_dataset("nmnist", "train", data_dir=root)
    _one_line(e4)
    for p in (root / "Train" / "7").iterdir():
        p.unlink()
    (root / "Train" / "7").rmdir()
    with pytest.raises(FileNotFoundError, match=r"Train/7 is not a folder; --data-dir must hold") as e5:
        get_dataset("nmnist", "validation", data_dir=root)
    _one_line(e5)


def test_nmnist_outside_sensor(nmnist_dir) -> None:
    root, truth = nmnist_dir
    path = truth["Test"][0][0]
    path.write_bytes(bytes([40, 1, 0, 0, 5]))  # x = 40 on a 34-wide sensor
    with pytest.raises(FormatError, match="outside the sensor") as e1:
        get_dataset("nmnist", "test", data_dir=root)
    assert str(path) in _one_line(e1)


def _write_shd(path: Path, times: list[np.ndarray], units: list[np.ndarray], labels: list[int]) -> None:
    with h5py.File(path, "w") as f:
        t = f.create_dataset("spikes/times", (len(times),), dtype=h5py.vlen_dtype(np.float32))
        u = f.create_dataset("spikes/units", (len(units),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (tt, uu) in enumerate(zip(times, units)):
            t[i], u[i] = tt, uu
        f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint8))
        f.create_dataset("extra/speaker", data=np.zeros(len(labels), dtype=np.uint8))


@pytest.fixture
def shd_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, tuple[list, list, list]]]:
    rng = np.random.default_rng(1)
    truth = {}
    for name, n in SHD_N.items():
        times = [np.sort(rng.uniform(0, 1.5, int(rng.integers(0, 80)))).astype(np.float32) for _ in range(n)]
        units = [rng.integers(0, 700, t.size).astype(np.uint16) for t in times]
        labels = [int(v) for v in rng.integers(0, 20, n)]
        _write_shd(tmp_path / name, times, units, labels)
        truth[name] = (times, units, labels)
    _tiny(monkeypatch, "shd", SHD_N["shd_train.h5"], SHD_N["shd_test.h5"], rec.SHD_EVERY)
    return tmp_path, truth


def test_shd_shapes_binning_labels(shd_dir) -> None:
    root, truth = shd_dir
    picks = {"train": [i for i in range(12) if i != 9], "validation": [9], "test": list(range(5))}
    for split, idx in picks.items():
        times, units, labels = truth["shd_test.h5" if split == "test" else "shd_train.h5"]
        ref = torch.zeros(len(idx), 100, 700)
        for row, i in enumerate(idx):
            for t, u in zip(times[i].tolist(), units[i].tolist()):
                us = round(t * 1e6)
                ref[row, min(us // 14_000, 99), u] += 1
        ds = get_dataset("shd", split, data_dir=root)
        assert ds.x.shape == (len(idx), 100, 700) and ds.x.dtype == torch.float32
        assert torch.equal(ds.x, ref)
        assert ds.y.tolist() == [labels[i] for i in idx]
    assert float(get_dataset("shd", "train", data_dir=root).x[:, -1].sum()) > 0  # spikes past 1.4 s kept


def test_shd_errors(shd_dir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, truth = shd_dir
    with pytest.raises(FileNotFoundError, match=r"pass --data-dir DIR .*shd_train\.h5") as e1:
        get_dataset("shd", "train")
    _one_line(e1)
    (root / "shd_test.h5").unlink()
    with pytest.raises(FileNotFoundError, match=r"shd_test\.h5 is not a file; --data-dir must hold") as e2:
        get_dataset("shd", "test", data_dir=root)
    _one_line(e2)
    (root / "shd_test.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)  # the signature, then garbage
    with pytest.raises(FormatError) as e3:
        get_dataset("shd", "test", data_dir=root)
    assert str(root / "shd_test.h5") in _one_line(e3)
    times, units, labels = truth["shd_train.h5"]
    _write_shd(root / "shd_train.h5", times[:11], units[:11], labels[:11])
    with pytest.raises(ValueError, match="holds 11 samples, the published file has 12") as e4:
        get_dataset("shd", "validation", data_dir=root)
    _one_line(e4)
    _write_shd(root / "shd_train.h5", times, units, [*labels[:11], 20])
    with pytest.raises(ValueError, match=r"label 20, SHD's are 0\.\.19") as e5:
        get_dataset("shd", "train", data_dir=root)
    _one_line(e5)
    units = [u.astype(np.uint16) for u in units]
    units[0] = np.full(times[0].size, 700, dtype=np.uint16)
    _write_shd(root / "shd_train.h5", times, units, labels)
    with pytest.raises(ValueError, match=r"unit 700, SHD's are 0\.\.699"):
        get_dataset("shd", "train", data_dir=root)
    monkeypatch.setattr(rec.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"pip install 'spikeforge\[events\]'"):
        get_dataset("shd", "train", data_dir=root)


def test_cli_trains_on_recorded_nmnist(nmnist_dir, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = nmnist_dir
    out = tmp_path / "run"
    code = cli.main([
        "train", "--dataset", "nmnist", "--data-dir", str(root), "--model", "conv", "--epochs", "1",
        "--batch-size", "8", "--out", str(out), "--quiet", "--json", "--seed", "0",
    ])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Traceback" not in captured.err and (out / "config.json").is_file()
    config = json.loads((out / "config.json").read_text())
    assert config["dataset"] == "nmnist" and config["time_steps"] == 10 and config["encoding"] == "sequence"


def test_cli_missing_data_dir_is_one_line(nmnist_dir, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["train", "--dataset", "nmnist", "--epochs", "1", "--out", str(tmp_path / "x"), "--quiet"])
    err = capsys.readouterr().err
    assert code != 0 and "--data-dir" in err and "Traceback" not in err


def test_cli_trains_on_recorded_shd(shd_dir, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = shd_dir
    out = tmp_path / "run"
    code = cli.main([
        "train", "--dataset", "shd", "--data-dir", str(root), "--model", "mlp", "--hidden", "8", "--epochs", "1",
        "--batch-size", "4", "--out", str(out), "--quiet", "--seed", "0",
    ])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    config = json.loads((out / "config.json").read_text())
    assert config["dataset"] == "shd" and config["time_steps"] == 100 and config["encoding"] == "sequence"
