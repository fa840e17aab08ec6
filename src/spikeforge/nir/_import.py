"""NIR -> spikeforge. Parameter conversions live in :mod:`spikeforge.nir._mapping`; this file builds modules.

The graph is checked and linearised first, then every module is built; a network is returned only
when all nodes converted, so nothing is ever half-imported.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from typing import cast

import numpy as np
import torch
from torch import nn

from spikeforge.layers import SNNSequential
from spikeforge.neurons import IF
from spikeforge.neurons import LI
from spikeforge.neurons import LIF
from spikeforge.neurons import CubaLIF
from spikeforge.neurons import RecurrentLIF
from spikeforge.nir import _mapping as m
from spikeforge.nir._export import HINT_KEY
from spikeforge.nir._export import require_nir
from spikeforge.nir._import_graph import SUPPORTED_NODES
from spikeforge.nir._import_graph import chain
from spikeforge.nir._import_graph import check_types
from spikeforge.nir._import_graph import fuse
from spikeforge.nir._import_graph import node_error as _err
from spikeforge.nir.layers import Scale
from spikeforge.nir.layers import SumPool2d
from spikeforge.nir.layers import Threshold
from spikeforge.surrogate import Surrogate
from spikeforge.synapses import DelayedLinear

__all__ = ["from_nir", "SUPPORTED_NODES"]

_RTOL = 1e-9


def _arr(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _ints(v: Any, n: int) -> tuple[int, ...]:
    a = np.asarray(v).astype(np.int64).reshape(-1)
    return tuple(int(x) for x in (np.repeat(a, n) if a.size == 1 else a))


def _pair(v: Any) -> tuple[int, int]:
    """:func:`_ints` of a 2-D pooling field, which NIR defines as two ints (or one, repeated)."""
    return cast(tuple[int, int], _ints(v, 2))


def _uniform(x: Any, name: str, where: str, what: str) -> float:
    a = _arr(x)
    if a.size == 0 or not bool(np.all(a == a.reshape(-1)[0])):
        raise _err(
            where, f"{name} differs across neurons (min {a.min()}, max {a.max()}); spikeforge's {what} takes one value"
        )
    return float(a.reshape(-1)[0])


def _maybe_scalar(x: Any) -> float | torch.Tensor:
    a = _arr(x)
    return float(a.reshape(-1)[0]) if a.size and bool(np.all(a == a.reshape(-1)[0])) else torch.from_numpy(a.copy())


def _hint(node: Any) -> dict[str, Any]:
    raw = (getattr(node, "metadata", None) or {}).get(HINT_KEY)
    if isinstance(raw, bytes):
        raw = raw.decode("utf8")
    try:
        out = json.loads(raw) if isinstance(raw, str) else {}
    except ValueError:
        return {}
    return out if isinstance(out, dict) else {}


# ---- build modules ---------------------------------------------------------------------------------------------------
class _Ctx:
    def __init__(self, dt: float, disc: str, surrogate: Surrogate | str | None, dtype: torch.dtype) -> None:
        self.dt, self.disc, self.surrogate, self.dtype = dt, disc, surrogate, dtype


def _tensor(a: Any, dtype: torch.dtype) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a.detach().to(dtype)
    return torch.as_tensor(np.array(a), dtype=dtype)


def _gain(beta: np.ndarray, r: Any, hint: dict[str, Any]) -> tuple[str, float, np.ndarray | None]:
    """(input_scaling, R, extra per-neuron Scale or None) reproducing the NIR input gain ``(1 - beta) r``."""
    r = _arr(r)
    g = m.gain_from_nir(beta, r)
    hr = hint.get("r")
    if isinstance(hr, (int, float)):
        if hint.get("input_scaling") == "exact" and np.allclose(r, hr, rtol=_RTOL, atol=0):
            return "exact", float(hr), None
        if hint.get("input_scaling") == "none" and np.allclose(g, hr, rtol=_RTOL, atol=0):
            return "none", float(hr), None
    if bool(np.all(r == r.reshape(-1)[0])):
        return "exact", float(r.reshape(-1)[0]), None
    if np.allclose(g, g.reshape(-1)[0], rtol=1e-12, atol=0):
        return "none", float(g.reshape(-1)[0]), None
    return "none", 1.0, g  # per-neuron gain: a Scale layer in front of the neuron


def _leaky(ctx: _Ctx, node: Any, tau: Any, where: str) -> tuple[dict[str, Any], list[nn.Module]]:
    try:
        tau_mem = m.tau_from_nir(tau, ctx.dt, ctx.disc)
    except ValueError as err:
        raise _err(where, str(err)) from None
    beta = m.decay_of_tau(tau_mem, ctx.dt, "exact")
    scaling, r, scale = _gain(beta, node.r, _hint(node))
    kw = {"tau_mem": _maybe_scalar(tau_mem), "v_rest": _uniform(node.v_leak, "v_leak", where, "neuron"),
          "r": r, "input_scaling": scaling}  # fmt: skip
    return kw, ([Scale(_tensor(scale, ctx.dtype))] if scale is not None else [])


def _spiking(ctx: _Ctx, node: Any, where: str) -> dict[str, Any]:
    return {"v_th": _maybe_scalar(node.v_threshold), "v_reset": _uniform(node.v_reset, "v_reset", where, "neuron"),
            "reset": "to_value", "surrogate": ctx.surrogate, "dt": ctx.dt}  # fmt: skip


def _b_lif(ctx: _Ctx, name: str, nodes: tuple[Any, ...]) -> list[nn.Module]:
    kw, pre = _leaky(ctx, nodes[0], nodes[0].tau, name)
    return pre + [_neuron(LIF, ctx, **kw, **_spiking(ctx, nodes[0], name))]


def _b_li_threshold(ctx: _Ctx, name: str, nodes: tuple[Any, ...]) -> list[nn.Module]:
    kw, pre = _leaky(ctx, nodes[0], nodes[0].tau, name)
    return pre + [
        _neuron(
            LIF, ctx, **kw, v_th=_maybe_scalar(nodes[1].threshold), reset="none", surrogate=ctx.surrogate, dt=ctx.dt
        )
    ]


def _b_li(ctx: _Ctx, name: str, nodes: tuple[Any, ...]) -> list[nn.Module]:
    kw, pre = _leaky(ctx, nodes[0], nodes[0].tau, name)
    return pre + [_neuron(LI, ctx, **kw, dt=ctx.dt)]


def _c_mem(ctx: _Ctx, node: Any, name: str) -> float:
    r = _uniform(node.r, "r", name, "IF")
    h = _hint(node)
    if isinstance(h.get("c_mem"), (int, float)) and isinstance(h.get("dt"), (int, float)) and h["dt"] == ctx.dt:
        if np.isclose(m.if_r_to_nir(h["c_mem"], h["dt"], ctx.dt), r, rtol=_RTOL, atol=0):
            return float(h["c_mem"])
    try:
        return m.if_c_mem_from_nir(r, ctx.dt)
    except ValueError as err:
        raise _err(name, str(err)) from None


def _b_if(ctx: _Ctx, name: str, nodes: tuple[Any, ...]) -> list[nn.Module]:
    return [_neuron(IF, ctx, c_mem=_c_mem(ctx, nodes[0], name), **_spiking(ctx, nodes[0], name))]


def _b_i_threshold(ctx: _Ctx, name: str, nodes: tuple[Any, ...]) -> list[nn.Module]:
    return [_neuron(IF, ctx, c_mem=_c_mem(ctx, nodes[0], name), v_th=_maybe_scalar(nodes[1].threshold), reset="none",
               surrogate=ctx.surrogate, dt=ctx.dt)]  # fmt: skip


def _cuba(ctx: _Ctx, name: str, node: Any) -> tuple[dict[str, Any], list[nn.Module]]:
    kw, pre = _leaky(ctx, node, node.tau_mem, name)
    if pre:
        raise _err(name, "per-neuron membrane gain (1 - beta) r of a CubaLIF is not supported; make r uniform")
    try:
        tau_syn = m.tau_from_nir(node.tau_syn, ctx.dt, ctx.disc)
    except ValueError as err:
        raise _err(name, str(err)) from None
    alpha = m.decay_of_tau(tau_syn, ctx.dt, "exact")
    s = (1.0 - alpha) * _arr(node.w_in)  # our synapse adds its input 1:1; any other w_in becomes a Scale in front
    if not np.allclose(s, 1.0, rtol=_RTOL, atol=0):
        pre = [Scale(_tensor(s, ctx.dtype))]
    return {**kw, "tau_syn": _maybe_scalar(tau_syn)}, pre


def _b_cuba(ctx: _Ctx, name: str, nodes: tuple[Any, ...]) -> list[nn.Module]:
    kw, pre = _cuba(ctx, name, nodes[0])
    return pre + [_neuron(CubaLIF, ctx, **kw, **_spiking(ctx, nodes[0], name))]


def _b_cubali_threshold(ctx: _Ctx, name: str, nodes: tuple[Any, ...]) -> list[nn.Module]:
    kw, pre = _cuba(ctx, name, nodes[0])
    return pre + [
        _neuron(
            CubaLIF, ctx, **kw, v_th=_maybe_scalar(nodes[1].threshold), reset="none", surrogate=ctx.surrogate, dt=ctx.dt
        )
    ]


def _b_rlif(ctx: _Ctx, name: str, nodes: tuple[Any, ...]) -> list[nn.Module]:
    lif, w = nodes
    kw, pre = _leaky(ctx, lif, lif.tau, name)
    if pre:
        raise _err(name, "a recurrent LIF needs a uniform input gain (1 - beta) r")
    if type(w).__name__ == "Affine" and np.any(_arr(w.bias) != 0):
        raise _err(
            name, "recurrent Affine with a non-zero bias is not supported (spikeforge's RecurrentLIF has no bias)"
        )
    weight = _tensor(w.weight, ctx.dtype)
    if weight.dim() != 2 or weight.shape[0] != weight.shape[1]:
        raise _err(name, f"recurrent weight must be square [N, N], got {tuple(weight.shape)}")
    return [_neuron(RecurrentLIF, ctx, weight.shape[0], w_rec=weight, **kw, **_spiking(ctx, lif, name))]


def _b_rcuba(ctx: _Ctx, name: str, nodes: tuple[Any, ...]) -> list[nn.Module]:
    raise _err(name, "a recurrent CubaLIF has no spikeforge equivalent (RecurrentLIF is a plain LIF)")


def _b_affine(ctx: _Ctx, name: str, nodes: tuple[Any, ...]) -> list[nn.Module]:
    node = nodes[0]
    w = _tensor(node.weight, ctx.dtype)
    if w.dim() != 2:
        raise _err(name, f"weight must be 2-D [out, in], got shape {tuple(w.shape)}")
    has_bias = type(node).__name__ == "Affine"
    layer = nn.Linear(w.shape[1], w.shape[0], bias=has_bias, dtype=ctx.dtype)
    with torch.no_grad():
        layer.weight.copy_(w)
        if has_bias:
            layer.bias.copy_(_tensor(node.bias, ctx.dtype).reshape(-1))
    return [layer]


def _b_delay_affine(ctx: _Ctx, name: str, nodes: tuple[Any, ...]) -> list[nn.Module]:
    """``Delay(delay) -> Affine/Linear``: a per-axon :class:`DelayedLinear` with ``delay / dt`` integer steps."""
    lin = cast(nn.Linear, _b_affine(ctx, name, nodes[1:])[0])
    steps = _arr(nodes[0].delay).astype(np.float64).reshape(-1) / ctx.dt
    if steps.shape != (lin.in_features,) or not np.all(np.isfinite(steps)) or np.any(steps < 0):
        raise _err(name, f"delay must hold {lin.in_features} finite values >= 0 (one per input), got {steps.shape}")
    d = np.round(steps)
    if np.any(np.abs(steps - d) > 1e-6 * np.maximum(1.0, d)):
        raise _err(name, f"delays must be whole multiples of dt={ctx.dt} (spikeforge shifts by whole steps); pick dt")
    layer = DelayedLinear(lin.in_features, lin.out_features, int(d.max()) if d.size else 0, per="axon",
                          delays=torch.from_numpy(d), bias=lin.bias is not None, learn_delays=False).rounded()  # fmt: skip
    with torch.no_grad():
        layer.weight.copy_(lin.weight)
        if layer.bias is not None and lin.bias is not None:
            layer.bias.copy_(lin.bias)
    return [layer.to(ctx.dtype)]


def _b_conv(ctx: _Ctx, name: str, nodes: tuple[Any, ...]) -> list[nn.Module]:
    node = nodes[0]
    w = _tensor(node.weight, ctx.dtype)
    nd = w.dim() - 2
    if nd not in (1, 2):
        raise _err(
            name, f"conv weight must be [C_out, C_in/groups, *kernel] with 1 or 2 kernel dims, got {tuple(w.shape)}"
        )
    pad = node.padding if isinstance(node.padding, str) else _ints(node.padding, nd)
    # the sizes below hold nd ints; torch's stubs type them per class (tuple[int] / tuple[int, int])
    cls: Callable[..., nn.Conv1d | nn.Conv2d] = nn.Conv1d if nd == 1 else nn.Conv2d
    groups = int(np.asarray(node.groups).reshape(-1)[0])
    layer = cls(w.shape[1] * groups, w.shape[0], tuple(w.shape[2:]), stride=_ints(node.stride, nd), padding=pad,
                dilation=_ints(node.dilation, nd), groups=groups, bias=True, dtype=ctx.dtype)  # fmt: skip
    with torch.no_grad():
        layer.weight.copy_(w)
        assert layer.bias is not None  # built with bias=True
        layer.bias.copy_(_tensor(node.bias, ctx.dtype).reshape(-1))
    return [layer]


def _b_flatten(ctx: _Ctx, name: str, nodes: tuple[Any, ...]) -> list[nn.Module]:
    start, end = int(nodes[0].start_dim), int(nodes[0].end_dim)
    return [nn.Flatten(start + 1 if start >= 0 else start, end + 1 if end >= 0 else end)]


def _b_pool(ctx: _Ctx, name: str, nodes: tuple[Any, ...]) -> list[nn.Module]:
    node = nodes[0]
    k, s, p = _pair(node.kernel_size), _pair(node.stride), _pair(node.padding)
    if type(node).__name__ == "SumPool2d":
        return [SumPool2d(k, s, p)]
    return [nn.AvgPool2d(k, s, p)]


def _b_threshold(ctx: _Ctx, name: str, nodes: tuple[Any, ...]) -> list[nn.Module]:
    return [Threshold(_tensor(_maybe_scalar(nodes[0].threshold), ctx.dtype), surrogate=ctx.surrogate)]


def _b_scale(ctx: _Ctx, name: str, nodes: tuple[Any, ...]) -> list[nn.Module]:
    return [Scale(_tensor(nodes[0].scale, ctx.dtype))]


_BUILDERS: dict[str, Callable[[_Ctx, str, tuple[Any, ...]], list[nn.Module]]] = {
    "LIF": _b_lif, "LI+Threshold": _b_li_threshold, "LI": _b_li, "IF": _b_if, "I+Threshold": _b_i_threshold,
    "CubaLIF": _b_cuba, "CubaLI+Threshold": _b_cubali_threshold, "RLIF": _b_rlif, "RCubaLIF": _b_rcuba,
    "Affine": _b_affine, "Linear": _b_affine, "Delay+Affine": _b_delay_affine, "Delay+Linear": _b_delay_affine,
    "Conv1d": _b_conv, "Conv2d": _b_conv, "Flatten": _b_flatten,
    "SumPool2d": _b_pool, "AvgPool2d": _b_pool, "Threshold": _b_threshold, "Scale": _b_scale,
}  # fmt: skip


def _exact(module: nn.Module, kw: dict[str, Any], dtype: torch.dtype) -> nn.Module:
    """Neuron constructors store tensors in the default dtype; put back ``kw``'s float64 values cast once to ``dtype``."""
    module.to(dtype)
    for key, value in kw.items():
        param = module._parameters.get(key)
        if isinstance(value, torch.Tensor) and key in module._buffers:
            module._buffers[key] = value.to(dtype)
        elif isinstance(value, torch.Tensor) and isinstance(param, nn.Parameter):
            param.data = value.to(dtype)
    return module


