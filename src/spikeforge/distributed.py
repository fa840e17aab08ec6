"""Data-parallel training helpers for ``torchrun`` (public names; implemented in
:mod:`spikeforge.training.distributed`). Code inside the package imports :mod:`spikeforge.training.distributed`."""

from spikeforge.training.distributed import DistContext
from spikeforge.training.distributed import all_reduce_sum
from spikeforge.training.distributed import barrier
from spikeforge.training.distributed import cleanup
from spikeforge.training.distributed import env_ranks
from spikeforge.training.distributed import setup
from spikeforge.training.distributed import shard
from spikeforge.training.distributed import sync_buffers
from spikeforge.training.distributed import wrap_model

__all__ = [
    "DistContext", "env_ranks", "setup", "cleanup", "barrier", "all_reduce_sum", "shard", "wrap_model",
    "sync_buffers",
]  # fmt: skip
