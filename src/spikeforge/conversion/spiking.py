r"""Spiking replacements used by the converter: IF activations and the gated spiking max-pool.

Both run on time-major ``[T, B, ...]`` sequences with an explicit state and return
``(out_seq, new_state)``; the converted network threads the states (see
:class:`~spikeforge.conversion.snn.ConvertedSNN`).

**Spiking activation.** A ReLU (or QCFS) with scale ``lambda`` becomes an IF neuron
(:class:`spikeforge.neurons.IF`) with threshold ``v_th = lambda``, reset by subtraction, initial
membrane ``v(0) = v_init * lambda`` and output spikes of amplitude ``lambda``:

.. math::

    v'_t = v_{t-1} + I_t, \quad z_t = H(v'_t - \lambda), \quad v_t = v'_t - \lambda z_t, \quad
    y_t = \lambda z_t .

Emitting ``lambda``-valued spikes keeps every tensor of the converted graph in the ANN's units. It
is exactly equivalent to Rueckauer's weight normalisation ``W_l <- W_l lambda_{l-1} / lambda_l``,
``b_l <- b_l / lambda_l`` with unit thresholds and unit spikes (divide every membrane by
``lambda_l``), and it lets residual additions work without matching scales across branches.
Spikes are counted as binary events ``z`` (one per threshold crossing).

*Threshold equality.* spikeforge spikes iff ``v > v_th`` (strict). Bu et al. (2022) and most
conversion code use ``v >= v_th``. The two differ only when the membrane lands exactly on the
threshold: e.g. a QCFS layer whose input puts ``x L / lambda + 1/2`` exactly on an integer ``k``
gives ``k`` levels in the ANN but ``k - 1`` spikes in ``T = L`` steps here. Such ties have measure
zero for real-valued weights and inputs but do occur with integer-valued inputs and weights.

**Spiking max-pool (gating rule).** Following the idea of Rueckauer et al. (2017, section 2.2.3),
each pooling window passes, at every step, the current input of the unit with the largest
*cumulative* input so far (including the current step); ties go to the first index in the window,
as in ``torch.nn.functional.max_pool2d``. For spike inputs this selects the unit with the highest
firing rate so far; for a constant analog input it is exactly the ANN's max-pool. The state is the
cumulative input ``acc`` (shape of one input step).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch import nn

from spikeforge._core.scan import scan
from spikeforge.neurons.if_ import IF
from spikeforge.neurons.if_ import IFState

__all__ = ["SpikingActivation", "SpikingMaxPool", "MaxPoolGateState", "TimeStateful"]


class TimeStateful(nn.Module):
    """Base class of converted layers that carry state across time steps.

    ``source`` is the ANN module it replaces (used to run the ANN view of the converted graph).
    """

    source: nn.Module

    def init_state(self, x_t: Tensor) -> tuple:  # pragma: no cover - abstract
        raise NotImplementedError


class SpikingActivation(TimeStateful):
    r"""IF neuron replacing a ReLU/QCFS activation with scale ``threshold`` (see module docstring).

    Optional offsets (set by :func:`~spikeforge.conversion.correct.correct_offsets`, ``None`` = off)
    change only the spiking path, never the ANN view ``source``:

    .. math::

        v_0 = v_\mathrm{init}\,\lambda + \delta_v, \qquad v'_t = v_{t-1} + I_t + \delta_I .

    Args:
        source: the ANN activation module (``nn.ReLU`` or ``QCFS``) being replaced.
        threshold: ``lambda > 0`` (ANN units).
        v_init: initial membrane as a fraction of the threshold (0 for Rueckauer, 1/2 for QCFS).
        current_shift: ``delta_I``, a constant extra input current per step (ANN units), a tensor
            broadcastable to one input step without its batch dimension (e.g. ``[C, 1, 1]`` per channel).
        membrane_shift: ``delta_v``, added to the initial membrane; same broadcasting rule.
    """

    current_shift: Tensor | None  # buffers (registered in __init__)
    membrane_shift: Tensor | None

    def __init__(
        self,
        source: nn.Module,
        threshold: float,
        *,
        v_init: float = 0.0,
        current_shift: Tensor | None = None,
        membrane_shift: Tensor | None = None,
    ) -> None:
        super().__init__()
        if not (threshold > 0 and threshold < float("inf")):
            raise ValueError(f"threshold must be finite and > 0, got {threshold!r}")
        self.source = source
        self.threshold = float(threshold)
        self.v_init = float(v_init)
        self.neuron = IF(v_th=self.threshold, reset="subtract")
        for name, t in (("current_shift", current_shift), ("membrane_shift", membrane_shift)):
            if t is not None and (
                not isinstance(t, Tensor) or not t.is_floating_point() or not bool(torch.isfinite(t).all())
            ):
                raise ValueError(f"{name} must be None or a finite floating-point tensor, got {t!r}")
            self.register_buffer(name, None if t is None else t.detach().clone())

    def init_state(self, x_t: Tensor) -> IFState:
        """Membrane ``v_init * threshold (+ membrane_shift)``, in ``x_t``'s shape, dtype and device."""
        v = torch.full_like(x_t, self.v_init * self.threshold)
        if self.membrane_shift is not None:
            v = v + self.membrane_shift.to(dtype=x_t.dtype, device=x_t.device)
        return IFState(v=v)

    def spikes(self, x_seq: Tensor, state: IFState | None = None) -> tuple[Tensor, IFState]:
        """Binary spikes ``z`` ``[T, B, ...]`` and the new state for input currents ``x_seq``."""
        if state is None:
            state = self.init_state(x_seq[0])
        if self.current_shift is not None:
            x_seq = x_seq + self.current_shift.to(dtype=x_seq.dtype, device=x_seq.device)
        return self.neuron(x_seq, state)

    def forward(self, x_seq: Tensor, state: IFState | None = None) -> tuple[Tensor, IFState]:
        """``(threshold * z_seq, new_state)``: spikes in the ANN's units."""
        z, state = self.spikes(x_seq, state)
        return z * self.threshold, state

    def extra_repr(self) -> str:
        shifts = "".join(
            f", {n}={tuple(getattr(self, n).shape)}"
            for n in ("current_shift", "membrane_shift")
            if getattr(self, n) is not None
        )
        return f"threshold={self.threshold:.6g}, v_init={self.v_init:g}{shifts}"


