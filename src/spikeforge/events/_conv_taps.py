"""The Conv2d synapses of the event engine's loop (:func:`~spikeforge.events._loop.advance`): the kernel-tap scatter
(``Layers.kind`` 4, the default) and the generic fan-out lists (kind 1, the reference), with the table they read.

**Kernel taps.** A Conv2d layer's weights are stored as the table ``[C_in, kh, kw, C_out]`` (``C_out`` contiguous,
``kx`` reversed so that at stride and dilation 1 a kernel row's valid taps are one contiguous run)
and its float64 currents channels-last, ``[OH, OW, C_out]`` (the neurons themselves keep PyTorch's ``[C_out, OH, OW]``
order). An input ``a`` at ``(c, iy, ix)`` adds, for every tap ``(ky, kx)`` that lands on an output position
``(oy, ox)`` (``oy * stride - pad + ky * dilation = iy``, same for x), the vector ``a * W[:, c, ky, kx]`` (``C_out``
values, each one synaptic operation) to the currents of that position: ``kh * kw`` contiguous vector additions per
input instead of ``C_out * kh * kw`` scattered list entries. Every current is the float64 sum of its terms in input
order, as with the fan-out lists (an input reaches a given output neuron through one tap only), so both paths give
bit-identical currents. The touched positions are then listed channel by channel (ascending neuron index): the
neurons that received input, as with the lists, with the index of each one's current.

Numba compiles these helpers into ``advance``, whose on-disk cache notices changes to ``_loop.py`` only: after
editing this file, delete the caches (``find src -name '*.nbi' -o -name '*.nbc' | xargs rm -f``).
"""

from __future__ import annotations

from typing import cast

import numpy as np
import torch
from torch import nn

from spikeforge.events._layout import jitable

__all__ = ["conv_table", "conv_scatter", "conv_touched", "csr_scatter", "GEO"]

#: The columns of ``Layers.geo``: a Conv2d layer's geometry (zeros for other layers).
GEO = ("c_in", "h", "w", "c_out", "oh", "ow", "kh", "kw", "sh", "sw", "ph", "pw", "dh", "dw")


