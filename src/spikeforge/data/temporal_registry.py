"""The temporal tasks of :mod:`spikeforge.data.temporal_tasks` that are classification tasks, as registered
sequence datasets (``DatasetInfo(sequence=True)``): ``x [N, T, channels]`` spike trains, ``y [N]`` labels.

========================= =========== ======= ======================== ===========================================
name                      input_shape classes splits (train/val/test)  data
========================= =========== ======= ======================== ===========================================
``delayed_coincidence``   (64, 4)     4       2000 / 500 / 1000        generated, seeds 0 / 1 / 2
========================= =========== ======= ======================== ===========================================

Train it from the command line with a model that has delays (the ``sequence`` encoding and ``--time-steps 64``
are filled in by the command line)::

    spikeforge train --dataset delayed_coincidence --model delay-mlp --hidden 32 --epochs 12 --batch-size 100 \\
        --lr 0.03 --neuron-kwargs '{"tau_mem": 1.0, "input_scaling": "none"}'

reaches 100 % test accuracy (seed 0, epoch 6 on), while ``--model mlp`` with the same options (no delays, time
constants of 1 step against 6 steps between the spikes) stays at 50 %, chance being 25 %.

The two other tasks of issue 16 are not classification tasks, so they are not registered (the trainer's loss is a
cross-entropy over class labels):

* **planted-delay recovery** (:func:`~spikeforge.data.temporal_tasks.make_planted_delays`) is a regression of a
  teacher's output current; a student is a single :class:`~spikeforge.synapses.DelayedLinear` whose delays are
  compared with the planted ones: :func:`spikeforge.training.delay_recipes.fit_planted_delays`.
* **spike-pattern association** (:func:`~spikeforge.data.temporal_tasks.make_spike_pattern`) has spike-train
  targets and a van Rossum loss: :func:`spikeforge.training.delay_recipes.fit_spike_pattern`.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from spikeforge.data.registry import DatasetInfo
from spikeforge.data.registry import register_dataset
from spikeforge.data.temporal_tasks import coincidence_patterns
from spikeforge.data.temporal_tasks import make_delayed_coincidence

__all__ = ["COINCIDENCE", "COINCIDENCE_SPLITS"]

#: The task's settings (:func:`~spikeforge.data.temporal_tasks.make_delayed_coincidence`): 4 classes, 4 channels,
#: 6 steps between the spikes of a pattern, 64 steps per sample; chance level 25 %.
COINCIDENCE: dict[str, int] = {"num_classes": 4, "channels": 4, "gap": 6, "time_steps": 64}
#: ``split -> (size, seed)``: independent draws per split.
COINCIDENCE_SPLITS: dict[str, tuple[int, int]] = {"train": (2000, 0), "validation": (500, 1), "test": (1000, 2)}


def _class_names() -> tuple[str, ...]:
    """Each class named by the order in which its channels fire, e.g. ``"c0<c1<c2<c3"``."""
    offsets = coincidence_patterns(COINCIDENCE["num_classes"], COINCIDENCE["channels"], COINCIDENCE["gap"])
    return tuple("<".join(f"c{int(i)}" for i in row.argsort()) for row in offsets)


@register_dataset(
    DatasetInfo(
        name="delayed_coincidence",
        input_shape=(COINCIDENCE["time_steps"], COINCIDENCE["channels"]),
        num_classes=COINCIDENCE["num_classes"],
        splits=tuple((s, n) for s, (n, _) in COINCIDENCE_SPLITS.items()),
        description=(
            "Delayed coincidence (issue 16): 64 steps x 4 input channels, each channel fires one spike; the 4 "
            "classes differ only in the order of the channels (a permutation of the offsets 0, 6, 12, 18 after a "
            "random start), so spike counts and inter-spike intervals carry no class information. Chance 25 %; a "
            "network without delays whose time constants are well below 6 steps cannot realign the spikes (measured "
            "25-50 %), per-synapse delays that realign a class's spikes solve it (100 %). Generated on the fly "
            "(seeds 0 / 1 / 2)."
        ),
        source="spikeforge (generated; after the delay tasks of Hammouamri et al., ICLR 2024)",
        class_names=_class_names(),
        sequence=True,
    )
)
def _build_coincidence(split: str, data_dir: Path | None) -> tuple[Tensor, Tensor]:
    size, seed = COINCIDENCE_SPLITS[split]
    return make_delayed_coincidence(size, seed=seed, **COINCIDENCE)
