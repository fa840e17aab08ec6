"""Independent references for the transformer tests: a LIF loop, eval-mode BatchNorm and the attention
equations written with einsum, straight from the papers (no library code but the modules' weights)."""

from __future__ import annotations

import torch
from torch import Tensor
from torch import nn


def lif_ref(x: Tensor, v_th: float = 1.0) -> Tensor:
    """LIF with beta 0.5 and the raw input (gain 1), hard reset to 0, spike iff v > v_th."""
    v = torch.zeros_like(x[0])
    out = []
    for x_t in x:
        v = 0.5 * v + x_t
        z = (v > v_th).to(x.dtype)
        v = v * (1 - z)
        out.append(z)
    return torch.stack(out)


def bn_ref(y: Tensor, bn: nn.Module) -> Tensor:
    """Eval-mode BatchNorm over the last axis of ``y`` (Linear) from its running statistics."""
    return (y - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias


def linear_bn_ref(x: Tensor, lbn: nn.Module) -> Tensor:
    return bn_ref(torch.einsum("tbnd,od->tbno", x, lbn.lin.weight), lbn.bn)


def heads(x: Tensor, h: int) -> Tensor:
    t, b, n, d = x.shape
    return x.reshape(t, b, n, h, d // h)  # [T, B, N, H, d]


def ssa_ref(x: Tensor, m: nn.Module) -> Tensor:
    """Spikformer SSA: SN(BN(SN(Q K^T V s) W_O)), Q = SN(BN(X W_Q)), per head, s = 0.125."""
    q, k, v = (lif_ref(linear_bn_ref(x, lin)) for lin in (m.q, m.k, m.v))
    qh, kh, vh = (heads(t, m.heads) for t in (q, k, v))
    scores = torch.einsum("tbnhc,tbmhc->tbhnm", qh, kh)
    y = torch.einsum("tbhnm,tbmhc->tbnhc", scores, vh) * 0.125
    y = lif_ref(y.reshape(x.shape), v_th=0.5)
    return lif_ref(linear_bn_ref(y, m.proj))


def sdsa_ref(x: Tensor, m: nn.Module) -> Tensor:
    """SDSA: BN(SN(SUM_c(Q * K)) * V W_O); the column sum runs over the tokens n, channel by channel."""
    q, k, v = (lif_ref(linear_bn_ref(x, lin)) for lin in (m.q, m.k, m.v))
    t, b, n, d = x.shape
    col = torch.zeros(t, b, d, dtype=x.dtype)
    for i in range(n):  # the column sum as a loop
        col += q[:, :, i, :] * k[:, :, i, :]
    mask = lif_ref(col, v_th=0.5)  # [T, B, D]
    return linear_bn_ref(torch.einsum("tbnd,tbd->tbnd", v, mask), m.proj)


def softmax_attention_ref(x: Tensor, m: nn.Module) -> Tensor:
    """The twin: softmax(Q K^T / sqrt(d)) V per head with Q = ReLU(BN(X W_Q))."""
    q, k, v = (torch.relu(linear_bn_ref(x, lin)) for lin in (m.q, m.k, m.v))
    qh, kh, vh = (heads(t, m.heads) for t in (q, k, v))
    d = qh.shape[-1]
    w = torch.softmax(torch.einsum("tbnhc,tbmhc->tbhnm", qh, kh) / d**0.5, dim=-1)
    return torch.einsum("tbhnm,tbmhc->tbnhc", w, vh).reshape(x.shape)


def randomize_bn(model: nn.Module, gen: torch.Generator, *, bias: float = 1.2, spread: float = 0.3) -> None:
    """Random running statistics and affine parameters (positive bias: busy neurons, non-vacuous checks)."""
    for mod in model.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            c = mod.num_features
            mod.running_mean.copy_(0.1 * torch.randn(c, generator=gen, dtype=mod.running_mean.dtype))
            mod.running_var.copy_(0.5 + torch.rand(c, generator=gen, dtype=mod.running_var.dtype))
            with torch.no_grad():
                mod.weight.copy_(1.0 + 0.5 * torch.rand(c, generator=gen, dtype=mod.weight.dtype))
                mod.bias.copy_(bias + spread * torch.randn(c, generator=gen, dtype=mod.bias.dtype))
