r"""Continuous-time event simulation of feed-forward networks of current-based LIF neurons.

Each neuron ``i`` of a layer receives the spikes of every neuron ``j`` of the layer below
(Wunderlich & Pehle, Sci. Rep. 11:12829, 2021, eq. 1; zero rest, time in the unit of the time constants)::

    tau_syn dI_i/dt = -I_i + sum_j w_ij sum_k delta(t - t_j^k)     (I jumps by w_ij / tau_syn)
    tau_mem dV_i/dt = -V_i + I_i
    spike at t when V_i crosses v_th from below (V_i > v_th afterwards);  then V_i <- 0  (I_i is kept)

All neurons start at rest (``V = I = 0``) at time 0. ``tau_syn = 0`` is the limit ``tau_syn -> 0``: plain
LIF neurons, ``tau_mem dV/dt = -V + sum_j w_ij sum_k delta(t - t_j^k)``. V jumps by ``w_ij / tau_mem`` at each
input; after all inputs of that instant, while ``V > v_th`` the neuron fires *at the input time* and V drops
by ``v_th`` (in the limit the input's charge left after the reset to 0 still arrives, so the reset to 0 becomes
a subtraction there; one spike per instant unless the jump overshoots ``v_th`` by more than ``v_th``).

Between events the state has a closed form; spike times are roots of it, found to float64 precision
(:mod:`spikeforge.exact._kernels`), never on a time grid. Exactly reaching ``v_th`` is not a spike.

Layout (one for inputs and outputs): spike times ``[B, N, K]`` (batch, neurons, spikes per neuron), each
neuron's times in any order for inputs and ascending for outputs, unused slots ``+inf``. Input times must be
``>= 0``. Outputs have ``K = max_spikes``; a neuron that would fire more often raises ``ValueError`` (raise
``max_spikes``) rather than drop spikes silently. The simulation ends at ``t_end`` (default: when no
further spike can occur): later inputs are ignored and no spike after ``t_end`` is produced.

Weights are one ``[N_out, N_in]`` matrix per layer (the ``nn.Linear`` layout). A readout layer (``readout=
"max_membrane"``) does not spike; its output is the maximum of its membrane over ``[0, t_end]`` (0 when the
membrane never rises above rest), the voltage readout of W&P's and mlGeNN's classifiers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from spikeforge.exact import _kernels

__all__ = ["EventConfig", "simulate", "max_membrane", "check_network"]

Readout = Literal["spikes", "max_membrane"]


@dataclass(frozen=True)
class EventConfig:
    """Parameters shared by every layer.

    Attributes:
        tau_mem: membrane time constant (> 0).
        tau_syn: synaptic time constant (>= 0; 0 = plain LIF with jumps in V; EventProp needs > 0).
        v_th: threshold (> 0).
        max_spikes: most spikes per neuron and layer (>= 1); more raises ``ValueError``.
        t_end: end of the simulated window (> 0, may be ``inf`` for spiking outputs).
        readout: ``"spikes"`` (the last layer spikes; output its spike times) or ``"max_membrane"`` (the
            last layer is a non-spiking leaky integrator; output its maximum membrane ``[B, N]``).
    """

    tau_mem: float = 20.0
    tau_syn: float = 5.0
    v_th: float = 1.0
    max_spikes: int = 8
    t_end: float = math.inf
    readout: Readout = "spikes"

    def __post_init__(self) -> None:
        for name in ("tau_mem", "tau_syn", "v_th", "t_end"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
                raise ValueError(f"EventConfig.{name} must be a number, got {value!r}")
        if not 0 < self.tau_mem < math.inf:
            raise ValueError(f"tau_mem must be finite and > 0 (ms), got {self.tau_mem}")
        if not 0 <= self.tau_syn < math.inf:
            raise ValueError(f"tau_syn must be finite and >= 0 (0: plain LIF), got {self.tau_syn}")
        if not 0 < self.v_th < math.inf:
            raise ValueError(f"v_th must be finite and > 0 (rest is 0), got {self.v_th}")
        if not self.t_end > 0:
            raise ValueError(f"t_end must be > 0 (or inf), got {self.t_end}")
        if isinstance(self.max_spikes, bool) or not isinstance(self.max_spikes, int) or self.max_spikes < 1:
            raise ValueError(f"max_spikes must be an int >= 1, got {self.max_spikes!r}")
        if self.readout not in ("spikes", "max_membrane"):
            raise ValueError(f"readout must be 'spikes' or 'max_membrane', got {self.readout!r}")


def check_network(input_times: Tensor, weights: Sequence[Tensor]) -> None:
    """Raise ``ValueError`` (naming the fix) unless the input times and weights fit the layout above."""
    if not isinstance(input_times, Tensor):
        raise ValueError(f"input_times must be a tensor [B, N_in, K], got {type(input_times).__name__}")
    if input_times.dim() != 3:
        raise ValueError(
            f"input_times must be [B, N_in, K] (pad unused slots with +inf), got shape {tuple(input_times.shape)}"
        )
    if not input_times.is_floating_point():
        raise ValueError(f"input_times must be a float tensor (float64 recommended), got {input_times.dtype}")
    t = input_times.detach()
    if bool(torch.isnan(t).any()):
        raise ValueError("input_times contain NaN; mark missing spikes with +inf")
    if bool((t < 0).any()):
        raise ValueError("input_times must be >= 0 (time 0 is the start of a trial; pad with +inf, not -inf)")
    if len(weights) == 0:
        raise ValueError("give at least one weight matrix [N_out, N_in]")
    n_in = input_times.shape[1]
    for index, w in enumerate(weights):
        if not isinstance(w, Tensor) or w.dim() != 2:
            shape = tuple(w.shape) if isinstance(w, Tensor) else type(w).__name__
            raise ValueError(f"weights[{index}] must be a 2-D tensor [N_out, N_in], got {shape}")
        if w.shape[1] != n_in:
            raise ValueError(
                f"weights[{index}] has {w.shape[1]} inputs but the layer below has {n_in} neurons; "
                "weights are [N_out, N_in] (as nn.Linear.weight)"
            )
        if not bool(torch.isfinite(w.detach()).all()):
            raise ValueError(f"weights[{index}] contain NaN or inf")
        n_in = w.shape[0]


def _as_numpy(x: Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().to("cpu", torch.float64).numpy())


def run_layers(
    input_times: np.ndarray, weights: Sequence[np.ndarray], cfg: EventConfig, spiking: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The first ``spiking`` layers as spiking layers: per layer spike times ``[B, N, K]`` (K trimmed to the
    largest count) and the currents at the spikes."""
    times, currents = [], []
    pre = input_times
    for index in range(spiking):
        out, cur, most = _kernels.forward_layer(
            pre, weights[index], cfg.tau_mem, cfg.tau_syn, cfg.v_th, cfg.t_end, cfg.max_spikes
        )
        if most > cfg.max_spikes:
            raise ValueError(
                f"a neuron of layer {index} fired {most} times, more than max_spikes={cfg.max_spikes}; "
                "raise max_spikes (or lower the weights / t_end)"
            )
        keep = max(most, 1)
        times.append(np.ascontiguousarray(out[:, :, :keep]))
        currents.append(np.ascontiguousarray(cur[:, :, :keep]))
        pre = times[-1]
    return times, currents


