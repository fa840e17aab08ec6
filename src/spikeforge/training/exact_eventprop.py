r"""Training a feed-forward network of current-based LIF neurons with EventProp on latency-coded Yin-Yang
(Wunderlich & Pehle, Sci. Rep. 11:12829, 2021): :func:`fit_eventprop`.

Defaults follow W&P's Yin-Yang setup (constants as in their GeNN re-implementation, github.com/tnowotny/
genn_eventprop): 4 (+1 bias) - 200 - 3 LIF neurons (W&P's hidden width), ``tau_mem = 20``, ``tau_syn = 5`` ms,
``v_th = 1``, Adam with lr ``5e-3`` decayed by ``0.95`` every epoch, batch 32, first-spike loss with ``tau0 = 0.5``
ms, ``tau1 = 6.4`` ms, ``alpha = 3e-3``, 60 epochs; the returned network is the average of the weights at the end
of the last 20 epochs (``average_last``, stochastic weight averaging, Izmailov et al. 2018), since the test
accuracy still moves by ~1 % between late epochs. Measured (``benchmarks/exact_accuracy.py``, published splits,
seeds 0-2, chosen on the validation split): 98.23 % mean test accuracy (97.7, 98.9, 98.1; validation 98.23 %),
~8 min CPU per run on one thread; with 100 hidden neurons (the default until 2026-12-07) 97.67 % test and
97.77 % validation.

Input code (:mod:`spikeforge.exact.encode`): each feature ``x`` in ``[0, 1]`` (Yin-Yang: ``x, y, 1-x, 1-y``)
spikes once at ``t = t_early + x (t_late - t_early)``, plus one bias spike at ``bias_time``: ``[B, F + 1, 1]``.
Readouts:

* ``"first_spike"``: the output layer spikes; the loss is
  :func:`spikeforge.exact.losses.first_spike_cross_entropy` (Göltz et al. 2021, eq. 3; W&P use the same form)
  ``L = -log softmax(-t_first / tau0)[label] + alpha (exp(t_label / tau1) - 1)``, where a silent output counts
  as ``t_end`` (finite loss, no gradient through it); prediction ``argmin t_first``. Since a silent output gets
  no gradient, weight bumping (after Göltz et al.) raises the input weights of an output by ``bump`` after a
  step in which it stayed silent for any sample of the batch (``bump_outputs="any"``, Göltz's rule, the default)
  or only for a sample of its own class (``"label"``: a silent *wrong* output is what the loss asks for; measured
  on Yin-Yang, no better than ``"any"`` over the first 29 epochs of 3 seeds).
  With either readout, a hidden neuron silent on every sample of a batch is bumped likewise.
* ``"max_membrane"``: the output layer is a non-spiking leaky integrator;
  :func:`spikeforge.exact.losses.max_voltage_cross_entropy`, prediction ``argmax V_max``.

Weights are trained in units of ``w_unit``, the weight whose single input spike lifts a resting neuron's
membrane exactly to ``v_th`` at its peak, so the initial scale and the learning rate do not depend on the time
constants.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from typing import Literal

import torch
from torch import Tensor

from spikeforge.data.yinyang import YINYANG_SPLITS
from spikeforge.exact import _kernels
from spikeforge.exact.encode import append_bias_spikes
from spikeforge.exact.encode import latency_times
from spikeforge.exact.eventprop import eventprop
from spikeforge.exact.losses import first_spike_cross_entropy
from spikeforge.exact.losses import max_voltage_cross_entropy
from spikeforge.exact.losses import silent_to_t_max
from spikeforge.exact.simulate import EventConfig
from spikeforge.exact.simulate import Readout
from spikeforge.exact.simulate import simulate
from spikeforge.training.exact_common import EpochCallback
from spikeforge.training.exact_common import ExactData
from spikeforge.training.exact_common import ExactFitResult
from spikeforge.training.exact_common import check_data
from spikeforge.training.exact_common import check_positive
from spikeforge.training.exact_common import step_lr
from spikeforge.training.exact_common import yinyang_data

__all__ = [
    "EventPropTrainConfig", "EventPropFitResult", "fit_eventprop", "eventprop_encode", "predict", "unit_weight",
]  # fmt: skip

#: What :func:`fit_eventprop` returns: ``model`` is the list of weights ``[hidden, F + 1]``, ``[classes, hidden]``
#: (float64, membrane units, not ``w_unit``).
EventPropFitResult = ExactFitResult[list[Tensor]]


@dataclass(frozen=True)
class EventPropTrainConfig:
    """Network, code, loss and optimiser settings of :func:`fit_eventprop` (times in ms)."""

    hidden: int = 200  # W&P's Yin-Yang width (100: 97.77 % validation, 200: 98.23 %; benchmarks/RESULTS.md)
    epochs: int = 60
    batch_size: int = 32
    lr: float = 5e-3  # Adam, on weights in units of w_unit
    lr_step: int = 1  # StepLR: lr * lr_gamma ** (epoch // lr_step)
    lr_gamma: float = 0.95
    tau_mem: float = 20.0
    tau_syn: float = 5.0
    v_th: float = 1.0
    t_early: float = 0.0  # input spike time of a feature equal to 0
    t_late: float = 10.0  # ... and of a feature equal to 1
    bias_time: float = 0.0
    t_end: float = 40.0  # simulated window; silent outputs count as t_end
    max_spikes: int = 128
    readout: Literal["first_spike", "max_membrane"] = "first_spike"
    tau0: float = 0.5  # softmax temperature of the first-spike loss (W&P: 0.5 ms)
    tau1: float = 6.4  # regulariser time scale (W&P: 6.4 ms)
    alpha: float = 3e-3  # regulariser strength (W&P: 3e-3)
    bump: float = 5e-3  # added (in w_unit) to the input weights of silent neurons after a step (0: off)
    bump_outputs: Literal["any", "label"] = "any"  # which silent outputs are bumped (module docstring)
    bump_decay: bool = False  # True: the bump follows the learning-rate schedule (bump * lr_now / lr)
    init: tuple[tuple[float, float], ...] = field(default=((0.4, 0.4), (0.02, 0.1)))  # (mean, std) per layer
    average_last: int = 20  # > 0: the returned network averages the last min(average_last, epochs) epochs' weights
    train_size: int = YINYANG_SPLITS["train"][0]
    test_size: int = YINYANG_SPLITS["test"][0]
    seed: int = 0

    def __post_init__(self) -> None:
        ints = ("hidden", "epochs", "batch_size", "max_spikes", "lr_step", "train_size", "test_size")
        check_positive(self, ("lr", "lr_gamma", "tau0", "tau1", "t_end"), ints=ints)
        if isinstance(self.average_last, bool) or not isinstance(self.average_last, int):
            raise TypeError(f"average_last must be an int, got {type(self.average_last).__name__}")
        if self.average_last < 0:
            raise ValueError(f"average_last must be >= 0 (0: the last epoch's weights), got {self.average_last}")
        if not (math.isfinite(self.alpha) and self.alpha >= 0 and math.isfinite(self.bump) and self.bump >= 0):
            raise ValueError(f"alpha and bump must be finite and >= 0, got {self.alpha}, {self.bump}")
        if not isinstance(self.bump_decay, bool):
            raise TypeError(f"bump_decay must be a bool, got {type(self.bump_decay).__name__}")
        if self.bump_outputs not in ("label", "any"):
            raise ValueError(f"bump_outputs must be 'any' or 'label', got {self.bump_outputs!r}")
        if self.readout not in ("first_spike", "max_membrane"):
            raise ValueError(f"readout must be 'first_spike' or 'max_membrane', got {self.readout!r}")
        if len(self.init) != 2:
            raise ValueError(f"init needs (mean, std) for the hidden and the output layer, got {self.init!r}")
        latency_times(torch.zeros(1, dtype=torch.float64), t_early=self.t_early, t_late=self.t_late)  # validates
        if not math.isfinite(self.bias_time):
            raise ValueError(f"bias_time must be finite, got {self.bias_time}")
        self.event_config()  # validates the neuron constants

    def event_config(self) -> EventConfig:
        readout: Readout = "spikes" if self.readout == "first_spike" else "max_membrane"
        return EventConfig(
            tau_mem=self.tau_mem,
            tau_syn=self.tau_syn,
            v_th=self.v_th,
            max_spikes=self.max_spikes,
            t_end=self.t_end,
            readout=readout,
        )


def unit_weight(tau_mem: float, tau_syn: float, v_th: float) -> float:
    """The weight whose single spike makes a resting neuron's membrane peak exactly at ``v_th``."""
    a, c = 1.0 / tau_mem, 1.0 / tau_syn
    peak = a * c * _kernels.edecay(_kernels.peak_time(0.0, 1.0, a, c), a, c)  # V_max per unit weight
    return v_th / peak


