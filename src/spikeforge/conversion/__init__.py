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

from spikeforge.conversion.calibrate import calibrate_scales
from spikeforge.conversion.calibrate import observe_activations
from spikeforge.conversion.calibrate import percentile
from spikeforge.conversion.convert import METHODS
from spikeforge.conversion.convert import activation_nodes
from spikeforge.conversion.convert import convert
from spikeforge.conversion.convert import prepare
from spikeforge.conversion.correct import CORRECTIONS
from spikeforge.conversion.correct import GRANULARITIES
from spikeforge.conversion.correct import correct_offsets
from spikeforge.conversion.diagnostics import DEFAULT_STEPS
from spikeforge.conversion.diagnostics import AccuracyCurve
from spikeforge.conversion.diagnostics import LayerError
from spikeforge.conversion.diagnostics import accuracy_over_time
from spikeforge.conversion.diagnostics import layer_errors
from spikeforge.conversion.fold import SUPPORTED_FUNCTIONS
from spikeforge.conversion.fold import SUPPORTED_METHODS
from spikeforge.conversion.fold import SUPPORTED_MODULES
from spikeforge.conversion.fold import UnsupportedLayerError
from spikeforge.conversion.fold import canonicalize
from spikeforge.conversion.fold import fold_batchnorm
from spikeforge.conversion.fold import fold_bn_into
from spikeforge.conversion.fold import trace
from spikeforge.conversion.qcfs import QCFS
from spikeforge.conversion.qcfs import floor_ste
from spikeforge.conversion.qcfs import qcfs
from spikeforge.conversion.snn import INPUT_MODES
from spikeforge.conversion.snn import ConvertedSNN
from spikeforge.conversion.snn import SNNRun
from spikeforge.conversion.spiking import MaxPoolGateState
from spikeforge.conversion.spiking import SpikingActivation
from spikeforge.conversion.spiking import SpikingMaxPool

__all__ = [
    "convert", "prepare", "activation_nodes", "METHODS", "INPUT_MODES", "ConvertedSNN", "SNNRun",
    "SpikingActivation", "SpikingMaxPool", "MaxPoolGateState", "QCFS", "qcfs", "floor_ste", "trace", "canonicalize",
    "fold_batchnorm", "fold_bn_into", "UnsupportedLayerError", "SUPPORTED_MODULES", "SUPPORTED_FUNCTIONS",
    "SUPPORTED_METHODS", "correct_offsets", "CORRECTIONS", "GRANULARITIES", "calibrate_scales",
    "observe_activations", "percentile", "accuracy_over_time", "layer_errors", "AccuracyCurve", "LayerError",
    "DEFAULT_STEPS",
]  # fmt: skip
