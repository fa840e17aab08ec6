"""Training of spiking classifiers: configuration and name validation (:mod:`.config`, :mod:`.choices`),
model builders (:mod:`.models`), the training loop (:mod:`.loop`), evaluation (:mod:`.evaluate`,
:mod:`.saved`), checkpoints (:mod:`.checkpoint`) and data parallelism (:mod:`.distributed`).

The public names are re-exported here and by the documented modules :mod:`spikeforge.train`,
:mod:`spikeforge.models` and :mod:`spikeforge.distributed`.
"""

from spikeforge.training.config import TrainConfig
from spikeforge.training.loop import RUN_FILES, Callback, TrainResult, load_splits, train
from spikeforge.training.models import SNNClassifier, build_conv, build_mlp, build_model
from spikeforge.training.saved import evaluate, evaluate_checkpoint, load_checkpoint

__all__ = [
    "TrainConfig",
    "Callback",
    "TrainResult",
    "train",
    "evaluate",
    "load_checkpoint",
    "evaluate_checkpoint",
    "load_splits",
    "RUN_FILES",
    "SNNClassifier",
    "build_mlp",
    "build_conv",
    "build_model",
]
