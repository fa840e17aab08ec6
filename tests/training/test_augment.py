"""Training-time augmentation (spikeforge.training.augment): random shifts and flips vs a per-sample reference."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from spikeforge.training.augment import AUGMENTATIONS
from spikeforge.training.augment import augment_batch
from spikeforge.training.config import TrainConfig


def _reference(x: torch.Tensor, augment: str, s: int, seed: int) -> torch.Tensor:
    """Per sample, with explicit slicing: pad by s with zeros, crop the window at (s - dy, s - dx), then mirror.
    The draws are the documented ones (all shifts as one [2, B] draw, then all flips)."""
    g = torch.Generator().manual_seed(seed)
    b, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    out = x.clone()
    if augment in ("shift", "shift_flip") and s > 0:
        d = torch.randint(-s, s + 1, (2, b), generator=g)
        for n in range(b):
            padded = torch.zeros(*x.shape[1:-2], h + 2 * s, w + 2 * s)
            padded[..., s : s + h, s : s + w] = x[n]
            r0, c0 = s - int(d[0, n]), s - int(d[1, n])
            out[n] = padded[..., r0 : r0 + h, c0 : c0 + w]
    if augment in ("flip", "shift_flip"):
        mirror = torch.rand(b, generator=g) < 0.5
        for n in range(b):
            if mirror[n]:
                out[n] = out[n].flip(-1)
    return out


@pytest.mark.parametrize("augment", ["shift", "flip", "shift_flip"])
@pytest.mark.parametrize("shape", [(7, 1, 6, 5), (5, 3, 2, 4, 4)])  # images [B, C, H, W] and frames [B, T, C, H, W]
@pytest.mark.parametrize("s", [1, 2, 5])
def test_matches_per_sample_reference(augment: str, shape: tuple[int, ...], s: int) -> None:
    x = torch.randn(*shape)
    got = augment_batch(x, augment, s, torch.Generator().manual_seed(4))
    torch.testing.assert_close(got, _reference(x, augment, s, 4), rtol=0, atol=0)
    assert got.shape == x.shape and got.dtype == x.dtype and got.is_contiguous()


def test_a_shift_moves_content_and_fills_zeros() -> None:
    x = torch.zeros(64, 1, 5, 5)
    x[:, 0, 2, 2] = 1.0  # one bright pixel in the centre
    got = augment_batch(x, "shift", 2, torch.Generator().manual_seed(0))
    assert torch.equal(got.sum(dim=(1, 2, 3)), torch.ones(64))  # a shift of <= 2 keeps the centre pixel inside
    rows, cols = got[:, 0].nonzero()[:, 1], got[:, 0].nonzero()[:, 2]
    assert set(rows.tolist()) == set(range(5)) and set(cols.tolist()) == set(range(5))  # all 5 offsets drawn
    edge = torch.ones(16, 1, 4, 4)
    moved = augment_batch(edge, "shift", 1, torch.Generator().manual_seed(1))
    zero_rows = (moved[:, 0] == 0).all(dim=2).sum(dim=1)  # a vertical shift of 1 empties exactly one row
    assert set(zero_rows.tolist()) <= {0, 1} and moved.min() == 0.0


def test_flip_mirrors_about_half_and_is_an_involution_per_sample() -> None:
    x = torch.randn(400, 1, 3, 4)
    got = augment_batch(x, "flip", generator=torch.Generator().manual_seed(2))
    flipped = torch.tensor([torch.equal(g, s.flip(-1)) and not torch.equal(g, s) for g, s in zip(got, x)])
    same = torch.tensor([torch.equal(g, s) for g, s in zip(got, x)])
    assert bool((flipped | same).all()) and 150 < int(flipped.sum()) < 250


def test_none_and_zero_shift_are_the_identity_and_seeded_draws_repeat() -> None:
    x = torch.randn(6, 1, 4, 4)
    assert augment_batch(x, "none") is x
    assert torch.equal(augment_batch(x, "shift", 0, torch.Generator().manual_seed(0)), x)
    a = augment_batch(x, "shift_flip", 2, torch.Generator().manual_seed(9))
    b = augment_batch(x, "shift_flip", 2, torch.Generator().manual_seed(9))
    assert torch.equal(a, b)
    assert torch.equal(augment_batch(x[:0], "shift_flip", 2), x[:0])  # empty batch


def test_bad_values_are_refused_with_the_fix() -> None:
    x = torch.randn(2, 1, 4, 4)
    with pytest.raises(ValueError, match="augment must be one of none, shift, flip, shift_flip"):
        augment_batch(x, "rotate")
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="augment_shift must be an int >= 0"):
            augment_batch(x, "shift", bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs image batches"):
        augment_batch(torch.randn(3, 4), "flip")
    with pytest.raises(ValueError, match="dataset 'yinyang' has samples of shape \\(4,\\): use augment='none'"):
        TrainConfig(augment="shift")
    with pytest.raises(ValueError, match="augment must be one of"):
        TrainConfig(dataset="digits", augment="crop")
    assert set(AUGMENTATIONS) == {"none", "shift", "flip", "shift_flip"}


def test_training_with_augmentation_is_seeded_and_changes_the_training_batches(tmp_path: Path) -> None:
    from spikeforge.train import train

    base = dict(dataset="digits", model="conv", channels=(4,), hidden=(16,), time_steps=2, epochs=2, batch_size=128)
    plain = train(TrainConfig(**base), tmp_path / "plain")  # type: ignore[arg-type]
    aug1 = train(TrainConfig(**base, augment="shift_flip", augment_shift=1), tmp_path / "a1")  # type: ignore[arg-type]
    aug2 = train(TrainConfig(**base, augment="shift_flip", augment_shift=1), tmp_path / "a2")  # type: ignore[arg-type]
    assert [h["loss"] for h in aug1.history] == [h["loss"] for h in aug2.history]  # deterministic for its seed
    assert [h["loss"] for h in aug1.history] != [h["loss"] for h in plain.history]  # the data did change
    assert TrainConfig.from_dict({k: v for k, v in TrainConfig().to_dict().items() if "augment" not in k}).augment == "none"
