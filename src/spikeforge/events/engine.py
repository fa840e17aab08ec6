r"""Streaming, event-driven execution of a trained :class:`~spikeforge.layers.SNNSequential` at batch 1.

The engine does work only for spikes: every input spike adds one weight column to its targets'
currents, neurons are updated only when they receive input or could cross threshold on their own,
and the leak between two updates of a neuron is applied lazily in closed form (see
:mod:`spikeforge.events._kernel` for the equations). Its spikes equal those of the dense model
(:class:`~spikeforge.layers.SNNSequential`, the oracle) except where a membrane lies within rounding
error of threshold; the engine keeps membranes and sums in float64 (weights in the model's float32/64).

Supported networks (anything else raises ``ValueError`` / ``TypeError`` at construction)::

    SNNSequential( [Flatten] (Linear | Conv2d) [Flatten] (IF | LIF | CubaLIF | RecurrentLIF)  ... )

* one synaptic layer before every neuron layer; the network ends with a spiking neuron layer;
* ``nn.Conv2d`` with ``groups=1``, ``padding_mode="zeros"`` and integer padding; ``nn.Flatten`` with
  the default dims; layers may be wrapped in :class:`~spikeforge.layers.SeqToBatch`;
* biases are supported for IF, LIF and RecurrentLIF (a constant drive, integrated exactly in closed
  form), not for CubaLIF (raises);
* every reset mode and both ``input_scaling`` modes; scalar or per-neuron ``tau_mem``/``v_th``;
  the input gain must be >= 0 (``r >= 0``, ``c_mem > 0``).

Input: ``x_seq [T, 1, *input_shape]`` (spikes, event counts or analog values: entry ``a`` of input ``j``
adds ``a`` times column ``j``), a single step ``[1, *input_shape]``, or an event array
(:meth:`StreamingEngine.run_events`). The engine reports what it executed (:class:`EngineOps`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from spikeforge._core.discretize import decay
from spikeforge.events._kernel import (
    CUBA_MODEL, IF_MODEL, LIF_MODEL, NEVER, RESET_NONE, RESET_SUBTRACT, RESET_TO_VALUE, get_advance, numba_available,
)
from spikeforge.events.sparse import conv2d_pairs
from spikeforge.events.stream import check_events
from spikeforge.layers import SeqToBatch, SNNSequential
from spikeforge.neurons import IF, LIF, CubaLIF, Neuron, RecurrentLIF
from spikeforge.neurons.lif import input_gain

__all__ = ["StreamingEngine", "EngineState", "EngineOps", "LayerOps", "EngineResult"]

_RESETS = {"to_value": RESET_TO_VALUE, "subtract": RESET_SUBTRACT, "none": RESET_NONE}


@dataclass(frozen=True)
class LayerOps:
    """Operations one (synapse, neuron) layer executed. Names are qualified module names in the model."""

    synapse: str
    neuron: str
    synops: int  # feed-forward synaptic accumulations (one per input spike per fan-out target)
    recurrent_synops: int  # accumulations of recurrent weights (RecurrentLIF)
    neuron_updates: int  # neuron evaluations (touched or due), not N * T
    spikes: int


@dataclass(frozen=True)
class EngineOps:
    layers: tuple[LayerOps, ...]

    def total(self, name: str) -> int:
        if name not in ("synops", "recurrent_synops", "neuron_updates", "spikes"):
            raise ValueError(f"unknown count {name!r}; valid: synops, recurrent_synops, neuron_updates, spikes")
        return sum(int(getattr(x, name)) for x in self.layers)


@dataclass
class EngineState:
    """Mutable per-neuron state of one stream (numpy float64/int64 arrays); ``t`` is the next step index.

    The engine updates it in place and returns it; :meth:`StreamingEngine.init_state` gives a fresh one.
    """

    t: int
    v: np.ndarray
    i: np.ndarray
    last: np.ndarray
    due: np.ndarray
    min_due: np.ndarray
    prev_sp: np.ndarray
    prev_cnt: np.ndarray
    ops: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class EngineResult:
    """``spikes [T, 1, *out_shape]`` of the last layer; ``layer_spikes``: every neuron layer's (if recorded)."""

    spikes: Tensor
    state: EngineState
    ops: EngineOps
    layer_spikes: tuple[Tensor, ...] = ()


