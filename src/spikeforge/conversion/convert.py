r"""``convert(ann, calibration_data, *, method=...)``: the staged ANN-to-SNN converter.

Stages, each a small function: ``trace`` (deep copy, eval, ``torch.fx``) -> ``canonicalize``
(validate, remove Dropout/Identity, ReLU functions to modules) -> ``fold_batchnorm`` ->
``scales`` (calibration observers for ``"rueckauer"``, trained ``lambda`` for ``"qcfs"``) ->
``replace`` (ReLU/QCFS -> IF, MaxPool -> gated spiking max-pool) -> :class:`ConvertedSNN`.

Methods:

* ``"rueckauer"`` (Rueckauer et al. 2017): each activation's scale ``lambda_l`` is the robust
  ``percentile``-th percentile (default 99.9; 100 = max-norm) of its activations on the calibration
  data; IF threshold ``lambda_l``, membrane starts at ``v_init * lambda_l`` (default 0).
* ``"qcfs"`` (Bu et al. 2022): the ANN uses :class:`~spikeforge.conversion.qcfs.QCFS` activations;
  each IF neuron takes that layer's trained ``lambda`` as threshold and starts at ``lambda / 2``
  (``v_init = 0.5``). No calibration data is needed (pass ``None``).

Optional stage ``correct`` (off by default, i.e. paper-faithful): ``correction="bias"`` or
``"membrane"`` removes each layer's mean conversion error at ``T = correction_steps`` with
calibration data (Li et al., ICML 2021; see :mod:`spikeforge.conversion.correct`). It is what closes
most of the QCFS gap at ``T = 4`` on small CNNs, where the unevenness error of Bu et al. biases deeper
layers' rates upwards.

The caller's ANN is never modified (the converter works on a deep copy).
"""

from __future__ import annotations

from typing import Any
from typing import Literal
from typing import cast

import torch
from torch import fx
from torch import nn

from spikeforge.conversion.calibrate import calibrate_scales
from spikeforge.conversion.calibrate import check_scales
from spikeforge.conversion.correct import CORRECTIONS
from spikeforge.conversion.correct import GRANULARITIES
from spikeforge.conversion.correct import correct_offsets
from spikeforge.conversion.fold import ACTIVATIONS
from spikeforge.conversion.fold import canonicalize
from spikeforge.conversion.fold import fold_batchnorm
from spikeforge.conversion.fold import trace
from spikeforge.conversion.qcfs import QCFS
from spikeforge.conversion.snn import INPUT_MODES
from spikeforge.conversion.snn import ConvertedSNN
from spikeforge.conversion.spiking import SpikingActivation
from spikeforge.conversion.spiking import SpikingMaxPool

__all__ = ["convert", "METHODS", "prepare", "activation_nodes"]

METHODS: tuple[str, ...] = ("rueckauer", "qcfs")


def prepare(ann: nn.Module) -> fx.GraphModule:
    """Stages 1-3: trace a copy of ``ann``, canonicalise it and fold BatchNorm. Returns the ANN graph."""
    return fold_batchnorm(canonicalize(trace(ann)))


def activation_nodes(gm: fx.GraphModule) -> list[str]:
    """Qualified names of the activation modules (ReLU/QCFS) of a canonical graph, in graph order."""
    return [
        str(n.target)
        for n in gm.graph.nodes
        if n.op == "call_module" and isinstance(gm.get_submodule(n.target), ACTIVATIONS)
    ]


def _scales(
    gm: fx.GraphModule, names: list[str], data: Any, method: str, percentile: float, batch_size: int
) -> dict[str, float]:
    if method == "qcfs":
        bad = [n for n in names if not isinstance(gm.get_submodule(n), QCFS)]
        if bad:
            raise ValueError(
                f"method='qcfs' needs QCFS activations, but {bad} are ReLU; train the ANN with "
                "spikeforge.conversion.QCFS in place of ReLU, or use method='rueckauer'"
            )
        return {n: float(cast(QCFS, gm.get_submodule(n)).threshold.detach()) for n in names}  # all QCFS: checked
    if data is None:
        raise ValueError("method='rueckauer' needs calibration_data (a tensor [N, ...] of training inputs)")
    return calibrate_scales(gm, data, names, percentile_value=percentile, batch_size=batch_size)


def _replace(gm: fx.GraphModule, scales: dict[str, float], v_init: float) -> fx.GraphModule:
    for node in gm.graph.nodes:
        if node.op != "call_module":
            continue
        mod = gm.get_submodule(node.target)
        if isinstance(mod, ACTIVATIONS):
            gm.add_submodule(node.target, SpikingActivation(mod, scales[str(node.target)], v_init=v_init))
        elif isinstance(mod, (nn.MaxPool1d, nn.MaxPool2d)):
            gm.add_submodule(node.target, SpikingMaxPool(mod))
    gm.recompile()
    return gm


