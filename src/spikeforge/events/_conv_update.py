"""The neuron update of a Conv2d layer run by kernel taps (:mod:`spikeforge.events._conv_taps`) in the event engine's
loop (:func:`~spikeforge.events._loop.advance`): the step's listed neurons (those of the positions its taps touched,
then those due), IF/LIF, not recurrent, every reset mode, with or without bias.

It is the loop's per-neuron update (lazy leak, step, reset, schedule; :mod:`spikeforge.events._kernel`) with the same
arithmetic in the same order, hence bit-identical membranes, spikes and schedules, with the layer's code paths
chosen once and the values that depend only on a neuron's constants and
its idle time (``beta ** k``, the LIF equilibrium ``v_inf = v_rest + g b / (1 - beta)``, ``log(beta)``) computed
again only when those change from one neuron to the next (neighbours share them: one channel's bias, a layer's
uniform constants, one idle time).

Numba compiles this helper into ``advance``, whose on-disk cache notices changes to ``_loop.py`` only: after
editing this file, delete the caches (``find src -name '*.nbi' -o -name '*.nbc' | xargs rm -f``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from spikeforge._core.codes import SUBTRACT
from spikeforge._core.codes import TO_VALUE
from spikeforge.events._closed_form import _catch_up
from spikeforge.events._closed_form import _next_due
from spikeforge.events._layout import IF_MODEL
from spikeforge.events._layout import LIF_MODEL
from spikeforge.events._layout import NEVER
from spikeforge.events._layout import jitable
from spikeforge.events._whole_layer import compact_flags

__all__ = ["update_listed", "update_all_conv", "count_marked"]


@jitable
def update_listed(
    tlist: np.ndarray,
    cix: np.ndarray,
    count: int,
    flagl: np.ndarray,
    cv: np.ndarray,
    vl: np.ndarray,
    lastl: np.ndarray,
    duel: np.ndarray,
    betal: np.ndarray,
    gainl: np.ndarray,
    thl: np.ndarray,
    biasl: np.ndarray,
    spl: np.ndarray,
    t: int,
    min_due: int,
    simple: bool,
    mdl: int,
    rst: int,
    vr: Any,
    vz: Any,
) -> tuple[int, int]:
    """Update the neurons ``tlist[:count]`` at step ``t`` (their ``flagl`` cleared): ``cix`` the index of each one's
    current in ``cv``, the layer's channels-last currents (read and cleared), the other arrays the layer's views;
    spikes go to ``spl`` in list order. ``simple``: the loop's simple path (IF/LIF without bias,
    ``v_rest <= v_th``), else its general path for IF/LIF. Returns ``(spikes, min_due)`` (``min_due`` lowered by
    the new schedules)."""
    pos = 0
    k_c, be_k, pk = -1, -1.0, 1.0  # beta ** k of the last neuron that caught up
    be_c, ga_c, b_c, vinf, lb = -1.0, -1.0, 0.0, 0.0, 0.0  # LIF equilibrium and log(beta) of the last constants
    lif = mdl == LIF_MODEL
    for c in range(count):
        n, ci = tlist[c], cix[c]
        flagl[n] = 0
        vv, be, ga, th = vl[n], betal[n], gainl[n], thl[n]
        k = t - 1 - lastl[n]
        x = cv[ci]
        cv[ci] = 0.0
        if simple:  # the loop's simple path
            if lif:
                if k > 0:
                    if k != k_c or be != be_k:
                        k_c, be_k, pk = k, be, be**k
                    vv = vr + pk * (vv - vr)
                vv = vr + be * (vv - vr) + ga * x
            else:
                vv = vv + ga * x
        else:  # the loop's general path (IF/LIF; not recurrent: its recurrent current is 0)
            b = biasl[n]
            fast = lif and 0.0 < be < 1.0
            if fast and (be != be_c or ga != ga_c or b != b_c):
                be_c, ga_c, b_c = be, ga, b
                vinf = vr + ga * b / (1.0 - be)
                lb = math.log(be)
            if k > 0:
                if fast:  # _catch_up's LIF form
                    if k != k_c or be != be_k:
                        k_c, be_k, pk = k, be, be**k
                    vv = vinf + pk * (vv - vinf)
                else:
                    vv, _ = _catch_up(mdl, k, vv, 0.0, be, ga, 0.0, b, vr)
            x = (x + b) + 0.0
            if lif:
                vv = vr + be * (vv - vr) + ga * x
            else:
                vv = vv + ga * x
        if vv - th > 0.0:
            if rst == TO_VALUE:
                vv = vz
            elif rst == SUBTRACT:
                vv = vv - (th - vz)
            spl[pos] = n
            pos += 1
        vl[n] = vv
        lastl[n] = t
        if simple:
            nxt = (vv - th > 0.0) if mdl == IF_MODEL else (vr + be * (vv - vr) - th > 0.0)
            d = t + 1 if nxt else NEVER
        elif fast:  # _next_due's LIF form
            if vinf + be * (vv - vinf) - th > 0.0:
                d = t + 1
            elif vv < vinf and vinf > th:
                r = (vinf - th) / (vinf - vv)
                d = t + max(1, int(math.floor(math.log(r) / lb)) - 1)  # noqa: RUF046 (as in _next_due)
            else:
                d = NEVER
        else:
            d = _next_due(mdl, t, vv, 0.0, be, ga, 0.0, b, vr, th)
        duel[n] = d
        if d < min_due:
            min_due = d
    return pos, min_due


@jitable
def count_marked(pflag: np.ndarray, n_pos: int) -> int:
    """How many of the ``n_pos`` positions a kind-4 layer's taps marked in ``pflag`` (not cleared)."""
    m = 0
    for p in range(n_pos):
        m += pflag[p] != 0
    return m