def _unwrap(m: nn.Module) -> nn.Module:
    return m.layer if isinstance(m, SeqToBatch) else m


def _flat(value: Any, shape: tuple[int, ...], n: int) -> np.ndarray:
    """A scalar or per-neuron parameter broadcast to the layer's neuron shape, as float64 [N]."""
    t = value.detach().to(torch.float64) if isinstance(value, Tensor) else torch.tensor(float(value), dtype=torch.float64)
    try:
        t = t.expand(shape)
    except RuntimeError:
        raise ValueError(f"a neuron parameter of shape {tuple(t.shape)} does not broadcast to {shape}") from None
    return t.reshape(n).cpu().numpy().copy()


class StreamingEngine:
    """Event-driven batch-1 runtime of a trained SNN. See the module docstring for what is supported.

    Args:
        model: the trained :class:`~spikeforge.layers.SNNSequential` (its weights are copied once).
        input_shape: shape of one input sample without batch, e.g. ``(784,)`` or ``(2, 34, 34)``.
        use_numba: compile the update loop with Numba (default: when installed); False runs the same
            loop interpreted (only for small networks).
    """

    def __init__(self, model: SNNSequential, input_shape: tuple[int, ...], *, use_numba: bool | None = None) -> None:
        if not isinstance(model, SNNSequential):
            raise TypeError(f"StreamingEngine needs an SNNSequential, got {type(model).__name__}")
        if not isinstance(input_shape, tuple) or not input_shape or any(
            isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in input_shape
        ):
            raise ValueError(f"input_shape must be a tuple of positive ints (one sample, no batch), got {input_shape!r}")
        self.use_numba = numba_available() if use_numba is None else bool(use_numba)
        self._advance, self._init_due, self._dense_csr = get_advance(self.use_numba)
        self.input_shape = input_shape
        self._build(model)

    # ---- construction -------------------------------------------------------------------------
    def _build(self, model: SNNSequential) -> None:
        names = {id(m): n for n, m in model.named_modules()}
        shape: tuple[int, ...] = self.input_shape
        pending: nn.Module | None = None
        layers: list[dict[str, Any]] = []
        with torch.no_grad():
            for pos, raw in enumerate(model.layers):
                m = _unwrap(raw)
                if isinstance(m, nn.Flatten):
                    if (m.start_dim, m.end_dim) != (1, -1):
                        raise ValueError(f"layer {pos}: only nn.Flatten() with default dims is supported")
                    shape = (int(np.prod(shape)),)
                    continue
                if isinstance(m, (nn.Linear, nn.Conv2d)):
                    if pending is not None:
                        raise ValueError(f"layer {pos}: two synaptic layers in a row; put a neuron layer between them")
                    pending = m
                    syn_name, in_shape = names[id(raw)], shape
                    shape = self._synapse_shape(m, shape, pos)
                    continue
                if isinstance(m, Neuron):
                    if type(m) not in (IF, LIF, CubaLIF, RecurrentLIF):
                        raise TypeError(
                            f"layer {pos}: the engine runs IF, LIF, CubaLIF and RecurrentLIF, not {type(m).__name__}"
                        )
                    if pending is None:
                        raise ValueError(f"layer {pos}: a neuron layer needs a Linear/Conv2d before it")
                    layers.append(self._layer(pending, m, in_shape, shape, syn_name, names[id(raw)], pos))
                    pending = None
                    continue
                raise TypeError(
                    f"layer {pos}: {type(m).__name__} is not supported by the engine (Linear, Conv2d, Flatten, "
                    "IF, LIF, CubaLIF, RecurrentLIF); run this model densely"
                )
        if pending is not None or not layers:
            raise ValueError("the network must end with a spiking neuron layer (IF, LIF, CubaLIF, RecurrentLIF)")
        self.output_shape = shape
        self._pack(layers)

    def _synapse_shape(self, m: nn.Module, shape: tuple[int, ...], pos: int) -> tuple[int, ...]:
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

    def _layer(self, syn: nn.Module, nrn: Neuron, in_shape: tuple[int, ...], shape: tuple[int, ...],
               syn_name: str, nrn_name: str, pos: int) -> dict[str, Any]:
        n_in, n = int(np.prod(in_shape)), int(np.prod(shape))
        like = torch.zeros(1, *shape, dtype=torch.float64)
        p = nrn.params(like)
        lif_p = p.lif if isinstance(nrn, RecurrentLIF) else p
        dt = nrn.dt
        d: dict[str, Any] = {"n": n, "n_in": n_in, "syn": syn_name, "nrn": nrn_name, "wdtype": syn.weight.dtype}
        if isinstance(nrn, RecurrentLIF) and nrn.w_rec.dtype != syn.weight.dtype:
            d["wdtype"] = torch.float64
        if isinstance(nrn, IF):
            d["model"], beta, gain, alpha = IF_MODEL, 1.0, dt / p.c_mem, 0.0
            d["v_rest"] = 0.0
        else:
            beta = decay(lif_p.tau_mem, dt)
            gain = input_gain(beta, lif_p.r, lif_p.input_scaling)
            d["model"] = CUBA_MODEL if isinstance(nrn, CubaLIF) else LIF_MODEL
            alpha = decay(p.tau_syn, dt) if isinstance(nrn, CubaLIF) else 0.0
            d["v_rest"] = float(lif_p.v_rest)
        d["reset"], d["v_reset"] = _RESETS[lif_p.reset], float(lif_p.v_reset)
        d["beta"], d["gain"], d["alpha"] = (_flat(a, shape, n) for a in (beta, gain, alpha))
        d["v_th"] = _flat(lif_p.v_th, shape, n)
        if np.any(d["gain"] < 0):
            raise ValueError(f"layer {pos}: the input gain (r, or dt / c_mem) must be >= 0 for the engine")
        if np.any(d["beta"] > 1):
            raise ValueError(f"layer {pos}: decay factor > 1 (negative tau?) is not supported")
        w = syn.weight.detach().to(torch.float64).cpu()
        b = syn.bias.detach().to(torch.float64).cpu() if syn.bias is not None else None
        if isinstance(syn, nn.Linear):
            d["kind"], d["wt"] = 0, w.t().contiguous().reshape(-1).numpy()
            d["bias"] = b.numpy().copy() if b is not None else np.zeros(n)
        else:
            d["kind"], d["wt"] = 1, np.zeros(0)
            d["csr"] = self._conv_csr(syn, in_shape, shape)
            d["bias"] = b[:, None, None].expand(shape).reshape(-1).numpy().copy() if b is not None else np.zeros(n)
        if d["model"] == CUBA_MODEL and np.any(d["bias"] != 0):
            raise ValueError(f"layer {pos}: CubaLIF after a layer with a bias is not supported by the engine; use bias=False")
        if isinstance(nrn, RecurrentLIF):
            d["wrec"] = nrn.w_rec.detach().to(torch.float64).cpu().t().contiguous().reshape(-1).numpy()
        return d

    @staticmethod
    def _conv_csr(conv: nn.Conv2d, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
        """Fan-out list of every input position: (indptr [C*H*W + 1], target neuron, weight)."""
        c, h, w = in_shape
        o, oh, ow = out_shape
        kh, kw = conv.kernel_size
        ones = torch.ones(1, c, h, w)
        bag, tap = conv2d_pairs(ones, (kh, kw), conv.stride, conv.padding, conv.dilation, (oh, ow))  # type: ignore[arg-type]
        src = (tap // (kh * kw)) * (h * w)  # input channel part of the source index
        # recover the input position of each pair: output p = (oy, ox), tap (ky, kx) -> (iy, ix)
        oy, ox = bag // ow, bag % ow
        ky, kx = (tap // kw) % kh, tap % kw
        iy = oy * conv.stride[0] - conv.padding[0] + ky * conv.dilation[0]  # type: ignore[index]
        ix = ox * conv.stride[1] - conv.padding[1] + kx * conv.dilation[1]  # type: ignore[index]
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

    def _pack(self, layers: list[dict[str, Any]]) -> None:
        self._layers = layers
        ns = [d["n"] for d in layers]
        self._n_out = np.array(ns, dtype=np.int64)
        self._off = np.concatenate([[0], np.cumsum(ns)[:-1]]).astype(np.int64)
        self._kind = np.array([d["kind"] for d in layers], dtype=np.int64)
        self._model = np.array([d["model"] for d in layers], dtype=np.int64)
        self._reset = np.array([d["reset"] for d in layers], dtype=np.int64)
        self._v_rest = np.array([d["v_rest"] for d in layers], dtype=np.float64)
        self._v_reset = np.array([d["v_reset"] for d in layers], dtype=np.float64)
        wts = [d["wt"] for d in layers]
        self._w_off = np.concatenate([[0], np.cumsum([len(x) for x in wts])[:-1]]).astype(np.int64)
        # weights keep float32 when the model is float32 (exact; half the memory traffic); sums are float64
        wdt = np.float32 if all(d["wdtype"] == torch.float32 for d in layers) else np.float64
        self._wt = np.concatenate(wts).astype(wdt)
        ptrs, tgts, wgts, c_off, base = [], [], [], [], 0
        for d in layers:
            c_off.append(sum(len(p) for p in ptrs))
            if d["kind"] == 1:
                ptr, tgt, wgt = d["csr"]
                ptrs.append(ptr + base)
                tgts.append(tgt)
                wgts.append(wgt)
                base += len(tgt)
        self._c_off = np.array(c_off, dtype=np.int64)
        self._cptr = np.concatenate(ptrs).astype(np.int64) if ptrs else np.zeros(1, dtype=np.int64)
        self._ctgt = np.concatenate(tgts).astype(np.int64) if tgts else np.zeros(1, dtype=np.int64)
        self._cwgt = np.concatenate(wgts).astype(wdt) if wgts else np.zeros(1, dtype=wdt)
        recs, rec_off, base = [], [], 0
        for d in layers:
            if "wrec" in d:
                rec_off.append(base)
                recs.append(d["wrec"])
                base += len(d["wrec"])
            else:
                rec_off.append(-1)
        self._rec_off = np.array(rec_off, dtype=np.int64)
        self._wrec = np.concatenate(recs).astype(wdt) if recs else np.zeros(1, dtype=wdt)
        for key in ("beta", "gain", "alpha", "v_th", "bias"):
            setattr(self, "_" + key, np.concatenate([d[key] for d in layers]).astype(np.float64))
        self._simple = np.array([
            int(d["model"] != CUBA_MODEL and not np.any(d["bias"] != 0) and bool(np.all(d["v_rest"] <= d["v_th"])))
            for d in layers
        ], dtype=np.int64)
        self._uniform = np.array([  # one beta, gain and threshold for the whole layer
            int(all(np.all(d[k] == d[k][0]) for k in ("beta", "gain", "v_th"))) for d in layers
        ], dtype=np.int64)
        total = int(self._n_out.sum())
        self._cur, self._rcur = np.zeros(total), np.zeros(total)
        self._flag, self._tlist = np.zeros(total, dtype=np.uint8), np.zeros(total, dtype=np.int64)
        self._spk, self._spk_cnt = np.zeros(total, dtype=np.int64), np.zeros(len(layers), dtype=np.int64)
        self._state0: EngineState | None = None
        # output columns: record=False writes the last layer at column 0, record=True every layer side by side
        self._cols = np.concatenate([[0], np.cumsum(self._n_out)]).astype(np.int64)
        dcol = np.full(len(layers), -1, dtype=np.int64)
        dcol[-1] = 0
        self._dcol = {False: dcol, True: self._cols[:-1].copy()}
        self._width = {False: int(self._n_out[-1]), True: int(self._cols[-1])}

    # ---- state --------------------------------------------------------------------------------
    def init_state(self) -> EngineState:
        """Every neuron at its initial state (``v = v_rest``, IF at 0; synaptic current 0) before step 0."""
        if self._state0 is None:
            total = int(self._n_out.sum())
            v = np.repeat(self._v_rest, self._n_out).astype(np.float64)
            due = np.empty(total, dtype=np.int64)
            layer_of = np.repeat(np.arange(len(self._layers), dtype=np.int64), self._n_out)
            # spontaneous firing (bias drive, v_rest above threshold) is scheduled here
            self._init_due(self._model, layer_of, v, self._beta, self._gain, self._alpha, self._bias, self._v_rest,
                           self._v_th, due)
            min_due = np.array([due[o:o + n].min() if n else NEVER for o, n in zip(self._off, self._n_out)],
                               dtype=np.int64)
            self._state0 = EngineState(0, v, np.zeros(total), np.full(total, -1, dtype=np.int64), due, min_due,
                                       np.zeros(total, dtype=np.int64), np.zeros(len(self._layers), dtype=np.int64),
                                       np.zeros((len(self._layers), 4), dtype=np.int64))
        s0 = self._state0  # a template built once; every stream gets its own copies
        return EngineState(0, s0.v.copy(), s0.i.copy(), s0.last.copy(), s0.due.copy(), s0.min_due.copy(),
                           s0.prev_sp.copy(), s0.prev_cnt.copy(), s0.ops.copy())

    # ---- running ------------------------------------------------------------------------------
    def _ops(self, ops: np.ndarray) -> EngineOps:
        return EngineOps(tuple(
            LayerOps(d["syn"], d["nrn"], *r) for d, r in zip(self._layers, ops.tolist())
        ))

    def run_csr(self, in_ptr: np.ndarray, in_idx: np.ndarray, in_val: np.ndarray, state: EngineState | None = None,
                *, record: bool = False) -> EngineResult:
        """Run ``len(in_ptr) - 1`` steps; step ``k``'s inputs are ``in_idx[in_ptr[k]:in_ptr[k+1]]`` (flat indices
        into ``input_shape``) with values ``in_val``. The lowest-level entry point; see :meth:`run`."""
        in_ptr = np.ascontiguousarray(in_ptr, dtype=np.int64)
        in_idx = np.ascontiguousarray(in_idx, dtype=np.int64)
        in_val = np.ascontiguousarray(in_val, dtype=np.float64)
        n_in = int(np.prod(self.input_shape))
        if in_idx.size and (in_idx.min() < 0 or in_idx.max() >= n_in):
            raise ValueError(f"input indices must lie in [0, {n_in}) for input_shape {self.input_shape}")
        return self._run(in_ptr, in_idx, in_val, state, bool(record))

    def _run(self, in_ptr: np.ndarray, in_idx: np.ndarray, in_val: np.ndarray, state: EngineState | None,
             record: bool) -> EngineResult:
        """:meth:`run_csr` on arrays already checked (int64 / float64, contiguous, indices in range)."""
        state = self.init_state() if state is None else state
        if not isinstance(state, EngineState):
            raise TypeError(f"state must be an EngineState from init_state(), got {type(state).__name__}")
        n_steps = len(in_ptr) - 1
        ops0 = state.ops.copy()
        dense = np.zeros((n_steps, self._width[record]), dtype=np.float32)
        self._advance(
            n_steps, state.t, in_ptr, in_idx, in_val, self._n_out, self._off, self._kind, self._w_off, self._c_off,
            self._rec_off, self._model, self._simple, self._uniform, self._reset, self._v_rest, self._v_reset, self._wt, self._cptr,
            self._ctgt, self._cwgt, self._wrec, self._beta, self._gain, self._alpha, self._v_th, self._bias,
            state.v, state.i, state.last, state.due, state.min_due, state.prev_sp, state.prev_cnt,
            self._cur, self._rcur, self._flag, self._tlist, self._spk, self._spk_cnt, dense, self._dcol[record], state.ops,
        )
        state.t += n_steps
        out = torch.from_numpy(dense)
        layer_spikes: tuple[Tensor, ...] = ()
        if record:
            cols = self._cols.tolist()
            layer_spikes = tuple(out[:, cols[k]:cols[k + 1]].unsqueeze(1) for k in range(len(self._layers)))
            last = layer_spikes[-1]
        else:
            last = out.unsqueeze(1)
        last = last.reshape(n_steps, 1, *self.output_shape)
        return EngineResult(last, state, self._ops(state.ops - ops0), layer_spikes)

    def run(self, x_seq: Tensor, state: EngineState | None = None, *, record: bool = False) -> EngineResult:
        """Run ``x_seq [T, 1, *input_shape]`` one step after another; returns spikes ``[T, 1, *output_shape]``.

        ``record=True`` also returns every neuron layer's spikes ``[T, 1, N_l]`` (flattened) in ``layer_spikes``.
        """
        if not isinstance(x_seq, Tensor) or not x_seq.is_floating_point():
            raise TypeError("x_seq must be a floating-point torch.Tensor [T, 1, *input_shape]")
        if x_seq.dim() != len(self.input_shape) + 2 or tuple(x_seq.shape[2:]) != self.input_shape or x_seq.shape[1] != 1:
            raise ValueError(
                f"x_seq must be [T, 1, *{self.input_shape}] (batch 1), got {tuple(x_seq.shape)}; "
                "the engine streams one sample: run samples one by one"
            )
        flat = x_seq.detach().reshape(x_seq.shape[0], -1).cpu()
        if flat.dtype != torch.float64 and (flat.dtype != torch.float32 or flat.shape[1] % 2):
            flat = flat.to(torch.float64)  # half / bfloat16 (exact), or float32 rows that do not span whole words
        xn = flat.contiguous().numpy()
        ptr = np.empty(xn.shape[0] + 1, dtype=np.int64)
        idx, vals = np.empty(xn.size, dtype=np.int64), np.empty(xn.size, dtype=np.float64)
        nnz = self._dense_csr(xn, xn.view(np.uint64), ptr, idx, vals)  # one compiled pass: nonzeros per step, NaN/inf check
        if nnz < 0:
            raise ValueError("x_seq contains NaN or inf")
        return self._run(ptr, idx[:nnz], vals[:nnz], state, bool(record))

    def step(self, x_t: Tensor, state: EngineState | None = None) -> tuple[Tensor, EngineState]:
        """One time step: ``x_t [1, *input_shape]`` -> ``(spikes [1, *output_shape], state)``."""
        res = self.run(x_t.unsqueeze(0), state)
        return res.spikes[0], res.state

    def run_events(self, events: np.ndarray, sensor_size: tuple[int, int, int], dt: int, *, num_steps: int | None = None,
                   t0: int = 0, state: EngineState | None = None, record: bool = False) -> EngineResult:
        """Stream an event array (see :mod:`spikeforge.events.stream`) without building a dense tensor.

        Event ``(x, y, t, p)`` is input ``(p, y, x)`` of ``input_shape = (P, H, W)`` (or its flat index for a
        flat input of ``P * H * W``) at step ``(t - t0) // dt``; repeated events in a step add up.
        """
        check_events(events, sensor_size)
        w, h, npol = (int(s) for s in sensor_size)
        if int(np.prod(self.input_shape)) != npol * h * w:
            raise ValueError(f"sensor_size {sensor_size} has {npol * h * w} inputs, the network {self.input_shape}")
        if isinstance(dt, bool) or not isinstance(dt, int) or dt < 1:
            raise ValueError(f"dt must be a positive int (microseconds), got {dt!r}")
        steps = (events["t"] - t0) // dt
        if events.size and steps[0] < 0:
            raise ValueError(f"events start before t0={t0}")
        if num_steps is None:
            num_steps = int(steps[-1]) + 1 if events.size else 0
        if events.size and steps[-1] >= num_steps:
            raise ValueError(f"events run past num_steps={num_steps}; raise num_steps")
        flat = (events["p"].astype(np.int64) * h + events["y"].astype(np.int64)) * w + events["x"].astype(np.int64)
        ptr = np.concatenate([[0], np.cumsum(np.bincount(steps, minlength=num_steps))]) if num_steps else np.zeros(1)
        return self.run_csr(ptr, flat, np.ones(flat.size), state, record=record)
