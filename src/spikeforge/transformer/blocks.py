r"""Spiking transformer blocks over time-major tokens ``[T, B, N, D]`` (``N`` tokens of ``D`` channels).

Two published designs, and a non-spiking twin of each (``spiking=False``: ReLU for every LIF, softmax
attention, the same parameters and ``state_dict`` keys):

* **Spikformer** (Zhou et al., ICLR 2023, "Spikformer: When Spiking Neural Network Meets Transformer"),
  spiking self-attention (SSA), per head, without softmax:

  .. math:: Q, K, V = \mathcal{SN}(\mathrm{BN}(X W_{Q,K,V})),\quad
            \mathrm{SSA}'(Q, K, V) = \mathcal{SN}\big(Q K^\top V \cdot s\big),\quad
            \mathrm{SSA} = \mathcal{SN}(\mathrm{BN}(\mathrm{SSA}' W_O))

  with residuals ``X + SSA(X)`` and ``X + MLP(X)`` adding spikes to spikes (so later products see integers).
* **Spike-driven Transformer** (Yao et al., NeurIPS 2023), spike-driven self-attention (SDSA, their
  eq. for SDSA-V1) and the membrane shortcut (every residual adds membrane potentials, each branch starts
  with a spiking neuron, so every product between weights or activations has a binary input):

  .. math:: \mathrm{SDSA}(Q, K, V) = \mathcal{SN}\big(\mathrm{SUM}_c(Q \otimes K)\big) \otimes V,\qquad
            U \leftarrow U + \mathrm{BN}(\mathrm{SDSA}(\ldots) W_O)

  (``SUM_c`` sums each channel over the tokens; the published code masks ``Q`` with the column sum of
  ``K * V``, the same construction with the roles of Q and V swapped; we follow the paper's equation.)

Every product between activations is a module of :mod:`spikeforge.transformer._ops` (hooks see it). The
spiking neurons are the library's :class:`~spikeforge.neurons.LIF` (fused multi-step kernels through its
backend dispatch, surrogate gradients): ``beta = 0.5`` (``tau = 2`` steps), hard reset to 0, threshold 1 (0.5 in
the attention neuron), the constants of both papers' code (SpikingJelly's LIF), except that the input is added
raw (gain 1, not 0.5; see :data:`LIF_DEFAULTS`) and that we spike at ``v > v_th`` strictly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor
from torch import nn

from spikeforge.neurons import LIF
from spikeforge.transformer._ops import Hadamard
from spikeforge.transformer._ops import ReLUTwin
from spikeforge.transformer._ops import Softmax
from spikeforge.transformer._ops import SpikeMatmul
from spikeforge.transformer._ops import TokenSum
from spikeforge.transformer._ops import check_tokens

__all__ = ["LIF_DEFAULTS", "ATTN_V_TH", "make_act", "LinearBN", "SSA", "SDSA", "SpikingMLP", "Block"]

#: The LIF of both papers' code (SpikingJelly ``LIFNode(tau=2)``, hard reset to 0, threshold 1), but with the raw
#: input (gain 1, ``V' = V / 2 + I``) instead of SpikingJelly's ``(V + I) / 2``: on Fashion-MNIST one epoch of 2000
#: images gave 33 % test accuracy against 12 % with the halved input (``benchmarks/transformers.py --models sdt
#: --epochs 1 --train-subset 2000 --test-subset 500 --lr 2e-3``, with and without ``--neuron-kwargs
#: '{"input_scaling": "exact"}'``): more spikes early, faster learning. ``neuron_kwargs`` restores the papers' gain.
LIF_DEFAULTS: dict[str, Any] = {"beta": 0.5, "reset": "to_value", "v_reset": 0.0, "v_th": 1.0, "input_scaling": "none"}
#: The threshold of the attention neuron (SSA's and SDSA's), 0.5 in both papers' code.
ATTN_V_TH = 0.5
ACT_OPTIONS = ("spiking", "surrogate", "neuron_kwargs")


def make_act(spiking: bool, surrogate: str, neuron_kwargs: Mapping[str, Any] | None, **override: Any) -> nn.Module:
    """A :class:`~spikeforge.neurons.LIF` with :data:`LIF_DEFAULTS` (updated by ``neuron_kwargs`` and
    ``override``), or its :class:`~spikeforge.transformer._ops.ReLUTwin` when not ``spiking``."""
    lif = LIF(None, **{**LIF_DEFAULTS, **(neuron_kwargs or {}), **override, "surrogate": surrogate})
    return lif if spiking else ReLUTwin(lif)


def act(module: nn.Module, x: Tensor) -> Tensor:
    """Run a LIF (or its ReLU twin) on ``[T, ...]`` and return the output sequence only."""
    return module(x)[0]


class LinearBN(nn.Module):
    """``BN(x W^T)`` on the last axis of ``[T, B, N, D_in] -> [T, B, N, D_out]`` (Linear without bias, then
    BatchNorm1d over ``T*B*N`` rows). :func:`~spikeforge.transformer.fold_batchnorm` merges the pair."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.lin = nn.Linear(d_in, d_out, bias=False)
        self.bn: nn.Module = nn.BatchNorm1d(d_out)

    def forward(self, x: Tensor) -> Tensor:
        y = self.lin(x)
        return self.bn(y.reshape(-1, y.shape[-1])).reshape(y.shape)