@jitable
def update_all_conv(
    cv: np.ndarray,
    cl: bool,
    n_pos: int,
    c_out: int,
    pflag: np.ndarray,
    xl: np.ndarray,
    flagl: np.ndarray,
    vl: np.ndarray,
    lastl: np.ndarray,
    duel: np.ndarray,
    betal: np.ndarray,
    gainl: np.ndarray,
    thl: np.ndarray,
    biasl: np.ndarray,
    spl: np.ndarray,
    t: int,
    simple: bool,
    uniform: bool,
    mdl: int,
    rst: int,
    vr: Any,
    vz: Any,
) -> tuple[int, int]:
    """A dense step of a Conv2d layer (IF/LIF, not recurrent, simple or with uniform constants; ``n_pos`` output
    positions, ``c_out`` channels): every neuron ``n = co * n_pos + p`` updated at ``t``, with the arithmetic of
    :func:`update_listed` (the same lazy leak for neurons idle since before ``t``, the same step and reset), hence
    what it would give with every neuron listed, in branch-free passes over the layer instead of lists (spikes are
    irregular: mispredicted branches cost more than the arithmetic; no division or flag-dependent branch in the
    main pass, which Numba would not vectorise). ``uniform``: one beta, gain and threshold for the layer. ``cv``: the currents, channels-last (``cl``, kind 4: moved into ``xl``, a zero
    neuron-order buffer, first) or in neuron order (kind 1); read and cleared. Schedules without the logarithm: a
    LIF neuron driven above threshold is due at ``t + 1`` (early is safe). Clears ``pflag`` (kind 4) or the
    touched ``flagl`` (kind 1); spikes go to ``spl`` in ascending neuron index. Returns ``(spikes, min_due)``."""
    n_l = vl.shape[0]
    lif = mdl == LIF_MODEL
    if cl:
        for p in range(n_pos):
            pflag[p] = 0
            for co in range(c_out):
                xl[co * n_pos + p] = cv[p * c_out + co]
                cv[p * c_out + co] = 0.0
    else:
        for n in range(n_l):
            flagl[n] = 0
    cur = xl if cl else cv
    lo = t - 1  # the lazy leak of neurons idle since before t (none after a dense step)
    for n in range(n_l):
        lo = min(lo, lastl[n])
    if lo < t - 1:
        for n in range(n_l):
            k = t - 1 - lastl[n]
            if k > 0:
                vv, be, ga, b = vl[n], betal[n], gainl[n], biasl[n]
                if simple:
                    if lif:
                        vl[n] = vr + be**k * (vv - vr)
                elif lif and 0.0 < be < 1.0:
                    vinf = vr + ga * b / (1.0 - be)
                    vl[n] = vinf + be**k * (vv - vinf)
                else:
                    vl[n], _ = _catch_up(mdl, k, vv, 0.0, be, ga, 0.0, b, vr)
    # Short passes of few arrays each: Numba's loop vectoriser gives up on a loop touching many arrays that might
    # alias, and the layer (float64 and int64 arrays of N_l) stays in L2 between passes.
    to_value, sub = rst == TO_VALUE, rst == SUBTRACT
    fast = lif and 0.0 < betal[0] < 1.0  # a uniform layer's: _next_due's LIF form (else _next_due, below)
    uni = uniform or not simple  # the caller runs a general layer here only when uniform
    be, ga, th = betal[0], gainl[0], thl[0]
    # The main pass has no branch on the layer's flags (they would keep it from vectorising): IF is the LIF formula
    # with beta = 1, v_rest = 0, a layer without a bias adds b = 0 (both exact up to the sign of a zero), and the
    # three resets are two selects, as in _whole_layer.update_all_simple.
    subf = 1.0 if sub else 0.0
    n_sp = 0
    # Every pass loops over slices from index 0: Numba then knows the indices are not negative and drops its
    # wraparound branch, which otherwise keeps these loops from vectorising.
    for co in range(c_out):  # 1. step and reset, spike flags
        n0 = co * n_pos
        b = 0.0 if simple else biasl[n0]  # a Conv2d layer's bias is one value per channel
        xc, vc, fc = cur[n0 : n0 + n_pos], vl[n0 : n0 + n_pos], flagl[n0 : n0 + n_pos]
        if uni:
            for k in range(vc.shape[0]):
                vv = vr + be * (vc[k] - vr) + ga * ((xc[k] + b) + 0.0)
                fire = vv - th > 0.0
                vs = vv - subf * (th - vz)
                vc[k] = (vz if to_value else vs) if fire else vv
                fc[k] = fire
                n_sp += fire
        else:
            bc, gc, tc = betal[n0 : n0 + n_pos], gainl[n0 : n0 + n_pos], thl[n0 : n0 + n_pos]
            for k in range(vc.shape[0]):
                tn = tc[k]
                vv = vr + bc[k] * (vc[k] - vr) + gc[k] * ((xc[k] + b) + 0.0)
                fire = vv - tn > 0.0
                vs = vv - subf * (tn - vz)
                vc[k] = (vz if to_value else vs) if fire else vv
                fc[k] = fire
                n_sp += fire
    for n in range(n_l):  # 2. currents read, neurons updated at t
        cur[n] = 0.0
        lastl[n] = t
    min_due = NEVER
    if simple:  # 3. schedules
        for n in range(n_l):
            vv = vl[n]
            nxt = vr + betal[n] * (vv - vr) - thl[n] > 0.0 if lif else vv - thl[n] > 0.0
            d = t + 1 if nxt else NEVER
            duel[n] = d
            min_due = min(min_due, d)
    elif fast:
        for co in range(c_out):
            n0 = co * n_pos
            vinf = vr + ga * biasl[n0] / (1.0 - be)
            vc, dc = vl[n0 : n0 + n_pos], duel[n0 : n0 + n_pos]
            for k in range(vc.shape[0]):
                vv = vc[k]  # & and |, not `and` / `or`: no short-circuit branches
                nxt = (vinf + be * (vv - vinf) - th > 0.0) | ((vv < vinf) & (vinf > th))
                d = t + 1 if nxt else NEVER
                dc[k] = d
                min_due = min(min_due, d)
    else:  # IF with a bias, or beta outside (0, 1)
        for n in range(n_l):
            d = _next_due(mdl, t, vl[n], 0.0, be, ga, 0.0, biasl[n], vr, th)
            duel[n] = d
            min_due = min(min_due, d)
    pos = compact_flags(flagl, n_sp, spl)
    return pos, min_due
