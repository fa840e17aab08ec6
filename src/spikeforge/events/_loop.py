"""The event engine's loop :func:`advance`, which :mod:`spikeforge.events._kernel` (the equations, the data
layout) compiles with Numba or runs interpreted. Its whole-layer helpers stay in this file: Numba's on-disk
cache notices changes to the caller's file only. The closed forms it calls live in
:mod:`spikeforge.events._closed_form` (stable math; after editing that file delete the Numba caches)."""

from __future__ import annotations

from typing import Any

import numpy as np

from spikeforge._core.codes import SUBTRACT
from spikeforge._core.codes import TO_VALUE
from spikeforge.events._closed_form import _catch_up
from spikeforge.events._closed_form import _next_due
from spikeforge.events._layout import IF_MODEL
from spikeforge.events._layout import LIF_MODEL
from spikeforge.events._layout import NEVER
from spikeforge.events._layout import Inputs
from spikeforge.events._layout import Layers
from spikeforge.events._layout import Membranes
from spikeforge.events._layout import Outputs
from spikeforge.events._layout import Scratch
from spikeforge.events._layout import State
from spikeforge.events._layout import Weights
from spikeforge.events._layout import jitable

__all__ = ["advance"]


@jitable
def _update_all_simple(
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
    pos = 0  # compaction: eight flags per 64-bit word, zero words skipped, stopping after the last spike
    nw = n_l // 8 if n_sp else 0
    words = sflag[: nw * 8].view(np.uint64)
    for q in range(nw):
        if pos == n_sp:
            break
        w = words[q]
        if w != 0:
            words[q] = 0
            for b in range(8):
                if (w >> np.uint64(8 * b)) & np.uint64(1):
                    spl[pos] = 8 * q + b
                    pos += 1
    for n in range(nw * 8, n_l if n_sp else 0):
        if sflag[n]:
            sflag[n] = 0
            spl[pos] = n
            pos += 1
    return soon, pos


@jitable
def _settle(o: int, n_l: int, synced: int, never: bool, last: np.ndarray, due: np.ndarray) -> None:
    """Write a layer's deferred ``last`` (every neuron at step ``synced``, if >= 0) and ``due`` (all NEVER)."""
    if synced >= 0:
        for n in range(o, o + n_l):
            last[n] = synced
    if never:
        for n in range(o, o + n_l):
            due[n] = NEVER


@jitable
def _accumulate(
    cv: np.ndarray, wt: np.ndarray, base: int, n_l: int, js: np.ndarray, vals: np.ndarray, unit: bool, e: int, stop: int
) -> None:
    """``cv += vals[q] * W^T[js[q]]`` for ``q`` in ``[e, stop)`` (``vals`` all 1 when ``unit``), rows of the flat
    transposed weight at ``base``: four rows per pass over ``cv``, ``cv + ((a0 w0 + a1 w1) + (a2 w2 + a3 w3))``,
    then the last 0-3 rows added one after another in one more pass (more rows per pass ran slower here)."""
    while e + 4 <= stop:
        j0, j1, j2, j3 = js[e], js[e + 1], js[e + 2], js[e + 3]
        a0, a1, a2, a3 = (1.0, 1.0, 1.0, 1.0) if unit else (vals[e], vals[e + 1], vals[e + 2], vals[e + 3])
        w0, w1 = wt[base + j0 * n_l : base + (j0 + 1) * n_l], wt[base + j1 * n_l : base + (j1 + 1) * n_l]
        w2, w3 = wt[base + j2 * n_l : base + (j2 + 1) * n_l], wt[base + j3 * n_l : base + (j3 + 1) * n_l]
        for n in range(n_l):
            cv[n] += (a0 * w0[n] + a1 * w1[n]) + (a2 * w2[n] + a3 * w3[n])
        e += 4
    r = stop - e
    if r > 0:
        j0, j1, j2 = js[e], js[e + (r > 1)], js[e + 2 * (r > 2)]
        a0 = 1.0 if unit else vals[e]
        a1 = 1.0 if unit else vals[e + (r > 1)]
        a2 = 1.0 if unit else vals[e + 2 * (r > 2)]
        w0, w1 = wt[base + j0 * n_l : base + (j0 + 1) * n_l], wt[base + j1 * n_l : base + (j1 + 1) * n_l]
        w2 = wt[base + j2 * n_l : base + (j2 + 1) * n_l]
        if r == 1:
            for n in range(n_l):
                cv[n] += a0 * w0[n]
        elif r == 2:
            for n in range(n_l):
                cv[n] = (cv[n] + a0 * w0[n]) + a1 * w1[n]
        else:
            for n in range(n_l):
                cv[n] = ((cv[n] + a0 * w0[n]) + a1 * w1[n]) + a2 * w2[n]


def advance(
    n_steps: int, t0: int, inp: Inputs, lay: Layers, wts: Weights, mem: Membranes, st: State, scr: Scratch, out: Outputs
) -> None:
    """Advance the network by ``n_steps`` steps from absolute step ``t0``, every layer, in one call (see
    :mod:`spikeforge.events._kernel`): ``inp`` the input entries per step, ``lay``/``wts``/``mem`` the network,
    ``st`` the stream's state (updated in place), ``scr`` working arrays, ``out`` spikes and operation counts."""
    in_ptr, in_idx, in_val = inp
    n_out, off, syn_kind, w_off, c_off, rec_off, model, simple_layer, uniform, reset, v_rest, v_reset = lay
    wt, cptr, ctgt, cwgt, wrec = wts
    beta, gain, alpha, v_th, bias = mem
    v, i, last, due, min_due, prev_sp, prev_cnt = st
    cur, rcur, flag, tlist, spk, spk_cnt = scr
    dense, dcol, ops = out
    n_layers = n_out.shape[0]
    # Deferred writes of whole-layer updates, settled before any per-neuron access and at the end: synced[l] >= 0:
    # every neuron of layer l was last updated at that step (``last`` not written); never[l]: all ``due`` NEVER.
    synced = np.full(n_layers, -1, dtype=np.int64)
    never = np.zeros(n_layers, dtype=np.bool_)
    for tt in range(n_steps):
        t = t0 + tt
        for l in range(n_layers):
            n_l = n_out[l]
            o = off[l]
            if l == 0:
                a0, a1 = in_ptr[tt], in_ptr[tt + 1]
            else:
                a0, a1 = 0, spk_cnt[l - 1]
            is_rec = rec_off[l] >= 0
            if a1 == a0 and t < min_due[l] and (not is_rec or prev_cnt[l] == 0):
                spk_cnt[l] = 0  # no input, nothing due: the layer costs nothing at this step
                continue
            n_t = 0
            everyone = False
            cv = cur[o : o + n_l]
            # 1. synaptic accumulation
            if syn_kind[l] == 0 and a1 > a0:
                everyone = True
                if l == 0:
                    _accumulate(cv, wt, w_off[l], n_l, in_idx, in_val, False, a0, a1)
                else:  # the previous layer's spikes (value 1)
                    _accumulate(cv, wt, w_off[l], n_l, spk[off[l - 1] : off[l - 1] + a1], in_val, True, 0, a1)
                ops[l, 0] += (a1 - a0) * n_l
            elif syn_kind[l] != 0:
                for e in range(a0, a1):
                    if l == 0:
                        j, a = in_idx[e], in_val[e]
                    else:
                        j, a = spk[off[l - 1] + e], 1.0
                    q0, q1 = cptr[c_off[l] + j], cptr[c_off[l] + j + 1]
                    for q in range(q0, q1):
                        n = ctgt[q]
                        cur[o + n] += a * cwgt[q]
                        if flag[o + n] == 0:
                            flag[o + n] = 1
                            tlist[o + n_t] = n
                            n_t += 1
                    ops[l, 0] += q1 - q0
            if is_rec:
                for e in range(prev_cnt[l]):
                    base = rec_off[l] + prev_sp[o + e] * n_l
                    rv, wv = rcur[o : o + n_l], wrec[base : base + n_l]
                    for n in range(n_l):
                        rv[n] += wv[n]
                    ops[l, 1] += n_l
                    everyone = True
            mdl = model[l]
            vr, vz = v_rest[l], v_reset[l]
            simple = simple_layer[l] != 0
            rst = reset[l]
            spl = spk[o : o + n_l]
            if everyone and simple:  # 3'. the whole layer in one vectorised pass
                soon, pos = _update_all_simple(
                    v[o : o + n_l],
                    last[o : o + n_l],
                    due[o : o + n_l],
                    cv,
                    rcur[o : o + n_l],
                    beta[o : o + n_l],
                    gain[o : o + n_l],
                    v_th[o : o + n_l],
                    flag[o : o + n_l],
                    spl,
                    t,
                    synced[l],
                    vr,
                    vz,
                    rst,
                    mdl,
                    is_rec,
                    uniform[l] != 0,
                )
                synced[l] = t
                never[l] = not soon
                min_due[l] = t + 1 if soon else NEVER
                count = 0
            else:
                if synced[l] >= 0 or never[l]:  # per-neuron access below: write the deferred state first
                    _settle(o, n_l, synced[l], never[l], last, due)
                    synced[l] = -1
                    never[l] = False
                # 2. neurons that could cross threshold on their own
                if not everyone and t >= min_due[l]:
                    m = NEVER
                    for n in range(n_l):
                        d = due[o + n]
                        if d <= t:
                            if flag[o + n] == 0:
                                flag[o + n] = 1
                                tlist[o + n_t] = n
                                n_t += 1
                        elif d < m:
                            m = d
                    min_due[l] = m
                if everyone:
                    min_due[l] = NEVER  # every neuron is evaluated below and reschedules itself
                count = n_l if everyone else n_t
                pos = 0
            # 3. lazy leak + step + reset, touched neurons only
            if count:
                vl, lastl, duel = v[o : o + n_l], last[o : o + n_l], due[o : o + n_l]
                curl, rcurl = cur[o : o + n_l], rcur[o : o + n_l]
                flagl, betal, gainl, thl = flag[o : o + n_l], beta[o : o + n_l], gain[o : o + n_l], v_th[o : o + n_l]
            for c in range(count):
                n = c if everyone else tlist[o + c]
                g = o + n
                flagl[n] = 0
                if simple:  # IF/LIF, no bias, v_rest <= v_th: the common case, without the general bookkeeping
                    vv, be, ga, th = vl[n], betal[n], gainl[n], thl[n]
                    k = t - 1 - lastl[n]
                    x = curl[n]
                    curl[n] = 0.0
                    if is_rec:
                        x = (x + 0.0) + rcurl[n]
                        rcurl[n] = 0.0
                    if mdl == IF_MODEL:
                        vv = vv + ga * x
                    else:
                        if k > 0:
                            vv = vr + be**k * (vv - vr)
                        vv = vr + be * (vv - vr) + ga * x
                    if vv - th > 0.0:
                        if rst == TO_VALUE:
                            vv = vz
                        elif rst == SUBTRACT:
                            vv = vv - (th - vz)
                        spl[pos] = n
                        pos += 1
                    vl[n] = vv
                    lastl[n] = t
                    nxt = (vv - th > 0.0) if mdl == IF_MODEL else (vr + be * (vv - vr) - th > 0.0)
                    if nxt:
                        duel[n] = t + 1
                        if t + 1 < min_due[l]:
                            min_due[l] = t + 1
                    else:
                        duel[n] = NEVER
                    continue
                vv, ii = v[g], i[g]
                be, ga, al, b, th = beta[g], gain[g], alpha[g], bias[g], v_th[g]
                k = t - 1 - last[g]
                if k > 0:
                    vv, ii = _catch_up(mdl, k, vv, ii, be, ga, al, b, vr)
                x = (cur[g] + b) + rcur[g]
                cur[g] = 0.0
                rcur[g] = 0.0
                if mdl == IF_MODEL:
                    vv = vv + ga * x
                elif mdl == LIF_MODEL:
                    vv = vr + be * (vv - vr) + ga * x
                else:
                    ii = al * ii + x
                    vv = vr + be * (vv - vr) + ga * ii
                if vv - th > 0.0:
                    if reset[l] == TO_VALUE:
                        vv = vz
                    elif reset[l] == SUBTRACT:
                        vv = vv - (th - vz)
                    spl[pos] = n
                    pos += 1
                v[g] = vv
                i[g] = ii
                last[g] = t
                d = _next_due(mdl, t, vv, ii, be, ga, al, b, vr, th)
                due[g] = d
                if d < min_due[l]:
                    min_due[l] = d
            ops[l, 2] += n_l if everyone else n_t
            ops[l, 3] += pos
            spk_cnt[l] = pos
            if dcol[l] >= 0:
                for e in range(pos):
                    dense[tt, dcol[l] + spl[e]] = 1.0
            if is_rec:
                for e in range(pos):
                    prev_sp[o + e] = spl[e]
                prev_cnt[l] = pos
    for l in range(n_layers):
        _settle(off[l], n_out[l], synced[l], never[l], last, due)
