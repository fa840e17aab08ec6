"""Closed forms of a neuron's input-free evolution, used by the event engine's loop
:func:`~spikeforge.events._loop.advance` (the lazy leak :func:`_catch_up`, the schedule :func:`_next_due`; the
equations are in :mod:`spikeforge.events._kernel`) and the loop :func:`init_due`.

Numba compiles these helpers into ``advance``, whose on-disk cache notices changes to ``_loop.py`` only: after
editing this file, delete the caches (``find src -name '*.nbi' -o -name '*.nbc' | xargs rm -f``) or a stale
``advance`` keeps running the old helpers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from spikeforge.events._layout import IF_MODEL
from spikeforge.events._layout import LIF_MODEL
from spikeforge.events._layout import NEVER
from spikeforge.events._layout import Layers
from spikeforge.events._layout import Membranes
from spikeforge.events._layout import jitable

__all__ = ["init_due"]


@jitable
def _catch_up(
    model: int, k: int, vv: Any, ii: Any, beta: Any, gain: Any, alpha: Any, b: Any, v_rest: Any
) -> tuple[Any, Any]:
    if model == IF_MODEL or (model == LIF_MODEL and beta >= 1.0):
        if b != 0.0:
            vv = vv + k * (gain * b)
        return vv, ii
    if model == LIF_MODEL:
        vinf = v_rest + gain * b / (1.0 - beta)
        return vinf + beta**k * (vv - vinf), ii
    bk = beta**k
    ak = alpha**k
    if beta != alpha:
        s = alpha * (bk - ak) / (beta - alpha)
    else:
        s = k * ak
    return v_rest + bk * (vv - v_rest) + gain * ii * s, ak * ii


@jitable
def _next_due(
    model: int, t: int, vv: Any, ii: Any, beta: Any, gain: Any, alpha: Any, b: Any, v_rest: Any, v_th: Any
) -> int:
    """First step after ``t`` at which the neuron could spike without input (early is safe, late is not)."""
    if model == IF_MODEL or (model == LIF_MODEL and beta >= 1.0):
        d = gain * b
        if vv + d - v_th > 0.0:
            return t + 1
        if d > 0.0:
            # int(): the compiled type stays obvious (as in _loop.py, whose ruff config allows it)
            return t + max(1, int(math.floor((v_th - vv) / d)) - 1)
        return NEVER
    if model == LIF_MODEL:
        vinf = v_rest + gain * b / (1.0 - beta)
        if vinf + beta * (vv - vinf) - v_th > 0.0:
            return t + 1
        if vv < vinf and vinf > v_th:
            r = (vinf - v_th) / (vinf - vv)
            return t + max(1, int(math.floor(math.log(r) / math.log(beta))) - 1)
        return NEVER
    if alpha >= 1.0:
        return t + 1
    bound = max(vv - v_rest, 0.0) + gain * max(ii, 0.0) * alpha / (1.0 - alpha)
    if v_rest + bound - v_th > 0.0:
        return t + 1
    return NEVER


def init_due(lay: Layers, mem: Membranes, layer_of: np.ndarray, v: np.ndarray, due: np.ndarray) -> None:
    """Schedule spontaneous firing of neurons at their initial state (as if updated at step -1)."""
    for g in range(v.shape[0]):
        lay_g = layer_of[g]
        due[g] = _next_due(
            lay.model[lay_g],
            -1,
            v[g],
            0.0,
            mem.beta[g],
            mem.gain[g],
            mem.alpha[g],
            mem.bias[g],
            lay.v_rest[lay_g],
            mem.v_th[g],
        )
