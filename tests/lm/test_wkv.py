"""WKV: recurrent and parallel forms against a plain loop of the defining sums, gradients, edge cases."""

from __future__ import annotations

import pytest
import torch

from spikeforge.lm.wkv import wkv_parallel
from spikeforge.lm.wkv import wkv_step


def _reference(k, v, w, u):
    """wkv[t] = (sum_{i<t} e^{(t-1-i)w + k_i} v_i + e^{u+k_t} v_t) / (same without v), by plain loops."""
    T, B, C = k.shape
    out = torch.zeros_like(k)
    for b in range(B):
        for c in range(C):
            for t in range(T):
                num = torch.exp(u[c] + k[t, b, c]) * v[t, b, c]
                den = torch.exp(u[c] + k[t, b, c])
                for i in range(t):
                    e = torch.exp((t - 1 - i) * w[c] + k[i, b, c])
                    num, den = num + e * v[i, b, c], den + e
                out[t, b, c] = num / den
    return out


def _inputs(T=23, B=2, C=4, scale=3.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    k = torch.randn(T, B, C, generator=g, dtype=torch.float64) * scale
    v = torch.randn(T, B, C, generator=g, dtype=torch.float64)
    w = -torch.exp(torch.randn(C, generator=g, dtype=torch.float64) * 2)
    u = torch.randn(C, generator=g, dtype=torch.float64)
    return k, v, w, u


@pytest.mark.parametrize("chunk", [1, 4, 16, 64])
def test_parallel_matches_loop_reference(chunk):
    k, v, w, u = _inputs()
    out, _ = wkv_parallel(k, v, w, u, chunk=chunk)
    torch.testing.assert_close(out, _reference(k, v, w, u), rtol=1e-10, atol=1e-10)


def test_recurrent_matches_loop_reference_and_parallel_state():
    k, v, w, u = _inputs()
    state, outs = None, []
    for t in range(k.shape[0]):
        o, state = wkv_step(k[t], v[t], w, u, state)
        outs.append(o)
    torch.testing.assert_close(torch.stack(outs), _reference(k, v, w, u), rtol=1e-10, atol=1e-10)
    # a sequence started in one form continues in the other
    _, s_par = wkv_parallel(k[:10], v[:10], w, u)
    o_step, _ = wkv_step(k[10], v[10], w, u, s_par)
    s = None
    for t in range(10):
        _, s = wkv_step(k[t], v[t], w, u, s)
    o_par, _ = wkv_parallel(k[10:], v[10:], w, u, s)
    ref = _reference(k, v, w, u)
    torch.testing.assert_close(o_step, ref[10], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(o_par, ref[10:], rtol=1e-10, atol=1e-10)


def test_large_keys_and_decays_stay_finite_float32():
    k, v, w, u = _inputs(T=64, scale=40.0)  # e^{k} alone would overflow float32 far below 88
    k, v, w, u = (t.float() for t in (k * 3, v, w * 5, u))
    out, _ = wkv_parallel(k, v, w, u)
    assert torch.isfinite(out).all()
    ref = _reference(*(t.double() for t in (k, v, w, u)))
    torch.testing.assert_close(out.double(), ref, rtol=2e-3, atol=2e-3)
    # a weighted mean of v: inside [min v, max v] of the history
    assert (out <= torch.cummax(v, 0).values + 1e-4).all() and (out >= torch.cummin(v, 0).values - 1e-4).all()


def test_gradcheck_parallel_and_step():
    k, v, w, u = _inputs(T=9, B=1, C=3)
    args = tuple(t.clone().requires_grad_() for t in (k, v, w, u))
    assert torch.autograd.gradcheck(lambda *a: wkv_parallel(*a, chunk=4)[0], args)
    assert torch.autograd.gradcheck(lambda k, v, w, u: wkv_step(k[0], v[0], w, u, None)[1].aa, args)


def test_bad_shapes_refused():
    k, v, w, u = _inputs()
    with pytest.raises(ValueError, match=r"\[T, B, C\]"):
        wkv_parallel(k[0], v[0], w, u)
    with pytest.raises(ValueError, match="chunk"):
        wkv_parallel(k, v, w, u, chunk=0)
