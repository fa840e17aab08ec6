"""Validation of what :class:`~spikeforge.events.StreamingEngine` hands to its compiled loop.

The loop (Numba or its pure-Python twin) indexes arrays with the values it is given and does no bounds
checks of its own, so every index pointer, index and carried state is checked here first: no input
reachable from Python may read or write out of bounds (a segfault under Numba). Messages name the fix.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["check_csr", "check_engine_state", "check_state_values", "check_state_arrays", "scan_state", "state_shapes"]


def check_model_and_shape(model: object, input_shape: object, who: str) -> None:
    """``model`` must be an :class:`~spikeforge.layers.SNNSequential` and ``input_shape`` a tuple of positive ints."""
    from spikeforge.layers import SNNSequential

    if not isinstance(model, SNNSequential):
        raise TypeError(f"{who} needs an SNNSequential, got {type(model).__name__}")
    if (
        not isinstance(input_shape, tuple)
        or not input_shape
        or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in input_shape)
    ):
        raise ValueError(f"input_shape must be a tuple of positive ints (one sample, no batch), got {input_shape!r}")


def _array(a: object, name: str, kinds: str, what: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}; flatten it with .ravel()")
    if arr.size and arr.dtype.kind not in kinds:
        raise TypeError(f"{name} must hold {what}, got dtype {arr.dtype}; convert it with .astype(np.int64)")
    return arr


def check_csr(in_ptr: object, in_idx: object, in_val: object, n_in: int) -> tuple[np.ndarray, ...]:
    """``(in_ptr, in_idx, in_val)`` as contiguous int64 / int64 / float64 arrays, after checking that
    ``in_ptr`` is a non-decreasing index pointer into ``in_idx`` (``0 <= in_ptr[0] <= ... <= in_ptr[-1] <=
    len(in_idx)``), every index lies in ``[0, n_in)`` and every value is finite."""
    ptr = _array(in_ptr, "in_ptr", "iu", "integer offsets")
    idx = _array(in_idx, "in_idx", "iu", "integer input indices")
    val = _array(in_val, "in_val", "biuf", "real input values")
    if ptr.size == 0:
        raise ValueError("in_ptr must have at least one entry (len(in_ptr) - 1 steps); use np.zeros(1, np.int64)")
    if val.shape != idx.shape:
        raise ValueError(f"in_val has {val.size} entries but in_idx has {idx.size}; give one value per index")
    if ptr.dtype.kind == "u" and int(ptr.max()) > idx.size:
        raise ValueError(f"in_ptr holds offsets up to {int(ptr.max())}, past len(in_idx) = {idx.size}")
    ptr = np.ascontiguousarray(ptr, dtype=np.int64)
    if int(ptr[0]) < 0 or int(ptr[-1]) > idx.size:
        raise ValueError(
            f"in_ptr must index into in_idx: 0 <= in_ptr[0] and in_ptr[-1] <= len(in_idx) = {idx.size}, got "
            f"in_ptr[0] = {int(ptr[0])}, in_ptr[-1] = {int(ptr[-1])}; build it with np.concatenate([[0], "
            "np.cumsum(counts_per_step)])"
        )
    if ptr.size > 1 and bool(np.any(ptr[1:] < ptr[:-1])):
        k = int(np.argmax(ptr[1:] < ptr[:-1]))
        raise ValueError(
            f"in_ptr must be non-decreasing; in_ptr[{k + 1}] = {int(ptr[k + 1])} < in_ptr[{k}] = {int(ptr[k])}; "
            "build it with np.concatenate([[0], np.cumsum(counts_per_step)])"
        )
    if idx.size:
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= n_in:
            raise ValueError(f"input indices must lie in [0, {n_in}), got values in [{lo}, {hi}]")
    idx = np.ascontiguousarray(idx, dtype=np.int64)
    val = np.ascontiguousarray(val, dtype=np.float64)
    if val.size and not bool(np.isfinite(val).all()):
        raise ValueError("in_val contains NaN or inf; clean it first (e.g. np.nan_to_num)")
    return _plain(ptr), _plain(idx), _plain(val)


def _plain(a: np.ndarray) -> np.ndarray:
    """``a`` as an aligned, writeable array (a copy where it is not): the types the compiled loop was resolved for
    (:func:`~spikeforge.events._kernel.entry_point` checks no types per call)."""
    return a if a.flags.aligned and a.flags.writeable else a.copy()


_F64, _I64, _U8 = np.dtype(np.float64), np.dtype(np.int64), np.dtype(np.uint8)


def _field(state: Any, name: str, dtype: np.dtype, size: int, shape: tuple[int, ...] | None = None) -> np.ndarray:
    a = getattr(state, name)
    want = (size,) if shape is None else shape
    if (
        type(a) is not np.ndarray
        or a.dtype != dtype
        or a.shape != want
        or not (a.flags.c_contiguous and a.flags.aligned and a.flags.writeable)
    ):
        got = f"{a.dtype} {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
        if isinstance(a, np.ndarray) and not (a.flags.aligned and a.flags.writeable):
            got += " (read-only or unaligned)"
        raise ValueError(
            f"state.{name} must be a contiguous {dtype} array of shape {want} (aligned, writeable) for this engine, "
            f"got {got}; "
            "pass state=None or a state from this engine's init_state()"
        )
    return a


def state_shapes(lay: Any) -> tuple[tuple[str, np.dtype, tuple[int, ...]], ...]:
    """``(field, dtype, shape)`` of every array of an engine's state, for an engine with layers ``lay``."""
    total, n_layers = int(lay.n_out.sum()), len(lay.n_out)
    slots = np.where(lay.delay >= 0, lay.delay + 1, 0)
    ring = int((slots * lay.n_in).sum())
    return (
        ("v", _F64, (total,)), ("i", _F64, (total,)), ("last", _I64, (total,)), ("due", _I64, (total,)),
        ("min_due", _I64, (n_layers,)), ("prev_sp", _I64, (total,)), ("prev_cnt", _I64, (n_layers,)),
        ("ops", _I64, (n_layers, 4)), ("hval", _F64, (ring,)), ("hidx", _I64, (ring,)), ("hflag", _U8, (ring,)),
        ("hcnt", _I64, (int(slots.sum()),)),
    )  # fmt: skip


