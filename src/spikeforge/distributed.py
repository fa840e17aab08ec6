"""Data-parallel training helpers for ``torchrun`` (public names; implemented in
:mod:`spikeforge.training.distributed`). Code inside the package imports :mod:`spikeforge.training.distributed`."""

from spikeforge.training.distributed import (
    DistContext,
    all_reduce_sum,
    barrier,
    cleanup,
    env_ranks,
    setup,
    shard,
    sync_buffers,
    wrap_model,
)

__all__ = [
    "DistContext",
    "env_ranks",
    "setup",
    "cleanup",
    "barrier",
    "all_reduce_sum",
    "shard",
    "wrap_model",
    "sync_buffers",
]
