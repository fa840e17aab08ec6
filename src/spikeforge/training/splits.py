"""The train / validation / test tensors of a run's dataset."""

from __future__ import annotations

import torch
from torch import Tensor

from spikeforge.training.config import TrainConfig

__all__ = ["load_splits", "check_input_shape"]


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


def check_input_shape(x: torch.Tensor, config: TrainConfig, where: str) -> None:
    """``ValueError`` when the samples ``x`` do not have the shape of ``config.dataset``'s inputs (found before a
    layer fails with a backend error such as oneDNN's "could not create a primitive descriptor")."""
    from spikeforge.data import dataset_info

    want = tuple(int(d) for d in dataset_info(config.dataset).input_shape)
    have = tuple(int(d) for d in x.shape[1:])
    if have != want:
        raise ValueError(
            f"{where}: the data's samples have shape {list(have)} but the model of dataset {config.dataset!r} "
            f"takes {list(want)}; give the --data-dir of that dataset's files"
        )