class MaxPoolGateState(NamedTuple):
    acc: Tensor  # cumulative input, shape of one input step [B, C, (H,) W]


class SpikingMaxPool(TimeStateful):
    """Gated spiking max-pool (rule in the module docstring) replacing ``nn.MaxPool1d/2d``."""

    source: nn.MaxPool1d | nn.MaxPool2d

    def __init__(self, source: nn.MaxPool1d | nn.MaxPool2d) -> None:
        super().__init__()
        if not isinstance(source, (nn.MaxPool1d, nn.MaxPool2d)):
            raise TypeError(f"SpikingMaxPool replaces nn.MaxPool1d/2d, got {type(source).__name__}")
        self.source = source
        self._pool = F.max_pool1d if isinstance(source, nn.MaxPool1d) else F.max_pool2d
        self._spatial = 1 if isinstance(source, nn.MaxPool1d) else 2

    def init_state(self, x_t: Tensor) -> MaxPoolGateState:
        return MaxPoolGateState(acc=torch.zeros_like(x_t))

    def _step(self, x_t: Tensor, state: MaxPoolGateState) -> tuple[Tensor, MaxPoolGateState]:
        acc = state.acc + x_t
        p = self.source
        _, idx = self._pool(
            acc, p.kernel_size, p.stride, p.padding, p.dilation, ceil_mode=p.ceil_mode, return_indices=True
        )
        flat = x_t.flatten(-self._spatial)  # [B, C, H*W]
        y = flat.gather(-1, idx.flatten(-self._spatial)).reshape(idx.shape)
        return y, MaxPoolGateState(acc)

    def forward(self, x_seq: Tensor, state: MaxPoolGateState | None = None) -> tuple[Tensor, MaxPoolGateState]:
        if x_seq.dim() != self._spatial + 3:
            raise ValueError(
                f"SpikingMaxPool{self._spatial}d expects [T, B, C, {'L' if self._spatial == 1 else 'H, W'}], "
                f"got shape {tuple(x_seq.shape)}"
            )
        if state is None:
            state = self.init_state(x_seq[0])
        return scan(self._step, x_seq, state)
