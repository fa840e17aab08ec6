r"""The WKV operator of RWKV-4 (Peng et al. 2023, "RWKV: Reinventing RNNs for the Transformer Era"), which
SpikeGPT (Zhu et al., TMLR 2024) keeps as its token mixer, in a recurrent and a parallel form.

Per channel, with decay ``w = -exp(time_decay) < 0`` and bonus ``u``, over tokens ``t`` (time-major)::

    a[t] = e^{w} a[t-1] + e^{k[t]} v[t]          a[-1] = 0
    b[t] = e^{w} b[t-1] + e^{k[t]}               b[-1] = 0
    wkv[t] = (a[t-1] + e^{u + k[t]} v[t]) / (b[t-1] + e^{u + k[t]})

``wkv[t]`` is a weighted mean of ``v[0..t]`` with positive weights, so it never overflows if computed right.

* :func:`wkv_step` (recurrent, one token, constant-size state) keeps ``a`` and ``b`` scaled by a running
  maximum exponent ``p`` (``a = aa e^p``, ``b = bb e^p``), as RWKV-4 does, so no ``exp`` ever overflows.
* :func:`wkv_parallel` (a whole sequence) works in log space: ``a`` is split into two positive sums with
  ``v = softplus(v) - softplus(-v)`` (exact), and each sum is a ``logcumsumexp`` over chunks of
  :data:`CHUNK` tokens. Inside a chunk the exponents are ``k[j] + (i - j) w`` with ``|i - j| < CHUNK`` (so float32
  keeps about 5 digits even for ``|w| = 20``); the state is carried between chunks in log space. Every step only
  uses the past, so the form is causal by construction.

Both take and return the same :class:`WKVState`, so a sequence may be started in one form and continued in the
other. Shapes: ``k, v`` ``[T, B, C]`` (``[B, C]`` per step); ``w, u`` ``[C]``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
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


def _log_softplus(x: Tensor) -> Tensor:
    """``log(softplus(x))``, finite for every finite ``x`` (``~x`` below -15, where softplus(x) ~ e^x)."""
    safe = torch.where(x < -15.0, torch.zeros_like(x), x)
    return torch.where(x < -15.0, x, torch.log(F.softplus(safe)))


class _LogState(NamedTuple):
    pos: Tensor  # log of the positive part of a
    neg: Tensor  # log of the negative part of a
    den: Tensor  # log b


def _to_log(state: WKVState) -> _LogState:
    aa, bb, pp = state
    scale = bb.clamp_min(torch.finfo(bb.dtype).tiny)
    return _LogState(
        pp + _log_softplus(aa / scale) + torch.log(scale),
        pp + _log_softplus(-aa / scale) + torch.log(scale),
        pp + torch.log(scale),
    )


def _from_log(s: _LogState) -> WKVState:
    return WKVState(torch.exp(s.pos - s.den) - torch.exp(s.neg - s.den), torch.ones_like(s.den), s.den)


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
    carry = None if state is None else _to_log(state)
    lv_pos, lv_neg = _log_softplus(v), _log_softplus(-v)
    outs = []
    for s in range(0, k.shape[0], chunk):
        kc, pos, neg = k[s : s + chunk], lv_pos[s : s + chunk], lv_neg[s : s + chunk]
        n = kc.shape[0]
        j = torch.arange(n, dtype=k.dtype, device=k.device).view(n, 1, 1)
        q = kc - j * w  # exponent of token j, measured from the chunk start
        # log of a[j], b[j] (history including token j) inside the chunk, without the carried state
        hist = _LogState(
            j * w + torch.logcumsumexp(q + pos, 0),
            j * w + torch.logcumsumexp(q + neg, 0),
            j * w + torch.logcumsumexp(q, 0),
        )
        if carry is not None:
            decay = (j + 1) * w
            hist = _LogState(*(torch.logaddexp(c + decay, h) for c, h in zip(carry, hist, strict=True)))
        # history up to token j-1: the carried state for j = 0, then hist shifted by one
        if carry is None:
            fill = torch.full_like(kc[:1], -torch.inf)
            prev = _LogState(*(torch.cat([fill, h[:-1]]) for h in hist))
        else:
            prev = _LogState(*(torch.cat([c.unsqueeze(0), h[:-1]]) for c, h in zip(carry, hist, strict=True)))
        now = u + kc
        num_pos = torch.logaddexp(prev.pos, now + pos)
        num_neg = torch.logaddexp(prev.neg, now + neg)
        den = torch.logaddexp(prev.den, now)
        outs.append(torch.exp(num_pos - den) - torch.exp(num_neg - den))
        carry = _LogState(hist.pos[-1], hist.neg[-1], hist.den[-1])
    assert carry is not None  # T >= 1 (checked by the caller's shapes)
    return torch.cat(outs), _from_log(carry)
