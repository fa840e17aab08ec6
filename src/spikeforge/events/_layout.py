"""Data layout of the event-driven loops (see :mod:`spikeforge.events._kernel` for the algorithm): the
NamedTuples of arrays that :func:`~spikeforge.events._loop.advance` takes, the membrane-equation codes, the
input scan :func:`dense_csr` and the :func:`jitable` marker for helpers compiled into the loops."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any
from typing import NamedTuple
from typing import TypeVar

import numpy as np

__all__ = [
    "Inputs", "Layers", "Weights", "Membranes", "State", "Scratch", "Outputs", "IF_MODEL", "LIF_MODEL",
    "CUBA_MODEL", "NEVER", "dense_csr", "jitable",
]  # fmt: skip

F = TypeVar("F", bound=Callable[..., Any])

IF_MODEL, LIF_MODEL, CUBA_MODEL = 0, 1, 2  # the membrane equation of a layer (``Layers.model``)
NEVER = np.iinfo(np.int64).max // 2  # ``due`` of a neuron that cannot fire without input


class Inputs(NamedTuple):
    """Input entries per step (CSR): step ``k``'s are ``idx[ptr[k]:ptr[k + 1]]`` with values ``val``."""

    ptr: np.ndarray  # int64 [n_steps + 1]
    idx: np.ndarray  # int64, flat input indices
    val: np.ndarray  # float64


class Layers(NamedTuple):
    """Per-layer description, one entry per (synapse, neuron) layer ``l``."""

    n_out: np.ndarray  # int64: number of neurons N_l
    off: np.ndarray  # int64: first index of the layer in the per-neuron arrays
    kind: np.ndarray  # int64: synapse, 0 = Linear (dense W^T), 1 = Conv2d (fan-out CSR), 2 = DelayedLinear per
    # axon (W^T rows, delays in Weights.dly), 3 = DelayedLinear per synapse (fan-out CSR per delay value),
    # 4 = Conv2d (kernel taps: the table [C_in, kh, kw (reversed), C_out] in Weights.wt, channels-last currents)
    w_off: np.ndarray  # int64: offset of the layer's W^T (Linear) or tap table (kind 4) in ``Weights.wt``
    c_off: np.ndarray  # int64: offset of the layer's indptr in ``Weights.cptr`` (Conv2d)
    rec_off: np.ndarray  # int64: offset of the layer's W_rec^T in ``Weights.wrec``, -1 if not recurrent
    model: np.ndarray  # int64: IF_MODEL | LIF_MODEL | CUBA_MODEL
    simple: np.ndarray  # int64: 1 for IF/LIF without bias, v_rest <= v_th (the fast path)
    uniform: np.ndarray  # int64: 1 when beta, gain and v_th are the same for every neuron
    reset: np.ndarray  # int64: a reset code of spikeforge._core.codes
    v_rest: np.ndarray  # float64
    v_reset: np.ndarray  # float64
    n_in: np.ndarray  # int64: inputs of the layer's synapse
    delay: np.ndarray  # int64: the largest delay D of the layer's delay line (kinds 2, 3), -1 for none
    r_off: np.ndarray  # int64: offset of the layer's ring ((D + 1) x n_in) in State.hval / hidx / hflag
    s_off: np.ndarray  # int64: offset of the ring's D + 1 slot counts in State.hcnt
    dl_off: np.ndarray  # int64: offset of the per-axon delays in Weights.dly (kind 2)
    geo: np.ndarray  # int64 [L, 14]: a Conv2d layer's geometry (columns: _conv_taps.GEO), zeros for others
    whole: np.ndarray  # int64: a Conv2d layer (kinds 1, 4; IF/LIF, not recurrent) whose inputs at a step touch at
    # least this many of its neurons updates all of them in one pass (_conv_update.update_all_conv); N_l + 1: never


class Weights(NamedTuple):
    """Synaptic weights of every layer, flat (float32 when the whole model is float32, else float64)."""

    wt: np.ndarray  # Linear: W^T rows; Conv2d kind 4: the tap table; layer l at Layers.w_off[l]
    cptr: np.ndarray  # Conv2d: fan-out indptr (int64), layer l at Layers.c_off[l]
    ctgt: np.ndarray  # Conv2d: target neuron of each fan-out entry (int64)
    cwgt: np.ndarray  # Conv2d: weight of each fan-out entry
    wrec: np.ndarray  # recurrent: W_rec^T rows, layer l at Layers.rec_off[l]
    dly: np.ndarray  # int64: per-axon delays (kind 2), layer l at Layers.dl_off[l]


