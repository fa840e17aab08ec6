"""spikeforge -> NIR. Parameter conversions live in :mod:`spikeforge.nir._mapping`; this file only walks layers."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from spikeforge._core.bn_fold import fold_bn
from spikeforge.layers import SeqToBatch
from spikeforge.layers import SNNSequential
from spikeforge.neurons import Neuron
from spikeforge.nir import _mapping as m
from spikeforge.nir._export_base import HINT_KEY
from spikeforge.nir._export_base import ExportCtx as _Ctx
from spikeforge.nir._export_base import Nodes
from spikeforge.nir._export_base import full as _full
from spikeforge.nir._export_base import to_numpy as _np
from spikeforge.nir._export_base import w_rec as _w_rec
from spikeforge.nir._export_neurons import export_neuron
from spikeforge.nir.layers import Scale
from spikeforge.nir.layers import SumPool2d
from spikeforge.nir.layers import Threshold
from spikeforge.synapses import DelayedLinear

__all__ = ["to_nir", "require_nir", "network_layers", "HINT_KEY"]


def require_nir() -> Any:
    """Import the optional ``nir`` package or raise an ImportError that names the extra."""
    try:
        import nir  # absolute import: the external package, not spikeforge.nir
    except ImportError as err:
        raise ImportError(
            "NIR support needs the optional 'nir' package; install it with pip install 'spikeforge[nir]'"
        ) from err
    return nir


def network_layers(model: nn.Module) -> list[nn.Module]:
    """The layer list of a classifier (an SNNSequential at ``.network``) / SNNSequential / nn.Sequential / layer."""
    net = getattr(model, "network", None)
    if isinstance(net, SNNSequential):  # a classifier, e.g. spikeforge.models.SNNClassifier
        model = net
    if isinstance(model, SNNSequential):
        layers = list(model.layers)
    elif isinstance(model, nn.Sequential):
        layers = list(model)
    elif isinstance(model, nn.Module) and not isinstance(model, nn.ModuleList):
        layers = [model]
    else:
        raise TypeError(
            f"model must be an SNNClassifier, SNNSequential, nn.Sequential or a layer, got {type(model).__name__}"
        )
    return [layer.layer if isinstance(layer, SeqToBatch) else layer for layer in layers]


def _fold_and_skip(layers: Sequence[nn.Module]) -> list[tuple[int, nn.Module]]:
    """Drop inference identities (Dropout, Identity) and fold eval-mode BatchNorm into the Conv/Linear before it."""
    out: list[tuple[int, nn.Module]] = []
    for i, layer in enumerate(layers):
        if isinstance(layer, (nn.Dropout, nn.Identity)):
            continue
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            prev = out[-1][1] if out else None
            if not isinstance(prev, (nn.Conv1d, nn.Conv2d, nn.Linear)) or layer.running_mean is None:
                raise m.NIRExportError(
                    f"layer {i} ({type(layer).__name__}): NIR has no batch norm; it can only be folded into a Conv/Linear "
                    "directly before it, using running statistics (track_running_stats=True)"
                )
            try:
                out[-1] = (out[-1][0], fold_bn(prev, layer))
            except ValueError as err:
                raise m.NIRExportError(f"layer {i} ({type(layer).__name__}): {err}") from None
            continue
        out.append((i, layer))
    return out


def _out_shape(layer: nn.Module, shape: tuple[int, ...]) -> tuple[int, ...]:
    if isinstance(layer, DelayedLinear):  # needs a [T > max_delay, B, in] sequence; its output is [out]
        return (layer.out_features,)
    p = next(iter(layer.parameters()), None)
    dtype = p.dtype if p is not None else torch.get_default_dtype()
    with torch.no_grad():
        y = layer(torch.zeros((1, *shape), dtype=dtype))
    return tuple(y.shape[1:])


def _export_linear(layer: nn.Linear | DelayedLinear, ctx: _Ctx) -> Nodes:
    if len(ctx.shape) != 1:
        raise m.NIRExportError(
            f"{ctx.where}: NIR Affine/Linear take 1-D samples, got shape {ctx.shape}; add nn.Flatten() before it"
        )
    if layer.bias is None:
        return [("linear", ctx.nir.Linear(_np(layer.weight)))]
    return [("affine", ctx.nir.Affine(_np(layer.weight), _np(layer.bias)))]


def _export_delayed(layer: DelayedLinear, ctx: _Ctx) -> Nodes:
    """Per-axon integer delays ``d`` (steps) as NIR ``Delay(delay = d * dt)`` (``y(t) = x(t - delay)``) before
    the Affine/Linear; :func:`~spikeforge.nir.from_nir` reads the pair back as a DelayedLinear."""
    if not layer.integer:
        raise m.NIRExportError(
            f"{ctx.where}: interpolated (training) delays are a temporal convolution that NIR cannot express; "
            "export the inference layer layer.rounded() (integer delays)"
        )
    if layer.per != "axon":
        raise m.NIRExportError(
            f"{ctx.where}: NIR's Delay node delays each input channel as a whole, so per-synapse delays (one per "
            "weight) have no NIR form (it would take one channel per synapse); build the layer with per='axon'"
        )
    linear = _export_linear(layer, ctx)  # checks the 1-D shape first
    return [("delay", ctx.nir.Delay(_np(layer.delays).astype(np.float64).round() * ctx.dt)), *linear]


def _export_conv(layer: nn.Conv1d | nn.Conv2d, ctx: _Ctx) -> Nodes:
    if layer.padding_mode != "zeros":
        raise m.NIRExportError(
            f"{ctx.where}: NIR convolutions pad with zeros; padding_mode={layer.padding_mode!r} is not expressible"
        )
    w = _np(layer.weight)
    bias = _np(layer.bias) if layer.bias is not None else np.zeros(w.shape[0], dtype=w.dtype)
    pad = layer.padding if isinstance(layer.padding, str) else tuple(int(v) for v in layer.padding)
    if isinstance(layer, nn.Conv1d):
        node = ctx.nir.Conv1d(
            input_shape=int(ctx.shape[-1]),
            weight=w,
            stride=int(layer.stride[0]),
            padding=pad if isinstance(pad, str) else pad[0],
            dilation=int(layer.dilation[0]),
            groups=int(layer.groups),
            bias=bias,
        )
        return [("conv1d", node)]
    node = ctx.nir.Conv2d(
        input_shape=tuple(int(v) for v in ctx.shape[-2:]),
        weight=w,
        stride=tuple(int(v) for v in layer.stride),
        padding=pad,
        dilation=tuple(int(v) for v in layer.dilation),
        groups=int(layer.groups),
        bias=bias,
    )
    return [("conv2d", node)]


def _export_flatten(layer: nn.Flatten, ctx: _Ctx) -> Nodes:
    if layer.start_dim == 0:
        raise m.NIRExportError(f"{ctx.where}: Flatten(start_dim=0) would merge the batch dimension; use start_dim >= 1")
    start = layer.start_dim - 1 if layer.start_dim > 0 else layer.start_dim
    end = layer.end_dim - 1 if layer.end_dim > 0 else layer.end_dim
    return [("flatten", ctx.nir.Flatten(input_type={"input": np.array(ctx.shape)}, start_dim=start, end_dim=end))]


def _pool_node(ctx: _Ctx, kind: str, kernel: Any, stride: Any, padding: Any) -> Any:
    pair = lambda v: np.array(v if isinstance(v, (tuple, list)) else (v, v), dtype=np.int64)
    cls = ctx.nir.SumPool2d if kind == "sum" else ctx.nir.AvgPool2d
    return cls(kernel_size=pair(kernel), stride=pair(stride if stride is not None else kernel), padding=pair(padding))


def _export_avgpool(layer: nn.AvgPool2d, ctx: _Ctx) -> Nodes:
    padded = np.any(np.asarray(layer.padding) != 0)
    if layer.ceil_mode or (padded and not layer.count_include_pad) or layer.divisor_override not in (None, 1):
        raise m.NIRExportError(
            f"{ctx.where}: NIR pooling has no ceil_mode, count_include_pad=False or divisor_override != 1"
        )
    kind = "sum" if layer.divisor_override == 1 else "avg"
    return [(f"{kind}pool2d", _pool_node(ctx, kind, layer.kernel_size, layer.stride, layer.padding))]


def _export_sumpool(layer: SumPool2d, ctx: _Ctx) -> Nodes:
    return [("sumpool2d", _pool_node(ctx, "sum", layer.kernel_size, layer.stride, layer.padding))]


def _export_maxpool(layer: nn.MaxPool2d, ctx: _Ctx) -> Nodes:
    if not ctx.binary:
        raise m.NIRExportError(
            f"{ctx.where}: NIR has no max pooling; it is exported (exactly) as SumPool2d + Threshold(0.5) only when its "
            "input is spikes, i.e. directly after a spiking neuron"
        )
    if layer.ceil_mode or layer.return_indices or np.any(np.asarray(layer.dilation) != 1):
        raise m.NIRExportError(f"{ctx.where}: MaxPool2d with ceil_mode, dilation or return_indices has no NIR form")
    pool = _pool_node(ctx, "sum", layer.kernel_size, layer.stride, layer.padding)
    out = _out_shape(layer, ctx.shape)
    return [("sumpool2d", pool), ("threshold", ctx.nir.Threshold(np.full(out, 0.5)))]  # max of 0/1 = [sum > 0.5]


def _export_threshold(layer: Threshold, ctx: _Ctx) -> Nodes:
    return [("threshold", ctx.nir.Threshold(_full(layer.threshold, ctx.shape, ctx.where, "threshold")))]


def _export_scale(layer: Scale, ctx: _Ctx) -> Nodes:
    return [("scale", ctx.nir.Scale(_full(layer.scale, ctx.shape, ctx.where, "scale")))]


_EXPORTERS: dict[type, Callable[[Any, _Ctx], Nodes]] = {
    Neuron: export_neuron,
    nn.Linear: _export_linear, DelayedLinear: _export_delayed, nn.Conv1d: _export_conv, nn.Conv2d: _export_conv, nn.Flatten: _export_flatten,
    nn.AvgPool2d: _export_avgpool, SumPool2d: _export_sumpool, nn.MaxPool2d: _export_maxpool,
    Threshold: _export_threshold, Scale: _export_scale,
}  # fmt: skip


def _exporter(layer: nn.Module) -> Callable[[Any, _Ctx], Nodes] | None:
    for cls in type(layer).__mro__:  # subclasses of a supported layer export like it
        if cls in _EXPORTERS:
            return _EXPORTERS[cls]
    return None


def _input_shape(layers: list[tuple[int, nn.Module]], input_shape: Sequence[int] | None) -> tuple[int, ...]:
    if input_shape is not None:
        shape = tuple(int(v) for v in input_shape)
        if not shape or any(v < 1 for v in shape):
            raise ValueError(
                f"input_shape must be one sample's shape without time and batch, e.g. (784,), got {input_shape!r}"
            )
        return shape
    first = layers[0][1] if layers else None
    if isinstance(first, nn.Linear):
        return (first.in_features,)
    if isinstance(first, Neuron) and first.capabilities.recurrent:
        return (int(_w_rec(first).shape[0]),)
    raise ValueError(
        f"cannot infer the input shape from {type(first).__name__}; pass input_shape=(C, H, W) or (features,)"
    )


def to_nir(
    model: nn.Module,
    *,
    dt: float,
    input_shape: Sequence[int] | None = None,
    discretization: str = "exact",
    approximate: Sequence[str] = (),
) -> Any:
    """Export a spikeforge network to a ``nir.NIRGraph`` (see :mod:`spikeforge.nir` for the contract)."""
    nir = require_nir()
    m.check_discretization(discretization)
    allowed = m.check_approximations(approximate)
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not np.isfinite(dt) or dt <= 0:
        raise ValueError(f"dt must be a finite number > 0 (the NIR simulation step, unit of tau), got {dt!r}")
    layers = _fold_and_skip(network_layers(model))
    shape = _input_shape(layers, input_shape)
    nodes: dict[str, Any] = {"input": nir.Input(np.array(shape))}
    edges: list[tuple[str, str]] = []
    last, binary = "input", False
    for i, layer in layers:
        where = f"layer {i} ({type(layer).__name__})"
        fn = _exporter(layer)
        if fn is None:
            raise m.NIRExportError(
                f"{where} has no NIR equivalent; supported: {', '.join(sorted(c.__name__ for c in _EXPORTERS))} "
                "(Dropout/Identity are skipped, BatchNorm after Conv/Linear is folded)"
            )
        for suffix, node in fn(layer, _Ctx(nir, float(dt), discretization, allowed, shape, binary, where)):
            name = f"{i}_{suffix}"
            nodes[name] = node
            edges.append((last, name))
            last = name
        shape = shape if isinstance(layer, Neuron) else _out_shape(layer, shape)
        binary = (
            (isinstance(layer, Neuron) and layer.spiking)
            or isinstance(layer, (Threshold, nn.MaxPool2d))
            or (binary and isinstance(layer, nn.Flatten))
        )
    nodes["output"] = nir.Output(np.array(shape))
    edges.append((last, "output"))
    meta = {"spikeforge_dt": float(dt), "spikeforge_discretization": discretization}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=True)
