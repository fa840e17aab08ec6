"""sklearn digits: values against load_digits, the stratified split rule, determinism, missing extra."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from spikeforge.data import dataset_info, get_dataset
from spikeforge.data.digits import digits_split_indices

load_digits = pytest.importorskip("sklearn.datasets").load_digits
SPLITS = ("train", "validation", "test")


def test_values_shapes_and_sizes() -> None:
    ref = load_digits()
    idx = digits_split_indices(ref.target)
    info = dataset_info("digits")
    assert info.input_shape == (1, 8, 8) and info.num_classes == 10
    assert dict(info.splits) == {"train": 1087, "validation": 355, "test": 355}
    for split in SPLITS:
        ds = get_dataset("digits", split)
        assert len(ds) == info.split_size(split)
        assert ds.x.shape == (len(ds), 1, 8, 8) and ds.x.dtype == torch.float32 and ds.y.dtype == torch.int64
        np.testing.assert_allclose(ds.x.numpy()[:, 0], ref.images[idx[split]] / 16.0, rtol=0, atol=1e-7)
        np.testing.assert_array_equal(ds.y.numpy(), ref.target[idx[split]])
        assert float(ds.x.min()) >= 0.0 and float(ds.x.max()) <= 1.0
        # MLP view: flatten gives the sklearn 64-feature rows / 16
        np.testing.assert_allclose(ds.x.flatten(1).numpy(), ref.data[idx[split]] / 16.0, rtol=0, atol=1e-7)


def test_split_is_a_stratified_partition() -> None:
    target = load_digits().target
    idx = digits_split_indices(target)
    allidx = np.concatenate([idx[s] for s in SPLITS])
    assert np.array_equal(np.sort(allidx), np.arange(target.size))  # disjoint and complete
    per_class = np.bincount(target, minlength=10)
    for s in ("validation", "test"):
        np.testing.assert_array_equal(np.bincount(target[idx[s]], minlength=10), per_class // 5)
        assert np.all(np.diff(idx[s]) > 0)  # original order kept
    np.testing.assert_array_equal(np.bincount(target[idx["train"]], minlength=10), per_class - 2 * (per_class // 5))


def test_split_reference_by_hand() -> None:
    # Reference for the documented rule on a toy label vector, written out longhand.
    labels = np.array([0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 0])
    rng = np.random.RandomState(0)
    val, test, train = [], [], []
    for c in (0, 1):
        members = [i for i, l in enumerate(labels) if l == c]
        perm = rng.permutation(len(members))
        shuffled = [members[j] for j in perm]
        k = len(members) // 5
        val += shuffled[:k]
        test += shuffled[k : 2 * k]
        train += shuffled[2 * k :]
    got = digits_split_indices(labels)
    assert got["validation"].tolist() == sorted(val)
    assert got["test"].tolist() == sorted(test)
    assert got["train"].tolist() == sorted(train)


def test_deterministic_regardless_of_global_rng() -> None:
    np.random.seed(1)
    torch.manual_seed(1)
    a = get_dataset("digits", "test")
    np.random.seed(2)
    torch.manual_seed(2)
    np.random.rand(17)
    b = get_dataset("digits", "test")
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)


def test_different_seed_gives_different_split() -> None:
    target = load_digits().target
    assert not np.array_equal(digits_split_indices(target, seed=1)["test"], digits_split_indices(target)["test"])


def test_bad_labels() -> None:
    with pytest.raises(ValueError, match="1-D integer"):
        digits_split_indices(np.zeros((3, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="1-D integer"):
        digits_split_indices(np.zeros(3))


def test_missing_sklearn_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # makes `from sklearn.datasets import ...` fail
    with pytest.raises(ImportError, match=r"pip install 'spikeforge\[data\]'"):
        get_dataset("digits", "train")
