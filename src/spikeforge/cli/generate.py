"""``spikeforge generate CHECKPOINT --prompt TEXT``: sample text from a SpikeGPT / RWKV checkpoint, streamed.

The recurrent form reads the prompt and emits one character at a time (constant memory). Sampling uses its own
seeded generator, so a seed gives the same text every time. A checkpoint whose vocabulary differs from its
corpus's (``--check-data``, default on when the corpus is installed) is refused.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from spikeforge.cli._common import Command
from spikeforge.cli._common import Output
from spikeforge.cli._common import UsageError
from spikeforge.cli._common import existing_file
from spikeforge.cli._common import positive_int

__all__ = ["COMMAND", "run", "MAX_TOKENS"]

#: Most characters one call generates.
MAX_TOKENS = 1_000_000


def _arguments(g: argparse.ArgumentParser) -> None:
    g.add_argument("checkpoint", type=Path, help="a best.pt of 'spikeforge train --model spikegpt|rwkv'")
    g.add_argument("--prompt", default="\n", help="text to start from (characters of the checkpoint's vocabulary)")
    g.add_argument("--tokens", type=positive_int, default=200, help="characters to generate")
    g.add_argument("--temperature", type=float, default=1.0, help="softmax temperature (> 0; 0 = greedy)")
    g.add_argument("--top-k", dest="top_k", type=positive_int, default=None, help="sample from the k likeliest only")
    g.add_argument("--seed", type=int, default=0, help="seed of the sampling generator")
    g.add_argument(
        "--data-dir", dest="data_dir", default=None, metavar="DIR",
        help="folder of the corpus files, to check the vocabulary against (default: the installed corpus)",
    )  # fmt: skip


def run(args: argparse.Namespace) -> Output:
    import torch

    from spikeforge.data.text import get_corpus
    from spikeforge.lm.sample import generate_ids
    from spikeforge.training.lm_checkpoint import load_lm

    existing_file(args.checkpoint, "checkpoint")
    if args.tokens > MAX_TOKENS:
        raise UsageError(f"--tokens is capped at {MAX_TOKENS}")
    if not args.temperature >= 0 or args.temperature == float("inf"):
        raise UsageError(f"--temperature must be a finite number >= 0, got {args.temperature}")
    model, config, vocab = load_lm(args.checkpoint)
    corpus = get_corpus(config.dataset, data_dir=args.data_dir if args.data_dir is not None else config.data_dir)
    corpus.vocab.check_same(vocab, f"checkpoint {str(args.checkpoint)!r}")
    try:
        prompt = vocab.encode(args.prompt)
        if prompt.numel() == 0:
            raise ValueError("--prompt is empty; give at least one character")
    except ValueError as e:
        raise UsageError(str(e)) from e
    torch.set_num_threads(1)
    stream = None if getattr(args, "json", False) else sys.stdout
    if stream is not None:
        stream.write(args.prompt)
        stream.flush()
    out, t0 = [], time.perf_counter()
    gen = torch.Generator().manual_seed(args.seed)
    for i in generate_ids(model, prompt, args.tokens, temperature=args.temperature, top_k=args.top_k, generator=gen):
        ch = vocab.chars[i]
        out.append(ch)
        if stream is not None:
            stream.write(ch)
            stream.flush()
    seconds = time.perf_counter() - t0
    text = "".join(out)
    result = {"prompt": args.prompt, "text": text, "tokens": len(out), "seed": args.seed,
              "chars_per_s": len(out) / max(seconds, 1e-9), "model": config.model}  # fmt: skip
    note = f"\n[{len(out)} characters, {result['chars_per_s']:.0f} chars/s, recurrent form, 1 thread]"
    if stream is not None:
        sys.stderr.write(note + "\n")
    return Output(result, "" if stream is not None else args.prompt + text + note)


COMMAND = Command(
    "generate", "sample text from a language-model checkpoint (streamed)",
    "Generate text with a SpikeGPT / RWKV checkpoint, one character at a time with the recurrent form.",
    ('spikeforge generate runs/austen/best.pt --prompt "It is a truth" --tokens 200 --temperature 0.8 --top-k 10',),
    run, _arguments,
)  # fmt: skip
