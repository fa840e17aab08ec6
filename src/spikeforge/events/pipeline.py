r"""Event-driven batch-1 inference of a whole convolutional SNN classifier: :class:`StreamingPipeline`.

:class:`~spikeforge.events.StreamingEngine` runs ``(Linear | Conv2d) -> spiking neuron`` stacks. A trained
``--model conv`` network (:func:`spikeforge.training.models.build_conv`) also has BatchNorm, max pooling, Dropout
and a non-spiking leaky-integrator readout. The pipeline runs it feed-forward, one stage after the other over all
``T`` steps of a sample, every stage event-driven:

* **engine segments**: the maximal runs of ``[Flatten] (Linear | Conv2d | DelayedLinear) [Flatten] neuron ...``,
  each a :class:`StreamingEngine`. A ``BatchNorm1d/2d`` right after a ``Linear``/``Conv2d`` is folded into it
  (``W' = s W``, ``b' = s (b - mu) + beta``, ``s = gamma / sqrt(var + eps)``, :func:`spikeforge._core.bn_fold.fold_bn`,
  inference semantics: the running statistics); ``Dropout`` is the identity at inference and is dropped;
* **max pooling** (``MaxPool2d``, stride = kernel) between segments, in the event domain: a pooled unit spikes at
  ``t`` iff an input of its window spiked at ``t`` (exact for 0/1 spikes; anything else is refused), see
  :mod:`spikeforge.events._pool`;
* **the readout**: a final ``Linear -> non-spiking neuron`` (the ``LI`` of the membrane decodings). Its input current
  is built event-driven (each input spike adds one weight row) and the readout layer itself integrates it, so the
  output is the membrane trace ``[T, 1, C]`` the dense model returns. A spiking readout (``spike_count``) is simply
  the last engine segment.

Stages are feed-forward and a spike crosses every layer in the step it is emitted (as in the dense
:class:`~spikeforge.layers.SNNSequential`), so running stage by stage over the whole sample gives the same spikes
as stepping all layers together; the engine's spikes equal the dense model's except where a membrane lies within
rounding of threshold (the folded BatchNorm rounds differently from conv-then-BatchNorm). A pipeline streams one
whole sample per :meth:`StreamingPipeline.run` (no state is carried between calls).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple
from typing import cast

import numpy as np
import torch
from torch import Tensor
from torch import nn

from spikeforge._core.bn_fold import fold_bn
from spikeforge.events._checks import check_model_and_shape
from spikeforge.events._pool import Csr
from spikeforge.events._pool import dense_to_csr
from spikeforge.events._pool import pool_csr
from spikeforge.events._pool import pool_params
from spikeforge.events._pool import pool_spikes
from spikeforge.events._pool import readout_current
from spikeforge.events._pool import spikes_to_csr
from spikeforge.events.engine import CONV_WHOLE
from spikeforge.events.engine import StreamingEngine
from spikeforge.layers import SeqToBatch
from spikeforge.layers import SNNSequential
from spikeforge.neurons import LI
from spikeforge.neurons import Neuron
from spikeforge.neurons._family import leak
from spikeforge.neurons.li import LIParams
from spikeforge.neurons.li import li_init
from spikeforge.synapses import DelayedLinear

__all__ = ["StreamingPipeline", "PipelineResult", "StageOps", "PIPELINE_SUPPORTED"]

PIPELINE_SUPPORTED = (
    "the streaming pipeline runs Linear, Conv2d, DelayedLinear, BatchNorm1d/2d right after a Linear/Conv2d "
    "(folded), spiking LIF-family neurons, MaxPool2d (stride = kernel), Flatten, Dropout/Identity (dropped) and a "
    "final Linear -> non-spiking readout (LI); evaluate other models with --engine dense"
)
_SYNAPSES = (nn.Linear, nn.Conv2d, DelayedLinear)
_SKIPPED = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.Identity)


@dataclass(frozen=True)
class StageOps:
    """What one stage executed for one sample: ``kind`` is ``"engine"``, ``"pool"`` or ``"readout"``;
    ``layers`` the positions in the model it covers. ``synops``: synaptic accumulations (feed-forward and
    recurrent); ``neuron_updates``: neuron evaluations; ``spikes``: spikes emitted by its spiking layers (a pool
    emits none of its own: ``events`` counts the pooled output events)."""

    kind: str
    layers: str
    synops: int
    neuron_updates: int
    spikes: int
    events: int


@dataclass(frozen=True)
class PipelineResult:
    """``out [T, 1, C]``: the readout membrane (LI readout) or the last layer's spikes (spiking readout)."""

    out: Tensor
    stages: tuple[StageOps, ...]

    def total(self, name: str) -> int:
        if name not in ("synops", "neuron_updates", "spikes"):
            raise ValueError(f"unknown count {name!r}; valid: synops, neuron_updates, spikes")
        return sum(int(getattr(s, name)) for s in self.stages)


