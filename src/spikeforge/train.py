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

from spikeforge import training as _impl
from spikeforge.training import (
    RUN_FILES,
    Callback,
    TrainConfig,
    TrainResult,
    evaluate,
    evaluate_checkpoint,
    load_checkpoint,
    load_splits,
    train,
)

__all__ = [name for name in _impl.__all__ if name in globals()]
