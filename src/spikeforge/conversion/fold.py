"""Stages 1-2 of conversion: trace the ANN with ``torch.fx``, canonicalise and validate the graph,
and fold BatchNorm into the preceding Linear/Conv.

Canonical form (what later stages can rely on):

* every ReLU (module, ``F.relu``, ``torch.relu``, ``x.relu()``) is a ``call_module`` of an
  ``nn.ReLU``; :class:`~spikeforge.conversion.qcfs.QCFS` is a leaf module;
* ``F.max_pool1d/2d`` are ``call_module`` nodes of ``nn.MaxPool1d/2d``;
* Dropout (modules and ``F.dropout``) and ``nn.Identity`` are removed;
* every remaining node is in the supported set, otherwise :class:`UnsupportedLayerError`.
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx
from torch import nn

from spikeforge._core.bn_fold import FOLDABLE_LAYERS
from spikeforge._core.bn_fold import fold_bn
from spikeforge.conversion.qcfs import QCFS

__all__ = [
    "UnsupportedLayerError", "SUPPORTED_MODULES", "SUPPORTED_FUNCTIONS", "SUPPORTED_METHODS", "trace",
    "canonicalize", "fold_batchnorm", "fold_bn_into",
]  # fmt: skip


class UnsupportedLayerError(ValueError):
    """The ANN contains an operation the converter cannot map to a spiking equivalent."""


ACTIVATIONS: tuple[type[nn.Module], ...] = (nn.ReLU, QCFS)
_DROPOUTS: tuple[type[nn.Module], ...] = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)
_LINEAR_LIKE: tuple[type[nn.Module], ...] = FOLDABLE_LAYERS
_BATCHNORMS: tuple[type[nn.Module], ...] = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_MAXPOOLS: tuple[type[nn.Module], ...] = (nn.MaxPool1d, nn.MaxPool2d)

SUPPORTED_MODULES: tuple[type[nn.Module], ...] = (
    *_LINEAR_LIKE,
    *_BATCHNORMS,
    *ACTIVATIONS,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    *_MAXPOOLS,
    nn.Flatten,
    nn.Identity,
    *_DROPOUTS,
)
_RELU_FNS: tuple[Callable[..., Any], ...] = (F.relu, torch.relu, torch.relu_)
_DROPOUT_FNS: tuple[Callable[..., Any], ...] = (F.dropout, F.dropout1d, F.dropout2d)
_MAXPOOL_FNS: dict[Callable[..., Any], type[nn.Module]] = {F.max_pool1d: nn.MaxPool1d, F.max_pool2d: nn.MaxPool2d}
SUPPORTED_FUNCTIONS: tuple[Callable[..., Any], ...] = (
    operator.add,
    torch.add,
    operator.getitem,
    getattr,
    torch.flatten,
    torch.cat,
    F.avg_pool1d,
    F.avg_pool2d,
    F.adaptive_avg_pool1d,
    F.adaptive_avg_pool2d,
    *_RELU_FNS,
    *_DROPOUT_FNS,
    *_MAXPOOL_FNS,
)
SUPPORTED_METHODS: tuple[str, ...] = ("view", "reshape", "flatten", "size", "relu", "relu_", "add", "contiguous")


def _supported_text() -> str:
    mods = ", ".join(sorted({m.__name__ for m in SUPPORTED_MODULES}))
    fns = ", ".join(sorted({getattr(f, "__name__", str(f)) for f in SUPPORTED_FUNCTIONS}))
    return f"supported modules: {mods}; functions: {fns}; tensor methods: {', '.join(SUPPORTED_METHODS)}"


class _Tracer(fx.Tracer):
    """Treat QCFS (and every ``torch.nn`` module) as a leaf; no global patching is involved."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, QCFS) or super().is_leaf_module(m, module_qualified_name)


def trace(ann: nn.Module) -> fx.GraphModule:
    """Deep-copy ``ann``, switch the copy to eval mode and trace it symbolically.

    The caller's model is never modified. Models with data-dependent control flow cannot be traced;
    torch.fx's error is re-raised as a ``TypeError`` naming the fix.
    """
    if not isinstance(ann, nn.Module):
        raise TypeError(f"ann must be a torch.nn.Module, got {type(ann).__name__}")
    model = copy.deepcopy(ann).eval()
    try:
        graph = _Tracer().trace(model)
    except Exception as err:  # torch.fx raises TraceError/TypeError/RuntimeError for untraceable code
        raise TypeError(
            f"torch.fx could not trace {type(ann).__name__} ({err}); remove data-dependent Python control flow "
            "from forward() or convert a traceable equivalent model"
        ) from err
    return fx.GraphModule(model, graph, class_name=type(ann).__name__ + "Traced")


def _unique_name(gm: fx.GraphModule, base: str) -> str:
    i = 0
    while hasattr(gm, f"{base}_{i}"):
        i += 1
    return f"{base}_{i}"


def _replace_with_module(gm: fx.GraphModule, node: fx.Node, module: nn.Module, base: str, inp: Any) -> None:
    name = _unique_name(gm, base)
    gm.add_submodule(name, module)
    with gm.graph.inserting_after(node):
        new = gm.graph.call_module(name, (inp,))
    node.replace_all_uses_with(new)
    gm.graph.erase_node(node)


