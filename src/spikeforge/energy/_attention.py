r"""Operation counts of the spiking-transformer modules (:mod:`spikeforge.transformer`) for :func:`~spikeforge.energy.count`.

The rule is the synaptic layers' one: an operand that is binary (every element 0 or 1, checked at run time)
is a stream of events, and each nonzero event costs one accumulate (a SynOp) per output it reaches (its
fan-out); a product with no binary operand is priced as dense MACs. Per module, whole batch:

* :class:`~spikeforge.transformer.SpikeMatmul` ``a [.., N, M] @ b [.., M, P]``: ``a`` binary: ``nnz(a) * P``
  SynOps (each spike adds a row of ``b``); else ``b`` binary: ``nnz(b) * N`` (each spike adds a column of ``a``);
  else ``N * M * P`` MACs per matrix. When both are binary the left operand is the event stream (the convention
  of Yao et al.: SOPs = firing rate of the layer's input x FLOPs). ``dense_macs`` is always ``N * M * P`` per
  matrix. The constant ``scale`` is folded into the next layer's weights or threshold, not counted.
* :class:`~spikeforge.transformer.Hadamard` ``a * b`` (a mask when an operand is binary): the binary operand's
  nonzeros times their fan-out (``out.numel() / operand.numel()``, > 1 where it broadcasts, e.g. SDSA's channel
  mask over ``N`` tokens) SynOps, left operand first; no binary operand: one MAC per output element.
* :class:`~spikeforge.transformer.TokenSum` (SDSA's column sum): binary input: one SynOp per spike (a counter
  increment); real input: ``numel(in) - numel(out)`` adds.
* :class:`~spikeforge.transformer.TokenMean` (the head): ``N - 1`` adds and one division per output, i.e.
  ``numel(in)`` adds (the pooling convention of :func:`~spikeforge.energy.count`).
* :class:`~spikeforge.transformer.Softmax` (the non-spiking twin): per row of ``n`` scores, ``n``
  exponentials counted as one MAC each (a lower bound: an fp32 ``exp`` costs several), ``n - 1`` adds and
  ``n`` divisions (adds).
* :class:`~spikeforge.transformer.ReLUTwin` (the twin's activation): one compare (an add) per element.

**Where we differ from Yao et al. (NeurIPS 2023, Table 1 and the supplementary energy analysis, as we read
them).** They price
each spike-driven layer as ``E_AC x T x R x FLOPs`` (``R`` the average firing rate of its input), the first
(real-input) conv as ``E_MAC x FLOPs``, and treat SDSA's masks as nearly free (logical AND), so only the column
sum is priced. Our count is the same for Linear and Conv layers (``nnz x fan-out`` is ``R x T x FLOPs`` with the
rate of that very tensor, not an average), but (1) a mask is priced as one SynOp per nonzero of its event
operand and per output it reaches (an upper bound for an AND/select; on a chip where masks are free, subtract
the Hadamard rows), (2) neuron updates, BatchNorm (unless folded with
:func:`~spikeforge.transformer.fold_batchnorm`) and memory traffic are counted, which they leave out, (3)
pooling and the head's token mean are counted as adds, and (4) the conv on real pixels is counted at every one of
the ``T`` steps (``T x`` its MACs), while they price it once (with a constant input code its ``T`` results are
equal, so a chip could compute it once: divide that row by ``T`` for their convention). Conv SynOps use the exact
per-input fan-out at the borders, where ``R x FLOPs`` assumes every input reaches every kernel tap.
"""

from __future__ import annotations

from typing import Any
from typing import Protocol

import torch
from torch import Tensor
from torch import nn

from spikeforge.transformer import Hadamard
from spikeforge.transformer import ReLUTwin
from spikeforge.transformer import Softmax
from spikeforge.transformer import SpikeMatmul
from spikeforge.transformer import TokenMean
from spikeforge.transformer import TokenSum

__all__ = ["ATTENTION_MODULES", "is_attention_module", "count_attention"]

ATTENTION_MODULES: tuple[type[nn.Module], ...] = (SpikeMatmul, Hadamard, TokenSum, TokenMean, Softmax, ReLUTwin)

_KINDS: dict[type[nn.Module], str] = {
    SpikeMatmul: "matmul", Hadamard: "mask", TokenSum: "sum", TokenMean: "pool", Softmax: "softmax",
    ReLUTwin: "activation",
}  # fmt: skip


class _Session(Protocol):
    def entry(self, name: str, kind: str, module: nn.Module) -> dict[str, Any]: ...


def is_attention_module(module: nn.Module) -> bool:
    return isinstance(module, ATTENTION_MODULES)


def _binary(x: Tensor) -> bool:
    return bool(((x == 0) | (x == 1)).all())


def _nnz(x: Tensor) -> int:
    return int(torch.count_nonzero(x))


def _matmul(e: dict[str, Any], a: Tensor, b: Tensor, out: Tensor) -> None:
    n, m, p = a.shape[-2], a.shape[-1], b.shape[-1]
    dense = (out.numel() // (n * p)) * n * m * p
    a_bin, b_bin = _binary(a), _binary(b)
    e["input_binary"] = a_bin or b_bin if e["input_binary"] is None else (e["input_binary"] and (a_bin or b_bin))
    synops = _nnz(a) * p if a_bin else _nnz(b) * n if b_bin else 0  # same batch dims (SpikeMatmul checks)
    e["dense_macs"] += dense
    e["synops"] += synops
    e["macs"] += 0 if (a_bin or b_bin) else dense
    e["weight_reads"] += synops if (a_bin or b_bin) else dense


def _mask(e: dict[str, Any], a: Tensor, b: Tensor, out: Tensor) -> None:
    a_bin, b_bin = _binary(a), _binary(b)
    e["input_binary"] = a_bin or b_bin if e["input_binary"] is None else (e["input_binary"] and (a_bin or b_bin))
    events = a if a_bin else b if b_bin else None
    synops = 0 if events is None else _nnz(events) * (out.numel() // events.numel())
    e["dense_macs"] += out.numel()
    e["synops"] += synops
    e["macs"] += 0 if events is not None else out.numel()
    e["weight_reads"] += synops if events is not None else out.numel()


def count_attention(session: _Session, name: str, module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
    """Add one call of a transformer module to ``session`` (see the module docstring)."""
    e = session.entry(name, _KINDS[type(module)], module)
    y = out[0] if isinstance(out, tuple) else out
    x = args[0]
    if isinstance(module, SpikeMatmul):
        _matmul(e, args[0], args[1], y)
    elif isinstance(module, Hadamard):
        _mask(e, args[0], args[1], y)
    elif isinstance(module, TokenSum):
        binary = _binary(x)
        e["input_binary"] = binary if e["input_binary"] is None else (e["input_binary"] and binary)
        if binary:
            e["synops"] += _nnz(x)
            e["weight_reads"] += _nnz(x)
        else:
            e["adds"] += x.numel() - y.numel()
    elif isinstance(module, TokenMean):
        e["adds"] += x.numel()
    elif isinstance(module, Softmax):
        rows = x.numel() // x.shape[-1]
        e["macs"] += x.numel()
        e["dense_macs"] += x.numel()
        e["adds"] += 2 * x.numel() - rows
    else:  # ReLUTwin
        e["adds"] += x.numel()
