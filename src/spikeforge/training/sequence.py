"""Sequence datasets (``DatasetInfo.sequence``): the encoding and ``time_steps`` they need, checked once here (used by
:class:`~spikeforge.training.config.TrainConfig` through :mod:`~spikeforge.training.choices`, and by the command
line to fill them in when they are not given)."""

from __future__ import annotations

from typing import Any

__all__ = ["check_sequence_input", "sequence_defaults"]


def check_sequence_input(dataset: str, encoding: str, time_steps: int) -> None:
    """A sequence dataset (``DatasetInfo.sequence``) needs ``encoding="sequence"`` and ``time_steps`` equal to its
    ``T``; the ``"sequence"`` encoding is only for such datasets."""
    from spikeforge.data import dataset_info
    from spikeforge.data import list_datasets

    if dataset not in list_datasets():  # a text corpus (language models): no time steps of its own
        return
    info = dataset_info(dataset)
    if not info.sequence:
        if encoding == "sequence":
            raise ValueError(
                f"encoding 'sequence' is for datasets whose samples are sequences over time; dataset {dataset!r} "
                "has static samples: choose encoding 'constant', 'rate' or 'latency'"
            )
        return
    steps = info.input_shape[0]
    if encoding != "sequence" or time_steps != steps:
        raise ValueError(
            f"dataset {dataset!r} holds sequences of T={steps} steps: it needs encoding 'sequence' and "
            f"time_steps={steps} (got encoding {encoding!r}, time_steps={time_steps}); on the command line leave "
            "--encoding and --time-steps out or give --encoding sequence --time-steps " + str(steps)
        )


def sequence_defaults(dataset: object) -> dict[str, Any]:
    """The ``encoding`` and ``time_steps`` a sequence dataset needs (``{}`` for a static or unknown dataset): what
    the command line fills in when they are not given."""
    from spikeforge.data import dataset_info
    from spikeforge.data import list_datasets

    if not isinstance(dataset, str) or dataset not in list_datasets():
        return {}
    info = dataset_info(dataset)
    return {"encoding": "sequence", "time_steps": info.input_shape[0]} if info.sequence else {}
