"""spikeforge -> NIR for neurons: the node is chosen by asking the neuron (capabilities, membrane spec)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from spikeforge.neurons import Neuron
from spikeforge.neurons.lif import input_gain
from spikeforge.nir import _mapping as m
from spikeforge.nir._export_base import HINT_KEY
from spikeforge.nir._export_base import ExportCtx as _Ctx
from spikeforge.nir._export_base import Nodes
from spikeforge.nir._export_base import full as _full
from spikeforge.nir._export_base import hint as _hint
from spikeforge.nir._export_base import to_numpy as _np
from spikeforge.nir._export_base import w_rec as _w_rec
from spikeforge.synapses import SRM

__all__ = ["export_neuron"]


def _params(neuron: Neuron, shape: tuple[int, ...]) -> Any:
    return neuron.params(torch.zeros((1, *shape), dtype=torch.float64))


def _leaky_fields(ctx: _Ctx, neuron: Neuron, p: Any) -> tuple[dict[str, np.ndarray], np.ndarray]:
    tau = _full(p.tau_mem, ctx.shape, ctx.where, "tau_mem")
    beta = m.decay_of_tau(tau, neuron.dt, "exact")  # our neurons always use the exact decay
    gain = input_gain(torch.from_numpy(beta), float(p.r), p.input_scaling)  # the neuron family's one gain formula
    fields = {
        "tau": m.tau_to_nir(tau, neuron.dt, ctx.dt, ctx.disc),
        "r": m.r_from_gain(beta, np.asarray(gain, dtype=np.float64)),
        "v_leak": _full(p.v_rest, ctx.shape, ctx.where, "v_rest"),
    }
    return fields, beta


def _reset(ctx: _Ctx, reset: str) -> str:
    if reset == "subtract":
        m.approximate("subtract_as_reset", ctx.allowed, ctx.where, "reset by subtraction")
        return "to_value"
    return reset


def _export_lif(neuron: Neuron, ctx: _Ctx) -> Nodes:
    nir, p = ctx.nir, _params(neuron, ctx.shape)
    fields, _ = _leaky_fields(ctx, neuron, p)
    md = _hint(input_scaling=p.input_scaling, r=float(p.r))
    v_th = _full(p.v_th, ctx.shape, ctx.where, "v_th")
    if _reset(ctx, p.reset) == "none":
        return [("li", nir.LI(**fields, metadata=md)), ("threshold", nir.Threshold(v_th))]
    return [
        (
            "lif",
            nir.LIF(**fields, v_threshold=v_th, v_reset=_full(p.v_reset, ctx.shape, ctx.where, "v_reset"), metadata=md),
        )
    ]


def _export_li(neuron: Neuron, ctx: _Ctx) -> Nodes:
    p = _params(neuron, ctx.shape)
    fields, _ = _leaky_fields(ctx, neuron, p)
    return [("li", ctx.nir.LI(**fields, metadata=_hint(input_scaling=p.input_scaling, r=float(p.r))))]


def _export_if(neuron: Neuron, ctx: _Ctx) -> Nodes:
    nir, p = ctx.nir, _params(neuron, ctx.shape)
    r = _full(m.if_r_to_nir(float(p.c_mem), neuron.dt, ctx.dt), ctx.shape, ctx.where, "r")
    md = _hint(c_mem=float(p.c_mem), dt=neuron.dt)
    v_th = _full(p.v_th, ctx.shape, ctx.where, "v_th")
    if _reset(ctx, p.reset) == "none":
        return [("i", nir.I(r, metadata=md)), ("threshold", nir.Threshold(v_th))]
    return [
        ("if", nir.IF(r=r, v_threshold=v_th, v_reset=_full(p.v_reset, ctx.shape, ctx.where, "v_reset"), metadata=md))
    ]


def _export_cuba(neuron: Neuron, ctx: _Ctx) -> Nodes:
    nir, p = ctx.nir, _params(neuron, ctx.shape)
    fields, _ = _leaky_fields(ctx, neuron, p)
    tau_syn = _full(p.tau_syn, ctx.shape, ctx.where, "tau_syn")
    alpha = m.decay_of_tau(tau_syn, neuron.dt, "exact")
    syn = {
        "tau_mem": fields.pop("tau"),
        "tau_syn": m.tau_to_nir(tau_syn, neuron.dt, ctx.dt, ctx.disc),
        "w_in": m.synapse_w_in(alpha),
        **fields,
    }
    md = _hint(input_scaling=p.input_scaling, r=float(p.r))
    v_th = _full(p.v_th, ctx.shape, ctx.where, "v_th")
    if _reset(ctx, p.reset) == "none":
        return [("cubali", nir.CubaLI(**syn, metadata=md)), ("threshold", nir.Threshold(v_th))]
    v_reset = _full(p.v_reset, ctx.shape, ctx.where, "v_reset")
    return [("cubalif", nir.CubaLIF(**syn, v_threshold=v_th, v_reset=v_reset, metadata=md))]


def _export_rlif(neuron: Neuron, ctx: _Ctx) -> Nodes:
    nir, n = ctx.nir, int(_w_rec(neuron).shape[0])
    if ctx.shape != (n,):
        raise m.NIRExportError(f"{ctx.where}: expects input shape ({n},), got {ctx.shape}")
    p = _params(neuron, ctx.shape)
    if p.lif.reset == "none":
        raise m.NIRExportError(f"{ctx.where}: a RecurrentLIF without reset has no NIR form here; use reset='to_value'")
    lif = _export_lif_params(ctx, neuron, p.lif)
    sub = nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([n])),
            "lif": lif,
            "w_rec": nir.Linear(_np(_w_rec(neuron))),
            "output": nir.Output(np.array([n])),
        },
        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
        metadata={HINT_KEY: "RecurrentLIF"},
    )
    return [("rlif", sub)]


def _export_lif_params(ctx: _Ctx, neuron: Neuron, p: Any) -> Any:
    fields, _ = _leaky_fields(ctx, neuron, p)
    _reset(ctx, p.reset)
    return ctx.nir.LIF(
        **fields,
        v_threshold=_full(p.v_th, ctx.shape, ctx.where, "v_th"),
        v_reset=_full(p.v_reset, ctx.shape, ctx.where, "v_reset"),
        metadata=_hint(input_scaling=p.input_scaling, r=float(p.r)),
    )


def _membrane_kind(neuron: Neuron) -> str:
    """``"if"``, ``"cuba"``, ``"adaptive"`` or ``"lif"``, read from the neuron's membrane spec (tensor-valued for
    per-neuron parameters)."""
    spec = neuron.membrane_spec(torch.zeros(()))
    if spec is None:
        return "none"
    flags = {"if": spec.is_if, "cuba": spec.has_syn, "adaptive": spec.has_adapt}
    return next((kind for kind, on in flags.items() if on), "lif")


_MEMBRANE_EXPORTERS: dict[str, Callable[[Any, _Ctx], Nodes]] = {
    "lif": _export_lif,
    "if": _export_if,
    "cuba": _export_cuba,
}


def export_neuron(neuron: Neuron, ctx: _Ctx) -> Nodes:
    """Pick the NIR node by asking the neuron (capabilities, membrane spec), not by its class."""
    caps = neuron.capabilities
    if isinstance(neuron, SRM):
        raise m.NIRExportError(
            f"{ctx.where}: NIR has no spike-response-model node: SRM's refractory response (an alpha kernel of its "
            "own spikes, no reset) has no NIR form; use a LIF/CubaLIF layer to export"
        )
    if caps.recurrent and caps.lif_family:
        return _export_rlif(neuron, ctx)
    if not caps.spiking and not caps.recurrent:
        p = _params(neuron, ctx.shape)
        if all(hasattr(p, f) for f in ("tau_mem", "v_rest", "r", "input_scaling")):  # a leaky integrator readout
            return _export_li(neuron, ctx)
    if caps.lif_family and not caps.recurrent:
        kind = _membrane_kind(neuron)
        if kind in _MEMBRANE_EXPORTERS:
            return _MEMBRANE_EXPORTERS[kind](neuron, ctx)
    raise m.NIRExportError(
        f"{ctx.where}: NIR has no node for this neuron; exportable neurons are the LIF family without adaptation "
        "(LIF, IF, CubaLIF, RecurrentLIF) and the non-spiking LI readout; use one of them"
    )
