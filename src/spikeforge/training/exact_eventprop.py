r"""Training a feed-forward network of current-based LIF neurons with EventProp on latency-coded inputs
(Yin-Yang as in Wunderlich & Pehle, Sci. Rep. 11:12829, 2021; mlGeNN's example: 4-100-3, ``tau_mem = 20``,
``tau_syn = 5`` ms).

Input code: each feature ``x`` in ``[0, 1]`` (Yin-Yang: ``x, y, 1-x, 1-y``) spikes once at ``t = x t_max``,
plus one bias spike at ``t_bias``: ``[B, F + 1, 1]`` input times. Readouts:

* ``"first_spike"``: the output layer spikes; the loss is the first-spike cross-entropy with regulariser
  (Göltz et al. 2021, eq. 3; W&P use the same form)
  ``L = -log softmax(-t_first / tau0)[label] + alpha (exp(t_label / tau1) - 1)``, where a silent output counts
  as ``t_end`` (finite loss, no gradient through it); prediction ``argmin t_first``. Since a silent output gets
  no gradient, an output that is silent for any sample of a batch has its input weights raised by ``bump``
  after the step (Göltz et al.'s weight bumping); without it the outputs fall silent one after another.
  With either readout, a hidden neuron silent on every sample of a batch is bumped likewise.
* ``"max_membrane"``: the output layer is a non-spiking leaky integrator; ``L = -log softmax(V_max)[label]``,
  prediction ``argmax V_max``.

Weights are trained in units of ``w_unit``, the weight whose single input spike lifts a resting neuron's
membrane exactly to ``v_th`` at its peak, so the initial scale and the learning rate do not depend on the time
constants. Without the ``data`` layer here: the caller passes features and labels (e.g. from
:func:`spikeforge.data.yinyang.make_yinyang`).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from typing import Literal
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from spikeforge.exact import _kernels
from spikeforge.exact.eventprop import eventprop
from spikeforge.exact.simulate import EventConfig
from spikeforge.exact.simulate import Readout
from spikeforge.exact.simulate import simulate

__all__ = ["EventPropTrainConfig", "EventPropFitResult", "fit_eventprop", "latency_code", "predict", "unit_weight"]


@dataclass(frozen=True)
class EventPropTrainConfig:
    """Network, code, loss and optimiser settings (times in ms)."""

    hidden: int = 100
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3  # Adam, on weights in units of w_unit
    tau_mem: float = 20.0
    tau_syn: float = 5.0
    v_th: float = 1.0
    t_max: float = 10.0  # latest input spike (feature 1)
    t_bias: float = 0.0
    t_end: float = 40.0  # simulated window; silent outputs count as t_end
    max_spikes: int = 128
    readout: Literal["first_spike", "max_membrane"] = "first_spike"
    tau0: float = 1.0  # softmax temperature of the first-spike loss (Göltz: 0.2 tau_syn)
    tau1: float = 5.0  # regulariser time scale (Göltz: tau_syn)
    alpha: float = 5e-3  # regulariser strength (Göltz: 0.005)
    bump: float = 5e-3  # added (in w_unit) to the input weights of silent neurons after a step (0: off)
    init: tuple[tuple[float, float], ...] = field(default=((0.4, 0.4), (0.02, 0.1)))  # (mean, std) per layer
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("hidden", "epochs", "batch_size", "max_spikes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "epochs" else 1):
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for name in ("lr", "tau0", "tau1", "t_max", "t_end"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ValueError(f"{name} must be finite and > 0, got {value!r}")
        if self.readout not in ("first_spike", "max_membrane"):
            raise ValueError(f"readout must be 'first_spike' or 'max_membrane', got {self.readout!r}")
        if len(self.init) != 2:
            raise ValueError(f"init needs (mean, std) for the hidden and the output layer, got {self.init!r}")
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


class EventPropFitResult(NamedTuple):
    weights: list[Tensor]  # [hidden, F + 1], [classes, hidden], float64, in membrane units (not w_unit)
    history: list[dict[str, float]]  # per epoch: epoch, loss, train_acc, test_acc (nan without test data), seconds


def unit_weight(tau_mem: float, tau_syn: float, v_th: float) -> float:
    """The weight whose single spike makes a resting neuron's membrane peak exactly at ``v_th``."""
    a, c = 1.0 / tau_mem, 1.0 / tau_syn
    peak = a * c * _kernels.edecay(_kernels.peak_time(0.0, 1.0, a, c), a, c)  # V_max per unit weight
    return v_th / peak