def _neuron(cls: type[nn.Module], ctx: _Ctx, *args: Any, **kw: Any) -> nn.Module:
    return _exact(cls(*args, **kw), kw, ctx.dtype)


def from_nir(
    graph: Any,
    *,
    dt: float,
    discretization: str | None = None,
    surrogate: Surrogate | str | None = None,
    dtype: torch.dtype | None = None,
) -> SNNSequential:
    """Build an :class:`SNNSequential` from a ``nir.NIRGraph`` (see :mod:`spikeforge.nir` for the contract)."""
    nir = require_nir()
    if not isinstance(graph, nir.NIRGraph):
        raise TypeError(
            f"graph must be a nir.NIRGraph (read a file with spikeforge.nir.read_nir(path) first), got {type(graph).__name__}"
        )
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not np.isfinite(dt) or dt <= 0:
        raise ValueError(f"dt must be a finite number > 0 (the simulation step, unit of the graph's tau), got {dt!r}")
    if discretization is None:
        recorded = (graph.metadata or {}).get("spikeforge_discretization", "exact")
        discretization = recorded.decode("utf8") if isinstance(recorded, bytes) else str(recorded)
    m.check_discretization(discretization)
    dtype = dtype or torch.get_default_dtype()
    check_types(graph, "")
    ctx = _Ctx(float(dt), discretization, surrogate, dtype)
    modules: list[nn.Module] = []
    for name, kind, nodes in fuse(chain(graph, "")):
        try:
            modules += _BUILDERS[kind](ctx, name, nodes)
        except m.NIRImportError:
            raise
        except (ValueError, TypeError, AttributeError) as err:
            raise _err(name, f"malformed {kind} node: {err}") from err
    if not modules:
        raise m.NIRImportError("the graph has no computational nodes between its Input and Output")
    return SNNSequential(*modules).to(dtype)
