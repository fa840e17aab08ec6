"""The registered temporal-task datasets (``spikeforge.data.temporal_registry``): shapes, determinism, labels,
and the labels checked against the spike trains themselves (independent of the generator's bookkeeping)."""

from __future__ import annotations

import pytest
import torch

from spikeforge.data import dataset_info
from spikeforge.data import get_dataset
from spikeforge.data import list_datasets
from spikeforge.data.temporal_registry import COINCIDENCE
from spikeforge.data.temporal_registry import COINCIDENCE_SPLITS
from spikeforge.train import TrainConfig
from spikeforge.training.choices import sequence_defaults

NAME = "delayed_coincidence"


def test_registered_as_a_sequence_dataset() -> None:
    assert NAME in list_datasets()
    info = dataset_info(NAME)
    assert info.sequence and info.input_shape == (64, 4) and info.step_shape == (4,)
    assert info.num_classes == 4 and len(set(info.class_names)) == 4
    assert dict(info.splits) == {s: n for s, (n, _) in COINCIDENCE_SPLITS.items()}
    assert sequence_defaults(NAME) == {"encoding": "sequence", "time_steps": 64}
    assert not info.needs_files


@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_split_shapes_labels_and_content(split: str) -> None:
    ds = get_dataset(NAME, split)
    n = dict(dataset_info(NAME).splits)[split]
    assert ds.x.shape == (n, 64, 4) and ds.x.dtype == torch.float32 and ds.y.dtype == torch.int64
    assert set(ds.y.unique().tolist()) == {0, 1, 2, 3}
    counts = torch.bincount(ds.y, minlength=4)
    assert int(counts.max() - counts.min()) <= 1  # balanced
    assert set(ds.x.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(ds.x.sum(1), torch.ones(n, 4))  # one spike per channel: counts carry no class
    times = ds.x.argmax(1)  # [n, 4] spike time per channel
    span = (COINCIDENCE["channels"] - 1) * COINCIDENCE["gap"]
    order_names = dataset_info(NAME).class_names
    for i in range(n):
        t = times[i]
        gaps = t.sort().values.diff()
        assert gaps.tolist() == [COINCIDENCE["gap"]] * 3
        assert int(t.max()) + span < 64  # room for delays up to the span after the last spike
        order = "<".join(f"c{int(c)}" for c in t.argsort())
        assert order == order_names[int(ds.y[i])]  # the label is the order in which the channels fire


def test_deterministic_and_splits_differ() -> None:
    a, b = get_dataset(NAME, "test"), get_dataset(NAME, "test")
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    tr = get_dataset(NAME, "train")
    assert not torch.equal(tr.x[: len(a)], a.x)


def test_static_encodings_are_refused() -> None:
    with pytest.raises(ValueError, match="needs encoding 'sequence' and time_steps=64"):
        TrainConfig(dataset=NAME, model="delay-mlp", encoding="latency", time_steps=64)
    with pytest.raises(ValueError, match="time_steps=64"):
        TrainConfig(dataset=NAME, model="mlp", encoding="sequence", time_steps=32)