def latency_code(features: Tensor, t_max: float, t_bias: float) -> Tensor:
    """``[B, F]`` features in ``[0, 1]`` -> input spike times ``[B, F + 1, 1]`` (``x t_max``, then the bias)."""
    if features.dim() != 2:
        raise ValueError(f"features must be [B, F], got shape {tuple(features.shape)}")
    if bool(torch.isnan(features).any()) or bool(((features < 0) | (features > 1)).any()):
        raise ValueError("features must lie in [0, 1] (scale them first)")
    t = features.to(torch.float64) * t_max
    bias = torch.full((t.shape[0], 1), float(t_bias), dtype=torch.float64)
    return torch.cat([t, bias], dim=1).unsqueeze(-1)


def _scores(out: Tensor, cfg: EventPropTrainConfig) -> Tensor:
    """Logits ``[B, C]``: ``-t_first / tau0`` (silent = ``t_end``) or ``V_max``."""
    if cfg.readout == "max_membrane":
        return out
    first = out[:, :, 0]
    first = torch.where(torch.isinf(first), torch.full_like(first, cfg.t_end), first)
    return -first / cfg.tau0


def _loss(out: Tensor, labels: Tensor, cfg: EventPropTrainConfig) -> Tensor:
    loss = F.cross_entropy(_scores(out, cfg), labels)
    if cfg.readout == "first_spike" and cfg.alpha > 0:
        t_label = (-_scores(out, cfg) * cfg.tau0).gather(1, labels[:, None]).squeeze(1)
        loss = loss + cfg.alpha * torch.expm1(t_label / cfg.tau1).mean()
    return loss


def _bump(params: list[Tensor], x: Tensor, out: Tensor, scale: float, cfg: EventPropTrainConfig) -> None:
    """Weight bumping (Göltz et al. 2021): silent neurons get no gradient, so raise their input weights."""
    with torch.no_grad():
        hidden = simulate(x, [params[0] * scale], replace(cfg.event_config(), readout="spikes"))[0]
        params[0][torch.isinf(hidden[:, :, 0]).all(dim=0)] += cfg.bump
        if cfg.readout == "first_spike":
            params[-1][torch.isinf(out[:, :, 0]).any(dim=0)] += cfg.bump


def predict(weights: list[Tensor], features: Tensor, cfg: EventPropTrainConfig) -> Tensor:
    """Predicted classes ``[B]``: first output spike (ties and all-silent: lowest index) or largest ``V_max``."""
    with torch.no_grad():
        out = eventprop(latency_code(features, cfg.t_max, cfg.t_bias), weights, cfg.event_config())
        return _scores(out, cfg).argmax(dim=1)


def fit_eventprop(
    train_x: Tensor,
    train_y: Tensor,
    test_x: Tensor | None = None,
    test_y: Tensor | None = None,
    cfg: EventPropTrainConfig | None = None,
    *,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> EventPropFitResult:
    """Train an ``F+1 - hidden - C`` network with EventProp and Adam.

    Args:
        train_x, test_x: features ``[N, F]`` in ``[0, 1]``; train_y, test_y: labels ``[N]`` (int64, ``C`` classes
            = ``max(train_y) + 1``).
        cfg: :class:`EventPropTrainConfig`.
        on_epoch: called with each epoch's history row (e.g. to print progress).
    """
    cfg = cfg or EventPropTrainConfig()
    if train_x.shape[0] != train_y.shape[0] or train_y.dim() != 1:
        raise ValueError(f"train_y must be [N] matching train_x [N, F], got {tuple(train_y.shape)}")
    gen = torch.Generator().manual_seed(cfg.seed)
    n_classes = int(train_y.max()) + 1
    sizes = [train_x.shape[1] + 1, cfg.hidden, n_classes]
    scale = unit_weight(cfg.tau_mem, cfg.tau_syn, cfg.v_th)
    params = [
        (torch.randn(n_out, n_in, generator=gen, dtype=torch.float64) * std + mean).requires_grad_()
        for (n_in, n_out), (mean, std) in zip(itertools.pairwise(sizes), cfg.init, strict=True)
    ]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    ecfg = cfg.event_config()
    inputs = latency_code(train_x, cfg.t_max, cfg.t_bias)
    labels = train_y.to(torch.int64)
    history: list[dict[str, float]] = []
    for epoch in range(cfg.epochs):
        start = time.perf_counter()
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
                _bump(params, inputs[idx], out, scale, cfg)
            total += float(loss.detach()) * idx.numel()
            correct += int((_scores(out.detach(), cfg).argmax(1) == labels[idx]).sum())
        weights = [p.detach() * scale for p in params]
        test_acc = math.nan
        if test_x is not None and test_y is not None:
            test_acc = float((predict(weights, test_x, cfg) == test_y).double().mean())
        row = {
            "epoch": float(epoch + 1),
            "loss": total / inputs.shape[0],
            "train_acc": correct / inputs.shape[0],
            "test_acc": test_acc,
            "seconds": time.perf_counter() - start,
        }
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
    return EventPropFitResult([p.detach() * scale for p in params], history)
