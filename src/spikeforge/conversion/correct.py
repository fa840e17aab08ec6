r"""Post-conversion offset correction for low latency ("SNN calibration", light pipeline).

Li, Deng, Dong, Gong, Gu, "A free lunch from ANN: towards efficient, accurate spiking neural networks
calibration", ICML 2021, observe that after conversion the error of layer ``l`` run for a short time
``T`` has a non-zero *mean* and remove it with data: bias correction (BC) shifts the layer's bias by
the expected error, potential correction (PC) shifts the initial membrane instead; both are computed
layer after layer, so that layer ``l`` is corrected with layers ``< l`` already corrected.

What is implemented (our formulation of that idea). For activation layer ``l`` with threshold
``lambda_l``, ANN activation ``a_l`` (the source network, BatchNorm folded) and SNN rate
``r_l = lambda_l n_l / T`` (``n_l`` spikes in ``T`` steps), all on calibration inputs,

.. math::

    \mu_l = \mathbb{E}\,[\,a_l - r_l\,] \quad \text{(mean over samples, and over positions per granularity)},

    \text{bias:}\ \ \delta_{I,l} \mathrel{+}= \mu_l, \qquad
    \text{membrane:}\ \ \delta_{v,l} \mathrel{+}= T\,\mu_l ,

where ``delta_I`` is a constant extra input current per step and ``delta_v`` an extra initial
membrane (see :class:`~spikeforge.conversion.spiking.SpikingActivation`). ``T mu_l`` is the charge
the bias shift would add over the ``T`` calibration steps, delivered at ``t = 0``. In the linear
range of an IF neuron (``0 < I < lambda``) a current shift ``mu`` moves ``lambda n / T`` by ``mu`` on
average, so one pass removes the first-order mean error; ``iterations > 1`` repeats the pass over
all layers, adding to the shifts (our extension: the correction is first order and layers interact).

Why the mean error is not zero for QCFS at small ``T``: Bu et al. (2022) show the *expected* error
vanishes for ``phi = 1/2`` when input spikes arrive evenly in time; with uneven arrival (the
"unevenness error", their section 4.3) an IF neuron that has already fired cannot take a spike back
when later input is negative, so the SNN rate of deeper layers is biased upwards, more so the deeper
the layer (``layer_errors`` shows it; ``benchmarks/RESULTS.md``, "Conversion"). The correction is
tuned for the ``num_steps`` it was computed at; evaluate at that ``T`` (other ``T`` still work, with
a slightly mismatched offset).
"""

from __future__ import annotations

import copy
from typing import Any
from typing import Literal

import torch
from torch import Tensor

from spikeforge.conversion.calibrate import iter_calibration
from spikeforge.conversion.snn import ConvertedSNN

__all__ = ["CORRECTIONS", "GRANULARITIES", "correct_offsets"]

CORRECTIONS: tuple[str, ...] = ("none", "bias", "membrane")
GRANULARITIES: tuple[str, ...] = ("channel", "layer", "neuron")


def _reduce(d: Tensor, granularity: str) -> tuple[Tensor, int]:
    """Sum of ``d`` ``[B, C, ...]`` over the averaged dims, kept broadcastable to ``[C, ...]``; and the count."""
    if granularity == "neuron":
        return d.sum(0), d.shape[0]
    if granularity == "layer":
        return d.sum(), d.numel()
    dims = [0, *range(2, d.dim())]
    count = d.numel() // d.shape[1] if d.dim() >= 2 else d.numel()
    return d.sum(dims, keepdim=True).squeeze(0), count


@torch.no_grad()
def correct_offsets(
    snn: ConvertedSNN,
    data: Any,
    num_steps: int,
    *,
    mode: Literal["bias", "membrane"] = "bias",
    iterations: int = 1,
    granularity: Literal["channel", "layer", "neuron"] = "channel",
    batch_size: int = 256,
    generator: torch.Generator | None = None,
) -> ConvertedSNN:
    """Return a copy of ``snn`` whose layers carry the mean-error offsets of the module docstring.

    Args:
        snn: a converted network (left unchanged).
        data: calibration inputs (training data, not test data): a tensor ``[N, ...]``, a dataset with
            ``.x`` or an iterable of batches / ``(x, y)`` pairs.
        num_steps: ``T`` the offsets are computed for (the latency you will run at).
        mode: ``"bias"`` (constant current ``delta_I``) or ``"membrane"`` (initial membrane ``delta_v``).
        iterations: passes over all layers (1 = Li et al.'s single layer-by-layer pass).
        granularity: one offset per ``"channel"`` (dim 1; Li et al.), per ``"layer"`` or per ``"neuron"``.
        batch_size: batch size when ``data`` is a tensor.
        generator: RNG for rate-coded input.
    Returns:
        A new :class:`ConvertedSNN`; its ANN view (:meth:`~ConvertedSNN.ann_forward`) is unchanged.
    """
    if not isinstance(snn, ConvertedSNN):
        raise TypeError(f"snn must be a ConvertedSNN (from spikeforge.conversion.convert), got {type(snn).__name__}")
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps must be an int >= 1 (the T to correct for), got {num_steps!r}")
    if mode not in ("bias", "membrane"):
        raise ValueError(f"mode must be 'bias' or 'membrane', got {mode!r}")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations must be an int >= 1, got {iterations!r}")
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
    batches = list(iter_calibration(data, batch_size=batch_size))
    new = copy.deepcopy(snn)
    for _ in range(iterations):
        for name in new.activation_names:
            mod = new._activation(name)
            total: Tensor | None = None
            count = 0
            for xb in batches:
                _, acts = new.ann_forward(xb)
                run = new.run(new.encode(xb, num_steps, generator=generator))
                d = acts[name] - mod.threshold * run.spike_counts[name] / num_steps
                s, c = _reduce(d, granularity)
                total = s if total is None else total + s
                count += c
            if total is None:  # iter_calibration yields at least one batch or raises
                raise RuntimeError("internal error: no calibration batch")
            mu = total / count
            if mode == "bias":
                mod.current_shift = mu if mod.current_shift is None else mod.current_shift + mu
            else:
                dv = num_steps * mu
                mod.membrane_shift = dv if mod.membrane_shift is None else mod.membrane_shift + dv
    return new
