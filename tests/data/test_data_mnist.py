"""MNIST / Fashion-MNIST: file discovery, splits and scaling on synthetic IDX files; the real
Fashion-MNIST files from Debian's dataset-fashion-mnist package when installed."""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from spikeforge.data import dataset_info
from spikeforge.data import get_dataset
from spikeforge.data import mnist as mnist_mod
from spikeforge.data import write_idx

SYSTEM = Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(
    not SYSTEM.is_dir(), reason=f"{SYSTEM} absent: install with `apt-get install dataset-fashion-mnist`"
)


def synthetic(n: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(n, dtype=np.int64)[:, None, None]
    images = ((idx * 7 + offset + np.arange(784).reshape(28, 28)) % 256).astype(np.uint8)
    labels = ((np.arange(n) + offset) % 10).astype(np.uint8)
    return images, labels


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Flat folder: plain train files (60000), gzipped t10k files (10000). Read-only for the tests."""
    d = tmp_path_factory.mktemp("mnist_flat")
    tr_img, tr_lab = synthetic(60000, 0)
    te_img, te_lab = synthetic(10000, 3)
    write_idx(d / "train-images-idx3-ubyte", tr_img)
    write_idx(d / "train-labels-idx1-ubyte", tr_lab)
    write_idx(d / "t10k-images-idx3-ubyte.gz", te_img)
    write_idx(d / "t10k-labels-idx1-ubyte.gz", te_lab)
    return d


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_flat_data_dir_splits_and_scaling(idx_dir: Path, name: str) -> None:
    tr_img, tr_lab = synthetic(60000, 0)
    te_img, te_lab = synthetic(10000, 3)
    expect = {
        "train": (tr_img[:55000], tr_lab[:55000]),
        "validation": (tr_img[55000:], tr_lab[55000:]),
        "test": (te_img, te_lab),
    }
    info = dataset_info(name)
    assert info.needs_files and info.input_shape == (1, 28, 28) and info.num_classes == 10
    for split, (img, lab) in expect.items():
        ds = get_dataset(name, split, data_dir=str(idx_dir))
        assert len(ds) == info.split_size(split) == img.shape[0]
        assert ds.x.shape == (img.shape[0], 1, 28, 28) and ds.x.dtype == torch.float32
        assert torch.equal(ds.x[:, 0], torch.from_numpy(img.astype(np.float32) / np.float32(255)))  # IEEE-exact
        np.testing.assert_array_equal(ds.y.numpy(), lab.astype(np.int64))
        x0, y0 = ds[0]
        assert x0.shape == (1, 28, 28) and y0.dtype == torch.int64 and y0.shape == ()


def test_torchvision_layout_and_alt_names(idx_dir: Path, tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for src, dst in [("train-images-idx3-ubyte", "train-images.idx3-ubyte"), ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
                     ("t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"), ("t10k-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz")]:
        os.symlink(idx_dir / src, raw / dst)
    ds = get_dataset("mnist", "validation", data_dir=tmp_path)
    np.testing.assert_array_equal(ds.y.numpy(), synthetic(60000, 0)[1][55000:])
    # the FashionMNIST sub-folder is not used for "mnist" and vice versa
    with pytest.raises(FileNotFoundError):
        get_dataset("fashion_mnist", "test", data_dir=tmp_path)
    (tmp_path / "FashionMNIST").symlink_to(raw)
    assert len(get_dataset("fashion_mnist", "test", data_dir=tmp_path)) == 10000


def test_plain_file_preferred_over_gz(tmp_path: Path) -> None:
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(3, np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.ones(3, np.uint8))
    assert mnist_mod.find_idx_file("mnist", "t10k", "labels", tmp_path).name == "t10k-labels-idx1-ubyte"


def test_mnist_without_data_dir_explains() -> None:
    with pytest.raises(FileNotFoundError, match=r"(?s)no offline package.*data_dir"):
        get_dataset("mnist", "train")


def test_missing_files_list_search_paths(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as err:
        get_dataset("fashion_mnist", "test", data_dir=tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "t10k-images-idx3-ubyte.gz") in msg
    assert str(tmp_path / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte") in msg
    assert "apt-get install dataset-fashion-mnist" in msg and "--data-dir" in msg
    assert str(SYSTEM) not in msg.split("Searched:")[1].split("To get")[0]  # explicit data_dir: no fallback


def test_fashion_default_location_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(mnist_mod, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match=r"(?s)absent/t10k-images-idx3-ubyte.*apt-get install dataset-fashion-mnist"):
        get_dataset("fashion_mnist", "test")


def _write_t10k(d: Path, images: np.ndarray, labels: np.ndarray) -> None:
    write_idx(d / "t10k-images-idx3-ubyte", images)
    write_idx(d / "t10k-labels-idx1-ubyte", labels)


def test_wrong_count_shape_or_labels(tmp_path: Path) -> None:
    img, lab = synthetic(10000, 0)
    _write_t10k(tmp_path, img[:100], lab[:100])
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte: expected uint8 data of shape \(10000, 28, 28\), but the IDX header declares uint8 \(100, 28, 28\)"):
        get_dataset("mnist", "test", data_dir=tmp_path)
    _write_t10k(tmp_path, img, lab[:9999])
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte: expected uint8 data of shape \(10000,\).*declares uint8 \(9999,\)"):
        get_dataset("mnist", "test", data_dir=tmp_path)
    bad = lab.copy()
    bad[5] = 10
    _write_t10k(tmp_path, img, bad)
    with pytest.raises(ValueError, match=r"labels must be 0\.\.9"):
        get_dataset("mnist", "test", data_dir=tmp_path)
    _write_t10k(tmp_path, img.astype(np.int32), lab)
    with pytest.raises(ValueError, match=r"declares int32 \(10000, 28, 28\)"):
        get_dataset("mnist", "test", data_dir=tmp_path)


def test_truncated_file_in_dataset(tmp_path: Path) -> None:
    img, lab = synthetic(10000, 0)
    _write_t10k(tmp_path, img, lab)
    p = tmp_path / "t10k-labels-idx1-ubyte"
    p.write_bytes(p.read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte: IDX file truncated"):
        get_dataset("mnist", "test", data_dir=tmp_path)


def test_bad_data_dir_type() -> None:
    with pytest.raises(TypeError, match="data_dir"):
        get_dataset("mnist", "test", data_dir=3)  # type: ignore[arg-type]


# ---------------------------------------------------------------- real Fashion-MNIST (Debian package)

# MD5 of the uncompressed official files (research notes C1; Zalando's published values).
MD5 = {"train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9", "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
       "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965"}


@needs_fashion
def test_real_fashion_mnist_test_split_matches_independent_parse() -> None:
    ds = get_dataset("fashion_mnist", "test")
    raw_img = gzip.decompress((SYSTEM / "t10k-images-idx3-ubyte.gz").read_bytes())
    raw_lab = gzip.decompress((SYSTEM / "t10k-labels-idx1-ubyte.gz").read_bytes())
    assert hashlib.md5(raw_img).hexdigest() == MD5["t10k-images-idx3-ubyte"]
    assert hashlib.md5(raw_lab).hexdigest() == MD5["t10k-labels-idx1-ubyte"]
    img = np.frombuffer(raw_img, np.uint8, offset=16).reshape(10000, 1, 28, 28)
    lab = np.frombuffer(raw_lab, np.uint8, offset=8)
    assert torch.equal(ds.x, torch.from_numpy(img.astype(np.float32) / np.float32(255)))
    assert torch.equal(ds.y, torch.from_numpy(lab.astype(np.int64)))
    assert torch.bincount(ds.y, minlength=10).tolist() == [1000] * 10


@needs_fashion
def test_real_fashion_mnist_train_validation() -> None:
    tr = get_dataset("fashion_mnist", "train")
    va = get_dataset("fashion_mnist", "validation")
    assert tr.x.shape == (55000, 1, 28, 28) and va.x.shape == (5000, 1, 28, 28)
    y = torch.cat([tr.y, va.y])
    assert torch.bincount(y, minlength=10).tolist() == [6000] * 10
    header = bytes([0, 0, 8, 1, 0, 0, 0xEA, 0x60])  # uint8, 1-D, 60000
    assert hashlib.md5(header + y.to(torch.uint8).numpy().tobytes()).hexdigest() == MD5["train-labels-idx1-ubyte"]
    assert float(tr.x.min()) == 0.0 and float(tr.x.max()) == 1.0
    mean = (tr.x.double().sum() + va.x.double().sum()) / (60000 * 784)
    assert abs(float(mean) - 0.2860) < 1e-3  # published normalisation mean 0.2860