def _maxpool_module(node: fx.Node) -> nn.Module:
    names = ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
    kwargs = dict(zip(names, node.args[1:]))
    kwargs.update(node.kwargs)
    if kwargs.get("return_indices", False):
        raise UnsupportedLayerError(f"node {node.name!r}: max pooling with return_indices=True is not supported")
    kwargs.pop("return_indices", None)
    return _MAXPOOL_FNS[node.target](**kwargs)  # type: ignore[index]


def canonicalize(gm: fx.GraphModule) -> fx.GraphModule:
    """Bring a traced graph to the canonical form described in the module docstring (in place).

    Raises:
        UnsupportedLayerError: naming the first unsupported node and listing what is supported.
    """
    seen: set[str] = set()
    for node in list(gm.graph.nodes):
        if node.op == "call_module":
            mod = gm.get_submodule(node.target)
            if isinstance(mod, (*ACTIVATIONS, *_MAXPOOLS)):
                if node.target in seen:  # a module called twice (e.g. one ReLU in a residual block): each
                    # call gets its own copy, because each call site carries its own state and scale
                    name = _unique_name(gm, str(node.target).replace(".", "_"))
                    gm.add_submodule(name, copy.deepcopy(mod))
                    node.target = name
                    mod = gm.get_submodule(name)
                seen.add(str(node.target))
            if not isinstance(mod, SUPPORTED_MODULES):
                raise UnsupportedLayerError(
                    f"cannot convert module {node.target!r} of type {type(mod).__name__}; {_supported_text()}"
                )
            if isinstance(mod, (*_DROPOUTS, nn.Identity)):
                node.replace_all_uses_with(node.args[0])
                gm.graph.erase_node(node)
            elif isinstance(mod, nn.ReLU) and mod.inplace:
                mod.inplace = False
            elif isinstance(mod, _MAXPOOLS) and mod.return_indices:
                raise UnsupportedLayerError(
                    f"module {node.target!r}: max pooling with return_indices=True is not supported"
                )
        elif node.op == "call_function":
            if node.target not in SUPPORTED_FUNCTIONS:
                name = getattr(node.target, "__name__", str(node.target))
                raise UnsupportedLayerError(f"cannot convert function {name} (node {node.name!r}); {_supported_text()}")
            if node.target in _DROPOUT_FNS:
                node.replace_all_uses_with(node.args[0])
                gm.graph.erase_node(node)
            elif node.target in _RELU_FNS:
                _replace_with_module(gm, node, nn.ReLU(), "relu_fn", node.args[0])
            elif node.target in _MAXPOOL_FNS:
                _replace_with_module(gm, node, _maxpool_module(node), "maxpool_fn", node.args[0])
        elif node.op == "call_method":
            if node.target not in SUPPORTED_METHODS:
                raise UnsupportedLayerError(
                    f"cannot convert tensor method .{node.target}() (node {node.name!r}); {_supported_text()}"
                )
            if node.target in ("relu", "relu_"):
                _replace_with_module(gm, node, nn.ReLU(), "relu_fn", node.args[0])
    gm.graph.eliminate_dead_code()
    gm.graph.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()
    return gm


def fold_bn_into(layer: nn.Module, bn: nn.Module) -> nn.Module:
    """Return a copy of ``layer`` (Linear/Conv) with the eval-mode BatchNorm ``bn`` folded in.

    The one fold of the package (:func:`spikeforge._core.bn_fold.fold_bn`, shared with NIR export):
    ``W' = s W``, ``b' = s (b - mu) + beta`` with ``s = gamma / sqrt(running_var + eps)``, computed in
    float64 and cast back to the layer's dtype. Errors are raised as :class:`UnsupportedLayerError`.
    """
    try:
        return fold_bn(layer, bn)  # type: ignore[arg-type]
    except ValueError as err:
        raise UnsupportedLayerError(str(err)) from None


def fold_batchnorm(gm: fx.GraphModule) -> fx.GraphModule:
    """Fold every BatchNorm whose input is a Linear/Conv used only by that BatchNorm (in place).

    A BatchNorm that does not follow such a layer stays in the graph: in eval mode it is a fixed
    per-channel affine map, which the SNN applies to its (rate-coded) input at every step.
    """
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(gm.get_submodule(node.target), _BATCHNORMS):
            continue
        bn = gm.get_submodule(node.target)
        if bn.running_mean is None:
            raise UnsupportedLayerError(
                f"BatchNorm {node.target!r} has track_running_stats=False; it normalises with batch statistics at "
                "inference, which mixes samples; train with track_running_stats=True"
            )
        prev = node.args[0]
        if not (isinstance(prev, fx.Node) and prev.op == "call_module" and len(prev.users) == 1):
            continue
        layer_name = str(prev.target)  # a call_module target is the module's qualified name
        layer = gm.get_submodule(layer_name)
        if not isinstance(layer, _LINEAR_LIKE):
            continue
        gm.add_submodule(layer_name, fold_bn_into(layer, bn))
        node.replace_all_uses_with(prev)
        gm.graph.erase_node(node)
    gm.graph.eliminate_dead_code()
    gm.delete_all_unused_submodules()
    gm.recompile()
    return gm
