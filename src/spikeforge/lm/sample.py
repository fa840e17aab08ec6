"""Text generation with the recurrent form: one token at a time, constant memory, streamed."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from spikeforge.lm.model import SpikeGPT

__all__ = ["generate_ids"]


@torch.inference_mode()
def generate_ids(
    model: SpikeGPT,
    prompt: Tensor,
    n_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> Iterator[int]:
    """Read ``prompt`` (int64 ids ``[P]``, ``P >= 1``) with :meth:`SpikeGPT.step`, then yield ``n_tokens`` sampled
    ids one by one. ``temperature`` > 0 divides the logits; ``top_k`` keeps the ``k`` most likely tokens;
    ``temperature == 0`` is greedy. Sampling draws from ``generator`` only (deterministic for a seeded one)."""
    if prompt.dim() != 1 or prompt.numel() < 1:
        raise ValueError("the prompt must hold at least one token (give a non-empty --prompt)")
    if isinstance(n_tokens, bool) or not isinstance(n_tokens, int) or n_tokens < 0:
        raise ValueError(f"n_tokens must be a non-negative int, got {n_tokens!r}")
    if not isinstance(temperature, (int, float)) or not temperature >= 0 or temperature == float("inf"):
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be a positive int or None, got {top_k!r}")
    model.eval()
    state = None
    logits = torch.empty(0)
    for token in prompt.tolist():
        logits, state = model.step(torch.tensor([token]), state)
    for _ in range(n_tokens):
        row = logits[0].double()
        if temperature == 0:
            nxt = int(row.argmax())
        else:
            row = row / temperature
            if top_k is not None and top_k < row.numel():
                cut = torch.topk(row, top_k).values[-1]
                row = torch.where(row < cut, torch.full_like(row, -torch.inf), row)
            nxt = int(torch.multinomial(torch.softmax(row, -1), 1, generator=generator))
        yield nxt
        logits, state = model.step(torch.tensor([nxt]), state)
