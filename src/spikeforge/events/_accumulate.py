"""The Linear row sums of the event engine's loop (:func:`~spikeforge.events._loop.advance`): the weight rows of a
step's inputs summed into the layer's currents (see :mod:`spikeforge.events._kernel`).

Numba compiles this helper into ``advance``, whose on-disk cache notices changes to ``_loop.py`` only: after
editing this file, delete the caches (``find src -name '*.nbi' -o -name '*.nbc' | xargs rm -f``).
"""

from __future__ import annotations

import numpy as np

from spikeforge.events._layout import jitable

__all__ = ["accumulate_rows"]


@jitable
def accumulate_rows(
    cv: np.ndarray,
    acc: np.ndarray,
    wt: np.ndarray,
    base: int,
    n_l: int,
    js: np.ndarray,
    vals: np.ndarray,
    unit: bool,
    e: int,
    stop: int,
    keep: bool,
) -> None:
    """``cv += sum_q vals[q] * W^T[js[q]]`` for ``q`` in ``[e, stop)`` (``vals`` all 1 when ``unit``), rows of the flat
    transposed weight at ``base``.

    Spike values (every value 1): the step's rows are summed in the weights' precision (float32 for a float32
    model, as the dense layer's matrix product sums; half the bytes of a float64 sum) one after another in input
    order, ``((acc + w0) + w1) + ...``, into ``acc``. Passes take eight rows while more than eight remain, then
    four, then the last 1-4: one load and store of ``acc`` per pass, and the more weight rows a pass streams at
    once, the better the memory system overlaps their reads (rows that miss the caches dominate at fan-out
    1024). The result does not depend on the pass sizes: every partial sum is rounded to the weights' precision
    either way. Analog values: products in float64, rounded to ``acc`` after each pass of four.

    The last pass adds the sum to the float64 current ``cv`` (exact) and clears ``acc``, which is zero before and
    after. ``keep``: the sum stays in ``acc`` instead (``cv`` untouched), for a whole-layer update that reads and
    clears it."""
    if stop <= e:
        return
    ones = unit
    if not unit:  # analog inputs: spike-valued steps (every value 1) take the unit path
        ones = True
        for q in range(e, stop):
            ones = ones and vals[q] == 1.0
    if ones:
        while stop - e > 8:
            j0, j1, j2, j3 = js[e], js[e + 1], js[e + 2], js[e + 3]
            j4, j5, j6, j7 = js[e + 4], js[e + 5], js[e + 6], js[e + 7]
            w0, w1 = wt[base + j0 * n_l : base + (j0 + 1) * n_l], wt[base + j1 * n_l : base + (j1 + 1) * n_l]
            w2, w3 = wt[base + j2 * n_l : base + (j2 + 1) * n_l], wt[base + j3 * n_l : base + (j3 + 1) * n_l]
            w4, w5 = wt[base + j4 * n_l : base + (j4 + 1) * n_l], wt[base + j5 * n_l : base + (j5 + 1) * n_l]
            w6, w7 = wt[base + j6 * n_l : base + (j6 + 1) * n_l], wt[base + j7 * n_l : base + (j7 + 1) * n_l]
            for n in range(n_l):
                s = (((acc[n] + w0[n]) + w1[n]) + w2[n]) + w3[n]
                acc[n] = (((s + w4[n]) + w5[n]) + w6[n]) + w7[n]
            e += 8
    while stop - e > 4:
        j0, j1, j2, j3 = js[e], js[e + 1], js[e + 2], js[e + 3]
        w0, w1 = wt[base + j0 * n_l : base + (j0 + 1) * n_l], wt[base + j1 * n_l : base + (j1 + 1) * n_l]
        w2, w3 = wt[base + j2 * n_l : base + (j2 + 1) * n_l], wt[base + j3 * n_l : base + (j3 + 1) * n_l]
        if ones:
            for n in range(n_l):
                acc[n] = (((acc[n] + w0[n]) + w1[n]) + w2[n]) + w3[n]
        else:
            a0, a1, a2, a3 = vals[e], vals[e + 1], vals[e + 2], vals[e + 3]
            for n in range(n_l):
                acc[n] = (((acc[n] + a0 * w0[n]) + a1 * w1[n]) + a2 * w2[n]) + a3 * w3[n]
        e += 4
    r = stop - e
    if not ones:
        for q in range(e, stop):
            a0, j0 = vals[q], js[q]
            w0 = wt[base + j0 * n_l : base + (j0 + 1) * n_l]
            for n in range(n_l):
                acc[n] = acc[n] + a0 * w0[n]
        r = 0
    j0, j1, j2, j3 = js[e], js[e + (r > 1)], js[e + 2 * (r > 2)], js[e + 3 * (r > 3)]
    w0, w1 = wt[base + j0 * n_l : base + (j0 + 1) * n_l], wt[base + j1 * n_l : base + (j1 + 1) * n_l]
    w2, w3 = wt[base + j2 * n_l : base + (j2 + 1) * n_l], wt[base + j3 * n_l : base + (j3 + 1) * n_l]
    if keep:
        if r == 4:
            for n in range(n_l):
                acc[n] = (((acc[n] + w0[n]) + w1[n]) + w2[n]) + w3[n]
        elif r == 3:
            for n in range(n_l):
                acc[n] = ((acc[n] + w0[n]) + w1[n]) + w2[n]
        elif r == 2:
            for n in range(n_l):
                acc[n] = (acc[n] + w0[n]) + w1[n]
        elif r == 1:
            for n in range(n_l):
                acc[n] = acc[n] + w0[n]
    elif r == 4:
        for n in range(n_l):
            cv[n] += (((acc[n] + w0[n]) + w1[n]) + w2[n]) + w3[n]
            acc[n] = 0.0
    elif r == 3:
        for n in range(n_l):
            cv[n] += ((acc[n] + w0[n]) + w1[n]) + w2[n]
            acc[n] = 0.0
    elif r == 2:
        for n in range(n_l):
            cv[n] += (acc[n] + w0[n]) + w1[n]
            acc[n] = 0.0
    elif r == 1:
        for n in range(n_l):
            cv[n] += acc[n] + w0[n]
            acc[n] = 0.0
    else:
        for n in range(n_l):
            cv[n] += acc[n]
            acc[n] = 0.0
