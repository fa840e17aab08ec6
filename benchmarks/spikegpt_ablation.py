"""Where SpikeGPT loses bits per character: variants at equal optimiser steps (issue 19).

Research script (not a test of the library): it patches the block forward of :class:`spikeforge.lm.SpikeGPT` to
place spiking neurons elsewhere (e.g. the authors' placement, ``repo``: LIF on the sub-layer outputs, ``relu^2``
hidden, ``ln0``, SpikingJelly's LIF constants) and reports validation bpc with the state reset every window.
The numbers quoted in :mod:`spikeforge.lm.model`'s docstring and benchmarks/RESULTS.md came from

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/spikegpt_ablation.py VARIANT --steps 400

for VARIANT in twin, base, no_in, no_snf, no_sna, repo (and twin, no_in with ``--steps 1000``).

Same recipe as spikeforge.training.lm.train_lm (lm_defaults: 4x128, ctx 128, batch 16, AdamW lr 2e-3 betas .9/.99,
wd 0.01 on matrices, warm-up 50 (<= total/10) + cosine, clip 1.0), seed 0, `--steps` steps, then validation bpc on
the whole validation text (50 000 chars, 64 streams, state carried), as train_lm's evaluate_bpc.
"""

import argparse
import json
import math
import time

import torch
import torch.nn.functional as F

from spikeforge.data.text import get_corpus
from spikeforge.lm import SpikeGPT
from spikeforge.lm import SpikeGPTConfig
from spikeforge.lm import model as M
from spikeforge.neurons import get_neuron
from spikeforge.surrogate import get_surrogate
from spikeforge.training.lm import _batch
from spikeforge.training.lm import _lr
from spikeforge.training.lm import _param_groups
from spikeforge.training.lm import evaluate_bpc

VARIANTS = {
    # name: dict of flags
    "twin": dict(spiking=False),
    "base": dict(),  # current default: SN_a, SN_f on LN outputs, SN_k hidden, binary emb
    "no_sna": dict(sn_in_att=False),
    "no_snf": dict(sn_in_ffn=False),
    "relu2": dict(hidden="relu2"),
    "no_in": dict(sn_in_att=False, sn_in_ffn=False),
    "repo": dict(sn_in_att=False, sn_in_ffn=False, hidden="relu2", sn_out=True, ln0=True, sj=True),
    "repo_sub": dict(sn_in_att=False, sn_in_ffn=False, hidden="relu2", sn_out=True, ln0=True),
    "base_sj": dict(sj=True),
    "base_th05": dict(v_th=0.5),
    "base_ln0": dict(ln0=True),
    "base_a4": dict(alpha=4.0),
    "base_a1": dict(alpha=1.0),
    "base_lth": dict(learn_th=True),
    "base_noreal": dict(emb="real"),
    "base_h8": dict(ffn_mult=8),
}


def neuron(flags):
    sur = get_surrogate("atan", alpha=flags.get("alpha", 2.0))
    if flags.get("sj"):  # spikingjelly MultiStepLIFNode(tau=2): v = 0.5 v + 0.5 x, hard reset to 0, reset in graph
        kw = dict(tau_mem=1 / math.log(2.0), input_scaling="exact", reset="to_value", v_reset=0.0, detach_reset=False)
    else:
        kw = dict(tau_mem=2.0, input_scaling="none")
    kw["v_th"] = flags.get("v_th", 1.0)
    if flags.get("learn_th"):
        kw["learn_threshold"] = True
    return get_neuron("lif", surrogate=sur, **kw)


def patch(model, flags):
    c = model.config.d_model
    for blk in model.blocks:
        blk.flags = flags
        blk.sn_att, blk.sn_ffn, blk.sn_key = neuron(flags), neuron(flags), neuron(flags)
        blk.sn_oatt, blk.sn_offn = neuron(flags), neuron(flags)
    if flags.get("ln0"):
        model.ln0 = torch.nn.LayerNorm(c)
    model._surrogate = get_surrogate("atan", alpha=flags.get("alpha", 2.0))


