"""An :class:`~spikeforge.layers.SNNSequential` translated into the flat arrays of the engine's loop
(:class:`~spikeforge.events._kernel.Layers`, ``Weights``, ``Membranes``).

What a neuron layer is and which constants it has is asked of the neuron: ``Neuron.capabilities``
(spiking, LIF family, recurrent) and ``Neuron.membrane_spec()`` (beta, gain, threshold, reset, synaptic
current, adaptation, IF); the engine keeps no list of neuron classes and derives no constant itself. Layers
with tensor (per-neuron or learnable) constants run too: ``membrane_spec(like)`` gives those as tensors.
"""

from __future__ import annotations

import math
from typing import Any
from typing import NamedTuple
from typing import cast

import numpy as np
import torch
from torch import Tensor
from torch import nn

from spikeforge._core.spec import FusedSpec
from spikeforge.events._conv_taps import GEO
from spikeforge.events._conv_taps import conv_table
from spikeforge.events._layout import CUBA_MODEL
from spikeforge.events._layout import IF_MODEL
from spikeforge.events._layout import LIF_MODEL
from spikeforge.events._layout import Layers
from spikeforge.events._layout import Membranes
from spikeforge.events._layout import Weights
from spikeforge.events._pages import on_huge_pages
from spikeforge.events._sparse_fn import conv2d_pairs
from spikeforge.layers import SeqToBatch
from spikeforge.layers import SNNSequential
from spikeforge.neurons import Neuron
from spikeforge.synapses import DelayedLinear

__all__ = ["Network", "build_network", "SUPPORTED"]

SUPPORTED = (
    "the engine runs spiking LIF-family neuron layers (Neuron.capabilities.spiking and .lif_family) without "
    "threshold adaptation, recurrent ones (capabilities.recurrent) through their w_rec, each after an nn.Linear, "
    "nn.Conv2d or a rounded DelayedLinear (nn.Flatten between them allowed); run other models densely"
)


class Network(NamedTuple):
    lay: Layers
    wts: Weights
    mem: Membranes
    names: tuple[tuple[str, str], ...]  # (synapse, neuron) qualified module names per layer
    output_shape: tuple[int, ...]


class _Membrane(NamedTuple):
    """One layer's membrane: the loop's model code, reset code, and constants (scalars or per-neuron tensors)."""

    model: int
    reset: int
    v_rest: float
    v_reset: float
    beta: float | Tensor
    gain: float | Tensor
    alpha: float | Tensor
    v_th: float | Tensor


def _unwrap(m: nn.Module) -> nn.Module:
    return m.layer if isinstance(m, SeqToBatch) else m


def _flat(value: float | Tensor, shape: tuple[int, ...], n: int) -> np.ndarray:
    """A scalar or per-neuron parameter broadcast to the layer's neuron shape, as float64 [N]."""
    f64 = torch.float64
    t = value.detach().to(f64) if isinstance(value, Tensor) else torch.tensor(float(value), dtype=f64)
    try:
        t = t.expand(shape)
    except RuntimeError:
        raise ValueError(f"a neuron parameter of shape {tuple(t.shape)} does not broadcast to {shape}") from None
    return t.reshape(n).cpu().numpy().copy()


def _from_spec(spec: FusedSpec) -> _Membrane:
    model = IF_MODEL if spec.is_if else CUBA_MODEL if spec.has_syn else LIF_MODEL
    return _Membrane(model, spec.reset, spec.v_rest, spec.v_reset, spec.beta, spec.gain, spec.alpha, spec.v_th)


def _membrane(nrn: Neuron, like: Tensor, pos: int) -> _Membrane:
    caps = nrn.capabilities
    if not (caps.spiking and caps.lif_family):
        raise TypeError(f"layer {pos}: {type(nrn).__name__} is not a spiking LIF-family layer; {SUPPORTED}")
    spec = nrn.membrane_spec(like)  # tensor constants where the layer has per-neuron/learnable parameters
    if spec is None:
        raise TypeError(f"layer {pos}: {type(nrn).__name__} gives no membrane constants; {SUPPORTED}")
    if spec.has_adapt:
        raise TypeError(f"layer {pos}: {type(nrn).__name__} has an adaptive threshold; {SUPPORTED}")
    return _from_spec(spec)


