"""Validation of what :class:`~spikeforge.events.StreamingEngine` hands to its compiled loop.

The loop (Numba or its pure-Python twin) indexes arrays with the values it is given and does no bounds
checks of its own, so every index pointer, index and carried state is checked here first: no input
reachable from Python may read or write out of bounds (a segfault under Numba). Messages name the fix.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_csr", "check_engine_state", "check_state_values"]


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
    return ptr, idx, val


_F64, _I64 = np.dtype(np.float64), np.dtype(np.int64)


def _field(state: Any, name: str, dtype: np.dtype, size: int, shape: tuple[int, ...] | None = None) -> np.ndarray:
    a = getattr(state, name)
    want = (size,) if shape is None else shape
    if type(a) is not np.ndarray or a.dtype != dtype or a.shape != want or not a.flags.c_contiguous:
        got = f"{a.dtype} {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
        raise ValueError(
            f"state.{name} must be a contiguous {dtype} array of shape {want} for this engine, got {got}; "
            "pass state=None or a state from this engine's init_state()"
        )
    return a


def check_engine_state(state: Any, n_out: np.ndarray, off: np.ndarray) -> None:
    """Raise unless ``state`` (an :class:`~spikeforge.events.EngineState`) fits an engine whose layers have
    ``n_out`` neurons starting at ``off``: array types and shapes, and the values the loop indexes memory
    with (``prev_cnt``, ``prev_sp``). Runs on every call (also every :meth:`StreamingEngine.step`), so it
    checks only what could make the compiled loop read or write out of bounds, in a few vectorised passes;
    the membrane values themselves are the engine's own (see :func:`check_state_values`)."""
    total, n_layers = int(n_out.sum()), len(n_out)
    t = state.t
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or int(t) < 0:
        raise ValueError(f"state.t must be a non-negative int step index, got {t!r}")
    for name in ("v", "i"):
        _field(state, name, _F64, total)
    for name in ("last", "due"):
        _field(state, name, _I64, total)
    _field(state, "min_due", _I64, n_layers)
    prev_sp = _field(state, "prev_sp", _I64, total)
    prev_cnt = _field(state, "prev_cnt", _I64, n_layers)
    _field(state, "ops", _I64, n_layers, (n_layers, 4))
    for layer, (c, n) in enumerate(zip(prev_cnt.tolist(), n_out.tolist())):  # a few layers: plain Python
        if c == 0:
            continue
        if c < 0 or c > n:
            raise ValueError(f"state.prev_cnt[{layer}] = {c} must lie in [0, {n}]; pass state=None to start fresh")
        o = int(off[layer])
        sp = prev_sp[o : o + c]  # the spikes this (recurrent) layer carries into the next step
        if int(sp.min()) < 0 or int(sp.max()) >= n:
            raise ValueError(f"state.prev_sp of layer {layer} must index its {n} neurons; pass state=None")


def check_state_values(state: Any) -> None:
    """The value checks of a carried state that are not needed for memory safety but catch a state edited
    by hand: finite membranes and currents, ``-1 <= last < t``. Run once per :meth:`StreamingEngine.run_csr`
    / :meth:`~StreamingEngine.run` call that is given a state (not per step of a run)."""
    for name in ("v", "i"):
        if not bool(np.isfinite(getattr(state, name)).all()):
            raise ValueError(f"state.{name} contains NaN or inf; pass state=None to start fresh")
    last = state.last
    if last.size and (int(last.min()) < -1 or int(last.max()) >= int(state.t)):
        raise ValueError(f"state.last must lie in [-1, state.t) = [-1, {int(state.t)}); pass state=None")
