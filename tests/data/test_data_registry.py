"""Registry, DatasetInfo, SplitDataset and iter_batches."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from spikeforge.data import (
    DatasetInfo,
    SplitDataset,
    dataset_info,
    get_dataset,
    iter_batches,
    list_datasets,
    register_dataset,
)
from spikeforge.data import registry as reg

BUILTIN = [
    "delayed_coincidence", "digits", "fashion_mnist", "mnist", "nfashion_mnist", "nmnist", "nmnist_10k", "shd", "yinyang",
]  # fmt: skip


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> dict:
    """A private copy of the registry so test registrations do not leak."""
    copy = dict(reg._REGISTRY)
    monkeypatch.setattr(reg, "_REGISTRY", copy)
    return copy


def toy_info(name: str = "toy", **kw: object) -> DatasetInfo:
    base = dict(name=name, input_shape=(2,), num_classes=2, splits=(("train", 4), ("test", 2)),
                description="toy", source="test")
    base.update(kw)
    return DatasetInfo(**base)  # type: ignore[arg-type]


def test_list_and_info() -> None:
    assert list_datasets() == BUILTIN
    for name in BUILTIN:
        info = dataset_info(name)
        assert info.name == name and info.description and info.source
        assert info.split_names == ("train", "validation", "test")
        assert not info.class_names or len(info.class_names) == info.num_classes
    assert [n for n in BUILTIN if dataset_info(n).sequence] == [
        "delayed_coincidence", "nfashion_mnist", "nmnist", "nmnist_10k", "shd",
    ]  # fmt: skip
    assert dataset_info("yinyang").splits == (("train", 5000), ("validation", 1000), ("test", 1000))
    assert dataset_info("yinyang").input_shape == (4,) and dataset_info("yinyang").num_classes == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        dataset_info("yinyang").num_classes = 4  # type: ignore[misc]


def test_unknown_name_and_split() -> None:
    with pytest.raises(ValueError, match="unknown dataset 'cifar'; valid names: delayed_coincidence, digits, fashion_mnist, mnist, nfashion_mnist, nmnist, nmnist_10k, shd, yinyang"):
        get_dataset("cifar", "train")
    with pytest.raises(ValueError, match="valid names"):
        dataset_info("cifar")
    with pytest.raises(ValueError, match="unknown split 'val' for dataset 'yinyang'; valid splits: train, validation, test"):
        get_dataset("yinyang", "val")
    with pytest.raises(TypeError, match="name must be a str"):
        get_dataset(3, "train")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="split must be a str"):
        get_dataset("yinyang", None)  # type: ignore[arg-type]


def test_register_custom_and_duplicate(sandbox: dict) -> None:
    seen: list[tuple[str, Path | None]] = []

    @register_dataset(toy_info())
    def build(split: str, data_dir: Path | None) -> tuple[torch.Tensor, torch.Tensor]:
        seen.append((split, data_dir))
        n = 4 if split == "train" else 2
        return torch.arange(2 * n, dtype=torch.float32).reshape(n, 2), torch.arange(n) % 2

    ds = get_dataset("toy", "test", data_dir="some/dir")
    assert seen == [("test", Path("some/dir"))]
    get_dataset("toy", "train", data_dir="~/d")
    get_dataset("toy", "train")
    assert seen[1:] == [("train", Path.home() / "d"), ("train", None)]
    assert isinstance(ds, SplitDataset) and len(ds) == 2 and ds.name == "toy" and ds.split == "test"
    assert "toy" in list_datasets()
    with pytest.raises(ValueError, match="already registered"):
        register_dataset(toy_info())(build)
    with pytest.raises(ValueError, match="already registered"):
        register_dataset(toy_info("yinyang"))(build)
    with pytest.raises(TypeError, match="DatasetInfo"):
        register_dataset({"name": "x"})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "x,y,err,match",
    [
        (torch.zeros(3, 2), torch.zeros(3, dtype=torch.int64), ValueError, "promises"),  # wrong size
        (torch.zeros(4, 3), torch.zeros(4, dtype=torch.int64), ValueError, "promises"),  # wrong shape
        (torch.zeros(4, 2), torch.full((4,), 2), ValueError, "labels outside 0..1"),
        (torch.zeros(4, 2), torch.full((4,), -1), ValueError, "labels outside"),
        (torch.zeros(4, 2, dtype=torch.float64), torch.zeros(4, dtype=torch.int64), TypeError, "float32"),
    ],
)
def test_builder_output_is_checked(sandbox: dict, x: torch.Tensor, y: torch.Tensor, err: type, match: str) -> None:
    register_dataset(toy_info("bad"))(lambda split, d: (x, y))
    with pytest.raises(err, match=match):
        get_dataset("bad", "train")


@pytest.mark.parametrize(
    "kw,match",
    [({"name": ""}, "name"), ({"input_shape": ()}, "input_shape"), ({"input_shape": (0,)}, "input_shape"),
     ({"num_classes": 0}, "num_classes"), ({"splits": ()}, "splits"), ({"splits": (("a", 1), ("a", 2))}, "splits"),
     ({"splits": (("a", 0),)}, "splits"), ({"class_names": ("a",)}, "class_names")],
)
def test_dataset_info_validation(kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        toy_info(**kw)


def test_split_dataset_validation() -> None:
    with pytest.raises(TypeError, match="float32"):
        SplitDataset(torch.zeros(2, 1, dtype=torch.float64), torch.zeros(2, dtype=torch.int64), name="a", split="b")
    with pytest.raises(TypeError, match="int64"):
        SplitDataset(torch.zeros(2, 1), torch.zeros(2, dtype=torch.int32), name="a", split="b")
    with pytest.raises(ValueError, match="same N"):
        SplitDataset(torch.zeros(2, 1), torch.zeros(3, dtype=torch.int64), name="a", split="b")
    with pytest.raises(TypeError, match="torch.Tensors"):
        SplitDataset([0.0], torch.zeros(1, dtype=torch.int64), name="a", split="b")  # type: ignore[arg-type]
    ds = SplitDataset(torch.zeros(2, 3), torch.tensor([1, 0]), name="a", split="b")
    assert "x=(2, 3)" in repr(ds)


def small_ds(n: int = 10) -> SplitDataset:
    return SplitDataset(torch.arange(3 * n, dtype=torch.float32).reshape(n, 3), torch.arange(n) % 3, name="s", split="t")


def test_iter_batches_matches_dataloader() -> None:
    ds = small_ds()
    ours = list(iter_batches(ds, 4))
    theirs = list(DataLoader(ds, batch_size=4))
    assert [b[0].shape[0] for b in ours] == [4, 4, 2]
    for (xa, ya), (xb, yb) in zip(ours, theirs, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb) and ya.dtype == torch.int64
    assert [b[0].shape[0] for b in iter_batches(ds, 4, drop_last=True)] == [4, 4]
    assert list(iter_batches(SplitDataset(torch.zeros(0, 2), torch.zeros(0, dtype=torch.int64), name="e", split="e"), 3)) == []


def test_iter_batches_shuffle_reproducible_permutation() -> None:
    ds = small_ds()
    a = list(iter_batches(ds, 3, shuffle=True, generator=torch.Generator().manual_seed(5)))
    b = list(iter_batches(ds, 3, shuffle=True, generator=torch.Generator().manual_seed(5)))
    xs = torch.cat([x for x, _ in a])
    assert torch.equal(xs, torch.cat([x for x, _ in b]))
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(5))
    assert torch.equal(xs, ds.x[perm]) and torch.equal(torch.cat([y for _, y in a]), ds.y[perm])
    assert not torch.equal(xs, ds.x)


@pytest.mark.parametrize("bs", [0, -1, 2.0, True])
def test_iter_batches_bad_args(bs: object) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        next(iter_batches(small_ds(), bs))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"\.x and \.y"):
        next(iter_batches([1, 2], 2))  # type: ignore[arg-type]


def test_import_loads_no_data_and_no_sklearn() -> None:
    code = (
        "import sys, spikeforge.data as d; "
        "assert 'sklearn' not in sys.modules, 'sklearn imported'; "
        f"assert d.list_datasets() == {BUILTIN!r}"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