def _heads(x: Tensor, h: int) -> Tensor:
    """``[T, B, N, D] -> [T, B, H, N, D/H]``."""
    t, b, n, d = x.shape
    return x.reshape(t, b, n, h, d // h).transpose(2, 3)


def _merge(x: Tensor) -> Tensor:
    """``[T, B, H, N, d] -> [T, B, N, H*d]``."""
    t, b, h, n, d = x.shape
    return x.transpose(2, 3).reshape(t, b, n, h * d)


class _Attention(nn.Module):
    """Shared parts: Q, K, V projections with their neurons, the attention neuron, the output projection."""

    def __init__(
        self, dim: int, heads: int, *, spiking: bool, surrogate: str, neuron_kwargs: Mapping[str, Any] | None
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim={dim} must be a multiple of heads={heads}; e.g. dim={heads * max(1, dim // heads)}")
        self.dim, self.heads, self.spiking = dim, heads, spiking
        self.q, self.k, self.v = LinearBN(dim, dim), LinearBN(dim, dim), LinearBN(dim, dim)
        self.q_act, self.k_act, self.v_act = (make_act(spiking, surrogate, neuron_kwargs) for _ in range(3))
        self.attn_act = make_act(spiking, surrogate, neuron_kwargs, v_th=ATTN_V_TH)
        self.proj = LinearBN(dim, dim)
        self.softmax = Softmax()
        # spiking: (Q K^T) V * s (Spikformer's s = 0.125); twin: softmax(Q K^T / sqrt(d)) V
        self.qk = SpikeMatmul(1.0 if spiking else (dim // heads) ** -0.5)
        self.av = SpikeMatmul(0.125 if spiking else 1.0)

    def qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        check_tokens(x, f"{type(self).__name__} input", dim=self.dim)
        return act(self.q_act, self.q(x)), act(self.k_act, self.k(x)), act(self.v_act, self.v(x))

    def product_attention(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """Per head: ``(Q K^T) V * s`` (spiking, no softmax) or ``softmax(Q K^T / sqrt(d)) V`` (twin)."""
        qh, kh, vh = (_heads(t, self.heads) for t in (q, k, v))
        scores = self.qk(qh, kh.transpose(-2, -1))  # [T, B, H, N, N]
        return _merge(self.av(scores if self.spiking else self.softmax(scores), vh))


class SSA(_Attention):
    """Spikformer's spiking self-attention on ``[T, B, N, D]`` (any real input; spikes out).

    Spiking: ``SN(BN(SN(Q K^T V * s) W_O))`` per head with ``s = 0.125``. Twin: ``ReLU(BN(softmax(Q K^T /
    sqrt(d)) V W_O))`` with ``Q = ReLU(BN(X W_Q))`` etc."""

    def __init__(
        self, dim: int, heads: int, *, spiking: bool = True, surrogate: str = "fast_sigmoid",
        neuron_kwargs: Mapping[str, Any] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(dim, heads, spiking=spiking, surrogate=surrogate, neuron_kwargs=neuron_kwargs)
        self.proj_act = make_act(spiking, surrogate, neuron_kwargs)

    def forward(self, x: Tensor) -> Tensor:
        y = self.product_attention(*self.qkv(x))
        return act(self.proj_act, self.proj(act(self.attn_act, y)))


class SDSA(_Attention):
    """The Spike-driven Transformer's self-attention on spikes ``[T, B, N, D]`` (membrane out, to be added to
    the shortcut).

    Spiking: ``BN(SN(SUM_c(Q * K)) * V W_O)``: a Hadamard product of spike tensors (an AND), a sum over the
    tokens per channel, a spiking neuron (threshold 0.5) giving a channel mask ``[T, B, 1, D]``, the mask
    applied to ``V``; ``heads`` does not matter (the operation is per channel). Twin: ``BN(softmax(Q K^T /
    sqrt(d)) V W_O)`` per head."""

    def __init__(
        self, dim: int, heads: int, *, spiking: bool = True, surrogate: str = "fast_sigmoid",
        neuron_kwargs: Mapping[str, Any] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(dim, heads, spiking=spiking, surrogate=surrogate, neuron_kwargs=neuron_kwargs)
        self.qk_mask, self.column_sum, self.v_mask = Hadamard(), TokenSum(), Hadamard()

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = self.qkv(x)
        if self.spiking:
            mask = act(self.attn_act, self.column_sum(self.qk_mask(q, k)))  # [T, B, 1, D]
            y = self.v_mask(v, mask)
        else:
            y = act(self.attn_act, self.product_attention(q, k, v))  # ReLU of a non-negative value: identity
        return self.proj(y)


class SpikingMLP(nn.Module):
    """Two ``LinearBN`` layers ``D -> hidden -> D`` on ``[T, B, N, D]``.

    ``pre_act=True`` (Spike-driven Transformer): ``BN(SN(BN(SN(U) W_1)) W_2)``, membrane in and out.
    ``pre_act=False`` (Spikformer): ``SN(BN(SN(BN(X W_1)) W_2))``, spikes out."""

    def __init__(
        self, dim: int, hidden: int, *, pre_act: bool, spiking: bool = True, surrogate: str = "fast_sigmoid",
        neuron_kwargs: Mapping[str, Any] | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.dim, self.pre_act = dim, pre_act
        self.fc1, self.fc2 = LinearBN(dim, hidden), LinearBN(hidden, dim)
        self.act1, self.act2 = (make_act(spiking, surrogate, neuron_kwargs) for _ in range(2))

    def forward(self, x: Tensor) -> Tensor:
        check_tokens(x, "SpikingMLP input", dim=self.dim)
        if self.pre_act:
            return self.fc2(act(self.act2, self.fc1(act(self.act1, x))))
        return act(self.act2, self.fc2(act(self.act1, self.fc1(x))))


class Block(nn.Module):
    """One transformer block on ``[T, B, N, D]``: ``x + Attn(x)`` then ``x + MLP(x)``.

    ``kind="sdt"``: membrane shortcut, ``U + SDSA(SN(U))`` and ``U + MLP(U)`` (the MLP starts with its neuron);
    ``kind="spikformer"``: ``X + SSA(X)``, ``X + MLP(X)`` with spikes added to spikes."""

    def __init__(
        self, kind: str, dim: int, heads: int, mlp_ratio: int, *, spiking: bool = True,
        surrogate: str = "fast_sigmoid", neuron_kwargs: Mapping[str, Any] | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        if kind not in ("sdt", "spikformer"):
            raise ValueError(f"unknown block kind {kind!r}; choose 'sdt' or 'spikformer'")
        self.kind = kind
        opts: dict[str, Any] = dict(spiking=spiking, surrogate=surrogate, neuron_kwargs=neuron_kwargs)
        self.attn: nn.Module
        if kind == "sdt":
            self.in_act = make_act(spiking, surrogate, neuron_kwargs)
            self.attn = SDSA(dim, heads, **opts)
        else:
            self.attn = SSA(dim, heads, **opts)
        self.mlp = SpikingMLP(dim, dim * mlp_ratio, pre_act=kind == "sdt", **opts)

    def forward(self, x: Tensor) -> Tensor:
        if self.kind == "sdt":
            x = x + self.attn(act(self.in_act, x))
        else:
            x = x + self.attn(x)
        return x + self.mlp(x)
