"""ANN-to-SNN conversion: Rueckauer et al. (2017) percentile normalisation and Bu et al. (2022) QCFS.

Usage::

    from spikeforge.conversion import QCFS, convert, accuracy_over_time
    snn = convert(ann, x_calib, method="rueckauer", percentile=99.9)   # or method="qcfs"
    snn4 = convert(qcfs_ann, x_calib, method="qcfs", correction="bias", correction_steps=4)  # low-T offsets
    out_seq, states = snn(snn.encode(x, 64))                          # [64, B, K]
    curve = accuracy_over_time(snn, x_test, y_test, steps=(1, 2, 4, 8, 16, 32, 64, 128, 256))

Small ANNs to convert and their training loop live in :mod:`spikeforge.training.ann`; the
``spikeforge convert`` command in :mod:`spikeforge.cli.convert`.
"""

from spikeforge.conversion.calibrate import calibrate_scales, observe_activations, percentile
from spikeforge.conversion.convert import METHODS, activation_nodes, convert, prepare
from spikeforge.conversion.correct import CORRECTIONS, GRANULARITIES, correct_offsets
from spikeforge.conversion.diagnostics import (
    DEFAULT_STEPS,
    AccuracyCurve,
    LayerError,
    accuracy_over_time,
    layer_errors,
)
from spikeforge.conversion.fold import (
    SUPPORTED_FUNCTIONS,
    SUPPORTED_METHODS,
    SUPPORTED_MODULES,
    UnsupportedLayerError,
    canonicalize,
    fold_batchnorm,
    fold_bn_into,
    trace,
)
from spikeforge.conversion.qcfs import QCFS, floor_ste, qcfs
from spikeforge.conversion.snn import INPUT_MODES, ConvertedSNN, SNNRun
from spikeforge.conversion.spiking import MaxPoolGateState, SpikingActivation, SpikingMaxPool

__all__ = [
    "convert",
    "prepare",
    "activation_nodes",
    "METHODS",
    "INPUT_MODES",
    "ConvertedSNN",
    "SNNRun",
    "SpikingActivation",
    "SpikingMaxPool",
    "MaxPoolGateState",
    "QCFS",
    "qcfs",
    "floor_ste",
    "trace",
    "canonicalize",
    "fold_batchnorm",
    "fold_bn_into",
    "UnsupportedLayerError",
    "SUPPORTED_MODULES",
    "SUPPORTED_FUNCTIONS",
    "SUPPORTED_METHODS",
    "correct_offsets",
    "CORRECTIONS",
    "GRANULARITIES",
    "calibrate_scales",
    "observe_activations",
    "percentile",
    "accuracy_over_time",
    "layer_errors",
    "AccuracyCurve",
    "LayerError",
    "DEFAULT_STEPS",
]
