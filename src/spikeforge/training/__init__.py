"""Implementation of :mod:`spikeforge.train` (configuration, checkpoints, evaluation, the training loop).

Import the public names from :mod:`spikeforge.train`; the submodules here are private."""
