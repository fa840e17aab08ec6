"""Yin-Yang: bit-exact fixtures from the reference data, geometry checked independently."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spikeforge.data import dataset_info, get_dataset, make_yinyang
from spikeforge.data.yinyang import yinyang_labels

# Published-data fixtures (research notes A5, verified bit-exact against lkriener/yin_yang_data_set).
COUNTS = {"train": [1681, 1702, 1617], "validation": [316, 336, 348], "test": [350, 316, 334]}
FIRST_LABELS = {"train": [2, 1, 2], "validation": [0, 1, 0], "test": [2, 2, 1]}
FIRST_XY = {"train": (0.68030754, 0.45049925), "validation": (0.68057273, 0.32097339), "test": (0.23409665, 0.40172498)}
SEEDS = {"train": (5000, 42), "validation": (1000, 41), "test": (1000, 40)}


def ref_label(x: float, y: float) -> int:
    """Independent statement of the symbol: dots, else yang = (upper half minus right lobe) + left lobe."""
    z = complex(x, y)
    left, right = complex(0.25, 0.5), complex(0.75, 0.5)
    if abs(z - left) < 0.1 or abs(z - right) < 0.1:
        return 2
    return int((y > 0.5 and abs(z - right) > 0.25) or abs(z - left) <= 0.25)


@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_published_fixtures(split: str) -> None:
    size, seed = SEEDS[split]
    feats, labels = make_yinyang(size, seed)
    assert feats.shape == (size, 4) and feats.dtype == np.float64 and labels.dtype == np.int64
    assert np.bincount(labels, minlength=3).tolist() == COUNTS[split]
    assert labels[:3].tolist() == FIRST_LABELS[split]
    np.testing.assert_allclose(feats[0, :2], FIRST_XY[split], atol=5e-9, rtol=0)
    # mirrored features are exactly 1 - x, 1 - y
    np.testing.assert_array_equal(feats[:, 2:], 1.0 - feats[:, :2])


def test_train_first_sample_full_vector() -> None:
    feats, labels = make_yinyang(5000, 42)
    np.testing.assert_allclose(feats[0], [0.68030754, 0.45049925, 0.31969246, 0.54950075], atol=5e-9, rtol=0)
    assert labels[0] == 2


@pytest.mark.parametrize("split", ["train", "test"])
def test_generated_points_obey_geometry(split: str) -> None:
    feats, labels = make_yinyang(*SEEDS[split])
    r = np.hypot(feats[:, 0] - 0.5, feats[:, 1] - 0.5)
    assert (r <= 0.5).all() and (feats[:, :2] >= 0).all()
    expected = np.array([ref_label(float(x), float(y)) for x, y in feats[:, :2]])
    np.testing.assert_array_equal(labels, expected)


def test_labelling_point_symmetry_and_areas() -> None:
    # Yin-Yang is point-symmetric about the centre: reflection swaps yin <-> yang and keeps the dots.
    n = 201
    g = (np.arange(n) + 0.5) / n
    xx, yy = np.meshgrid(g, g)
    pts = np.stack([xx.ravel(), yy.ravel()], 1)
    pts = pts[np.hypot(pts[:, 0] - 0.5, pts[:, 1] - 0.5) <= 0.5]
    lab, lab_reflected = yinyang_labels(pts), yinyang_labels(1.0 - pts)
    swap = np.array([1, 0, 2])
    agree = lab_reflected == swap[lab]
    assert agree.mean() > 0.999  # only boundary round-off may differ
    frac = np.bincount(lab, minlength=3) / lab.size
    assert abs(frac[2] - 0.08) < 0.005  # two dots: 2 pi r^2 / (pi R^2) = 0.08
    assert abs(frac[0] - frac[1]) < 0.005
    # hand-picked points
    hand = np.array([[0.25, 0.5], [0.75, 0.5], [0.25, 0.35], [0.75, 0.65], [0.5, 0.9], [0.5, 0.1]])
    assert yinyang_labels(hand).tolist() == [2, 2, 1, 0, 1, 0]
    assert yinyang_labels(hand).tolist() == [ref_label(x, y) for x, y in hand]


def test_dataset_matches_generator_in_float32() -> None:
    ds = get_dataset("yinyang", "validation")
    feats, labels = make_yinyang(1000, 41)
    assert ds.x.dtype == torch.float32 and ds.y.dtype == torch.int64
    assert torch.equal(ds.x, torch.from_numpy(feats).float())
    assert torch.equal(ds.y, torch.from_numpy(labels))
    x0, y0 = ds[0]
    assert x0.shape == dataset_info("yinyang").input_shape and y0.shape == () and y0.dtype == torch.int64


def test_independent_of_global_rng() -> None:
    np.random.seed(123)
    torch.manual_seed(123)
    a = make_yinyang(50, 7)
    state = np.random.get_state()
    b = make_yinyang(50, 7)
    assert np.random.get_state()[1].tolist() == state[1].tolist()  # global numpy RNG untouched
    np.testing.assert_array_equal(a[0], b[0])
    c = make_yinyang(50, 8)
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("kwargs", [{"size": -1, "seed": 0}, {"size": 1.5, "seed": 0}, {"size": True, "seed": 0},
                                    {"size": 3, "seed": 0, "r_small": 0.3}, {"size": 3, "seed": 0, "r_small": 0.0}])
def test_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="size|r_small"):
        make_yinyang(**kwargs)


def test_empty_and_bad_points() -> None:
    feats, labels = make_yinyang(0, 1)
    assert feats.shape == (0, 4) and labels.shape == (0,)
    with pytest.raises(ValueError, match=r"\[N, 2\]"):
        yinyang_labels(np.zeros(3))