def _pad(times: np.ndarray, k: int, like: Tensor) -> Tensor:
    full = np.full(times.shape[:2] + (k,), math.inf)
    full[:, :, : times.shape[2]] = times
    return torch.from_numpy(full).to(like.device, like.dtype)


def simulate(input_times: Tensor, weights: Sequence[Tensor], cfg: EventConfig | None = None) -> list[Tensor]:
    """Spike times of every layer, each ``[B, N_l, cfg.max_spikes]`` (+inf padded, ascending), in the dtype and
    on the device of ``input_times``; computed in float64 on the CPU. ``cfg.readout`` is ignored: every layer
    spikes (use :func:`max_membrane` for a readout layer). No gradient: see
    :func:`spikeforge.exact.eventprop.eventprop`."""
    cfg = cfg or EventConfig()
    check_network(input_times, weights)
    ws = [_as_numpy(w) for w in weights]
    times, _ = run_layers(_as_numpy(input_times), ws, cfg, len(ws))
    return [_pad(t, cfg.max_spikes, input_times) for t in times]


def max_membrane(
    input_times: Tensor, weights: Sequence[Tensor], cfg: EventConfig | None = None
) -> tuple[Tensor, Tensor]:
    """``(V_max, t_max)`` ``[B, N_out]`` of a non-spiking last layer driven by spiking hidden layers (all layers
    but the last spike), over ``[0, cfg.t_end]``."""
    cfg = cfg or EventConfig(readout="max_membrane")
    check_network(input_times, weights)
    ws = [_as_numpy(w) for w in weights]
    times, _ = run_layers(_as_numpy(input_times), ws, cfg, len(ws) - 1)
    pre = times[-1] if times else _as_numpy(input_times)
    vmax, tmax = _kernels.readout_layer(pre, ws[-1], cfg.tau_mem, cfg.tau_syn, cfg.t_end)
    device, dtype = input_times.device, input_times.dtype
    return torch.from_numpy(vmax).to(device, dtype), torch.from_numpy(tmax).to(device, dtype)
