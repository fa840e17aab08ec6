"""The train / validation / test tensors of a run's dataset."""

from __future__ import annotations

import torch
from torch import Tensor

from spikeforge.training.config import TrainConfig

__all__ = ["load_splits"]


def load_splits(config: TrainConfig, data_dir: str | None = None) -> dict[str, tuple[Tensor, Tensor]]:
    """``{"train", "validation", "test"}`` -> ``(x, y)`` CPU tensors of ``config.dataset``.

    A dataset without a ``"validation"`` split gives up the ``val_fraction`` share of its training split
    (a fixed permutation with seed 0, so the split is the same for every ``config.seed``).
    """
    from spikeforge.data import dataset_info
    from spikeforge.data import get_dataset

    info = dataset_info(config.dataset)
    where = config.data_dir if data_dir is None else data_dir
    train = get_dataset(config.dataset, "train", data_dir=where)
    test = get_dataset(config.dataset, "test", data_dir=where)
    x, y = train.x, train.y
    if "validation" in info.split_names:
        val = get_dataset(config.dataset, "validation", data_dir=where)
        xv, yv = val.x, val.y
    else:
        perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
        n_val = max(1, round(config.val_fraction * len(y)))
        xv, yv = x[perm[:n_val]], y[perm[:n_val]]
        x, y = x[perm[n_val:]], y[perm[n_val:]]
    return {"train": (x, y), "validation": (xv, yv), "test": (test.x, test.y)}
