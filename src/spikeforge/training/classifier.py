"""The classifier wrapper of the trainer's SNN models: encoder + network + decoder, ``x [B, ...] -> logits [B, C]``
(see :mod:`spikeforge.training.models` for the encodings, decodings and builders)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor
from torch import nn

from spikeforge.layers import SNNSequential
from spikeforge.training.choices import DECODERS
from spikeforge.training.choices import ENCODERS
from spikeforge.training.choices import check_decoding
from spikeforge.training.choices import check_encoding
from spikeforge.training.choices import check_encoding_options
from spikeforge.training.choices import check_positive_int

__all__ = ["SNNClassifier"]


class SNNClassifier(nn.Module):
    """Encoder + :class:`SNNSequential` + decoder: ``x [B, ...] -> logits [B, C]``.

    Args:
        network: maps ``[T, B, ...] -> [T, B, C]``; its last neuron layer is the readout.
        time_steps: ``T``, number of simulation steps per sample.
        encoding: ``"constant"`` (the value is injected as a current at every step), ``"rate"`` (Bernoulli
            spikes with probability ``clamp(gain * x, 0, 1)``) or ``"latency"`` (one spike per feature,
            larger values earlier); see :mod:`spikeforge.encoding`.
        decoding: ``"max_membrane"``, ``"mean_membrane"`` or ``"spike_count"`` (see the module docstring).
        encoding_kwargs: extra keyword arguments of the encoder (e.g. ``{"gain": 0.5}`` for rate,
            ``{"mode": "log"}`` for latency).
    """

    def __init__(
        self,
        network: SNNSequential,
        *,
        time_steps: int,
        encoding: str = "constant",
        decoding: str = "max_membrane",
        encoding_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(network, SNNSequential):
            raise TypeError(f"network must be a spikeforge.layers.SNNSequential, got {type(network).__name__}")
        self.time_steps = check_positive_int("time_steps", time_steps)
        self.encoding = check_encoding(encoding)
        self.decoding = check_decoding(decoding)
        self.encoding_kwargs = check_encoding_options("encoding_kwargs", encoding, encoding_kwargs)
        neurons = network.neuron_layers
        if not neurons:
            raise ValueError("network has no neuron layer; end it with a readout such as spikeforge.neurons.LI()")
        last = neurons[-1]
        if decoding == "spike_count" and not last.spiking:
            raise ValueError("decoding='spike_count' needs a spiking readout (build with readout='spiking')")
        if decoding != "spike_count" and last.spiking:
            raise ValueError(f"decoding={decoding!r} reads a membrane; end the network with a non-spiking LI readout")
        self.network = network

    def encode(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Encode a static batch ``x [B, ...]`` into ``x_seq [T, B, ...]`` (``generator`` for ``"rate"``)."""
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor [B, ...], got {type(x).__name__}")
        if x.dim() < 2:
            raise ValueError(
                f"x must be a batch [B, ...] with at least 2 dims, got shape {tuple(x.shape)}; add x.unsqueeze(0)"
            )
        return ENCODERS[self.encoding](x, self.time_steps, generator, self.encoding_kwargs)

    def decode(self, out_seq: Tensor) -> Tensor:
        """Readout sequence ``[T, B, C]`` -> logits ``[B, C]`` (see the module docstring)."""
        return DECODERS[self.decoding](out_seq)

    def forward_seq(self, x: Tensor, *, generator: torch.Generator | None = None) -> tuple[Tensor, list[Any]]:
        """Encode and run the network: returns ``(out_seq [T, B, C], final neuron states)``."""
        return self.network(self.encode(x, generator=generator))

    def forward(self, x: Tensor, *, generator: torch.Generator | None = None, encoded: bool = False) -> Tensor:
        """Logits ``[B, C]`` for a batch ``x [B, ...]``, or for an already encoded ``x [T, B, ...]`` if ``encoded``."""
        if encoded:
            if not isinstance(x, Tensor) or x.dim() < 2 or x.shape[0] != self.time_steps:
                shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
                raise ValueError(f"encoded input must be [T={self.time_steps}, B, ...], got {shape}")
            out_seq, _ = self.network(x)
        else:
            out_seq, _ = self.forward_seq(x, generator=generator)
        return self.decode(out_seq)

    def extra_repr(self) -> str:
        return f"time_steps={self.time_steps}, encoding={self.encoding!r}, decoding={self.decoding!r}"