def conv_table(conv: nn.Conv2d, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``conv``'s weights as the flat float64 table ``[C_in, kh, kw, C_out]`` (``kx`` reversed) and its geometry
    (int64, :data:`GEO`)."""
    c, h, w = in_shape
    o, oh, ow = out_shape
    kh, kw = conv.kernel_size
    pad = cast(tuple[int, int], conv.padding)  # integer padding (checked when the network is built)
    wgt = conv.weight.detach().to(torch.float64).cpu().flip(3)  # kx reversed: see conv_scatter
    table = wgt.permute(1, 2, 3, 0).contiguous().reshape(-1).numpy()
    geo = (c, h, w, o, oh, ow, kh, kw, *conv.stride, *pad, *conv.dilation)
    return table, np.array(geo, dtype=np.int64)


@jitable
def conv_scatter(
    cv: np.ndarray,
    wt: np.ndarray,
    base: int,
    geo: np.ndarray,
    src: np.ndarray,
    vals: np.ndarray,
    unit: bool,
    a0: int,
    a1: int,
    pflag: np.ndarray,
) -> int:
    """``cv [OH * OW * C_out]`` (channels-last) += the taps of inputs ``src[a0:a1]`` (values ``vals``, all 1 when
    ``unit``), the table at ``wt[base:]``; marks the touched positions in ``pflag`` and returns the operations."""
    h, w, c_out, oh, ow, kh, kw = geo[1], geo[2], geo[3], geo[4], geo[5], geo[6], geo[7]
    sh, sw, ph, pw, dh, dw = geo[8], geo[9], geo[10], geo[11], geo[12], geo[13]
    hw = h * w
    ops = 0
    kxs = np.empty(kw, dtype=np.int64)  # the taps of an input's column that land on an output column
    oxs = np.empty(kw, dtype=np.int64)
    row0 = -w  # the first input index of the previous input's row (c, iy): a step's inputs come in ascending order,
    c, iy = 0, 0  # so most share the row of the one before and skip the two integer divisions
    for e in range(a0, a1):
        j = src[e]
        a = 1.0 if unit else vals[e]
        if not row0 <= j < row0 + w:
            c = j // hw
            iy = (j - c * hw) // w
            row0 = c * hw + iy * w
        ix = j - row0
        # the taps of the input's column that land on an output column: with the table's kx reversed, tap
        # kr = kw - 1 - kx reaches ox = x0 + kr * dw / sw; at stride and dilation 1 the valid kr are one run [lo, hi)
        # whose outputs and weights are both contiguous: one vector addition per kernel row
        x0 = ix + pw - (kw - 1) * dw
        run = sw == 1 and dw == 1
        lo, hi = max(0, -x0), min(kw, ow - x0)
        nx_ok = max(0, hi - lo) if run else 0
        if not run:
            for kr in range(kw):
                nx = x0 + kr * dw  # ox * sw
                if nx < 0:
                    continue
                ox = nx // sw
                if ox * sw == nx and ox < ow:
                    kxs[nx_ok] = kr
                    oxs[nx_ok] = ox
                    nx_ok += 1
        if nx_ok == 0:
            continue
        for ky in range(kh):
            ny = iy + ph - ky * dh
            if ny < 0:
                break
            oy = ny if sh == 1 else ny // sh
            if oy * sh != ny or oy >= oh:
                continue
            row = base + (c * kh + ky) * kw * c_out
            if run:
                p = oy * ow + x0 + lo
                cs, ws = cv[p * c_out : (p + nx_ok) * c_out], wt[row + lo * c_out : row + hi * c_out]
                if unit:
                    for k in range(nx_ok * c_out):
                        cs[k] += ws[k]
                else:
                    for k in range(nx_ok * c_out):
                        cs[k] += a * ws[k]
                for q in range(nx_ok):
                    pflag[p + q] = 1
            else:
                for q in range(nx_ok):
                    p = oy * ow + oxs[q]
                    wb = row + kxs[q] * c_out
                    cs, ws = cv[p * c_out : (p + 1) * c_out], wt[wb : wb + c_out]
                    if unit:
                        for k in range(c_out):
                            cs[k] += ws[k]
                    else:
                        for k in range(c_out):
                            cs[k] += a * ws[k]
                    pflag[p] = 1
            ops += nx_ok * c_out
    return ops


@jitable
def conv_touched(
    pflag: np.ndarray, plist: np.ndarray, n_pos: int, c_out: int, flag: np.ndarray, tlist: np.ndarray, cix: np.ndarray
) -> int:
    """List the neurons of the positions marked in ``pflag`` (cleared) channel by channel, in ascending neuron index
    ``n = co * n_pos + p``: ``tlist`` the neuron, ``cix`` its channels-last current ``p * c_out + co``, ``flag`` set;
    the layer's views. Returns their number."""
    m = 0
    for p in range(n_pos):
        if pflag[p]:
            pflag[p] = 0
            plist[m] = p
            m += 1
    n_t = 0
    for co in range(c_out):
        for q in range(m):
            p = plist[q]
            n = co * n_pos + p
            flag[n] = 1
            tlist[n_t] = n
            cix[n_t] = p * c_out + co
            n_t += 1
    return n_t


@jitable
def csr_scatter(
    cv: np.ndarray,
    cptr: np.ndarray,
    ctgt: np.ndarray,
    cwgt: np.ndarray,
    c0: int,
    src: np.ndarray,
    vals: np.ndarray,
    unit: bool,
    a0: int,
    a1: int,
    flag: np.ndarray,
    tlist: np.ndarray,
    n_t: int,
) -> tuple[int, int]:
    """The generic fan-out lists (kind 1, reference): input ``j`` adds ``a * cwgt[q]`` to neuron ``ctgt[q]`` for ``q``
    in ``[cptr[c0 + j], cptr[c0 + j + 1])``, in ``cv`` (neuron order); newly touched neurons are flagged and appended
    to ``tlist`` (layer views) after the first ``n_t``. Returns ``(n_t, operations)``."""
    ops = 0
    for e in range(a0, a1):
        j = src[e]
        a = 1.0 if unit else vals[e]
        q0, q1 = cptr[c0 + j], cptr[c0 + j + 1]
        for q in range(q0, q1):
            n = ctgt[q]
            cv[n] += a * cwgt[q]
            if flag[n] == 0:
                flag[n] = 1
                tlist[n_t] = n
                n_t += 1
        ops += q1 - q0
    return n_t, ops
