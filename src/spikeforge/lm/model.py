r"""SpikeGPT (Zhu, Zhao, Ororbia, Wang, Wu & Eshraghian, "SpikeGPT: Generative Pre-trained Language Model with
Spiking Neural Networks", TMLR 2024): RWKV-4's linear-attention language model with spiking activations, time-major
(tokens are the time steps, ``[T, B]`` in, ``[T, B, V]`` out).

Architecture (``C = d_model``, ``L = n_layers``)::

    x = BE(E[token])                                     binary embedding: Heaviside, surrogate gradient
    per block l = 1..L:
        s = LN1(x)   [SN_a(LN1(x)) when spike_inputs is "att" or "all"];  s' = s shifted one token
        r, k, v = W_r(mix_r(s, s')), W_k(mix_k(s, s')), W_v(mix_v(s, s'))
        x = x + W_o(sigmoid(r) * WKV(k, v))               RWKV time-mixing
        s = LN2(x)   [SN_f(LN2(x)) when spike_inputs is "ffn" or "all"];  s' = s shifted one token
        z = SN_k(W_k'(mix_k'(s, s')))                    binary hidden layer (4C) of the channel-mixing
        x = x + sigmoid(W_r'(mix_r'(s, s'))) * W_v'(z)    spiking receptance feed-forward (SRFFN)
    logits = head(LN_out(x))

``mix(s, s') = mu * s + (1 - mu) * s'`` (RWKV's token shift, ``mu`` learned per channel). ``SN_*`` are spikeforge
neurons (:class:`~spikeforge.neurons.LIF` by default, ``tau_mem = 2``, raw input, threshold 1, reset by
subtraction, arctan surrogate as in the paper) whose membranes run over the tokens, so they are part of the
recurrent state.

**What spikes and what is real-valued** (default ``spike_inputs="none"``). Binary (0/1): the embedding output and
the channel-mixing hidden layer ``z`` (the input of ``W_v'``, the largest matrix, ``4C x C``: event-driven
synaptic operations). Real-valued: the residual stream ``x``, layer norms and the inputs of ``W_r, W_k, W_v,
W_k', W_r'``, the WKV recurrence and its state, the sigmoid gates, the input of ``W_o`` and of the head.
``spike_inputs`` = ``"att"``, ``"ffn"`` or ``"all"`` also binarises the layer-norm output feeding the time-mixing,
the channel-mixing or both (then those projections read ``mu * s + (1 - mu) * s'`` of binary vectors: two
event-driven passes); ``"all"`` was the only model before the option existed (checkpoints without it load so).

**Fidelity to SpikeGPT** (Zhu et al. 2024; the authors' code, ``ridgerchu/SpikeGPT`` ``src/model.py``): the
released model binarises the embedding (Heaviside with the arctan surrogate, alpha 2) and then, unlike this one,
layer-normalises it (an extra ``ln0``) and spikes the *outputs* of the two sub-layers before the residual
additions, ``x = x + LIF(att(LN1(x)))``, ``x = x + LIF(ffn(LN2(x)))`` (SpikingJelly ``MultiStepLIFNode``:
``v = v + (y - v) / 2``, threshold 1, hard reset to 0); its projections read real layer-norm outputs (as here by
default) and its channel-mixing hidden layer is ``relu(k)^2``, not spiking. This model keeps the residual
increments real and spikes the channel-mixing hidden layer instead (this library's reading of the paper's SRFFN,
spiking neurons in the feed-forward path). After 400 equal optimiser steps of the Austen recipe (one seed, validation bpc) the
non-spiking twin scored 2.07, this default 2.12, ``spike_inputs`` ``"att"`` 2.20, ``"ffn"`` 2.31, ``"all"`` 2.65
and the authors' placement 2.56: binarising the layer-norm outputs that feed the projections costs most of the gap.

``spiking=False`` gives the non-spiking RWKV-4 twin with the same parameters (and state dict): no binary
embedding, no ``SN_*`` (the layer-norm outputs go in directly) and ``relu(k)^2`` instead of ``SN_k``.

Two forms with the same logits: :meth:`SpikeGPT.forward` (a whole sequence; WKV by
:func:`~spikeforge.lm.wkv.wkv_parallel`, neurons by their multi-step forward) and :meth:`SpikeGPT.step` (one
token, constant-size :class:`BlockState` per block; :func:`~spikeforge.lm.wkv.wkv_step`, ``neuron.step``).
"""

