"""The event engine's loop :func:`advance`, which :mod:`spikeforge.events._kernel` (the equations, the data
layout) compiles with Numba or runs interpreted. Its whole-layer helpers stay in this file: Numba's on-disk
cache notices changes to the caller's file only. The closed forms it calls live in
:mod:`spikeforge.events._closed_form` (stable math; after editing that file delete the Numba caches)."""

from __future__ import annotations

import numpy as np

from spikeforge._core.codes import SUBTRACT
from spikeforge._core.codes import TO_VALUE
from spikeforge.events._accumulate import accumulate_rows
from spikeforge.events._closed_form import _catch_up
from spikeforge.events._closed_form import _next_due
from spikeforge.events._conv_taps import conv_scatter
from spikeforge.events._conv_taps import conv_touched
from spikeforge.events._conv_taps import csr_scatter
from spikeforge.events._conv_update import count_marked
from spikeforge.events._conv_update import update_all_conv
from spikeforge.events._conv_update import update_listed
from spikeforge.events._delay_line import ring_gather
from spikeforge.events._delay_line import ring_push
from spikeforge.events._delay_line import ring_scatter
from spikeforge.events._layout import CUBA_MODEL
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
from spikeforge.events._whole_layer import update_all_simple

__all__ = ["advance"]


@jitable
def _settle(o: int, n_l: int, synced: int, never: bool, last: np.ndarray, due: np.ndarray) -> None:
    """Write a layer's deferred ``last`` (every neuron at step ``synced``, if >= 0) and ``due`` (all NEVER)."""
    if synced >= 0:
        for n in range(o, o + n_l):
            last[n] = synced
    if never:
        for n in range(o, o + n_l):
            due[n] = NEVER


