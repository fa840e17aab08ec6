r"""Exact, per-layer operation counts of one run of a spiking network (count first, price later).

:func:`count` runs the model once on a time-major input ``x_seq [T, B, ...]`` with temporary forward
hooks that write only into the returned :class:`OpCounts` (they are removed in ``finally``; nothing is
stored on the user's modules). What is counted, for the whole batch (divide by ``B`` per inference):

* **synaptic operations** (``synops``): a layer fed binary values (every element 0 or 1, checked at run
  time) does one accumulate per nonzero input per real fan-out target. Linear: ``out_features``.
  Conv: the exact per-input fan-out map :math:`F[c, \mathbf{p}] = \sum_{o,\,k} [\text{tap } k \text{ of
  output } o \text{ reads } (c, \mathbf{p})]`, i.e. the gradient of :math:`\sum_o \text{conv}(x; W{=}1)`
  with respect to ``x``, so inputs near a padded border or skipped by the stride count less.
  RecurrentLIF: each spike of the previous step reaches ``N`` recurrent targets (the dense ``w_rec``
  row, diagonal included).
* **dense MACs** (``macs``): a synaptic layer fed non-binary values (analog input, average-pooled
  spikes) computes every product: Linear ``rows * in * out``, Conv ``C_in/groups * prod(k) * C_out *
  prod(out)`` per sample and step. BatchNorm counts one MAC per element (fold it into the previous layer
  for hardware).
* ``dense_macs``: the MACs the layer would do run densely at every step (what a GPU does with spike
  tensors); divided by ``T`` it is the standard ANN MAC count of the layer.
* ``adds``: pooling compares (max) or adds plus one division (average) per output window, with the
  exact number of real inputs in each window (padding and ``ceil_mode`` edges included).
* **neurons**: ``neuron_updates`` (one per neuron per step), ``active_updates`` (neurons whose input
  current that step is nonzero), ``spikes`` (nonzero outputs of spiking neurons).
* **memory** (element counts; bytes = elements * ``bytes_per_element``): one weight read per synaptic
  op or MAC (no on-chip reuse), and the neuron's full state read and written at every update.
* **delays**: a :class:`~spikeforge.synapses.DelayedLinear` with integer delays (``layer.rounded()``)
  counts as the ``nn.Linear`` of its shape, each spike when it arrives, plus its delay line
  (``delay_buffer`` values per sample; its reads and writes in ``state_reads``/``state_writes``); see
  :mod:`spikeforge.energy._delays`. Interpolated (training) delays are refused.
* **SRM** (:class:`~spikeforge.synapses.SRM`) is a spiking neuron layer: one update per neuron per step
  reading and writing its 4 state values (the PSP and refractory kernels are exact 2-variable
  recurrences applied to the neuron's summed input current, so the filter costs per neuron, not per
  synapse; the synaptic work is the preceding Linear's).

Known module types: Linear, DelayedLinear (integer delays), Conv1d/2d/3d, Avg/Max(Adaptive)Pool1d/2d(/3d),
BatchNorm1d/2d/3d, Flatten, Unflatten, Identity, Dropout (identity in eval mode) and every :class:`~spikeforge.neurons.Neuron`.
The spiking-transformer modules (:mod:`spikeforge.transformer`: products between activations, token sums
and means, the twin's softmax and ReLU) are counted by :mod:`spikeforge.energy._attention` (see there).
An unknown module that owns parameters raises ``TypeError`` naming it; an unknown parameter-free leaf
(e.g. ``nn.ReLU``) is listed in ``OpCounts.uncounted`` and flagged by the report, never silently zero.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import cast

import torch
from torch import Tensor
from torch import nn

from spikeforge.energy._attention import count_attention
from spikeforge.energy._attention import is_attention_module
from spikeforge.energy._delays import delayed_counts
from spikeforge.energy._delays import integer_delays
from spikeforge.energy._geometry import POOL_DIMS as _POOL_DIMS
from spikeforge.energy._geometry import conv_fanout
from spikeforge.energy._geometry import pool_adds
from spikeforge.energy._opcounts import INT_FIELDS as _INT_FIELDS
from spikeforge.energy._opcounts import LayerCounts
from spikeforge.energy._opcounts import OpCounts
from spikeforge.layers import SNNSequential
from spikeforge.neurons import Neuron
from spikeforge.synapses import DelayedLinear

__all__ = ["LayerCounts", "OpCounts", "count", "conv_fanout", "SUPPORTED_MODULES"]

_SYNAPTIC: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORM: tuple[type[nn.Module], ...] = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_DROPOUT: tuple[type[nn.Module], ...] = (nn.Dropout, nn.Dropout1d, nn.Dropout2d)
_PASS: tuple[type[nn.Module], ...] = (nn.Flatten, nn.Unflatten, nn.Identity, *_DROPOUT)
SUPPORTED_MODULES: tuple[str, ...] = tuple(c.__name__ for c in (*_SYNAPTIC, *_POOL_DIMS, *_NORM, *_PASS)) + (
    "DelayedLinear (integer delays)",
    "spikeforge Neuron (any registered neuron, SRM)",
    "spikeforge.transformer products (SpikeMatmul, Hadamard, TokenSum, TokenMean, Softmax, ReLUTwin)",
)


def _is_binary(x: Tensor) -> bool:
    return bool(((x == 0) | (x == 1)).all())


def _nnz(x: Tensor) -> int:
    return int(torch.count_nonzero(x))


def _recurrent(module: nn.Module) -> bool:
    """A neuron whose step input adds ``z[t-1] @ w_rec^T`` (declared by ``capabilities.recurrent``)."""
    return isinstance(module, Neuron) and module.capabilities.recurrent


def network_of(model: nn.Module) -> nn.Module:
    """What runs on an encoded ``x_seq``: a classifier's :class:`~spikeforge.layers.SNNSequential` at
    ``.network`` (e.g. :class:`spikeforge.training.models.SNNClassifier`), else ``model`` itself."""
    net = getattr(model, "network", None)
    return net if isinstance(net, SNNSequential) else model


def _state_elements(module: Neuron, x_t: Tensor) -> int:
    def flat(s: Any) -> Iterator[Tensor]:
        if isinstance(s, Tensor):
            yield s
        elif isinstance(s, (tuple, list)):
            for item in s:
                yield from flat(item)

    return sum(t.numel() for t in flat(module.init_state(x_t)))


def _tensor_attr(module: nn.Module, name: str) -> Tensor:
    """``module.<name>`` as a tensor: a Linear/Conv ``weight``, a recurrent neuron's ``w_rec``."""
    t = getattr(module, name)
    assert isinstance(t, Tensor), f"{type(module).__name__}.{name} is not a tensor"
    return t


