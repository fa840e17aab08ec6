r"""The WKV operator of RWKV-4 (Peng et al. 2023, "RWKV: Reinventing RNNs for the Transformer Era"), which
SpikeGPT (Zhu et al., TMLR 2024) keeps as its token mixer, in a recurrent and a parallel form.

Per channel, with decay ``w = -exp(time_decay) < 0`` and bonus ``u``, over tokens ``t`` (time-major)::

    a[t] = e^{w} a[t-1] + e^{k[t]} v[t]          a[-1] = 0
    b[t] = e^{w} b[t-1] + e^{k[t]}               b[-1] = 0
    wkv[t] = (a[t-1] + e^{u + k[t]} v[t]) / (b[t-1] + e^{u + k[t]})

``wkv[t]`` is a weighted mean of ``v[0..t]`` with positive weights, so it never overflows if computed right.

* :func:`wkv_step` (recurrent, one token, constant-size state) keeps ``a`` and ``b`` scaled by a running
  maximum exponent ``p`` (``a = aa e^p``, ``b = bb e^p``), as RWKV-4 does, so no ``exp`` ever overflows.
* :func:`wkv_parallel` (a whole sequence) works on chunks of :data:`CHUNK` tokens: inside a chunk every weight
  ``e^{k[j] + (i - 1 - j) w}`` of the ``CHUNK x CHUNK`` lower triangle is computed at once, each row scaled by its
  own largest exponent (over the past of token ``i`` only, so the form is causal by construction, and no ``exp``
  overflows or leaves an empty denominator); the state ``(aa, bb, pp)`` of the recurrent form is carried from chunk
  to chunk. Memory: ``T x CHUNK x B x C`` weights per layer for the backward pass.

Both take and return the same :class:`WKVState`, so a sequence may be started in one form and continued in the
other. Shapes: ``k, v`` ``[T, B, C]`` (``[B, C]`` per step); ``w, u`` ``[C]``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["WKVState", "wkv_step", "wkv_parallel", "CHUNK"]

#: Tokens per chunk of :func:`wkv_parallel` (bounds the exponents' range inside a chunk).
CHUNK = 16


class WKVState(NamedTuple):
    """``a = aa e^pp`` and ``b = bb e^pp`` after the last token (``[B, C]`` each)."""

    aa: Tensor
    bb: Tensor
    pp: Tensor


def wkv_step(k: Tensor, v: Tensor, w: Tensor, u: Tensor, state: WKVState | None) -> tuple[Tensor, WKVState]:
    """One token: ``k, v`` ``[B, C]`` -> ``(wkv [B, C], new state)``; ``state=None`` is the empty history."""
    if state is None:
        aa, bb = torch.zeros_like(k), torch.zeros_like(k)
        pp = torch.full_like(k, -torch.finfo(k.dtype).max)
    else:
        aa, bb, pp = state
    ww = u + k
    p = torch.maximum(pp, ww)
    e1, e2 = torch.exp(pp - p), torch.exp(ww - p)
    out = (e1 * aa + e2 * v) / (e1 * bb + e2)
    ww = w + pp
    p = torch.maximum(ww, k)
    e1, e2 = torch.exp(ww - p), torch.exp(k - p)
    return out, WKVState(e1 * aa + e2 * v, e1 * bb + e2, p)


def _chunk(k: Tensor, v: Tensor, w: Tensor, u: Tensor, carry: WKVState | None) -> tuple[Tensor, WKVState]:
    """One chunk of ``n`` tokens at once: every weight ``e^{E[i, j]}`` of token ``j`` seen from token ``i``, scaled by
    the largest exponent of row ``i`` (past tokens, the bonus term and the carried state only: causal)."""
    n = k.shape[0]
    idx = torch.arange(n, dtype=k.dtype, device=k.device)
    lag = idx.view(n, 1) - 1 - idx.view(1, n)  # (i - 1 - j): decay steps of token j seen from token i > j
    exps = (k.unsqueeze(0) + lag.view(n, n, 1, 1) * w).masked_fill((lag < 0).view(n, n, 1, 1), -torch.inf)
    now = u + k  # the bonus term of token i itself
    top = torch.maximum(exps.amax(1), now)
    if carry is not None:
        old = carry.pp.unsqueeze(0) + idx.view(n, 1, 1) * w  # the history before the chunk, seen from token i
        top = torch.maximum(top, old)
    top = top.detach()  # any shift gives the same ratio: no gradient needed through the maximum
    weights = torch.exp(exps - top.unsqueeze(1))  # [i, j, B, C]; 0 above the diagonal
    e_now = torch.exp(now - top)
    num = (weights * v.unsqueeze(0)).sum(1) + e_now * v
    den = weights.sum(1) + e_now
    ends = k + (n - 1 - idx).view(n, 1, 1) * w  # exponent of token j in the state after the chunk's last token
    pp = ends.amax(0)
    if carry is not None:
        e_old = torch.exp(old - top)
        num, den = num + e_old * carry.aa, den + e_old * carry.bb
        pp = torch.maximum(pp, carry.pp + n * w)
    pp = pp.detach()
    g = torch.exp(ends - pp)
    aa, bb = (g * v).sum(0), g.sum(0)
    if carry is not None:
        e_end = torch.exp(carry.pp + n * w - pp)
        aa, bb = aa + e_end * carry.aa, bb + e_end * carry.bb
    return num / den, WKVState(aa, bb, pp)


def wkv_parallel(
    k: Tensor, v: Tensor, w: Tensor, u: Tensor, state: WKVState | None = None, *, chunk: int = CHUNK
) -> tuple[Tensor, WKVState]:
    """The whole sequence: ``k, v`` ``[T, B, C]`` -> ``(wkv [T, B, C], state after the last token)``."""
    if k.dim() != 3 or k.shape != v.shape or w.shape != k.shape[-1:] or u.shape != k.shape[-1:]:
        raise ValueError(
            f"wkv_parallel needs k, v of shape [T, B, C] and w, u of shape [C]; got k {tuple(k.shape)}, "
            f"v {tuple(v.shape)}, w {tuple(w.shape)}, u {tuple(u.shape)}"
        )
    if not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive int, got {chunk!r}")
    outs, carry = [], state
    for s in range(0, k.shape[0], chunk):
        out, carry = _chunk(k[s : s + chunk], v[s : s + chunk], w, u, carry)
        outs.append(out)
    assert carry is not None  # T >= 1 (checked by the shapes)
    return torch.cat(outs), carry