def _synapse_shape(m: nn.Module, shape: tuple[int, ...], pos: int) -> tuple[int, ...]:
    if isinstance(m, DelayedLinear):
        if not m.integer:
            raise TypeError(
                f"layer {pos}: the streaming engine runs DelayedLinear with integer delays only (exact shifts through "
                "a delay line); build the engine from a copy with layer.rounded() in its place"
            )
        if len(shape) != 1 or shape[0] != m.in_features:
            raise ValueError(f"layer {pos}: DelayedLinear expects {m.in_features} flat inputs, gets shape {shape}")
        return (m.out_features,)
    if isinstance(m, nn.Linear):
        if shape[-1] != m.in_features:
            raise ValueError(f"layer {pos}: Linear expects {m.in_features} inputs, gets shape {shape}")
        if len(shape) != 1:
            raise ValueError(f"layer {pos}: the engine's Linear layers take flat inputs; add nn.Flatten()")
        return (m.out_features,)
    conv = m if isinstance(m, nn.Conv2d) else None
    if conv is None:
        raise TypeError(f"layer {pos}: expected nn.Linear or nn.Conv2d, got {type(m).__name__}")
    if conv.groups != 1 or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        raise ValueError(f"layer {pos}: Conv2d must have groups=1, padding_mode='zeros', integer padding")
    if len(shape) != 3 or shape[0] != conv.in_channels:
        raise ValueError(f"layer {pos}: Conv2d expects [{conv.in_channels}, H, W] inputs, gets {shape}")
    y = conv(torch.zeros(1, *shape, dtype=conv.weight.dtype, device=conv.weight.device))
    return tuple(int(s) for s in y.shape[1:])


