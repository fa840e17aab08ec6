"""Containers that thread neuron states through time-major ``[T, B, ...]`` sequences.

* :class:`SeqToBatch` runs a stateless layer (Linear, Conv2d, BatchNorm, pooling, dropout, Flatten)
  once on ``[T*B, ...]`` instead of once per time step.
* :class:`SNNSequential` chains stateless layers and :class:`~spikeforge.neurons.Neuron` layers;
  ``forward(x_seq, states=None) -> (out_seq, states)`` with one state per neuron layer.
* :func:`record` returns every neuron layer's output sequence (spikes, or membrane for readouts)
  without writing anything onto the user's modules.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor
from torch import nn

from spikeforge._core.checks import check_seq
from spikeforge.backends.gemm import linear as fast_linear
from spikeforge.neurons.base import Neuron
from spikeforge.neurons.base import Stateful

__all__ = ["SeqToBatch", "SequenceLayer", "SNNSequential", "record", "recording", "Recording"]


def _has_hooks(layer: nn.Module) -> bool:
    from torch.nn.modules import module as _m

    return bool(
        layer._forward_hooks
        or layer._forward_pre_hooks
        or layer._backward_hooks
        or _m._global_forward_hooks
        or _m._global_forward_pre_hooks
        or _m._global_backward_hooks
    )


def _tiling_pool(layer: nn.Module, x: Tensor) -> int:
    """``k`` if ``layer`` is a plain ``AvgPool2d`` whose ``k x k`` windows tile ``x [N, C, H, W]`` exactly
    (stride = kernel, no padding, H and W multiples of k), else 0."""
    if type(layer) is not nn.AvgPool2d or x.dim() != 4 or _has_hooks(layer):
        return 0
    k, s = layer.kernel_size, layer.stride
    if not isinstance(k, int) or s not in (k, (k, k)) or layer.padding not in (0, (0, 0)):
        return 0
    if layer.ceil_mode or layer.divisor_override is not None or x.shape[2] % k or x.shape[3] % k:
        return 0
    return k


def _tiling_max_pool(layer: nn.Module, x: Tensor) -> int:
    """``k`` if ``layer`` is a plain ``MaxPool2d`` whose ``k x k`` windows tile ``x [N, C, H, W]`` exactly, else 0."""
    if type(layer) is not nn.MaxPool2d or x.dim() != 4 or _has_hooks(layer) or layer.return_indices:
        return 0
    k, s = layer.kernel_size, layer.stride
    if not isinstance(k, int) or s not in (k, (k, k)) or layer.padding not in (0, (0, 0)):
        return 0
    if layer.dilation not in (1, (1, 1)) or layer.ceil_mode or x.shape[2] % k or x.shape[3] % k:
        return 0
    return k


class _TilingAvgPool(torch.autograd.Function):
    """Average pooling over non-overlapping ``k x k`` tiles that saves nothing for the backward.

    ``F.avg_pool2d`` keeps its whole input alive for the backward, although the gradient of a tiling
    average needs only the shape: ``dL/dx = dL/dy / k^2`` broadcast over each tile. In a folded SNN the
    input is a ``[T*B, C, H, W]`` spike tensor that the graph then need not keep (the conv net's overall
    peak in ``benchmarks/peers.py`` is elsewhere, in the first LIF layer's backward, and did not change).
    The backward divides exactly as ``avg_pool2d``'s does (one division by ``k * k`` per output), so
    gradients are bit-identical.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, k: int) -> Tensor:
        ctx.k, ctx.shape = k, x.shape
        return torch.nn.functional.avg_pool2d(x, k, k)

    @staticmethod
    def backward(ctx: Any, gy: Tensor) -> tuple[Tensor, None]:
        k = ctx.k
        n, c, h, w = ctx.shape
        g = gy / (k * k)
        return g[:, :, :, None, :, None].expand(n, c, h // k, k, w // k, k).reshape(n, c, h, w), None


def _fold(x_seq: Tensor, layer: nn.Module) -> Tensor:
    t, b = x_seq.shape[:2]
    x = x_seq.reshape(t * b, *x_seq.shape[2:])  # [T*B, ...]
    if type(layer) is nn.Linear and x.dim() == 2 and not _has_hooks(layer):
        y = fast_linear(x, layer.weight, layer.bias)  # the fastest GEMM (spikeforge.backends.gemm)
    elif (k := _tiling_pool(layer, x)) and x.requires_grad and not torch.compiler.is_compiling():
        y = _TilingAvgPool.apply(x, k)  # saves nothing for the backward
    else:
        y = layer(x)
    return y.reshape(t, b, *y.shape[1:])  # [T, B, ...]


#: Layers that act on each step alone, deterministically: run on one step, they give what they give on every
#: step of a time-constant input. Exact types (a subclass may do anything in its forward).
_PER_STEP = (
    nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.Flatten,
    nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.Identity,
)  # fmt: skip


def steps_equal(x_seq: Tensor) -> bool:
    """True if every step of ``x_seq [T, ...]`` (``T >= 2``) equals the first, bit for bit: the input of the
    ``"constant"`` code (an image presented at every step). One pass of comparisons over ``x_seq``."""
    return x_seq.dim() >= 2 and x_seq.shape[0] >= 2 and torch.equal(x_seq[1:], x_seq[:1].expand_as(x_seq[1:]))


def _static_prefix(layers: list[nn.Module], x_seq: Tensor) -> int:
    """How many leading ``layers`` can run once on ``x_seq[:1]`` and be broadcast over time: the leading
    :data:`_PER_STEP` layers (no hooks, which would see one step instead of ``T``), if the steps of ``x_seq`` are
    all equal and ``x_seq`` needs no gradient (its steps' gradients differ; the shared step would receive their
    sum). BatchNorm in training mode takes the same batch statistics from one copy as from ``T`` equal
    copies (up to float rounding); only the Bessel factor of its running variance changes, ``n / (n - 1)``
    with ``n`` the batch's values per channel instead of ``T n``: a relative difference below ``1 / n``."""
    if torch.compiler.is_compiling():  # a data-dependent branch: keep the traced graph whole
        return 0
    n = 0
    for layer in layers:
        if type(layer) not in _PER_STEP or _has_hooks(layer):
            break
        n += 1
    return n if n and not x_seq.requires_grad and steps_equal(x_seq) else 0


def _neuron_then_pool(neuron: Neuron, nxt: nn.Module | None, x_seq: Tensor, state: Any) -> tuple[Tensor, Any] | None:
    """``neuron`` and the tiling ``AvgPool2d`` or ``MaxPool2d`` ``nxt`` after it run as one fused pass where the neuron's kernel
    offers it (``run_pooled``: the spikes are never stored, the pool's full-size gradient never built); None
    otherwise. Not while hooks could observe the neuron's output (e.g. :func:`record`) or torch.compile traces."""
    run_pooled = getattr(neuron, "run_pooled", None)
    if nxt is None or run_pooled is None or x_seq.dim() != 5 or _has_hooks(neuron) or torch.compiler.is_compiling():
        return None
    k, is_max = _tiling_pool(nxt, x_seq[0]), False
    if not k:
        k, is_max = _tiling_max_pool(nxt, x_seq[0]), True
    if not k:
        return None
    result: tuple[Tensor, Any] | None = run_pooled(x_seq, state, k, is_max)
    return result


class SeqToBatch(nn.Module):
    """Apply a stateless ``layer`` to ``[T, B, ...]`` by folding time into the batch: one call, not T."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        if isinstance(layer, (Neuron, Stateful)):
            raise TypeError("SeqToBatch is for stateless layers; use the neuron directly")
        self.layer = layer

    def forward(self, x_seq: Tensor) -> Tensor:
        if x_seq.dim() < 2:
            raise ValueError(f"SeqToBatch expects [T, B, ...], got shape {tuple(x_seq.shape)}")
        return _fold(x_seq, self.layer)


class SequenceLayer(nn.Module):
    """Base of a stateless layer that needs the whole sequence ``[T, B, ...]`` (e.g. synaptic delays, which mix
    time steps): :class:`SNNSequential` passes it the sequence as is instead of folding time into the batch.

    For streaming, a subclass implements ``step(x_t, state) -> (y_t, state)`` (``state=None`` starts from
    silence) carrying what it needs of the past, e.g. a delay line; :meth:`SNNSequential.step` threads it."""

    def step(self, x_t: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        raise TypeError(
            f"{type(self).__name__} mixes time steps and has no streaming step(x_t, state); run the whole "
            "sequence with forward(x_seq)"
        )


class SNNSequential(nn.Module):
    """Sequential SNN over ``[T, B, ...]``.

    Neuron layers receive and return their state explicitly; every other layer is stateless and runs
    once on ``[T*B, ...]``. ``states`` is a list with one entry per neuron layer (in order), or None.
    A fused-kernel neuron layer followed by an ``AvgPool2d``/``MaxPool2d`` whose windows tile the image runs
    with it as one pass (:mod:`spikeforge.backends.lif_pool`: same outputs and gradients, the full-size spikes
    and their gradient never stored), unless hooks watch the neuron (e.g. :func:`record`). When every step of
    ``x_seq`` is the same (the ``"constant"`` code), the leading per-step layers (Linear, Conv, BatchNorm,
    pooling, Flatten; no Dropout) run once on one step, broadcast over time: ``T`` times fewer operations for
    the first Linear or Conv, the same outputs and gradients up to float rounding.

    Example::

        net = SNNSequential(nn.Linear(4, 64), LIF(), nn.Linear(64, 3), LI())
        out, states = net(x_seq)          # x_seq [T, B, 4] -> out [T, B, 3]
    """

    def __init__(self, *layers: nn.Module) -> None:
        super().__init__()
        if not layers:
            raise ValueError("SNNSequential needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, nn.Module):
                raise TypeError(f"layer {i} is {type(layer).__name__}, not an nn.Module")
            if isinstance(layer, Stateful):
                raise TypeError(f"layer {i}: put the bare Neuron in SNNSequential; it threads states itself")
        self.layers = nn.ModuleList(layers)

    @property
    def neuron_layers(self) -> list[Neuron]:
        return [m for m in self.layers if isinstance(m, Neuron)]

    def forward(self, x_seq: Tensor, states: list[Any] | None = None) -> tuple[Tensor, list[Any]]:
        if not isinstance(self.layers[0], Neuron):  # a neuron layer checks its own input (once, in its forward)
            check_seq(x_seq, "x_seq", finite=False)  # NaN/inf: each neuron layer checks what it receives
        n_neurons = sum(isinstance(m, Neuron) for m in self.layers)
        if states is None:
            states = [None] * n_neurons
        elif len(states) != n_neurons:
            raise ValueError(
                f"states has {len(states)} entries but the network has {n_neurons} neuron layers; "
                "pass None to start fresh"
            )
        new_states: list[Any] = []
        h = x_seq
        layers = list(self.layers)
        if once := _static_prefix(layers, x_seq):  # a time-constant input: its per-step layers run on one step
            h = x_seq[:1]
            for layer in layers[:once]:
                h = _fold(h, layer)
            h = h.expand(x_seq.shape[0], *h.shape[1:]).contiguous()
            layers = layers[once:]
        skip = False
        for layer, nxt in zip(layers, [*layers[1:], None]):
            if skip:  # the pool that the neuron layer before it ran fused
                skip = False
                continue
            if isinstance(layer, Neuron):
                fused = _neuron_then_pool(layer, nxt, h, states[len(new_states)])
                h, s = fused if fused is not None else layer(h, states[len(new_states)])
                skip = fused is not None
                new_states.append(s)
            elif isinstance(layer, (SeqToBatch, SequenceLayer)):
                h = layer(h)
            else:
                h = _fold(h, layer)
        return h, new_states

    def step(self, x_t: Tensor, states: list[Any] | None = None) -> tuple[Tensor, list[Any]]:
        """One time step ``[B, ...]`` through the whole network (streaming).

        ``states`` holds one entry per neuron layer, and, if the network has :class:`SequenceLayer` layers
        (e.g. a :class:`~spikeforge.synapses.DelayedLinear`, whose entry is its ``DelayLine``), one per such
        layer too, all in layer order; None starts from silence. Stepping through a sequence gives the
        outputs of :meth:`forward` on it."""
        if not any(isinstance(m, SequenceLayer) for m in self.layers):
            out, seq_states = self.forward(x_t.unsqueeze(0), states)
            return out[0], seq_states
        stateful = [m for m in self.layers if isinstance(m, (Neuron, SequenceLayer))]
        if states is None:
            states = [None] * len(stateful)
        elif len(states) != len(stateful):
            raise ValueError(
                f"states has {len(states)} entries but step() threads {len(stateful)} (one per neuron layer and "
                "per SequenceLayer, in order); pass None to start fresh"
            )
        new_states: list[Any] = []
        h = x_t
        for layer in self.layers:
            if isinstance(layer, Neuron):
                h_seq, s = layer(h.unsqueeze(0), states[len(new_states)])
                h = h_seq[0]
            elif isinstance(layer, SequenceLayer):
                h, s = layer.step(h, states[len(new_states)])
            else:
                h = (layer(h.unsqueeze(0)) if isinstance(layer, SeqToBatch) else _fold(h.unsqueeze(0), layer))[0]
                continue
            new_states.append(s)
        return h, new_states


class Recording(dict):
    """Mapping from a neuron layer's qualified name to its output sequence ``[T, B, ...]``."""


@contextmanager
def recording(model: nn.Module, *, inputs: bool = False, detach: bool = True) -> Iterator[Recording]:
    """While the ``with`` block runs, record every :class:`Neuron` submodule's output sequence (or, with
    ``inputs=True``, the input sequence it receives), by qualified name; a layer called several times (e.g.
    streaming) has its sequences concatenated over time. The hooks are removed when the block ends.

    ::

        with recording(net) as outs, recording(net, inputs=True) as ins:
            net(x_seq)
    """
    rec = Recording()

    def keep(name: str, value: Tensor) -> None:
        value = value.detach() if detach else value
        rec[name] = torch.cat([rec[name], value]) if name in rec else value

    def make(name: str) -> Any:
        if inputs:
            return lambda module, args: keep(name, args[0])
        return lambda module, args, output: keep(name, output[0] if isinstance(output, tuple) else output)

    handles = []
    try:
        for name, m in model.named_modules():
            if isinstance(m, Neuron):
                hook = make(name)
                handles.append(m.register_forward_pre_hook(hook) if inputs else m.register_forward_hook(hook))
        yield rec
    finally:
        for h in handles:
            h.remove()


def record(model: nn.Module, *args: Any, detach: bool = True, **kwargs: Any) -> tuple[Any, Recording]:
    """Run ``model(*args, **kwargs)`` and return ``(output, recording)``.

    ``recording[name]`` is the output sequence of every :class:`Neuron` submodule (by qualified name):
    spikes ``[T, B, ...]`` for spiking layers, the membrane for readouts. Hooks live only during the
    call; nothing is stored on the modules.
    """
    with recording(model, detach=detach) as rec:
        out = model(*args, **kwargs)
    return out, rec
