"""The whole-layer update of the event engine's loop (:func:`~spikeforge.events._loop.advance`): every neuron of
a "simple" layer in one vectorised pass (see :mod:`spikeforge.events._kernel`).

Numba compiles this helper into ``advance``, whose on-disk cache notices changes to ``_loop.py`` only: after
editing this file, delete the caches (``find src -name '*.nbi' -o -name '*.nbc' | xargs rm -f``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spikeforge._core.codes import SUBTRACT
from spikeforge._core.codes import TO_VALUE
from spikeforge.events._layout import LIF_MODEL
from spikeforge.events._layout import NEVER
from spikeforge.events._layout import jitable

__all__ = ["update_all_simple", "compact_flags"]


@jitable
def update_all_simple(
    vl: np.ndarray,
    lastl: np.ndarray,
    duel: np.ndarray,
    curl: np.ndarray,
    rcurl: np.ndarray,
    betal: np.ndarray,
    gainl: np.ndarray,
    thl: np.ndarray,
    sflag: np.ndarray,
    spl: np.ndarray,
    t: int,
    synced: int,
    vr: Any,
    vz: Any,
    rst: int,
    mdl: int,
    is_rec: bool,
    uniform: bool,
) -> tuple[bool, int]:
    """Update every neuron of a "simple" layer (IF/LIF, no bias, v_rest <= v_th) at step ``t``: the arithmetic
    of the per-neuron path as one branch-free, vectorised pass, then a compaction of the spike flags into ``spl``.
    ``synced >= 0``: every neuron was last updated at step ``synced`` (else ``lastl`` holds the steps). ``lastl``
    is not written (the caller records ``t``); ``duel`` only when some neuron could fire at ``t + 1`` without
    input. Returns ``(soon, count)``: whether ``duel`` was written so, and the number of spikes."""
    n_l = vl.shape[0]
    if mdl == LIF_MODEL:  # lazy leak
        if synced >= 0:
            lo, hi = synced, synced
        else:
            lo, hi = t - 1, t - 1
            for n in range(n_l):
                lo = min(lo, lastl[n])
            if lo < t - 1:
                hi = lo
                for n in range(n_l):
                    hi = max(hi, lastl[n])
        if lo < t - 1:  # some neuron missed steps
            if lo == hi:
                pw = betal[0] ** (t - 1 - lo)
                for n in range(n_l):
                    vl[n] = vr + (pw if uniform else betal[n] ** (t - 1 - lo)) * (vl[n] - vr)
            else:
                for n in range(n_l):
                    k = t - 1 - lastl[n]
                    if k > 0:
                        vl[n] = vr + betal[n] ** k * (vl[n] - vr)
    if is_rec:
        for n in range(n_l):
            curl[n] = (curl[n] + 0.0) + rcurl[n]
            rcurl[n] = 0.0
    # The main loop has no branch on the layer's flags (they would keep it from vectorising): IF is
    # the LIF formula with beta = 1, v_rest = 0 (bit-identical), and the three resets are two selects.
    to_value = rst == TO_VALUE
    sub = 1.0 if rst == SUBTRACT else 0.0
    n_sp = 0
    soon = False
    if uniform:  # one beta, gain and threshold for the layer: the loop streams only v and the current
        be, ga, th = betal[0], gainl[0], thl[0]
        for n in range(n_l):
            x = curl[n]
            curl[n] = 0.0
            vv = vr + be * (vl[n] - vr) + ga * x
            s = vv - th > 0.0
            vs = vv - sub * (th - vz)
            vv = (vz if to_value else vs) if s else vv
            vl[n] = vv
            sflag[n] = s
            n_sp += s
            soon |= vr + be * (vv - vr) - th > 0.0
    else:
        for n in range(n_l):
            x = curl[n]
            curl[n] = 0.0
            be, th = betal[n], thl[n]
            vv = vr + be * (vl[n] - vr) + gainl[n] * x
            s = vv - th > 0.0
            vs = vv - sub * (th - vz)
            vv = (vz if to_value else vs) if s else vv
            vl[n] = vv
            sflag[n] = s
            n_sp += s
            soon |= vr + be * (vv - vr) - th > 0.0
    if soon:
        for n in range(n_l):
            duel[n] = t + 1 if vr + betal[n] * (vl[n] - vr) - thl[n] > 0.0 else NEVER
    pos = compact_flags(sflag, n_sp, spl)
    return soon, pos


@jitable
def compact_flags(sflag: np.ndarray, n_sp: int, spl: np.ndarray) -> int:
    """Write the indices of the ``n_sp`` set flags of ``sflag`` (uint8 0/1, cleared) to ``spl`` in ascending order;
    returns their number. Eight flags per 64-bit word, zero words skipped, stopping after the last spike; within a
    word an unconditional store advanced by the flag (no branch to mispredict on irregular spikes). ``spl`` is as long
    as ``sflag``."""
    n_l = sflag.shape[0]
    pos = 0
    nw = n_l // 8 if n_sp else 0
    words = sflag[: nw * 8].view(np.uint64)
    for q in range(nw):
        if pos == n_sp:
            break
        w = words[q]
        if w != 0:
            words[q] = 0
            for bit in range(8):
                spl[pos] = 8 * q + bit
                pos += np.int64((w >> np.uint64(8 * bit)) & np.uint64(1))
    for n in range(nw * 8, n_l if n_sp else 0):
        if sflag[n]:
            sflag[n] = 0
            spl[pos] = n
            pos += 1
    return pos