def block_forward(self, x):
    f = self.flags

    def shift(s):
        return torch.cat([torch.zeros_like(s[:1]), s[:-1]])

    h = F.layer_norm(x, x.shape[-1:], self.ln1.weight, self.ln1.bias)
    if f.get("sn_in_att", True):
        h, _ = self.sn_att(h)
    prev = shift(h)
    k = F.linear(M._mix(h, prev, self.att_mix_k), self.att_key.weight)
    v = F.linear(M._mix(h, prev, self.att_mix_v), self.att_value.weight)
    r = F.linear(M._mix(h, prev, self.att_mix_r), self.att_receptance.weight)
    wkv, _ = M.wkv_parallel(k, v, -torch.exp(self.time_decay), self.time_first, None)
    out = F.linear(torch.sigmoid(r) * wkv, self.att_output.weight)
    if f.get("sn_out"):
        out, _ = self.sn_oatt(out)
    x = x + out
    h = F.layer_norm(x, x.shape[-1:], self.ln2.weight, self.ln2.bias)
    if f.get("sn_in_ffn", True):
        h, _ = self.sn_ffn(h)
    prev = shift(h)
    k = F.linear(M._mix(h, prev, self.ffn_mix_k), self.ffn_key.weight)
    if f.get("hidden", "spike") == "spike":
        z, _ = self.sn_key(k)
    else:
        z = torch.square(torch.relu(k))
    out = torch.sigmoid(F.linear(M._mix(h, prev, self.ffn_mix_r), self.ffn_receptance.weight)) * F.linear(
        z, self.ffn_value.weight
    )
    if f.get("sn_out"):
        out, _ = self.sn_offn(out)
    return x + out


def model_forward(self, tokens, state=None, **kw):
    del state, kw  # the patched forward is stateless (validation resets every window)
    e = self.embedding(tokens)
    x = M.spike(e, self._surrogate) if self.flags.get("emb", "bin") == "bin" else e
    if hasattr(self, "ln0"):
        x = self.ln0(x)
    for blk in self.blocks:
        x = block_forward(blk, x)
    return self.head(self.ln_out(x)), None


def build(name, vocab):
    flags = VARIANTS[name]
    cfg = SpikeGPTConfig(
        vocab_size=vocab, d_model=128, n_layers=4, ffn_mult=flags.get("ffn_mult", 4), spiking=flags.get("spiking", True)
    )
    m = SpikeGPT(cfg)
    if not cfg.spiking:
        return m, False
    patch(m, flags)
    m.flags = flags
    return m, True


def stateless_bpc(model, ids, context=128, streams=64):
    """Validation bpc with the state reset every window (the patched forward has no state)."""
    streams = max(1, min(streams, (len(ids) - 1) // 2))
    n = (len(ids) // streams) * streams
    x = ids[:n].view(streams, -1).t().contiguous()
    total = count = 0
    model.eval()
    with torch.no_grad():
        for s in range(0, x.shape[0] - 1, context):
            inp, tgt = x[s : s + context], x[s + 1 : s + 1 + context]
            inp = inp[: tgt.shape[0]]
            logits, _ = model(inp)
            total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), reduction="sum"))
            count += tgt.numel()
    model.train()
    return total / count / math.log(2)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("variant")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(1)
    corpus = get_corpus("austen")
    torch.manual_seed(a.seed)
    model, patched = build(a.variant, len(corpus.vocab))
    fwd = (lambda t: model_forward(model, t)) if patched else (lambda t: model(t))
    train_ids = corpus.vocab.encode(corpus.train)
    val_ids = corpus.vocab.encode(corpus.validation)
    opt = torch.optim.AdamW(_param_groups(model, 0.01), lr=2e-3, betas=(0.9, 0.99))
    gen = torch.Generator().manual_seed(a.seed)
    t0, c0 = time.perf_counter(), time.process_time()
    losses = []
    for step in range(a.steps):
        for g in opt.param_groups:
            g["lr"] = _lr(step, a.steps, 2e-3)
        b = _batch(train_ids, 128, 16, gen)
        logits, _ = fwd(b[:-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), b[1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    train_cpu = time.process_time() - c0
    if patched:
        model.forward = lambda t, state=None, **kw: model_forward(model, t)
    val = stateless_bpc(model, val_ids)
    val_carry = None if patched else evaluate_bpc(model, val_ids, context=128, streams=64)
    res = dict(
        variant=a.variant,
        flags=VARIANTS[a.variant],
        steps=a.steps,
        seed=a.seed,
        train_bpc_last50=sum(losses[-50:]) / 50 / math.log(2),
        val_bpc_reset=val,
        val_bpc_carry=val_carry,
        train_cpu_s=train_cpu,
        wall_s=time.perf_counter() - t0,
        params=sum(p.numel() for p in model.parameters()),
    )
    print(json.dumps(res))


if __name__ == "__main__":
    main()