def convert(
    ann: nn.Module,
    calibration_data: Any = None,
    *,
    method: Literal["rueckauer", "qcfs"] = "rueckauer",
    percentile: float = 99.9,
    input: Literal["analog", "rate"] = "analog",
    v_init: float | None = None,
    batch_size: int = 256,
    correction: Literal["none", "bias", "membrane"] = "none",
    correction_steps: int | None = None,
    correction_iterations: int = 1,
    correction_granularity: Literal["channel", "layer", "neuron"] = "channel",
    generator: torch.Generator | None = None,
) -> ConvertedSNN:
    """Convert a ReLU/QCFS ANN into a rate-coded IF spiking network.

    Args:
        ann: a ``torch.fx``-traceable model made of the supported layers
            (see :data:`~spikeforge.conversion.fold.SUPPORTED_MODULES`): sequential or residual.
        calibration_data: inputs for ``"rueckauer"`` scales: a tensor ``[N, ...]``, a dataset with
            ``.x``, or an iterable of batches / ``(x, y)`` pairs. For ``"qcfs"`` only used by
            ``correction`` (else it may be None).
        method: ``"rueckauer"`` (percentile normalisation) or ``"qcfs"`` (trained thresholds).
        percentile: ``p`` in (0, 100] for ``"rueckauer"``; 100 is max-norm.
        input: ``"analog"`` current injection or ``"rate"`` Bernoulli spikes (see
            :meth:`ConvertedSNN.encode`).
        v_init: initial membrane as a fraction of each threshold; default 0 for ``"rueckauer"`` and
            0.5 for ``"qcfs"`` (the paper's ``lambda / 2``).
        batch_size: calibration batch size when ``calibration_data`` is a tensor.
        correction: ``"none"`` (default; the plain Rueckauer / Bu et al. conversion), ``"bias"`` or
            ``"membrane"``: per-layer mean-error offsets computed on ``calibration_data`` (training
            inputs, also needed for ``"qcfs"`` then), see :func:`~spikeforge.conversion.correct.correct_offsets`.
        correction_steps: the ``T`` the correction is computed for (required with a correction).
        correction_iterations: passes of the layer-by-layer correction (1 = Li et al. 2021).
        correction_granularity: one offset per ``"channel"`` (default), ``"layer"`` or ``"neuron"``.
        generator: RNG for rate-coded input during the correction.
    Returns:
        A :class:`ConvertedSNN`; ``snn(x_seq)`` maps ``[T, B, ...]`` to ``([T, B, K], states)``.
    Raises:
        UnsupportedLayerError: an unsupported module/function, named, with the supported list.
        ValueError: bad method/percentile/input, or ReLU activations with ``method="qcfs"``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if input not in INPUT_MODES:
        raise ValueError(f"input must be one of {INPUT_MODES}, got {input!r}")
    if not 0.0 < float(percentile) <= 100.0:
        raise ValueError(f"percentile must lie in (0, 100] (100 = max-norm), got {percentile!r}")
    if v_init is None:
        v_init = 0.5 if method == "qcfs" else 0.0
    if not 0.0 <= float(v_init) < 1.0:
        raise ValueError(f"v_init is a fraction of the threshold and must lie in [0, 1), got {v_init!r}")
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
    if correction_granularity not in GRANULARITIES:
        raise ValueError(f"correction_granularity must be one of {GRANULARITIES}, got {correction_granularity!r}")
    if correction != "none":
        if calibration_data is None:
            raise ValueError(
                f"correction={correction!r} needs calibration_data (training inputs [N, ...]); "
                "pass some, or use correction='none'"
            )
        if isinstance(correction_steps, bool) or not isinstance(correction_steps, int) or correction_steps < 1:
            raise ValueError(
                f"correction={correction!r} needs correction_steps, the int T >= 1 you will run at; "
                f"got {correction_steps!r}"
            )
    gm = prepare(ann)
    names = activation_nodes(gm)
    scales = _scales(gm, names, calibration_data, method, percentile, batch_size)
    check_scales(scales)
    snn = ConvertedSNN(_replace(gm, scales, float(v_init)), input_mode=input, method=method)
    if correction == "none":
        return snn
    return correct_offsets(
        snn,
        calibration_data,
        int(correction_steps),  # type: ignore[arg-type]
        mode=correction,
        iterations=correction_iterations,
        granularity=correction_granularity,
        batch_size=batch_size,
        generator=generator,
    )