class Membranes(NamedTuple):
    """Per-neuron constants (float64 [total neurons])."""

    beta: np.ndarray
    gain: np.ndarray
    alpha: np.ndarray  # synaptic decay (CubaLIF), else 0
    v_th: np.ndarray
    bias: np.ndarray  # constant drive per step from the synaptic layer's bias


class State(NamedTuple):
    """Per-neuron state of one stream (the arrays of :class:`~spikeforge.events.engine.EngineState`)."""

    v: np.ndarray  # float64 membrane at the neuron's last update
    i: np.ndarray  # float64 synaptic current (CubaLIF)
    last: np.ndarray  # int64 step of the last update
    due: np.ndarray  # int64 first step at which the neuron could fire without input
    min_due: np.ndarray  # int64 [L] minimum of ``due`` per layer
    prev_sp: np.ndarray  # int64 spikes of the previous step of recurrent layers (at Layers.off[l])
    prev_cnt: np.ndarray  # int64 [L] their number
    hval: np.ndarray  # float64 delay lines: slot s of layer l holds the input values of a step t = s mod (D + 1)
    hidx: np.ndarray  # int64 the inputs listed in the slot (its first hcnt entries)
    hflag: np.ndarray  # uint8 input listed in the slot
    hcnt: np.ndarray  # int64 entries per slot (at Layers.s_off[l])


class Scratch(NamedTuple):
    """Working arrays of one call (contents do not carry over)."""

    cur: np.ndarray  # float64 feed-forward current accumulator
    rcur: np.ndarray  # float64 recurrent current accumulator
    flag: np.ndarray  # uint8 "already touched at this step"
    tlist: np.ndarray  # int64 touched neurons of the step (at Layers.off[l])
    spk: np.ndarray  # int64 spike indices of the step (at Layers.off[l])
    spk_cnt: np.ndarray  # int64 [L] their number
    dj: np.ndarray  # int64 inputs a delay line delivers at the step (max n_in)
    da: np.ndarray  # float64 their values
    acc: np.ndarray  # the weights' dtype: a Linear layer's sum of the step's weight rows (max N_l; zero between uses)
    pflag: np.ndarray  # uint8 output positions touched by a kind-4 layer's taps (max OH * OW; zero between uses)
    plist: np.ndarray  # int64 those positions, ascending
    cix: np.ndarray  # int64 index of each listed neuron's channels-last current (at Layers.off[l], kind 4)


class Outputs(NamedTuple):
    """``dense [n_steps, width]``: spike ``n`` of layer ``l`` at step ``tt`` is 1 in column ``dcol[l] + n``
    (layers with ``dcol[l] < 0`` are not written); ``ops [L, 4]`` accumulates feed-forward synaptic ops,
    recurrent synaptic ops, neuron updates and spikes."""

    dense: np.ndarray
    dcol: np.ndarray
    ops: np.ndarray


def dense_csr(x: np.ndarray, words: np.ndarray, ptr: np.ndarray, idx: np.ndarray, val: np.ndarray) -> int:
    """Nonzeros of ``x [T, K]`` per step (CSR, ``val`` as float64); returns nnz, or -1 on NaN/inf.

    ``words [T, K * itemsize / 8]`` is ``x`` viewed as uint64 (a row must span whole words): a 64-byte
    block (16 float32 or 8 float64 values) whose eight words OR to zero is skipped; the others and the
    row's tail are scanned value by value (``-0.0`` has a nonzero pattern and is then compared as a
    float, so it counts as zero)."""
    n_steps, k = x.shape
    per = 64 // x.itemsize
    nb = k // per
    nnz = 0
    ptr[0] = 0
    for t in range(n_steps):
        row, w = x[t], words[t]
        for c in range(nb + 1):
            if c < nb:
                blk = w[8 * c : 8 * c + 8]  # a view: indices from 0, no wrap-around checks
                if ((blk[0] | blk[1]) | (blk[2] | blk[3]) | (blk[4] | blk[5]) | (blk[6] | blk[7])) == 0:
                    continue
                vals = row[c * per : (c + 1) * per]
            else:
                vals = row[nb * per :]  # the tail of a row
            for j in range(vals.shape[0]):
                a = vals[j]
                if a != 0:
                    if not math.isfinite(a):
                        return -1
                    idx[nnz] = c * per + j
                    val[nnz] = a
                    nnz += 1
        ptr[t + 1] = nnz
    return nnz


def jitable(fn: F) -> F:
    """``fn`` itself (plain Python); with Numba installed also compiled into compiled callers, specialised on
    constant arguments as calls between ``njit`` functions are (e.g. ``_loop._accumulate`` on ``unit``)."""
    try:
        from numba.extending import overload
    except ImportError:  # without numba only the interpreted loops exist
        return fn
    overload(fn, strict=False, prefer_literal=True)(lambda *args: fn)
    return fn
