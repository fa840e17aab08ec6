r"""EventProp: exact gradients of spike-time and membrane losses (Wunderlich & Pehle, Sci. Rep. 11:12829, 2021).

The forward pass is the event simulation of :mod:`spikeforge.exact.simulate`. The backward pass integrates
the adjoint system backward in time, per neuron, with jumps at the recorded spike times. We use costates
``lambda_V(t) = dL/dV(t)``, ``lambda_I(t) = dL/dI(t)`` (W&P's multipliers are these up to constant factors
and sign). Between events (``a = 1/tau_mem``, ``c = 1/tau_syn``)::

    -d lambda_V/dt = -a lambda_V,        -d lambda_I/dt = a lambda_V - c lambda_I

solved in closed form (the transpose of the forward propagator). At a spike ``t_k`` of the neuron, with
``G_k = dL/dt_k`` (from the loss and from the neurons it drives) and ``I_k`` its current there::

    lambda_V(t_k^-) = (a I_k lambda_V(t_k^+) - G_k) / (a (I_k - v_th)),      lambda_I continuous

(``a (I_k - v_th)`` and ``a I_k`` are ``dV/dt`` just before and after the reset). An input spike of neuron
``j`` at ``t`` (``I`` jumps by ``w_ij / tau_syn``) contributes::

    dL/dw_ij += lambda_I(t) / tau_syn,
    dL/dt    += (w_ij / tau_syn) (c lambda_I(t) - a lambda_V(t))        (passed down as G of neuron j)

so W&P's ``dL/dw_ji = -tau_syn sum lambda_I`` up to their scaling of ``lambda``. A max-membrane readout
adds ``dL/dV_max`` to ``lambda_V`` at the time of the maximum, just before any input there. An interior
maximum needs no further term (``dV/dt = 0`` there); a maximum *at* an input (a kink: a negative jump of ``I``
turns a rising membrane down) moves with that input, so the input's time also gets ``dL/dV_max dV/dt(t^-)``.

Memory: the spike times and currents at the spikes of each layer (``[B, N, K]`` with ``K`` the largest count
seen), i.e. it grows with the number of spikes, not with a time grid.

Neurons that never fire have output ``+inf`` and pass no gradient (their ``lambda`` stays 0): a loss that
needs them to fire must say so itself (e.g. W&P's and Göltz's regularisers). Gradients given for ``+inf``
(padding) outputs are ignored, even NaN ones (``inf * 0`` in a loss). At a spike that only grazes ``v_th``
the exact derivative is unbounded; ``dV/dt`` there is clamped to ``1e-8 v_th / tau_mem`` so it stays finite.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from spikeforge.exact import _kernels
from spikeforge.exact.simulate import EventConfig
from spikeforge.exact.simulate import check_network
from spikeforge.exact.simulate import run_layers

__all__ = ["eventprop", "EventPropFunction"]

_EMPTY2 = np.zeros((0, 0))


def _np(x: Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().to("cpu", torch.float64).numpy())


class EventPropFunction(torch.autograd.Function):
    """``EventPropFunction.apply(cfg, input_times, *weights)``; use :func:`eventprop`."""

    @staticmethod
    def forward(ctx: Any, cfg: EventConfig, input_times: Tensor, *weights: Tensor) -> Tensor:
        x = _np(input_times)
        ws = [_np(w) for w in weights]
        spiking = len(ws) if cfg.readout == "spikes" else len(ws) - 1
        times, currents = run_layers(x, ws, cfg, spiking)
        ctx.cfg, ctx.x, ctx.ws, ctx.times, ctx.currents = cfg, x, ws, times, currents
        ctx.devices = [(w.device, w.dtype) for w in weights]
        if cfg.readout == "spikes":
            full = np.full(times[-1].shape[:2] + (cfg.max_spikes,), math.inf)
            full[:, :, : times[-1].shape[2]] = times[-1]
            return torch.from_numpy(full).to(input_times.device, input_times.dtype)
        pre = times[-1] if times else x
        vmax, tmax = _kernels.readout_layer(pre, ws[-1], cfg.tau_mem, cfg.tau_syn, cfg.t_end)
        ctx.tmax = tmax
        return torch.from_numpy(vmax).to(input_times.device, input_times.dtype)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        cfg: EventConfig = ctx.cfg
        ws, times, currents = ctx.ws, ctx.times, ctx.currents
        g = grad.detach().to("cpu", torch.float64).numpy()
        grads_w: list[np.ndarray] = [np.zeros_like(w) for w in ws]
        args = (cfg.tau_mem, cfg.tau_syn, cfg.v_th)
        n_layers = len(ws)
        if cfg.readout == "spikes":
            last = times[-1]
            g_spk = np.where(np.isfinite(last), g[:, :, : last.shape[2]], 0.0)
            g_spk = np.ascontiguousarray(g_spk)
        else:
            pre = times[-1] if times else ctx.x
            none = np.zeros((pre.shape[0], ws[-1].shape[0], 0))
            gm = np.ascontiguousarray(np.nan_to_num(g, nan=0.0))
            grads_w[-1], g_spk = _kernels.backward_layer(pre, ws[-1], none, none, none, ctx.tmax, gm, *args)
            n_layers -= 1
        for index in range(n_layers - 1, -1, -1):
            pre = times[index - 1] if index > 0 else ctx.x
            out = times[index]
            grads_w[index], g_spk = _kernels.backward_layer(
                pre, ws[index], out, currents[index], g_spk, _EMPTY2, _EMPTY2, *args
            )
        grad_in = torch.from_numpy(g_spk).to(grad.device, grad.dtype) if ctx.needs_input_grad[1] else None
        grad_ws = [
            torch.from_numpy(gw).to(device, dtype) if ctx.needs_input_grad[2 + i] else None
            for i, (gw, (device, dtype)) in enumerate(zip(grads_w, ctx.devices, strict=True))
        ]
        return (None, grad_in, *grad_ws)


def eventprop(input_times: Tensor, weights: Sequence[Tensor], cfg: EventConfig | None = None) -> Tensor:
    """Run the network with exact (EventProp) gradients w.r.t. ``weights`` and ``input_times``.

    Args:
        input_times: ``[B, N_in, K_in]`` spike times (>= 0, +inf padded), float64 recommended.
        weights: one ``[N_out, N_in]`` tensor per layer.
        cfg: :class:`~spikeforge.exact.simulate.EventConfig` (``tau_syn > 0`` here).
    Returns:
        ``readout="spikes"``: the last layer's spike times ``[B, N_out, cfg.max_spikes]`` (ascending, +inf
        padded); ``"max_membrane"``: the last (non-spiking) layer's maximum membrane ``[B, N_out]``. In the dtype
        and on the device of ``input_times`` (computed in float64 on the CPU).
    """
    cfg = cfg or EventConfig()
    check_network(input_times, weights)
    if cfg.tau_syn == 0:
        raise ValueError(
            "EventProp needs tau_syn > 0 (with tau_syn = 0 a spike sits at an input time and d t / d w = 0); "
            "use a small positive tau_syn"
        )
    out: Tensor = EventPropFunction.apply(cfg, input_times, *weights)
    return out
