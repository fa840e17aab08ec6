"""Training-time data augmentation of image samples: random shifts and horizontal flips (issue 20).

Both act on a batch ``x [B, ..., H, W]`` of image-like samples (static images ``[B, C, H, W]``, or event frames
``[B, T, C, H, W]``, where every frame of a sample gets the same transform), one independent draw per sample from
the trainer's generator, so a run stays deterministic for its seed and resumable:

* ``"shift"``: translate by ``(dy, dx)``, each uniform on ``{-s, ..., s}`` (``s = augment_shift`` pixels); pixels
  moved in from outside are 0. Equals zero-padding by ``s`` and cropping back at a random offset (the
  "random crop with padding" of the CIFAR / Fashion-MNIST recipes).
* ``"flip"``: mirror left-right with probability 1/2.
* ``"shift_flip"``: the shift, then the flip (the draws are made in this order: shifts, then flips).

Validation and test samples are never augmented. The names live in :data:`AUGMENTATIONS`; datasets whose
samples are not images (e.g. Yin-Yang's 4 features) are refused by :func:`check_augment`.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["AUGMENTATIONS", "augment_batch", "check_augment"]

#: Accepted ``TrainConfig.augment`` names.
AUGMENTATIONS: tuple[str, ...] = ("none", "shift", "flip", "shift_flip")


def check_augment(augment: object, shift: object, dataset: str | None = None) -> None:
    """Validate ``augment`` / ``augment_shift`` (and, given ``dataset``, that its samples are images)."""
    if not isinstance(augment, str) or augment not in AUGMENTATIONS:
        raise ValueError(f"TrainConfig.augment must be one of {', '.join(AUGMENTATIONS)}, got {augment!r}")
    if isinstance(shift, bool) or not isinstance(shift, int) or shift < 0:
        raise ValueError(f"TrainConfig.augment_shift must be an int >= 0 (pixels), got {shift!r}")
    if augment == "none" or dataset is None:
        return
    from spikeforge.data import dataset_info
    from spikeforge.data import list_datasets

    if dataset not in list_datasets():
        raise ValueError(f"TrainConfig.augment={augment!r} applies to image datasets; {dataset!r} is a text corpus")
    shape = dataset_info(dataset).input_shape
    if len(shape) < 3:
        raise ValueError(
            f"TrainConfig.augment={augment!r} needs image samples [C, H, W] (or frames [T, C, H, W]); dataset "
            f"{dataset!r} has samples of shape {tuple(shape)}: use augment='none'"
        )


def _shift(x: Tensor, s: int, generator: torch.Generator | None) -> Tensor:
    b, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    d = torch.randint(-s, s + 1, (2, b), generator=generator)
    padded = torch.nn.functional.pad(x, (s, s, s, s))
    rows = torch.arange(h).unsqueeze(0) + (s - d[0]).unsqueeze(1)  # output row r reads padded row r + s - dy
    cols = torch.arange(w).unsqueeze(0) + (s - d[1]).unsqueeze(1)
    lead = padded.shape[1:-2]
    flat = padded.reshape(b, -1, h + 2 * s, w + 2 * s)
    bi = torch.arange(b).view(b, 1, 1)
    out = flat.permute(0, 2, 3, 1)[bi, rows.view(b, h, 1), cols.view(b, 1, w)]  # [B, H, W, rest]
    return out.permute(0, 3, 1, 2).reshape(b, *lead, h, w).contiguous()


def augment_batch(x: Tensor, augment: str, shift: int = 2, generator: torch.Generator | None = None) -> Tensor:
    """The augmented copy of a training batch ``x [B, ..., H, W]`` (``augment`` in :data:`AUGMENTATIONS`;
    ``"none"`` returns ``x`` itself)."""
    check_augment(augment, shift)
    if augment == "none":
        return x
    if x.dim() < 3:
        raise ValueError(f"augment={augment!r} needs image batches [B, ..., H, W], got shape {tuple(x.shape)}")
    if augment in ("shift", "shift_flip") and shift > 0 and x.shape[0] > 0:
        x = _shift(x, shift, generator)
    if augment in ("flip", "shift_flip"):
        mirror = torch.rand(x.shape[0], generator=generator) < 0.5
        x = torch.where(mirror.view(-1, *([1] * (x.dim() - 1))), x.flip(-1), x)
    return x
