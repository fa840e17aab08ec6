"""Refuse runs that cannot fit in memory before they allocate: a clear error instead of an allocator's traceback.

:func:`check_buildable` is what :func:`spikeforge.train.train` checks before it reads data or writes anything:
the model builds (an unknown ``neuron_kwargs`` key is found here), it holds at most
:data:`~spikeforge.training.checked.MAX_PARAMETERS` values (refused before the large allocation), and one batch
of training and of evaluation fits in memory.

A spiking network keeps a ``[T, B, ...]`` activation per layer: ``--time-steps 100000000`` with the default batch
asks for terabytes. :func:`check_run_memory` compares a lower bound of one batch's activations with the machine's
physical memory (:func:`physical_memory`), the cap named in its message.
"""

from __future__ import annotations

import math
import os
from typing import Any

__all__ = ["activation_bytes", "physical_memory", "check_run_memory", "check_buildable"]


def physical_memory() -> int:
    """Bytes of physical memory of this machine (``os.sysconf``); 2**40 where it cannot be read."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return 2**40


def activation_bytes(config: Any, dataset_info: Any, batch_size: int) -> int:
    """A lower bound of the bytes of one batch's float32 activations: ``4 T B`` times the input's values plus one
    value per hidden unit, conv channel and class (every layer holds at least that much per sample and step)."""
    per_step = math.prod(int(d) for d in getattr(dataset_info, "step_shape", dataset_info.input_shape))
    per_step += sum(int(h) for h in config.hidden) + int(dataset_info.num_classes)
    if config.model == "conv":
        per_step += sum(int(c) for c in config.channels)
    return 4 * int(config.time_steps) * int(batch_size) * per_step


def check_run_memory(config: Any, dataset_info: Any, batch_size: int, what: str) -> None:
    """``ValueError`` naming ``time_steps`` and the batch size when one batch of ``what`` (e.g. ``"training"``)
    would need more than this machine's physical memory."""
    need, have = activation_bytes(config, dataset_info, batch_size), physical_memory()
    if need > have:
        raise ValueError(
            f"{what} would need at least {need / 2**30:,.1f} GiB for one batch of {batch_size} samples x "
            f"{config.time_steps} time steps, more than this machine's {have / 2**30:,.1f} GiB of memory (the cap); "
            "lower time_steps (--time-steps) or the batch size"
        )


def check_buildable(config: Any, dataset_info: Any) -> None:
    """``ValueError`` (one line naming the fix) unless ``config``'s model builds with at most
    :data:`~spikeforge.training.checked.MAX_PARAMETERS` values and one batch of training and of evaluation fits in
    this machine's memory. Building runs with torch's random state saved and restored."""
    import torch

    from spikeforge.training.checked import MAX_PARAMETERS
    from spikeforge.training.checked import AllocationBudget
    from spikeforge.training.checked import BudgetExceeded
    from spikeforge.training.models import build_model

    check_run_memory(config, dataset_info, config.batch_size, "training")
    check_run_memory(config, dataset_info, config.eval_batch_size, "evaluation")
    try:
        with torch.random.fork_rng(devices=[]), AllocationBudget(MAX_PARAMETERS):
            build_model(config, dataset_info)
    except BudgetExceeded:
        raise ValueError(
            f"the model of this config would hold more than MAX_PARAMETERS = {MAX_PARAMETERS:,} values "
            "(spikeforge.training.checked.MAX_PARAMETERS); use smaller hidden widths or channels"
        ) from None
    except TypeError as err:  # e.g. an unknown neuron_kwargs key
        raise ValueError(" ".join(str(err).split())) from None