class _Engine(NamedTuple):
    engine: StreamingEngine
    layers: str


class _Pool(NamedTuple):
    kernel: tuple[int, int]
    in_shape: tuple[int, ...]
    layers: str


class _Readout(NamedTuple):
    wt: np.ndarray  # float64 [n_in, C] (W^T)
    bias: np.ndarray  # float64 [C]
    neuron: Neuron
    dtype: torch.dtype
    layers: str


_Stage = _Engine | _Pool | _Readout


def _span(positions: list[tuple[int, int]]) -> str:
    first, last = positions[0][0], positions[-1][1]
    return f"{first}" if first == last else f"{first}-{last}"


def _renumber(err: Exception, positions: list[tuple[int, int]]) -> str:
    """An engine message about ``layer K`` of a segment, with ``K`` replaced by the layer's position in the model."""
    return re.sub(r"\blayer (\d+)", lambda m: f"layer {positions[int(m.group(1))][0]}", str(err), count=1)


class _Planner:
    """Walks the model's layers and cuts them into stages, tracking the shape of one sample."""

    def __init__(self, input_shape: tuple[int, ...], use_numba: bool | None, conv_whole: float | None) -> None:
        self.shape, self.use_numba, self.conv_whole = input_shape, use_numba, conv_whole
        self.stages: list[_Stage] = []
        self.open: list[nn.Module] = []  # the engine segment being collected
        self.pos: list[tuple[int, int]] = []  # (first, last) model positions of each collected module

    def close(self) -> None:
        """Turn the collected modules into an engine stage (Flatten alone only reshapes: flat indices agree)."""
        mods, pos = self.open, self.pos
        self.open, self.pos = [], []
        if not mods:
            return
        if not any(isinstance(m, Neuron) for m in mods):
            if all(isinstance(m, nn.Flatten) for m in mods):
                self.shape = (int(np.prod(self.shape)),)
                return
            raise ValueError(
                f"layers {_span(pos)}: a synaptic layer must be followed by a spiking neuron layer before "
                f"pooling or the end of the network; {PIPELINE_SUPPORTED}"
            )
        try:
            engine = StreamingEngine(
                SNNSequential(*mods), self.shape, use_numba=self.use_numba, conv_whole=self.conv_whole
            )
        except (TypeError, ValueError) as err:
            raise type(err)(_renumber(err, pos)) from None
        self.stages.append(_Engine(engine, _span(pos)))
        self.shape = engine.output_shape

    def add(self, pos: int, m: nn.Module, last: bool) -> None:
        if isinstance(m, _SKIPPED):
            return
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if not self.open or not isinstance(self.open[-1], (nn.Linear, nn.Conv2d)):
                raise ValueError(
                    f"layer {pos}: a BatchNorm folds only into the Linear/Conv2d right before it; {PIPELINE_SUPPORTED}"
                )
            self.open[-1] = fold_bn(self.open[-1], m)
            self.pos[-1] = (self.pos[-1][0], pos)
        elif isinstance(m, nn.MaxPool2d):
            self.close()
            kernel = pool_params(m, pos)
            if len(self.shape) != 3:
                raise ValueError(f"layer {pos}: MaxPool2d needs [C, H, W] inputs, gets shape {self.shape}")
            self.stages.append(_Pool(kernel, self.shape, str(pos)))
            c, h, w = self.shape
            self.shape = (c, h // kernel[0], w // kernel[1])
        elif isinstance(m, Neuron) and not m.capabilities.spiking:
            self._readout(pos, m, last)
        elif isinstance(m, (*_SYNAPSES, nn.Flatten, Neuron)):
            self.open.append(m)
            self.pos.append((pos, pos))
        else:
            raise TypeError(f"layer {pos}: {type(m).__name__} is not supported; {PIPELINE_SUPPORTED}")

    def _readout(self, pos: int, m: Neuron, last: bool) -> None:
        lin = self.open[-1] if self.open else None
        if not last or not isinstance(lin, nn.Linear):  # SparseLinear included: the same weights
            raise ValueError(
                f"layer {pos}: a non-spiking {type(m).__name__} runs only as the readout: the last layer, right "
                f"after an nn.Linear; {PIPELINE_SUPPORTED}"
            )
        self.open.pop()
        lin_pos = self.pos.pop()[0]
        self.close()
        if self.shape != (lin.in_features,):
            raise ValueError(
                f"layer {lin_pos}: the readout Linear expects {lin.in_features} flat inputs, gets shape {self.shape}; "
                "add nn.Flatten()"
            )
        w = lin.weight.detach().to(torch.float64).cpu()
        b = lin.bias.detach().to(torch.float64).cpu() if lin.bias is not None else torch.zeros(lin.out_features)
        wt = w.t().contiguous().numpy()
        self.stages.append(_Readout(wt, b.to(torch.float64).numpy(), m, lin.weight.dtype, f"{lin_pos}-{pos}"))
        self.shape = (lin.out_features,)


def _readout_trace(neuron: Neuron, drive: Tensor) -> Tensor:
    """The readout's membrane trace ``[T, 1, C]`` driven by ``drive``: a plain :class:`~spikeforge.neurons.LI` on the
    CPU runs :func:`~spikeforge.neurons.li.li_step`'s arithmetic in numpy (``integrate``'s operations in its order,
    in the drive's dtype, with the step's ``beta`` and gain computed once: the same IEEE operations, hence the same
    values, tested) without the module's per-call checks, which cost more than the ten-class recurrence itself; any
    other readout runs as the module."""
    with torch.no_grad():
        if type(neuron) is not LI or not drive.is_cpu:
            return neuron(drive)[0]
        p = cast(LIParams, neuron.params(drive))
        beta, gain = leak(p.tau_mem, p.r, p.input_scaling, neuron.dt)
        b, g, vr = (q.detach().cpu().numpy() if isinstance(q, Tensor) else q for q in (beta, gain, p.v_rest))
        v = li_init(drive[0], p).v.detach().cpu().numpy()
        u = drive.numpy()
        trace = np.empty_like(u)
        for t in range(u.shape[0]):
            v = vr + b * (v - vr) + g * u[t]  # integrate(v, u_t, beta, v_rest, gain)
            trace[t] = v
        return torch.from_numpy(trace)


class StreamingPipeline:
    """Event-driven batch-1 inference of an :class:`~spikeforge.layers.SNNSequential` with BatchNorm, max
    pooling, Dropout and an LI readout (see the module docstring). The model's weights are copied once; its
    BatchNorms are read with inference semantics (running statistics).

    Args:
        model: the trained network, mapping ``[T, B, *input_shape] -> [T, B, C]``.
        input_shape: one sample without time and batch, e.g. ``(2, 34, 34)``.
        use_numba: passed to every :class:`StreamingEngine` (default: when installed).
        conv_whole: passed to every :class:`StreamingEngine` (its whole-layer steps of Conv2d layers).
    Raises:
        TypeError / ValueError: a layer or arrangement the pipeline cannot run (the message names it).
    """

    def __init__(
        self,
        model: SNNSequential,
        input_shape: tuple[int, ...],
        *,
        use_numba: bool | None = None,
        conv_whole: float | None = CONV_WHOLE,
    ) -> None:
        check_model_and_shape(model, input_shape, "StreamingPipeline")
        self.input_shape = input_shape
        plan = _Planner(input_shape, use_numba, conv_whole)
        layers = [m.layer if isinstance(m, SeqToBatch) else m for m in model.layers]
        with torch.no_grad():
            for pos, m in enumerate(layers):
                plan.add(pos, m, last=pos == len(layers) - 1)
            plan.close()
        if not plan.stages or isinstance(plan.stages[-1], _Pool):
            raise ValueError(f"the network must end with a spiking neuron layer or a readout; {PIPELINE_SUPPORTED}")
        self._stages: tuple[_Stage, ...] = tuple(plan.stages)
        self.output_shape = plan.shape

    @property
    def kinds(self) -> tuple[str, ...]:
        """The stages in order: ``"engine"``, ``"pool"`` or ``"readout"``."""
        names = {_Engine: "engine", _Pool: "pool", _Readout: "readout"}
        return tuple(names[type(s)] for s in self._stages)

    def run(self, x_seq: Tensor) -> PipelineResult:
        """Run one sample ``x_seq [T, 1, *input_shape]`` (spikes, event counts or analog values; a pool right at
        the input needs 0/1 values) through every stage; returns the output ``[T, 1, *output_shape]``."""
        if not isinstance(x_seq, Tensor) or not x_seq.is_floating_point():
            raise TypeError("x_seq must be a floating-point torch.Tensor [T, 1, *input_shape]")
        if x_seq.dim() < 2 or tuple(x_seq.shape[1:]) != (1, *self.input_shape):
            raise ValueError(
                f"x_seq must be [T, 1, {', '.join(map(str, self.input_shape))}] (batch 1), got {tuple(x_seq.shape)}; "
                "the pipeline streams one sample: run samples one by one"
            )
        n_steps = int(x_seq.shape[0])
        if n_steps < 1:
            raise ValueError("x_seq has no time steps; give at least one step [T >= 1, 1, *input_shape]")
        csr: Csr | None = None  # the next stage's input as events
        spikes: np.ndarray | None = None  # or as the last engine's spikes [T, N]; neither: still the dense x_seq
        out: Tensor | None = None
        ops: list[StageOps] = []
        for stage in self._stages:
            if isinstance(stage, _Engine):
                eng = stage.engine
                # a pool's events are well-formed by construction (int64 offsets and indices in range, values 1): the
                # engine's checked entry point is skipped
                res = eng.run(x_seq) if csr is None else eng._run(csr.ptr, csr.idx, csr.val, None, False)
                counts = res.ops
                out = res.spikes
                spikes, csr = out.numpy().reshape(n_steps, -1), None
                syn = counts.total("synops") + counts.total("recurrent_synops")
                ops.append(
                    StageOps("engine", stage.layers, syn, counts.total("neuron_updates"), counts.total("spikes"), 0)
                )
            elif isinstance(stage, _Pool):
                where = f"layer {stage.layers} (MaxPool2d)"
                if spikes is not None:
                    csr = pool_spikes(spikes, stage.in_shape, stage.kernel, where)
                else:
                    csr = pool_csr(dense_to_csr(x_seq) if csr is None else csr, stage.in_shape, stage.kernel, where)
                spikes = None
                ops.append(StageOps("pool", stage.layers, 0, 0, 0, int(csr.idx.size)))
            else:
                src = csr if csr is not None else spikes_to_csr(spikes) if spikes is not None else dense_to_csr(x_seq)
                cur, synops = readout_current(src, stage.wt, stage.bias)
                drive = torch.from_numpy(cur).to(stage.dtype).reshape(n_steps, 1, -1)
                out = _readout_trace(stage.neuron, drive)
                ops.append(StageOps("readout", stage.layers, synops, cur.size, 0, 0))
        assert out is not None  # the last stage is an engine or the readout (checked at construction)
        return PipelineResult(out, tuple(ops))
