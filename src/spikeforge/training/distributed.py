"""Data-parallel training helpers for ``torchrun`` (PyTorch DDP; gloo on CPU, NCCL on GPU).

Launch the ordinary training entry point under ``torchrun``::

    torchrun --standalone --nproc_per_node=2 -m spikeforge train --epochs 5

:func:`setup` reads ``WORLD_SIZE`` / ``RANK`` / ``LOCAL_RANK`` (set by ``torchrun``), initialises the
default process group when it is not initialised yet, and picks the device. Every rank draws the
same permutation of the training set from the same seeded generator; :func:`shard` then gives rank
``r`` the samples ``r, r + W, r + 2W, ...`` of each *global* batch (what ``DistributedSampler`` does
per epoch), so a run on ``W`` ranks sees exactly the batches of a single-process run with the same
``batch_size``. Only rank 0 (:attr:`DistContext.is_main`) writes files and logs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor
from torch import nn

from spikeforge.training.choices import check_device_available

__all__ = [
    "DistContext", "env_ranks", "setup", "cleanup", "barrier", "all_reduce_sum", "shard", "wrap_model",
    "sync_buffers",
]  # fmt: skip


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in a (possibly single-process) data-parallel run.

    Attributes:
        rank / world_size / local_rank: as set by ``torchrun`` (0 / 1 / 0 when not distributed).
        device: the device this rank computes on.
        owns_group: True if :func:`setup` created the process group (then :func:`cleanup` destroys it).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} is not an integer; launch with torchrun") from None


def env_ranks() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from the ``torchrun`` environment variables (``(0, 1, 0)`` if unset)."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", rank)
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"inconsistent torchrun environment: RANK={rank}, WORLD_SIZE={world}")
    return rank, world, local


def setup(device: str = "cpu") -> DistContext:
    """Initialise data parallelism if launched by ``torchrun`` (``WORLD_SIZE > 1``), else a single process.

    ``device="cuda"`` under ``torchrun`` becomes ``cuda:LOCAL_RANK`` and uses NCCL; CPU runs use gloo.
    An already initialised default process group is reused (and not destroyed by :func:`cleanup`).
    """
    rank, world, local = env_ranks()
    dev = torch.device(check_device_available("device", device))
    if dev.type == "cuda":
        if world > 1:
            dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    if world == 1:
        return DistContext(device=dev)
    owns = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo", init_method="env://")
        owns = True
    if dist.get_world_size() != world or dist.get_rank() != rank:
        raise ValueError("the initialised process group disagrees with RANK/WORLD_SIZE; launch with torchrun")
    return DistContext(rank=rank, world_size=world, local_rank=local, device=dev, owns_group=owns)


def cleanup(ctx: DistContext) -> None:
    """Destroy the process group if :func:`setup` created it."""
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    """Wait for all ranks (no-op in a single process)."""
    if ctx.distributed:
        dist.barrier()


def all_reduce_sum(t: Tensor, ctx: DistContext) -> Tensor:
    """Sum ``t`` over ranks (returns ``t`` itself in a single process). Works on a copy on ``ctx.device``."""
    if not ctx.distributed:
        return t
    buf = t.detach().to(ctx.device, copy=True)
    dist.all_reduce(buf, op=dist.ReduceOp.SUM)
    return buf.to(t.device)


def shard(indices: Tensor, ctx: DistContext) -> Tensor:
    """This rank's share of a global batch: ``indices[rank::world_size]``."""
    if not ctx.distributed:
        return indices
    return indices[ctx.rank :: ctx.world_size]


def wrap_model(model: nn.Module, ctx: DistContext) -> nn.Module:
    """Wrap ``model`` in ``DistributedDataParallel`` when distributed (gradients are averaged over ranks)."""
    if not ctx.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def sync_buffers(model: nn.Module, ctx: DistContext) -> None:
    """Copy rank 0's buffers (e.g. BatchNorm running statistics) to every rank (no-op in one process).

    Each rank updates its running statistics from its own shard in the last training step, so they
    are made identical before evaluation and checkpointing.
    """
    if not ctx.distributed:
        return
    for buf in model.buffers():
        dist.broadcast(buf, src=0)
