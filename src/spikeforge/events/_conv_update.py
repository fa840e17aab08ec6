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

__all__ = ["update_listed"]


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
