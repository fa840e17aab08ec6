"""Delay lines of the event engine's loop (:func:`~spikeforge.events._loop.advance`) for
:class:`~spikeforge.synapses.DelayedLinear` layers with integer delays (after ``layer.rounded()``).

Each such layer keeps a ring of ``D + 1`` slots (``D`` its largest delay), one per step: slot ``t mod (D + 1)``
holds the inputs that arrived at step ``t`` (their values summed per input, and the list of inputs present). At
step ``t`` the slot of step ``t - D - 1`` is cleared and refilled with the step's inputs, then every synapse group
reads the step its delay points to: delay ``k`` reads slot ``(t - k) mod (D + 1)``. Per axon (SLAYER) an input
``j`` with delay ``d_j`` is delivered whole (one W^T row) when ``k = d_j``; per synapse (DCLS) the synapses of
delay ``k`` form their own fan-out list, so a spike of ``j`` at ``t`` reaches target ``o`` at ``t + d_oj``. The
steps before a stream starts are silent (empty slots), as in the dense layer.

Numba compiles these helpers into ``advance``, whose on-disk cache notices changes to ``_loop.py`` only: after
editing this file, delete the caches (``find src -name '*.nbi' -o -name '*.nbc' | xargs rm -f``).
"""

from __future__ import annotations

import numpy as np

from spikeforge.events._layout import jitable

__all__ = ["ring_push", "ring_gather", "ring_scatter"]


@jitable
def ring_push(
    hval: np.ndarray,
    hidx: np.ndarray,
    hflag: np.ndarray,
    hcnt: np.ndarray,
    r0: int,
    s0: int,
    n_in: int,
    d: int,
    t: int,
    js: np.ndarray,
    vals: np.ndarray,
    unit: bool,
    a0: int,
    a1: int,
) -> int:
    """Clear the slot of step ``t - d - 1`` and fill it with step ``t``'s inputs ``js[a0:a1]`` (values ``vals``, or 1
    when ``unit``; repeated inputs add up). Returns the number of entries in the whole ring (0: nothing pending)."""
    slot = t % (d + 1)
    base = r0 + slot * n_in
    c = hcnt[s0 + slot]
    for e in range(c):
        j = hidx[base + e]
        hval[base + j] = 0.0
        hflag[base + j] = 0
    c = 0
    for e in range(a0, a1):
        j = js[e]
        if hflag[base + j] == 0:
            if c == n_in:  # unreachable with one flag per input; keeps a hand-edited state in bounds
                continue
            hflag[base + j] = 1
            hidx[base + c] = j
            c += 1
        hval[base + j] += 1.0 if unit else vals[e]
    hcnt[s0 + slot] = c
    total = 0
    for s in range(d + 1):
        total += hcnt[s0 + s]
    return total


@jitable
def ring_gather(
    hval: np.ndarray,
    hidx: np.ndarray,
    hcnt: np.ndarray,
    r0: int,
    s0: int,
    n_in: int,
    d: int,
    t: int,
    dly: np.ndarray,
    dl0: int,
    dj: np.ndarray,
    da: np.ndarray,
) -> int:
    """Per-axon delays: the inputs that arrive at step ``t`` (sent at ``t - dly[j]``) into ``dj``/``da``; returns
    their number (at most ``n_in``: an input sits once in a slot and has one delay)."""
    n = 0
    for k in range(min(d, t) + 1):
        slot = (t - k) % (d + 1)
        base = r0 + slot * n_in
        for e in range(hcnt[s0 + slot]):
            j = hidx[base + e]
            if dly[dl0 + j] == k and n < n_in:
                dj[n] = j
                da[n] = hval[base + j]
                n += 1
    return n


@jitable
def ring_scatter(
    hval: np.ndarray,
    hidx: np.ndarray,
    hcnt: np.ndarray,
    r0: int,
    s0: int,
    n_in: int,
    d: int,
    t: int,
    cptr: np.ndarray,
    ctgt: np.ndarray,
    cwgt: np.ndarray,
    c0: int,
    cv: np.ndarray,
) -> int:
    """Per-synapse delays: add the synapses of delay ``k`` of every input of step ``t - k`` to the currents ``cv``
    (fan-out list of input ``j`` in group ``k`` at ``cptr[c0 + k n_in + j]``); returns the additions made."""
    ops = 0
    for k in range(min(d, t) + 1):
        slot = (t - k) % (d + 1)
        base = r0 + slot * n_in
        g = c0 + k * n_in
        for e in range(hcnt[s0 + slot]):
            j = hidx[base + e]
            a = hval[base + j]
            q0, q1 = cptr[g + j], cptr[g + j + 1]
            for q in range(q0, q1):
                cv[ctgt[q]] += a * cwgt[q]
            ops += q1 - q0
    return ops
