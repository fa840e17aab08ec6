"""Ready-made spiking classifiers (public names; implemented in :mod:`spikeforge.training.models`).

See :mod:`spikeforge.training.models` for the encoding -> network -> decoding structure. Code inside the
package imports :mod:`spikeforge.training.models`, never this module.
"""

from spikeforge.training.models import DECODINGS
from spikeforge.training.models import DEFAULT_NEURON_KWARGS
from spikeforge.training.models import ENCODINGS
from spikeforge.training.models import MODEL_BUILDERS
from spikeforge.training.models import SNNClassifier
from spikeforge.training.models import build_conv
from spikeforge.training.models import build_mlp
from spikeforge.training.models import build_model
from spikeforge.training.models import list_decodings
from spikeforge.training.models import list_encodings
from spikeforge.training.models import list_models

__all__ = [
    "ENCODINGS", "DECODINGS", "DEFAULT_NEURON_KWARGS", "MODEL_BUILDERS", "build_mlp", "build_conv", "build_model",
    "list_models", "list_encodings", "list_decodings", "SNNClassifier",
]  # fmt: skip
