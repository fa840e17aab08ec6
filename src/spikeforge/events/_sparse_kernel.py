r"""Numba kernels of :func:`~spikeforge.events.sparse.sparse_linear` (CPU, serial, built on first use).

For binary ``x [M, K]`` the layer is two gathers of contiguous rows,

.. math::  y_m = \sum_{j \in A_m} W^T_{j,:}, \qquad
           \frac{\partial L}{\partial W^T_{j,:}} = \sum_{m:\, j \in A_m} \frac{\partial L}{\partial y_{m,:}},

with ``A_m`` the active inputs of row ``m``. The active-index lists are built once per call as a CSR
(:func:`rows_csr`), saved for the backward pass and transposed there (:func:`transpose_csr`, a counting
sort), so both directions run the same kernel (:func:`gather_rows`): for every output row, the sum of
the selected table rows, four rows per pass over the (L1-resident) output row so that the accumulator
is loaded and stored once per four additions. Every addition works on whole contiguous rows, which
LLVM vectorises. Serial on purpose (see :mod:`spikeforge.backends.numba_kernel`: a second thread pool
next to torch's slowed later torch ops down).

Sums run in the tensor's dtype in a different order from the GEMM, so results equal ``F.linear`` to
float rounding.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["rows_csr", "transpose_csr", "gather_rows", "kernels"]


def rows_csr(x: np.ndarray, ptr: np.ndarray, idx: np.ndarray) -> int:
    """Row CSR of the nonzeros of ``x [M, K]`` into ``ptr [M + 1]`` / ``idx [>= nnz + 1]``; returns nnz,
    or -1 if some entry is neither 0 nor 1 (NaN included). Branch-free compaction: every element is
    written at the current end and the end moves on only for nonzeros."""
    m_rows, k = x.shape
    flat = x.reshape(-1)
    bad = False
    for q in range(flat.shape[0]):  # vectorised check: 0/1 only
        v = flat[q]
        bad |= (v != 0) & (v != 1)
    if bad:
        return -1
    nnz = 0
    ptr[0] = 0
    for m in range(m_rows):
        for j in range(k):
            idx[nnz] = j
            nnz += x[m, j] != 0
        ptr[m + 1] = nnz
    return nnz


def transpose_csr(ptr: np.ndarray, idx: np.ndarray, n_cols: int, cptr: np.ndarray, cidx: np.ndarray) -> None:
    """Column CSR (``cptr [n_cols + 1]``, ``cidx [nnz]`` row ids, ascending) of the row CSR ``ptr``/``idx``."""
    m_rows = ptr.shape[0] - 1
    for j in range(n_cols + 1):
        cptr[j] = 0
    for e in range(ptr[m_rows]):
        cptr[idx[e] + 1] += 1
    for j in range(n_cols):
        cptr[j + 1] += cptr[j]
    pos = cptr[:n_cols].copy()
    for m in range(m_rows):
        for e in range(ptr[m], ptr[m + 1]):
            j = idx[e]
            cidx[pos[j]] = m
            pos[j] += 1


def gather_rows(ptr: np.ndarray, idx: np.ndarray, table: np.ndarray, out: np.ndarray) -> None:
    """``out[m] += sum(table[idx[e]] for e in ptr[m]:ptr[m+1])`` for every row ``m`` of ``out [M, N]``."""
    m_rows, n = out.shape
    for m in range(m_rows):
        o = out[m]
        e, e1 = ptr[m], ptr[m + 1]
        while e + 4 <= e1:
            w0, w1, w2, w3 = table[idx[e]], table[idx[e + 1]], table[idx[e + 2]], table[idx[e + 3]]
            for c in range(n):
                o[c] += (w0[c] + w1[c]) + (w2[c] + w3[c])
            e += 4
        while e < e1:
            w0 = table[idx[e]]
            for c in range(n):
                o[c] += w0[c]
            e += 1


_COMPILED: dict[str, Any] = {}  # compiled code, not data


def kernels() -> tuple[Any, Any, Any] | None:
    """``(rows_csr, transpose_csr, gather_rows)`` compiled by Numba, or None without numba."""
    if "k" not in _COMPILED:
        try:
            import numba
        except ImportError:
            _COMPILED["k"] = None
        else:
            jit = numba.njit(cache=True, nogil=True)
            _COMPILED["k"] = (jit(rows_csr), jit(transpose_csr), jit(gather_rows))
    return _COMPILED["k"]