@dataclass
class _Session:
    """Mutable accumulator owned by one :func:`count` call (never attached to a module)."""

    acc: dict[str, dict[str, Any]] = field(default_factory=dict)
    fanout_cache: dict[tuple[int, tuple[int, ...]], Tensor] = field(default_factory=dict)

    def entry(self, name: str, kind: str, module: nn.Module) -> dict[str, Any]:
        if name not in self.acc:
            weights = int(_tensor_attr(module, "weight").numel()) if kind in ("linear", "conv") else 0
            if _recurrent(module):
                weights = int(_tensor_attr(module, "w_rec").numel())
            self.acc[name] = {
                "kind": kind,
                "module_type": type(module).__name__,
                "weights": weights,
                "spiking": bool(getattr(module, "spiking", False)) and kind == "neuron",
                "input_binary": None,
                "delay_buffer": 0,
                **{k: 0 for k in _INT_FIELDS},
            }
        e = self.acc[name]
        e["calls"] += 1
        return e

    # ---- per-kind counting -------------------------------------------------------------------
    def synaptic(self, name: str, module: nn.Module, x: Tensor, y: Tensor) -> None:
        kind = "linear" if isinstance(module, nn.Linear) else "conv"
        e = self.entry(name, kind, module)
        binary = _is_binary(x)
        e["input_binary"] = binary if e["input_binary"] is None else (e["input_binary"] and binary)
        if isinstance(module, nn.Linear):
            n_in, n_out = module.in_features, module.out_features
            dense = (x.numel() // n_in) * n_in * n_out
            synops = _nnz(x) * n_out if binary else 0
        else:
            assert isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d))  # _classify routes only these here
            nd = module.weight.dim() - 2
            if x.dim() == nd + 1:  # unbatched [C, *spatial]
                x, y = x.unsqueeze(0), y.unsqueeze(0)
            k = 1
            for size in module.weight.shape[2:]:
                k *= int(size)
            per_sample = (module.in_channels // module.groups) * k * module.out_channels * y[0, 0].numel()
            dense = x.shape[0] * per_sample
            synops = 0
            if binary:
                key = (id(module), tuple(x.shape[1:]))
                if key not in self.fanout_cache:
                    self.fanout_cache[key] = conv_fanout(module, tuple(x.shape[1:]))
                active = (x != 0).sum(0).to(torch.float64)  # [C_in, *spatial] spike counts
                synops = int((active * self.fanout_cache[key].to(active.device)).sum().round())
        e["dense_macs"] += dense
        e["synops"] += synops
        e["macs"] += 0 if binary else dense
        e["weight_reads"] += synops if binary else dense

    def delayed(self, name: str, module: DelayedLinear, x: Tensor) -> None:
        e = self.entry(name, "linear", module)
        binary = _is_binary(x)
        e["input_binary"] = binary if e["input_binary"] is None else (e["input_binary"] and binary)
        for key, value in delayed_counts(module, name, x, binary).items():
            e[key] = value if key == "delay_buffer" else e[key] + value

    def pool(self, name: str, module: nn.Module, x: Tensor, y: Tensor) -> None:
        e = self.entry(name, "pool", module)
        e["adds"] += pool_adds(module, x, y)

    def norm(self, name: str, module: nn.Module, x: Tensor) -> None:
        e = self.entry(name, "batchnorm", module)
        e["macs"] += x.numel()
        e["dense_macs"] += x.numel()
        e["weight_reads"] += x.numel()  # one (scale, shift) read per element, as one weight per MAC

    def neuron(self, name: str, module: Neuron, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        e = self.entry(name, "neuron", module)
        x = args[0]
        y = out[0] if isinstance(out, tuple) else out
        state = args[1] if len(args) > 1 else kwargs.get("state")
        steps = x.shape[0]
        state_elems = _state_elements(module, x[0]) * steps
        active = x != 0
        if _recurrent(module):
            z0 = state.z if state is not None else torch.zeros_like(x[0])
            z_prev = torch.cat([z0.unsqueeze(0), y[:-1]])  # [T, B, N] spikes feeding the recurrence
            w_rec = _tensor_attr(module, "w_rec")
            n = int(w_rec.shape[0])  # w_rec [N, N]: each spike reaches N targets
            rec = _nnz(z_prev) * n
            e["synops"] += rec
            e["dense_macs"] += z_prev.numel() * n
            e["weight_reads"] += rec
            active = active | ((z_prev @ w_rec.detach().to(z_prev.dtype).t()) != 0)
        e["neuron_updates"] += x.numel()
        e["active_updates"] += _nnz(active)
        e["spikes"] += _nnz(y) if module.spiking else 0
        e["state_reads"] += state_elems
        e["state_writes"] += state_elems

    def passthrough(self, name: str, module: nn.Module) -> None:
        self.entry(name, "passthrough", module)


def _classify(name: str, module: nn.Module) -> str:
    if isinstance(module, Neuron):
        return "neuron"
    if isinstance(module, _SYNAPTIC):
        return "synaptic"
    if isinstance(module, DelayedLinear):
        integer_delays(module, name)  # refuses interpolated delays before anything runs
        return "delayed"
    if type(module) in _POOL_DIMS:
        return "pool"
    if is_attention_module(module):  # spiking-transformer products and reductions (energy/_attention.py)
        return "attention"
    if isinstance(module, _NORM):
        return "norm"
    if isinstance(module, _PASS):
        return "passthrough"
    if any(True for _ in module.parameters(recurse=False)):
        raise TypeError(
            f"count() does not know module {name or '<root>'!r} of type {type(module).__name__}, which has "
            f"parameters, so its operations cannot be counted (never silently zero). Supported: "
            f"{', '.join(SUPPORTED_MODULES)}; rewrite it with these layers or count it by hand"
        )
    return "container" if any(True for _ in module.children()) else "unknown"


def _run_counted(model: nn.Module, x_seq: Tensor) -> tuple[Any, OpCounts]:
    """Run ``model`` on ``x_seq`` under counting hooks; returns ``(model output, counts)``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(x_seq, Tensor):
        raise TypeError(f"x_seq must be a torch.Tensor [T, B, ...], got {type(x_seq).__name__}")
    if not x_seq.is_floating_point():
        raise TypeError(f"x_seq must be a floating-point tensor, got {x_seq.dtype}; convert with x_seq.float()")
    if x_seq.dim() < 2 or x_seq.shape[0] == 0 or x_seq.shape[1] == 0:
        raise ValueError(
            f"x_seq must be time-major [T, B, ...] with T, B >= 1, got shape {tuple(x_seq.shape)}; "
            "encode a batch first (e.g. model.encode(x)) or add dims with unsqueeze"
        )
    if not bool(torch.isfinite(x_seq).all()):
        raise ValueError("x_seq contains NaN or inf; clean it (e.g. torch.nan_to_num) before counting")
    training = [n or "<root>" for n, m in model.named_modules() if m.training and isinstance(m, (*_NORM, *_DROPOUT))]
    if training:
        raise ValueError(
            f"modules {training} are in training mode (BatchNorm would update its running statistics, "
            "Dropout would rescale spikes); call model.eval() before count()"
        )
    session = _Session()
    uncounted: list[str] = []
    handles: list[Any] = []
    modules: list[tuple[str, nn.Module, str]] = []
    neuron_prefixes: list[str] = []
    for n, m in model.named_modules():
        if any(n.startswith(p) for p in neuron_prefixes):
            continue  # internals of a neuron are counted with the neuron
        kind = _classify(n, m)  # raises on an unknown module with parameters, before any hook
        if kind == "neuron":
            neuron_prefixes.append(n + ".")
        modules.append((n, m, kind))

    def make(name: str, module: nn.Module, kind: str) -> Callable[..., None]:
        def hook(mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
            if kind == "neuron":
                session.neuron(name, cast(Neuron, module), args, kwargs, out)  # _classify: "neuron" is a Neuron
            elif kind == "synaptic":
                session.synaptic(name, module, args[0], out)
            elif kind == "delayed":
                session.delayed(name, cast(DelayedLinear, module), args[0])
            elif kind == "pool":
                session.pool(name, module, args[0], out[0] if isinstance(out, tuple) else out)
            elif kind == "norm":
                session.norm(name, module, args[0])
            elif kind == "passthrough":
                session.passthrough(name, module)
            elif kind == "attention":
                count_attention(session, name, module, args, out)
            elif name not in uncounted:
                uncounted.append(name)

        return hook

    try:
        for name, module, kind in modules:
            if kind == "container":
                continue
            if kind in ("neuron", "synaptic", "delayed", "pool", "norm", "passthrough", "attention", "unknown"):
                handles.append(module.register_forward_hook(make(name, module, kind), with_kwargs=True))
        with torch.no_grad():
            output = network_of(model)(x_seq)
    finally:
        for h in handles:
            h.remove()
    if any(kind == "neuron" for _, _, kind in modules) and not any(e["kind"] == "neuron" for e in session.acc.values()):
        raise ValueError(
            "the model has neuron layers but none ran through forward(); count() sees forward "
            "calls only (Neuron.step is not hooked): run the neurons with module(x_seq)"
        )
    fields: dict[str, dict[str, Any]] = {
        name: {k: (int(v) if k in _INT_FIELDS else v) for k, v in e.items()} for name, e in session.acc.items()
    }
    layers = tuple(LayerCounts(name=name, **f) for name, f in fields.items())
    counts = OpCounts(
        layers=layers,
        time_steps=int(x_seq.shape[0]),
        batch_size=int(x_seq.shape[1]),
        bytes_per_element=int(x_seq.element_size()),
        input_spikes=_nnz(x_seq) if _is_binary(x_seq) else None,
        uncounted=tuple(uncounted),
    )
    return output, counts


def count(model: nn.Module, x_seq: Tensor) -> OpCounts:
    """Count the operations of one run of ``model`` on ``x_seq`` (see the module docstring).

    Args:
        model: an :class:`~spikeforge.layers.SNNSequential`, a classifier holding one at ``.network``
            (e.g. :class:`~spikeforge.models.SNNClassifier`; the network runs on the already encoded
            ``x_seq``), or any ``nn.Module`` built from the supported layers that maps ``x_seq`` to an
            output. Put it in eval mode first.
        x_seq: time-major input ``[T, B, ...]`` (spikes or analog values), floating point, finite.
    Returns:
        :class:`OpCounts` over the whole batch; ``counts.per_inference(name)`` divides by ``B``.
    Raises:
        TypeError: a module with parameters of an unknown type (named in the message), or bad input type.
        ValueError: bad input shape or values.
    """
    return _run_counted(model, x_seq)[1]