from __future__ import annotations

import math
from dataclasses import asdict
from dataclasses import dataclass
from typing import Any
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch import nn

from spikeforge._core.spike import spike
from spikeforge.lm.wkv import WKVState
from spikeforge.lm.wkv import wkv_parallel
from spikeforge.lm.wkv import wkv_step
from spikeforge.neurons import Neuron
from spikeforge.neurons import get_neuron
from spikeforge.surrogate import resolve_surrogate

__all__ = ["SpikeGPTConfig", "SpikeGPT", "BlockState", "LM_NEURONS", "MAX_VOCAB", "SPIKE_INPUTS"]

#: Neurons a SpikeGPT may use (their multi-step forward and ``step`` are exact twins).
LM_NEURONS: tuple[str, ...] = ("lif", "if")
#: Largest vocabulary (a character or byte vocabulary is far below it).
MAX_VOCAB = 65536
#: Which layer-norm outputs a spiking model binarises: neither, the time-mixing's, the channel-mixing's, both.
SPIKE_INPUTS: tuple[str, ...] = ("none", "att", "ffn", "all")


@dataclass(frozen=True)
class SpikeGPTConfig:
    """Sizes and choices of a :class:`SpikeGPT` (JSON-safe: stored in checkpoints)."""

    vocab_size: int
    d_model: int = 256
    n_layers: int = 4
    ffn_mult: int = 4
    spiking: bool = True
    neuron: str = "lif"
    tau_mem: float = 2.0
    surrogate: str = "atan"
    spike_inputs: str = "none"

    def __post_init__(self) -> None:
        for name, cap in (("vocab_size", MAX_VOCAB), ("d_model", 8192), ("n_layers", 256), ("ffn_mult", 16)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= cap:
                raise ValueError(f"SpikeGPTConfig.{name} must be an int in [1, {cap}], got {value!r}")
        if self.neuron not in LM_NEURONS:
            raise ValueError(f"SpikeGPTConfig.neuron must be one of {', '.join(LM_NEURONS)}, got {self.neuron!r}")
        if not isinstance(self.spiking, bool):
            raise ValueError(f"SpikeGPTConfig.spiking must be True or False, got {self.spiking!r}")
        tau = self.tau_mem
        if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not (math.isfinite(tau) and tau > 0):
            raise ValueError(f"SpikeGPTConfig.tau_mem must be a finite number > 0, got {tau!r}")
        resolve_surrogate(self.surrogate)  # an unknown name names the valid ones
        if self.spike_inputs not in SPIKE_INPUTS:
            raise ValueError(
                f"SpikeGPTConfig.spike_inputs must be one of {', '.join(SPIKE_INPUTS)}, got {self.spike_inputs!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class BlockState(NamedTuple):
    """Recurrent state of one block after a token (``[B, ...]`` tensors; neuron states None in the twin)."""

    att_shift: Tensor  # s of the time-mixing input, last token [B, C]
    ffn_shift: Tensor  # s of the channel-mixing input, last token [B, C]
    wkv: WKVState
    sn_att: Any
    sn_ffn: Any
    sn_key: Any


def _mix(s: Tensor, prev: Tensor, mu: Tensor) -> Tensor:
    """``mu * s + (1 - mu) * prev`` (token shift), as one ``lerp``."""
    return torch.lerp(prev, s, mu)


class _Block(nn.Module):
    def __init__(self, cfg: SpikeGPTConfig, layer: int) -> None:
        super().__init__()
        c, h = cfg.d_model, cfg.d_model * cfg.ffn_mult
        self.ln1, self.ln2 = nn.LayerNorm(c), nn.LayerNorm(c)
        depth = layer / max(1, cfg.n_layers - 1)  # 0 at the first block, 1 at the last
        ramp = torch.arange(c, dtype=torch.float32) / c
        # RWKV-4 style initialisation (decays from fast to slow across channels; shift weights ramp with depth)
        self.time_decay = nn.Parameter(-5.0 + 8.0 * (torch.arange(c) / max(1, c - 1)) ** (0.7 + 1.3 * depth))
        self.time_first = nn.Parameter(torch.full((c,), math.log(0.3)) + 0.5 * ((torch.arange(c) % 3) - 1))
        self.att_mix_k = nn.Parameter(ramp ** (1.0 - 0.5 * depth))
        self.att_mix_v = nn.Parameter(ramp ** (1.0 - 0.5 * depth) + 0.3 * depth)
        self.att_mix_r = nn.Parameter(ramp ** (0.5 * (1.0 - 0.5 * depth)))
        self.ffn_mix_k = nn.Parameter(ramp ** (1.0 - 0.5 * depth))
        self.ffn_mix_r = nn.Parameter(ramp ** (1.0 - 0.5 * depth))
        self.att_key, self.att_value, self.att_receptance = (nn.Linear(c, c, bias=False) for _ in range(3))
        self.att_output = nn.Linear(c, c, bias=False)
        self.ffn_key, self.ffn_receptance = nn.Linear(c, h, bias=False), nn.Linear(c, c, bias=False)
        self.ffn_value = nn.Linear(h, c, bias=False)
        for lin in (self.att_output, self.ffn_value):
            nn.init.zeros_(lin.weight)
        self.spiking = cfg.spiking
        self.spike_att = cfg.spiking and cfg.spike_inputs in ("att", "all")
        self.spike_ffn = cfg.spiking and cfg.spike_inputs in ("ffn", "all")
        kwargs: dict[str, Any] = {"surrogate": cfg.surrogate}
        if cfg.neuron == "lif":
            kwargs.update(tau_mem=float(cfg.tau_mem), input_scaling="none")
        self.sn_att, self.sn_ffn, self.sn_key = (get_neuron(cfg.neuron, **kwargs) for _ in range(3))

    def _neuron(self, sn: Neuron, x: Tensor, state: Any, seq: bool) -> tuple[Tensor, Any]:
        """The neuron's multi-step forward (``seq``), or its pure step function on one token: the step's input
        checks are skipped (the model made ``x`` and ``state``), which halves the time per generated token."""
        if seq:
            return sn(x, state)
        if state is None:
            state = sn.init_state(x)
        return type(sn).step_fn(x, state, sn.params(x), dt=sn.dt, surrogate=sn.surrogate, **sn.step_options())

    def _shift(self, s: Tensor, last: Tensor | None, seq: bool) -> Tensor:
        first = torch.zeros_like(s[0] if seq else s) if last is None else last
        return torch.cat([first.unsqueeze(0), s[:-1]]) if seq else first

    def forward(
        self, x: Tensor, state: BlockState | None, seq: bool, record: dict[str, Tensor] | None, name: str
    ) -> tuple[Tensor, BlockState]:
        """``x``: ``[T, B, C]`` (``seq``) or ``[B, C]``; returns the new ``x`` and the state after the last token."""
        st = state
        h = F.layer_norm(x, x.shape[-1:], self.ln1.weight, self.ln1.bias)
        sn_att = None
        if self.spike_att:
            h, sn_att = self._neuron(self.sn_att, h, None if st is None else st.sn_att, seq)
        prev = self._shift(h, None if st is None else st.att_shift, seq)
        k = F.linear(_mix(h, prev, self.att_mix_k), self.att_key.weight)
        v = F.linear(_mix(h, prev, self.att_mix_v), self.att_value.weight)
        r = F.linear(_mix(h, prev, self.att_mix_r), self.att_receptance.weight)
        w, wkv_state = -torch.exp(self.time_decay), None if st is None else st.wkv
        if seq:
            wkv, wkv_state = wkv_parallel(k, v, w, self.time_first, wkv_state)
        else:
            wkv, wkv_state = wkv_step(k, v, w, self.time_first, wkv_state)
        x = x + F.linear(torch.sigmoid(r) * wkv, self.att_output.weight)
        if record is not None:
            record[f"{name}.att_in"], record[f"{name}.att_prev"] = h, prev
        att_last = h[-1] if seq else h
        h = F.layer_norm(x, x.shape[-1:], self.ln2.weight, self.ln2.bias)
        sn_ffn = sn_key = None
        if self.spike_ffn:
            h, sn_ffn = self._neuron(self.sn_ffn, h, None if st is None else st.sn_ffn, seq)
        prev = self._shift(h, None if st is None else st.ffn_shift, seq)
        k = F.linear(_mix(h, prev, self.ffn_mix_k), self.ffn_key.weight)
        if self.spiking:
            z, sn_key = self._neuron(self.sn_key, k, None if st is None else st.sn_key, seq)
        else:
            z = torch.square(torch.relu(k))
        x = x + torch.sigmoid(F.linear(_mix(h, prev, self.ffn_mix_r), self.ffn_receptance.weight)) * F.linear(
            z, self.ffn_value.weight
        )
        if record is not None:
            record[f"{name}.ffn_in"], record[f"{name}.ffn_prev"], record[f"{name}.ffn_hidden"] = h, prev, z
        ffn_last = h[-1] if seq else h
        return x, BlockState(att_last, ffn_last, wkv_state, sn_att, sn_ffn, sn_key)


class SpikeGPT(nn.Module):
    """SpikeGPT language model (module docstring); ``SpikeGPT(SpikeGPTConfig(vocab_size=81))``."""

    def __init__(self, config: SpikeGPTConfig) -> None:
        super().__init__()
        if not isinstance(config, SpikeGPTConfig):
            raise TypeError(f"SpikeGPT needs a SpikeGPTConfig, got {type(config).__name__}")
        self.config = config
        c = config.d_model
        self.embedding = nn.Embedding(config.vocab_size, c)
        nn.init.normal_(self.embedding.weight, std=0.5)
        self.blocks = nn.ModuleList(_Block(config, i) for i in range(config.n_layers))
        self.ln_out = nn.LayerNorm(c)
        self.head = nn.Linear(c, config.vocab_size, bias=False)
        nn.init.normal_(self.head.weight, std=0.5 / math.sqrt(c))
        self._surrogate = resolve_surrogate(config.surrogate)

    def _embed(self, tokens: Tensor) -> Tensor:
        if tokens.dtype != torch.long or (
            tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.config.vocab_size)
        ):
            raise ValueError(
                f"tokens must be int64 ids in [0, {self.config.vocab_size}) (encode text with the checkpoint's "
                "vocabulary)"
            )
        e = self.embedding(tokens)
        return spike(e, self._surrogate) if self.config.spiking else e

    def _check_state(self, state: tuple[BlockState, ...] | None) -> None:
        if state is not None and (not isinstance(state, tuple) or len(state) != len(self.blocks)):
            raise ValueError(f"state must be None or the tuple of {len(self.blocks)} BlockStates a forward returned")

    def forward(
        self,
        tokens: Tensor,
        state: tuple[BlockState, ...] | None = None,
        *,
        record: dict[str, Tensor] | None = None,
    ) -> tuple[Tensor, tuple[BlockState, ...]]:
        """Parallel form: ``tokens [T, B]`` -> ``(logits [T, B, V], state after the last token)``.

        ``record``: a dict that receives the binary tensors of each block (energy counting); nothing is kept on the
        module."""
        if tokens.dim() != 2 or tokens.shape[0] < 1:
            raise ValueError(f"tokens must be [T, B] with T >= 1 (time-major), got shape {tuple(tokens.shape)}")
        self._check_state(state)
        x = self._embed(tokens)
        if record is not None:
            record["embedding"] = x
        new = []
        for i, block in enumerate(self.blocks):
            x, st = block(x, None if state is None else state[i], True, record, f"blocks.{i}")
            new.append(st)
        return self.head(self.ln_out(x)), tuple(new)

    def step(
        self,
        token: Tensor,
        state: tuple[BlockState, ...] | None = None,
        *,
        record: dict[str, Tensor] | None = None,
    ) -> tuple[Tensor, tuple[BlockState, ...]]:
        """Recurrent form: one token ``[B]`` -> ``(logits [B, V], new state)``, constant memory per token."""
        if token.dim() != 1:
            raise ValueError(f"token must be [B] (one token per sequence), got shape {tuple(token.shape)}")
        self._check_state(state)
        x = self._embed(token)
        if record is not None:
            record["embedding"] = x
        new = []
        for i, block in enumerate(self.blocks):
            x, st = block(x, None if state is None else state[i], False, record, f"blocks.{i}")
            new.append(st)
        return self.head(self.ln_out(x)), tuple(new)

    def loss(self, tokens: Tensor) -> Tensor:
        """Mean next-token cross-entropy (nats) of ``tokens [T + 1, B]`` from a fresh state."""
        logits, _ = self(tokens[:-1])
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[1:].reshape(-1))