def check_state_arrays(state: Any, shapes: tuple[tuple[str, np.dtype, tuple[int, ...]], ...]) -> None:
    """Raise unless every array of ``state`` has the dtype and shape of ``shapes`` (:func:`state_shapes`) and is
    C-contiguous, aligned and writeable (what the compiled loop was resolved for), and ``state.t >= 0``. Runs on
    every call, so the common case is a few attribute reads per array."""
    t = state.t
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or int(t) < 0:
        raise ValueError(f"state.t must be a non-negative int step index, got {t!r}")
    for name, dtype, shape in shapes:
        a = getattr(state, name)
        if type(a) is not np.ndarray or a.dtype is not dtype or a.shape != shape:
            _field(state, name, dtype, shape[0], shape)
            continue
        f = a.flags
        if not (f.c_contiguous and f.aligned and f.writeable):
            _field(state, name, dtype, shape[0], shape)


def scan_state(
    t: int, values: bool, v: np.ndarray, i: np.ndarray, last: np.ndarray, prev_sp: np.ndarray, prev_cnt: np.ndarray,
    hidx: np.ndarray, hcnt: np.ndarray, hval: np.ndarray, lay: Any,
) -> int:  # fmt: skip
    """One pass over what the loop indexes memory with (``prev_cnt``/``prev_sp``, the delay lines' ``hcnt``/
    ``hidx``) and, with ``values``, the hand-edit checks (finite ``v``/``i``/``hval``, ``-1 <= last < t``). Returns 0, or
    the number of the first failed check (:func:`check_engine_state` then raises with the message). Compiled."""
    for layer in range(lay.n_out.shape[0]):
        n, c, o = lay.n_out[layer], prev_cnt[layer], lay.off[layer]
        if c < 0 or c > n:
            return 1
        for e in range(c):
            if prev_sp[o + e] < 0 or prev_sp[o + e] >= n:
                return 2
        if lay.delay[layer] >= 0:
            n_in, r0, s0 = lay.n_in[layer], lay.r_off[layer], lay.s_off[layer]
            for s in range(lay.delay[layer] + 1):
                if hcnt[s0 + s] < 0 or hcnt[s0 + s] > n_in:
                    return 3
                for e in range(hcnt[s0 + s]):
                    j = hidx[r0 + s * n_in + e]
                    if j < 0 or j >= n_in:
                        return 4
    if values:
        for g in range(v.shape[0]):
            if not (math.isfinite(v[g]) and math.isfinite(i[g])):
                return 5
            if last[g] < -1 or last[g] >= t:
                return 6
        for g in range(hval.shape[0]):
            if not math.isfinite(hval[g]):
                return 7
    return 0