def eventprop_encode(features: Tensor, cfg: EventPropTrainConfig) -> Tensor:
    """``[B, F]`` features in ``[0, 1]`` -> input spike times ``[B, F + 1, 1]`` (latency code, then the bias)."""
    if features.dim() != 2:
        raise ValueError(f"features must be [B, F], got shape {tuple(features.shape)}")
    times = latency_times(features.to(torch.float64), t_early=cfg.t_early, t_late=cfg.t_late)
    return append_bias_spikes(times, (cfg.bias_time,)).unsqueeze(-1)


def _scores(out: Tensor, cfg: EventPropTrainConfig) -> Tensor:
    """Larger = more likely ``[B, C]``: ``-t_first`` (silent = ``t_end``) or ``V_max``."""
    return out if cfg.readout == "max_membrane" else -silent_to_t_max(out[:, :, 0], cfg.t_end)


def _loss(out: Tensor, labels: Tensor, cfg: EventPropTrainConfig) -> Tensor:
    if cfg.readout == "max_membrane":
        return max_voltage_cross_entropy(out, labels)
    return first_spike_cross_entropy(
        out[:, :, 0], labels, tau0=cfg.tau0, t_max=cfg.t_end, alpha=cfg.alpha, tau1=cfg.tau1
    )  # fmt: skip