def _conv_csr(conv: nn.Conv2d, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """Fan-out list of every input position: (indptr [C*H*W + 1], target neuron, weight)."""
    c, h, w = in_shape
    o, oh, ow = out_shape
    kh, kw = conv.kernel_size
    ones = torch.ones(1, c, h, w)
    pad = cast(tuple[int, int], conv.padding)  # integer padding (checked in _synapse_shape)
    bag, tap = conv2d_pairs(ones, (kh, kw), conv.stride, pad, conv.dilation, (oh, ow))  # type: ignore[arg-type]
    src = (tap // (kh * kw)) * (h * w)  # input channel part of the source index
    # recover the input position of each pair: output p = (oy, ox), tap (ky, kx) -> (iy, ix)
    oy, ox = bag // ow, bag % ow
    ky, kx = (tap // kw) % kh, tap % kw
    iy = oy * conv.stride[0] - pad[0] + ky * conv.dilation[0]
    ix = ox * conv.stride[1] - pad[1] + kx * conv.dilation[1]
    src = src + iy * w + ix
    order = torch.argsort(src, stable=True)
    src, bag, tap = src[order], bag[order], tap[order]
    table = conv.weight.detach().to(torch.float64).cpu().permute(1, 2, 3, 0).reshape(c * kh * kw, o)  # [CK, O]
    tgt = (torch.arange(o)[None, :] * (oh * ow) + bag[:, None]).reshape(-1)  # [pairs * O]
    wgt = table[tap].reshape(-1)
    counts = torch.bincount(src, minlength=c * h * w) * o
    ptr = torch.zeros(c * h * w + 1, dtype=torch.int64)
    ptr[1:] = torch.cumsum(counts, 0)
    return ptr.numpy(), tgt.numpy(), wgt.numpy()


def _delays(syn: DelayedLinear, d: dict[str, Any], w: Tensor) -> None:
    """A rounded DelayedLinear's delay line: per axon, W^T rows and one delay per input (kind 2); per synapse,
    one fan-out list per (delay value, input) pair (kind 3, CSR ordered by delay then input)."""
    steps = syn.delay_values().round().to(torch.int64).cpu()
    d["delay"], d["n_in"] = int(steps.max()) if steps.numel() else 0, syn.in_features
    if syn.per == "axon":
        d["kind"], d["wt"], d["dly"] = 2, w.t().contiguous().reshape(-1).numpy(), steps.numpy().copy()
        return
    n_out, n_in = w.shape
    key = (steps * n_in + torch.arange(n_in)[None, :]).reshape(-1)  # [out * in], row-major over (o, i)
    order = torch.argsort(key, stable=True)
    tgt = torch.arange(n_out).repeat_interleave(n_in)[order]
    ptr = torch.zeros((d["delay"] + 1) * n_in + 1, dtype=torch.int64)
    ptr[1:] = torch.cumsum(torch.bincount(key, minlength=(d["delay"] + 1) * n_in), 0)
    d["kind"], d["wt"], d["csr"] = 3, np.zeros(0), (ptr.numpy(), tgt.numpy(), w.reshape(-1)[order].numpy())


def _layer(
    syn: nn.Linear | nn.Conv2d | DelayedLinear,
    nrn: Neuron,
    in_shape: tuple[int, ...],
    shape: tuple[int, ...],
    pos: int,
    taps: bool = True,
) -> dict[str, Any]:
    """One (synapse, neuron) layer as flat float64 arrays (weights as W^T rows, a tap table (Conv2d, ``taps``)
    or a fan-out CSR)."""
    n = int(np.prod(shape))
    mb = _membrane(nrn, torch.zeros(1, *shape, dtype=torch.float64), pos)
    d: dict[str, Any] = {
        "n": n,
        "wdtype": syn.weight.dtype,
        "model": mb.model,
        "reset": mb.reset,
        "v_rest": mb.v_rest,
        "v_reset": mb.v_reset,
    }
    d["beta"], d["gain"], d["alpha"], d["v_th"] = (_flat(a, shape, n) for a in (mb.beta, mb.gain, mb.alpha, mb.v_th))
    if np.any(d["gain"] < 0):
        raise ValueError(f"layer {pos}: the input gain (r, or dt / c_mem) must be >= 0 for the engine")
    if np.any(d["beta"] > 1):
        raise ValueError(f"layer {pos}: decay factor > 1 (negative tau?) is not supported")
    w = syn.weight.detach().to(torch.float64).cpu()
    b = syn.bias.detach().to(torch.float64).cpu() if syn.bias is not None else None
    d["n_in"], d["delay"] = int(np.prod(in_shape)), -1
    if isinstance(syn, DelayedLinear):
        _delays(syn, d, w)
        d["bias"] = b.numpy().copy() if b is not None else np.zeros(n)
    elif isinstance(syn, nn.Linear):
        d["kind"], d["wt"] = 0, w.t().contiguous().reshape(-1).numpy()
        d["bias"] = b.numpy().copy() if b is not None else np.zeros(n)
    elif taps:
        d["kind"], (d["wt"], d["geo"]) = 4, conv_table(syn, in_shape, shape)
        d["bias"] = b[:, None, None].expand(shape).reshape(-1).numpy().copy() if b is not None else np.zeros(n)
    else:
        d["kind"], d["wt"] = 1, np.zeros(0)
        d["geo"] = conv_table(syn, in_shape, shape)[1]  # the geometry (Layers.whole's pass), not the table
        d["csr"] = _conv_csr(syn, in_shape, shape)
        d["bias"] = b[:, None, None].expand(shape).reshape(-1).numpy().copy() if b is not None else np.zeros(n)
    if mb.model == CUBA_MODEL and np.any(d["bias"] != 0):
        raise ValueError(
            f"layer {pos}: {type(nrn).__name__} (a synaptic current) after a layer with a bias is not "
            "supported by the engine; use bias=False"
        )
    if nrn.capabilities.recurrent:
        w_rec = nrn.w_rec
        if not isinstance(w_rec, Tensor) or tuple(w_rec.shape) != (n, n):
            raise ValueError(f"layer {pos}: a recurrent layer needs a w_rec of shape ({n}, {n}) for the engine")
        d["wrec"] = w_rec.detach().to(torch.float64).cpu().t().contiguous().reshape(-1).numpy()
        if w_rec.dtype != syn.weight.dtype:
            d["wdtype"] = torch.float64
    return d


def _walk(
    model: SNNSequential, input_shape: tuple[int, ...], taps: bool
) -> tuple[list[dict[str, Any]], tuple[int, ...]]:
    """The (synapse, neuron) layers of ``model`` in order, and the output shape."""
    names = {id(m): n for n, m in model.named_modules()}
    shape, syn_name, in_shape = input_shape, "", input_shape
    pending: nn.Linear | nn.Conv2d | DelayedLinear | None = None  # the synapse waiting for its neuron layer
    layers: list[dict[str, Any]] = []
    with torch.no_grad():
        for pos, raw in enumerate(model.layers):
            m = _unwrap(raw)
            if isinstance(m, nn.Flatten):
                if (m.start_dim, m.end_dim) != (1, -1):
                    raise ValueError(f"layer {pos}: only nn.Flatten() with default dims is supported")
                shape = (int(np.prod(shape)),)
            elif isinstance(m, (nn.Linear, nn.Conv2d, DelayedLinear)):
                if pending is not None:
                    raise ValueError(f"layer {pos}: two synaptic layers in a row; put a neuron layer between them")
                pending, syn_name, in_shape = m, names[id(raw)], shape
                shape = _synapse_shape(m, shape, pos)
            elif isinstance(m, Neuron):
                if pending is None:
                    raise ValueError(f"layer {pos}: a neuron layer needs a Linear/Conv2d before it")
                layers.append(_layer(pending, m, in_shape, shape, pos, taps) | {"syn": syn_name, "nrn": names[id(raw)]})
                pending = None
            else:
                raise TypeError(
                    f"layer {pos}: {type(m).__name__} is not supported by the engine (Linear, Conv2d, "
                    f"Flatten, neuron layers); {SUPPORTED}"
                )
    if pending is not None or not layers:
        raise ValueError(f"the network must end with a spiking neuron layer; {SUPPORTED}")
    return layers, shape


def _offsets(sizes: list[int]) -> np.ndarray:
    """Start of each of consecutive blocks of the given sizes."""
    return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)


def build_network(
    model: SNNSequential, input_shape: tuple[int, ...], *, conv_taps: bool = True, conv_whole: float | None = None
) -> Network:
    """``model`` as the engine's arrays (weights copied once); raises on anything the engine cannot run.
    ``conv_taps``: Conv2d layers as kernel-tap tables (kind 4), else as generic fan-out lists (kind 1);
    ``conv_whole``: the fraction of a Conv2d layer's neurons a step must touch for a whole-layer pass (``Layers.whole``;
    None: never)."""
    layers, output_shape = _walk(model, input_shape, conv_taps)
    ns = [d["n"] for d in layers]
    whole = [
        max(1, math.ceil(conv_whole * n)) if conv_whole is not None and d["kind"] in (1, 4) else n + 1
        for n, d in zip(ns, layers)
    ]
    # weights keep float32 when the model is float32 (exact; half the memory traffic); sums are float64
    wdt = np.float32 if all(d["wdtype"] == torch.float32 for d in layers) else np.float64
    csrs = [d["csr"] for d in layers if "csr" in d]
    ptrs, base = [], 0
    for ptr, tgt, _ in csrs:
        ptrs.append(ptr + base)  # indices into the concatenated target/weight lists
        base += len(tgt)
    c_off = _offsets([len(d["csr"][0]) if "csr" in d else 0 for d in layers])
    slots = [d["delay"] + 1 if d["delay"] >= 0 else 0 for d in layers]
    recs = [d["wrec"] for d in layers if "wrec" in d]
    rec_off = np.where([("wrec" in d) for d in layers], _offsets([len(d.get("wrec", ())) for d in layers]), -1)
    simple = [
        d["model"] != CUBA_MODEL and not np.any(d["bias"] != 0) and bool(np.all(d["v_rest"] <= d["v_th"]))
        for d in layers
    ]
    uniform = [all(np.all(d[k] == d[k][0]) for k in ("beta", "gain", "v_th")) for d in layers]  # one value per layer
    lay = Layers(
        n_out=np.array(ns, dtype=np.int64),
        off=_offsets(ns),
        kind=np.array([d["kind"] for d in layers], dtype=np.int64),
        w_off=_offsets([len(d["wt"]) for d in layers]),
        c_off=c_off,
        rec_off=rec_off.astype(np.int64),
        model=np.array([d["model"] for d in layers], dtype=np.int64),
        simple=np.array(simple, dtype=np.int64),
        uniform=np.array(uniform, dtype=np.int64),
        reset=np.array([d["reset"] for d in layers], dtype=np.int64),
        v_rest=np.array([d["v_rest"] for d in layers], dtype=np.float64),
        v_reset=np.array([d["v_reset"] for d in layers], dtype=np.float64),
        n_in=np.array([d["n_in"] for d in layers], dtype=np.int64),
        delay=np.array([d["delay"] for d in layers], dtype=np.int64),
        r_off=_offsets([k * d["n_in"] for k, d in zip(slots, layers)]),
        s_off=_offsets(slots),
        dl_off=_offsets([len(d.get("dly", ())) for d in layers]),
        geo=np.stack([d.get("geo", np.zeros(len(GEO), np.int64)) for d in layers]).astype(np.int64),
        whole=np.array(whole, dtype=np.int64),
    )
    wts = Weights(
        wt=on_huge_pages(np.concatenate([d["wt"] for d in layers]).astype(wdt)),
        cptr=np.concatenate(ptrs).astype(np.int64) if csrs else np.zeros(1, dtype=np.int64),
        ctgt=np.concatenate([c[1] for c in csrs]).astype(np.int64) if csrs else np.zeros(1, dtype=np.int64),
        cwgt=np.concatenate([c[2] for c in csrs]).astype(wdt) if csrs else np.zeros(1, dtype=wdt),
        wrec=on_huge_pages(np.concatenate(recs).astype(wdt)) if recs else np.zeros(1, dtype=wdt),
        dly=np.concatenate([d.get("dly", np.zeros(0, np.int64)) for d in layers]).astype(np.int64),
    )
    mem = Membranes(*(np.concatenate([d[k] for d in layers]).astype(np.float64) for k in Membranes._fields))
    return Network(lay, wts, mem, tuple((d["syn"], d["nrn"]) for d in layers), output_shape)