def check_engine_state(state: Any, lay: Any, values: bool = True) -> None:
    """Raise unless ``state`` (an :class:`~spikeforge.events.EngineState`, arrays already checked by
    :func:`check_state_arrays`) fits an engine whose layers are ``lay``: the values the loop indexes memory with
    (``prev_cnt``, ``prev_sp``, the delay lines' slot counts and inputs) and, with ``values``, the hand-edit
    checks of :func:`check_state_values`. The vectorised reference of :func:`scan_state`; messages name the fix."""
    n_out, off = lay.n_out, lay.off
    prev_sp, prev_cnt = state.prev_sp, state.prev_cnt
    for layer, (c, n) in enumerate(zip(prev_cnt.tolist(), n_out.tolist())):  # a few layers: plain Python
        if c == 0:
            continue
        if c < 0 or c > n:
            raise ValueError(f"state.prev_cnt[{layer}] = {c} must lie in [0, {n}]; pass state=None to start fresh")
        o = int(off[layer])
        sp = prev_sp[o : o + c]  # the spikes this (recurrent) layer carries into the next step
        if int(sp.min()) < 0 or int(sp.max()) >= n:
            raise ValueError(f"state.prev_sp of layer {layer} must index its {n} neurons; pass state=None")
    for layer in np.nonzero(lay.delay >= 0)[0].tolist():
        n_in, r0, s0, d = (int(a[layer]) for a in (lay.n_in, lay.r_off, lay.s_off, lay.delay))
        for s in range(d + 1):
            c = int(state.hcnt[s0 + s])
            if c < 0 or c > n_in:
                raise ValueError(f"state.hcnt of layer {layer} must lie in [0, {n_in}]; pass state=None")
            listed = state.hidx[r0 + s * n_in : r0 + s * n_in + c]
            if c and (int(listed.min()) < 0 or int(listed.max()) >= n_in):
                raise ValueError(f"state.hidx of layer {layer} must index its {n_in} inputs; pass state=None")
    if values:
        check_state_values(state)


def check_state_values(state: Any) -> None:
    """The value checks of a carried state that are not needed for memory safety but catch a state edited
    by hand: finite membranes, currents and delay-line values, ``-1 <= last < t``. Run once per :meth:`StreamingEngine.run_csr`
    / :meth:`~StreamingEngine.run` call that is given a state (not per step of a run)."""
    for name in ("v", "i", "hval"):
        if not bool(np.isfinite(getattr(state, name)).all()):
            raise ValueError(f"state.{name} contains NaN or inf; pass state=None to start fresh")
    last = state.last
    if last.size and (int(last.min()) < -1 or int(last.max()) >= int(state.t)):
        raise ValueError(f"state.last must lie in [-1, state.t) = [-1, {int(state.t)}); pass state=None")