def _bump(
    params: list[Tensor],
    x: Tensor,
    out: Tensor,
    labels: Tensor,
    scale: float,
    cfg: EventPropTrainConfig,
    factor: float = 1.0,
) -> None:
    """Weight bumping (Göltz et al. 2021): silent neurons get no gradient, so raise their input weights by
    ``cfg.bump * factor`` (``factor``: the learning-rate schedule's present factor when ``cfg.bump_decay``)."""
    bump = cfg.bump * factor
    with torch.no_grad():
        hidden = simulate(x, [params[0] * scale], replace(cfg.event_config(), readout="spikes"))[0]
        params[0][torch.isinf(hidden[:, :, 0]).all(dim=0)] += bump
        if cfg.readout == "first_spike":
            silent = torch.isinf(out[:, :, 0])
            if cfg.bump_outputs == "label":
                silent = silent & (labels[:, None] == torch.arange(silent.shape[1]))
            params[-1][silent.any(dim=0)] += bump


def predict(weights: list[Tensor], features: Tensor, cfg: EventPropTrainConfig) -> Tensor:
    """Predicted classes ``[B]``: first output spike (ties and all-silent: lowest index) or largest ``V_max``."""
    with torch.no_grad():
        out = eventprop(eventprop_encode(features, cfg), weights, cfg.event_config())
        return _scores(out, cfg).argmax(dim=1)


def fit_eventprop(
    config: EventPropTrainConfig | None = None,
    *,
    data: ExactData | None = None,
    on_epoch: EpochCallback | None = None,
) -> EventPropFitResult:
    """Train an ``F+1 - hidden - C`` network with EventProp and Adam (recipe: module docstring).

    Args:
        config: :class:`EventPropTrainConfig` (default ``()``).
        data: optional ``(train_features, train_labels, test_features, test_labels)``, features ``[N, F]`` in
            ``[0, 1]``, int64 labels (``C`` = largest label + 1); default: the published Yin-Yang splits (first
            ``train_size`` / ``test_size`` samples, :func:`~spikeforge.training.exact_common.yinyang_data`).
        on_epoch: called with each epoch's history row (``epoch, loss, train_acc, test_acc, lr, seconds``).
    """
    cfg = EventPropTrainConfig() if config is None else config
    (f_train, labels, f_test, y_test), n_classes = check_data(
        yinyang_data(cfg.train_size, cfg.test_size) if data is None else data
    )
    gen = torch.Generator().manual_seed(cfg.seed)
    sizes = [f_train.shape[1] + 1, cfg.hidden, n_classes]
    scale = unit_weight(cfg.tau_mem, cfg.tau_syn, cfg.v_th)
    params = [
        (torch.randn(n_out, n_in, generator=gen, dtype=torch.float64) * std + mean).requires_grad_()
        for (n_in, n_out), (mean, std) in zip(itertools.pairwise(sizes), cfg.init, strict=True)
    ]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    ecfg = cfg.event_config()
    inputs = eventprop_encode(f_train, cfg)
    history: list[dict[str, float]] = []
    summed: list[Tensor] | None = None  # sum of the last epochs' weights (average_last)
    averaged = min(cfg.average_last, cfg.epochs)
    for epoch in range(cfg.epochs):
        start = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = step_lr(cfg.lr, cfg.lr_gamma, cfg.lr_step, epoch)
        order = torch.randperm(inputs.shape[0], generator=gen)
        total, correct = 0.0, 0
        for first in range(0, inputs.shape[0], cfg.batch_size):
            idx = order[first : first + cfg.batch_size]
            out = eventprop(inputs[idx], [p * scale for p in params], ecfg)
            loss = _loss(out, labels[idx], cfg)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if cfg.bump > 0:
                factor = opt.param_groups[0]["lr"] / cfg.lr if cfg.bump_decay else 1.0
                _bump(params, inputs[idx], out, labels[idx], scale, cfg, factor)
            total += float(loss.detach()) * idx.numel()
            correct += int((_scores(out.detach(), cfg).argmax(1) == labels[idx]).sum())
        weights = [p.detach() * scale for p in params]
        row = {
            "epoch": float(epoch + 1),
            "loss": total / inputs.shape[0],
            "train_acc": correct / inputs.shape[0],
            "test_acc": float((predict(weights, f_test, cfg) == y_test).double().mean()),
            "lr": opt.param_groups[0]["lr"],
            "seconds": time.perf_counter() - start,
        }
        if epoch >= cfg.epochs - averaged:
            summed = [w.clone() for w in weights] if summed is None else [a + w for a, w in zip(summed, weights)]
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
    weights = [p.detach() * scale for p in params]
    if summed is not None:
        weights = [a / averaged for a in summed]
    test_accuracy = (
        history[-1]["test_acc"]
        if history and summed is None
        else float((predict(weights, f_test, cfg) == y_test).double().mean())
    )
    return ExactFitResult(model=weights, history=history, test_acc=test_accuracy, config=asdict(cfg))
