r"""Event-domain helpers of :mod:`spikeforge.events.pipeline`: spikes as per-step index lists (CSR), max pooling
of binary spikes on those lists, and the event-driven input current of a linear readout.

Max pooling of 0/1 spikes is an OR over the window: pooled unit ``(c, i, j)`` spikes at step ``t`` iff some input
``(c, y, x)`` with ``y // kh = i`` and ``x // kw = j`` spiked at ``t`` (non-overlapping windows, stride = kernel,
no padding; rows and columns past the last whole window are dropped, as ``floor`` in ``F.max_pool2d``). It is
exact only for binary inputs, so any other value is refused. Each step's pooled indices are de-duplicated.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor
from torch import nn

__all__ = ["Csr", "dense_to_csr", "pool_csr", "pool_params", "readout_current", "spikes_to_csr", "pool_spikes"]


class Csr(NamedTuple):
    """``T`` steps of events: step ``k`` holds inputs ``idx[ptr[k]:ptr[k+1]]`` (flat) with values ``val``."""

    ptr: np.ndarray  # int64 [T + 1]
    idx: np.ndarray  # int64 [nnz]
    val: np.ndarray  # float64 [nnz]

    @property
    def steps(self) -> int:
        return len(self.ptr) - 1


def _ptr(step_of: np.ndarray, n_steps: int) -> np.ndarray:
    ptr = np.zeros(n_steps + 1, dtype=np.int64)
    ptr[1:] = np.cumsum(np.bincount(step_of, minlength=n_steps))
    return ptr


def dense_to_csr(x_seq: Tensor) -> Csr:
    """The nonzeros of ``x_seq [T, ...]`` per step (flat indices over the dims after ``T``), step-major."""
    n_steps = int(x_seq.shape[0])
    flat = x_seq.detach().reshape(n_steps, int(np.prod(x_seq.shape[1:]))).cpu()
    if not bool(torch.isfinite(flat).all()):
        raise ValueError("x_seq contains NaN or inf")
    nz = flat.nonzero()  # row-major: sorted by step, then index
    step_of, idx = nz[:, 0], nz[:, 1]
    val = flat[step_of, idx].to(torch.float64)
    return Csr(_ptr(step_of.numpy(), n_steps), idx.numpy().astype(np.int64), val.numpy())


def pool_params(pool: nn.MaxPool2d, pos: int) -> tuple[int, int]:
    """The ``(kh, kw)`` window of a ``MaxPool2d`` the event domain can run, or ``ValueError`` naming the fix."""

    def pair(v: object) -> tuple[int, int]:
        return (v, v) if isinstance(v, int) else tuple(v)  # type: ignore[return-value,arg-type]

    kernel = pair(pool.kernel_size)
    stride = pair(pool.stride if pool.stride is not None else pool.kernel_size)
    if (
        stride != kernel
        or pair(pool.padding) != (0, 0)
        or pair(pool.dilation) != (1, 1)
        or pool.ceil_mode
        or pool.return_indices
    ):
        raise ValueError(
            f"layer {pos}: the event-domain max pooling runs MaxPool2d with stride = kernel_size, padding 0, "
            f"dilation 1 and ceil_mode=False, got {pool}; use such a MaxPool2d or run the model densely"
        )
    return kernel


def pool_csr(x: Csr, in_shape: tuple[int, ...], kernel: tuple[int, int], where: str = "MaxPool2d") -> Csr:
    """Max-pool binary spikes ``x`` over ``in_shape = (C, H, W)`` with non-overlapping ``kernel`` windows.

    Returns the pooled spikes (flat indices into ``(C, H // kh, W // kw)``, value 1, each at most once per step).
    Raises ``ValueError`` if an input value is not 0 or 1 (the OR equals the maximum only for 0/1 spikes)."""
    if len(in_shape) != 3:
        raise ValueError(f"{where}: max pooling needs [C, H, W] inputs, gets shape {in_shape}")
    c, h, w = in_shape
    kh, kw = kernel
    oh, ow = h // kh, w // kw
    nz = x.val != 0
    if not bool(np.all(x.val[nz] == 1)):
        bad = float(x.val[nz][x.val[nz] != 1][0])
        raise ValueError(
            f"{where}: event-domain max pooling needs binary (0/1) spikes, got the value {bad:g}; pool only spike "
            "outputs of neuron layers (pooling of counts or analog inputs is not an OR), or run the model densely"
        )
    step_of = np.repeat(np.arange(x.steps, dtype=np.int64), np.diff(x.ptr))[nz]
    idx = x.idx[nz]
    ch, rem = np.divmod(idx, h * w)
    y, xx = np.divmod(rem, w)
    keep = (y < oh * kh) & (xx < ow * kw)
    n_out = c * oh * ow
    key = step_of[keep] * n_out + (ch[keep] * oh + y[keep] // kh) * ow + xx[keep] // kw
    key = np.unique(key)  # sorted: step-major, one entry per pooled unit and step
    out_step, out_idx = np.divmod(key, max(n_out, 1))
    return Csr(_ptr(out_step, x.steps), out_idx.astype(np.int64), np.ones(out_idx.size))


def readout_current(x: Csr, wt: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, int]:
    """Event-driven input current ``[T, C]`` of a linear readout: per step, ``bias`` plus the value-weighted sum of
    the weight rows ``wt [n_in, C]`` (``W^T``) of that step's active inputs. Returns ``(current, synops)`` where
    ``synops`` counts one accumulation per input event per output."""
    cur = np.repeat(bias[None, :], x.steps, axis=0)
    for k in range(x.steps):
        a, b = int(x.ptr[k]), int(x.ptr[k + 1])
        if b > a:
            cur[k] += x.val[a:b] @ wt[x.idx[a:b]]
    return cur, int(x.ptr[-1] - x.ptr[0]) * wt.shape[1]


# ---- fast paths for an engine's spike output [T, N] (0/1 float32): one compiled scan, no sort ------------------
def _nonzero_scan(x: np.ndarray, ptr: np.ndarray, idx: np.ndarray, val: np.ndarray) -> int:
    """The nonzeros of ``x [T, N]`` per step, in index order; returns their number."""
    n = 0
    ptr[0] = 0
    for t in range(x.shape[0]):
        for j in range(x.shape[1]):
            v = x[t, j]
            if v != 0.0:
                idx[n] = j
                val[n] = v
                n += 1
        ptr[t + 1] = n
    return n


def _pool_scan(
    x: np.ndarray, c: int, h: int, w: int, kh: int, kw: int, ptr: np.ndarray, idx: np.ndarray
) -> int:  # fmt: skip
    """Pooled units of ``x [T, C*H*W]`` that have a spike in their window, per step in index order (each once);
    returns their number, or -1 on a value other than 0 or 1."""
    oh, ow = h // kh, w // kw
    for t in range(x.shape[0]):  # the values first, in one vectorised pass
        bad = False
        xt = x[t]
        for q in range(xt.shape[0]):
            v = xt[q]
            bad |= (v != 0.0) & (v != 1.0)
        if bad:
            return -1
    # a row of windows: the max over its kh input rows. Loops over slices from index 0 (Numba then drops its
    # negative-index branch and vectorises them); branch-free: spikes are irregular, mispredicted branches cost most
    row = np.empty(ow * kw, dtype=x.dtype)
    n = 0
    ptr[0] = 0
    for t in range(x.shape[0]):
        for ch in range(c):
            for i in range(oh):
                r0 = (ch * h + i * kh) * w
                xr = x[t, r0 : r0 + ow * kw]
                for q in range(row.shape[0]):
                    row[q] = xr[q]
                for a in range(1, kh):
                    xr = x[t, r0 + a * w : r0 + a * w + ow * kw]
                    for q in range(row.shape[0]):
                        row[q] = max(row[q], xr[q])
                base = (ch * oh + i) * ow
                for j in range(ow):
                    m = row[j * kw]
                    for b in range(1, kw):
                        m = max(m, row[j * kw + b])
                    idx[n] = base + j
                    n += m != 0.0
        ptr[t + 1] = n
    return n


@functools.cache
def _compiled() -> tuple[Callable[..., Any], Callable[..., Any]] | None:
    """The two scans compiled by Numba (cached on disk), or None without Numba (the numpy paths run instead)."""
    from spikeforge.events._kernel import numba_available

    if not numba_available():
        return None
    import numba

    jit: Any = numba.njit(cache=True, nogil=True)
    return jit(_nonzero_scan), jit(_pool_scan)


def spikes_to_csr(x: np.ndarray) -> Csr:
    """:func:`dense_to_csr` of a finite ``x [T, N]`` numpy array (an engine's spikes)."""
    kernels = _compiled()
    if kernels is None:
        return dense_to_csr(torch.from_numpy(x))
    ptr = np.empty(x.shape[0] + 1, dtype=np.int64)
    idx, val = np.empty(x.size, dtype=np.int64), np.empty(x.size, dtype=np.float64)
    n = kernels[0](x, ptr, idx, val)
    return Csr(ptr, idx[:n], val[:n])


def pool_spikes(x: np.ndarray, in_shape: tuple[int, ...], kernel: tuple[int, int], where: str = "MaxPool2d") -> Csr:
    """:func:`pool_csr` of spikes given densely, ``x [T, C*H*W]`` (an engine's output): the same events."""
    kernels = _compiled()
    if kernels is None or len(in_shape) != 3:
        return pool_csr(spikes_to_csr(x), in_shape, kernel, where)
    c, h, w = in_shape
    kh, kw = kernel
    ptr = np.empty(x.shape[0] + 1, dtype=np.int64)
    idx = np.empty(x.shape[0] * c * (h // kh) * (w // kw), dtype=np.int64)
    n = kernels[1](x, c, h, w, kh, kw, ptr, idx)
    if n < 0:
        return pool_csr(spikes_to_csr(x), in_shape, kernel, where)  # raises, naming the value
    return Csr(ptr, idx[:n], np.ones(n))
