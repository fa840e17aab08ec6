"""Ready-made spiking classifiers (public names; implemented in :mod:`spikeforge.training.models`).

See :mod:`spikeforge.training.models` for the encoding -> network -> decoding structure. Code inside the
package imports :mod:`spikeforge.training.models`, never this module.
"""

from spikeforge.training.models import (
    DECODINGS,
    DEFAULT_NEURON_KWARGS,
    ENCODINGS,
    MODEL_BUILDERS,
    SNNClassifier,
    build_conv,
    build_mlp,
    build_model,
    list_decodings,
    list_encodings,
    list_models,
)

__all__ = [
    "ENCODINGS",
    "DECODINGS",
    "DEFAULT_NEURON_KWARGS",
    "MODEL_BUILDERS",
    "build_mlp",
    "build_conv",
    "build_model",
    "list_models",
    "list_encodings",
    "list_decodings",
    "SNNClassifier",
]
