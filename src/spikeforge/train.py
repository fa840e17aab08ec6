"""Training, evaluation and checkpoints of spiking classifiers (public names; implemented in :mod:`spikeforge.training`).

::

    from spikeforge.train import TrainConfig, train, evaluate, load_checkpoint, evaluate_checkpoint

    result = train(TrainConfig(), "runs/yinyang")        # the tuned Yin-Yang defaults
    print(result.test_acc, result.history[-1]["firing_rates"])
    model, config, info = load_checkpoint("runs/yinyang/best.pt")
    evaluate_checkpoint("runs/yinyang/best.pt", "test")  # {"accuracy", "loss", "firing_rates", ...}

Run data-parallel with ``torchrun --standalone --nproc_per_node=N ...`` (see :mod:`spikeforge.distributed`).
Code inside the package imports :mod:`spikeforge.training`, never this module.
"""

from spikeforge.training.config import TrainConfig
from spikeforge.training.loop import RUN_FILES
from spikeforge.training.loop import Callback
from spikeforge.training.loop import TrainResult
from spikeforge.training.loop import load_splits
from spikeforge.training.loop import train
from spikeforge.training.saved import evaluate
from spikeforge.training.saved import evaluate_checkpoint
from spikeforge.training.saved import load_checkpoint

__all__ = [
    "TrainConfig", "Callback", "TrainResult", "train", "evaluate", "load_checkpoint", "evaluate_checkpoint",
    "load_splits", "RUN_FILES",
]  # fmt: skip