def advance(
    n_steps: int, t0: int, inp: Inputs, lay: Layers, wts: Weights, mem: Membranes, st: State, scr: Scratch, out: Outputs
) -> None:
    """Advance the network by ``n_steps`` steps from absolute step ``t0``, every layer, in one call (see
    :mod:`spikeforge.events._kernel`): ``inp`` the input entries per step, ``lay``/``wts``/``mem`` the network,
    ``st`` the stream's state (updated in place), ``scr`` working arrays, ``out`` spikes and operation counts."""
    in_ptr, in_idx, in_val = inp
    n_out, off, syn_kind, w_off, c_off, rec_off, model, simple_layer, uniform, reset, v_rest, v_reset = lay[:12]
    n_in, delay, r_off, s_off, dl_off, geo, whole = lay[12:]
    wt, cptr, ctgt, cwgt, wrec, dly = wts
    beta, gain, alpha, v_th, bias = mem
    v, i, last, due, min_due, prev_sp, prev_cnt, hval, hidx, hflag, hcnt = st
    cur, rcur, flag, tlist, spk, spk_cnt, dj, da, acc, pflag, plist, cix = scr
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
                src, unit = in_idx, False
            else:
                a0, a1 = 0, spk_cnt[l - 1]
                src, unit = spk[off[l - 1] : off[l - 1] + a1], True
            is_rec = rec_off[l] >= 0
            kind, dl = syn_kind[l], delay[l]
            pending = a1 - a0
            if dl >= 0:  # a delay line: the step's inputs go into the ring, what arrives now is delivered below
                pending = ring_push(
                    hval, hidx, hflag, hcnt, r_off[l], s_off[l], n_in[l], dl, t, src, in_val, unit, a0, a1
                )
            if pending == 0 and t < min_due[l] and (not is_rec or prev_cnt[l] == 0):
                spk_cnt[l] = 0  # no input, nothing due: the layer costs nothing at this step
                continue
            n_t = 0
            everyone = False
            tap = False  # a kind-4 layer's taps touched positions (listed in pflag)
            cv = cur[o : o + n_l]
            simple = simple_layer[l] != 0
            # a Linear layer's row sum goes straight from ``acc`` into the whole-layer update (no float64 pass)
            fused = simple and not is_rec and (kind == 0 or kind == 2)
            # 1. synaptic accumulation
            if kind == 0 and a1 > a0:
                everyone = True
                if l == 0:
                    accumulate_rows(cv, acc, wt, w_off[l], n_l, in_idx, in_val, False, a0, a1, fused)
                else:  # the previous layer's spikes (value 1)
                    accumulate_rows(cv, acc, wt, w_off[l], n_l, src, in_val, True, 0, a1, fused)
                ops[l, 0] += (a1 - a0) * n_l
            elif kind == 2:  # per-axon delays: whole W^T rows of the inputs that arrive now
                nd = ring_gather(hval, hidx, hcnt, r_off[l], s_off[l], n_in[l], dl, t, dly, dl_off[l], dj, da)
                if nd:
                    everyone = True
                    accumulate_rows(cv, acc, wt, w_off[l], n_l, dj, da, False, 0, nd, fused)
                    ops[l, 0] += nd * n_l
            elif kind == 3:  # per-synapse delays: each delay group's fan-out of the inputs sent that long ago
                nq = ring_scatter(hval, hidx, hcnt, r_off[l], s_off[l], n_in[l], dl, t, cptr, ctgt, cwgt, c_off[l], cv)
                if nq:
                    everyone = True
                    ops[l, 0] += nq
            elif kind == 4 and a1 > a0:  # Conv2d, kernel taps: channels-last currents (see _conv_taps)
                ops[l, 0] += conv_scatter(cv, wt, w_off[l], geo[l], src, in_val, unit, a0, a1, pflag)
                tap = True
            elif kind == 1:  # Conv2d, generic fan-out lists
                n_t, nq = csr_scatter(cv, cptr, ctgt, cwgt, c_off[l], src, in_val, unit, a0, a1, flag[o : o + n_l],
                                      tlist[o : o + n_l], n_t)  # fmt: skip
                ops[l, 0] += nq
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
            rst = reset[l]
            spl = spk[o : o + n_l]
            cl = kind == 4  # the currents are channels-last: neuron n = co * npos + p reads current p * cout + co
            npos, cout = geo[l, 4] * geo[l, 5], geo[l, 3]
            if everyone and simple and not cl:  # 3'. the whole layer in one vectorised pass
                if fused:
                    soon, pos = update_all_simple(
                        v[o : o + n_l],
                        last[o : o + n_l],
                        due[o : o + n_l],
                        acc[:n_l],
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
                else:
                    soon, pos = update_all_simple(
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
                pos = 0
                dense_step = (tap or kind == 1) and not is_rec and mdl != CUBA_MODEL and (simple or uniform[l] != 0)
                if dense_step:  # most of a Conv2d layer touched: every neuron in one pass (Layers.whole)
                    dense_step = (count_marked(pflag, npos) * cout if tap else n_t) >= whole[l]
                if dense_step:
                    pos, min_due[l] = update_all_conv(cv, tap, npos, cout, pflag, rcur[o : o + n_l], flag[o : o + n_l],
                                                      v[o : o + n_l], last[o : o + n_l], due[o : o + n_l],
                                                      beta[o : o + n_l], gain[o : o + n_l], v_th[o : o + n_l],
                                                      bias[o : o + n_l], spl, t, simple, uniform[l] != 0, mdl, rst, vr,
                                                      vz)  # fmt: skip
                    n_t = n_l
                elif tap:  # the neurons of the touched positions, channel by channel
                    n_t = conv_touched(
                        pflag, plist, npos, cout, flag[o : o + n_l], tlist[o : o + n_l], cix[o : o + n_l]
                    )
                # 2. neurons that could cross threshold on their own
                if not everyone and not dense_step and t >= min_due[l]:
                    m = NEVER
                    for n in range(n_l):
                        d = due[o + n]
                        if d <= t:
                            if flag[o + n] == 0:
                                flag[o + n] = 1
                                tlist[o + n_t] = n
                                if cl:
                                    cix[o + n_t] = (n % npos) * cout + n // npos
                                n_t += 1
                        elif d < m:
                            m = d
                    min_due[l] = m
                if everyone:
                    min_due[l] = NEVER  # every neuron is evaluated below and reschedules itself
                count = 0 if dense_step else n_l if everyone else n_t
                if cl and not everyone and not dense_step and mdl != CUBA_MODEL:  # see _conv_update
                    pos, min_due[l] = update_listed(tlist[o : o + n_t], cix[o : o + n_t], n_t, flag[o : o + n_l], cv,
                                                    v[o : o + n_l], last[o : o + n_l], due[o : o + n_l],
                                                    beta[o : o + n_l], gain[o : o + n_l], v_th[o : o + n_l],
                                                    bias[o : o + n_l], spl, t, min_due[l], simple, mdl, rst, vr, vz)  # fmt: skip
                    count = 0
            # 3. lazy leak + step + reset, touched neurons only
            if count:
                vl, lastl, duel = v[o : o + n_l], last[o : o + n_l], due[o : o + n_l]
                curl, rcurl = cur[o : o + n_l], rcur[o : o + n_l]
                flagl, betal, gainl, thl = flag[o : o + n_l], beta[o : o + n_l], gain[o : o + n_l], v_th[o : o + n_l]
            for c in range(count):
                n = c if everyone else tlist[o + c]
                g = o + n
                ci = n  # the neuron's current
                if cl:
                    ci = (n % npos) * cout + n // npos if everyone else cix[o + c]
                flagl[n] = 0
                if simple:  # IF/LIF, no bias, v_rest <= v_th: the common case, without the general bookkeeping
                    vv, be, ga, th = vl[n], betal[n], gainl[n], thl[n]
                    k = t - 1 - lastl[n]
                    x = curl[ci]
                    curl[ci] = 0.0
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
                x = (cur[o + ci] + b) + rcur[g]
                cur[o + ci] = 0.0
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
