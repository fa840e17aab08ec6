"""Training an analytic TTFS network on Yin-Yang (Göltz et al. 2021): :func:`fit_ttfs`.

Recipe and defaults follow the paper's Yin-Yang setup (reference configuration
github.com/JulianGoeltz/fastAndDeep ``experiment_configs/yin_yang.yaml``): 4 (+1 bias) - 120 (+1 bias) - 3 neurons,
``tau_mem = tau_syn = threshold = C_m = 1``, latency code ``t = 0.15 + 1.85 x`` and a bias spike at 0.9 per layer
(:mod:`spikeforge.exact.encode`), weights initialised ``N(1.5, 0.8)`` / ``N(0.5, 0.8)``, Adam (lr 0.005, batch
150), StepLR (x0.95 every 20 epochs), 300 epochs, the first-spike cross-entropy with ``xi = 0.2``,
``alpha = 0.005``, ``beta = 1`` (:func:`spikeforge.exact.losses.first_spike_cross_entropy`), prediction = the
output neuron that fires first. Measured (``benchmarks/exact_accuracy.py``, published splits): 96.0 +- 0.1 % final
test accuracy over seeds 0-2 (96.0, 96.1, 96.0; Göltz et al.: 95.9 +- 0.7 %), 6-8 min CPU per run on one thread.

**Weight bumping** (Göltz et al., Methods): silent neurons get no gradient, so after a forward pass in which more
than ``max_missing[l]`` of the (sample, neuron) pairs of layer ``l`` did not fire (checked from the first layer
on; defaults 0.3 hidden, 0 output), the weights into every neuron of that layer that missed a spike are raised by
``bump`` (doubled while the same layer is bumped on consecutive batches), and that batch makes no gradient step.
**Update clipping** (Göltz et al.): the weight gradient of each (sample, neuron) pair whose largest entry exceeds
``max_dw_norm`` (0.2) is dropped (:func:`spikeforge.exact.ttfs.ttfs_spike_times`). A step whose gradient is still
not finite is skipped and counted. **Training noise** (optional, ``training_noise`` of Göltz et al.'s code, off in
their Yin-Yang configuration): Gaussian noise of std ``input_noise`` is added to the input spike times of every
training batch, negative times reflected (measured: 0.2 lowers Yin-Yang test accuracy, 82 % vs 91 % after ~18
epochs).

Data: Yin-Yang features (:mod:`spikeforge.training.exact_common`), latency-coded by
:func:`spikeforge.exact.encode.latency_times` (``t = 0.15 + 1.85 x``).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from dataclasses import dataclass

import torch
from torch import Tensor

from spikeforge.data.yinyang import YINYANG_SPLITS
from spikeforge.exact.encode import T_BIAS
from spikeforge.exact.encode import T_EARLY
from spikeforge.exact.encode import T_LATE
from spikeforge.exact.encode import latency_times
from spikeforge.exact.losses import first_spike_cross_entropy
from spikeforge.exact.ttfs import TTFSLayer
from spikeforge.exact.ttfs import TTFSNetwork
from spikeforge.exact.ttfs import TTFSParams
from spikeforge.training.exact_common import EpochCallback
from spikeforge.training.exact_common import ExactData
from spikeforge.training.exact_common import ExactFitResult
from spikeforge.training.exact_common import check_data
from spikeforge.training.exact_common import check_positive
from spikeforge.training.exact_common import step_lr
from spikeforge.training.exact_common import yinyang_data

__all__ = ["TTFSTrainConfig", "TTFSFitResult", "fit_ttfs", "ttfs_predict", "ttfs_accuracy", "ttfs_encode"]

#: What :func:`fit_ttfs` returns (``model`` is the trained :class:`~spikeforge.exact.ttfs.TTFSNetwork`).
TTFSFitResult = ExactFitResult[TTFSNetwork]


@dataclass(frozen=True)
class TTFSTrainConfig:
    """Hyper-parameters of :func:`fit_ttfs` (defaults: Göltz et al. 2021, Yin-Yang; times in units of tau_syn)."""

    hidden: int = 120
    epochs: int = 300
    batch_size: int = 150
    lr: float = 0.005
    lr_step: int = 20
    lr_gamma: float = 0.95
    xi: float = 0.2
    alpha: float = 0.005
    beta: float = 1.0
    t_max: float = 4.0
    weight_mean: tuple[float, float] = (1.5, 0.5)
    weight_std: tuple[float, float] = (0.8, 0.8)
    t_early: float = T_EARLY
    t_late: float = T_LATE
    bias_time: float = T_BIAS
    input_noise: float = 0.0
    bump: float = 0.0005
    max_missing: tuple[float, float] = (0.3, 0.0)
    max_dw_norm: float | None = 0.2
    train_size: int = YINYANG_SPLITS["train"][0]
    test_size: int = YINYANG_SPLITS["test"][0]
    seed: int = 0

    def __post_init__(self) -> None:
        ints = ("hidden", "epochs", "batch_size", "lr_step", "train_size", "test_size")
        check_positive(self, ("lr", "lr_gamma", "xi", "beta", "t_max"), ints=ints)
        if not all(math.isfinite(v) and v >= 0 for v in (self.alpha, self.bump, self.input_noise)):
            raise ValueError(
                f"alpha, bump and input_noise must be finite and >= 0, got {self.alpha}, {self.bump}, {self.input_noise}"
            )
        if self.max_dw_norm is not None and not (math.isfinite(self.max_dw_norm) and self.max_dw_norm > 0):
            raise ValueError(f"max_dw_norm must be > 0 or None (no clipping), got {self.max_dw_norm}")
        if len(self.max_missing) != 2 or not all(0.0 <= m <= 1.0 for m in self.max_missing):
            raise ValueError(f"max_missing needs two fractions in [0, 1] (hidden, output), got {self.max_missing}")
        latency_times(torch.zeros(1, dtype=torch.float64), t_early=self.t_early, t_late=self.t_late)  # validates


def ttfs_encode(features: Tensor, cfg: TTFSTrainConfig) -> Tensor:
    """``[N, F]`` features in ``[0, 1]`` -> input spike times ``t_early + x (t_late - t_early)`` (the network adds
    the bias spike itself)."""
    return latency_times(features, t_early=cfg.t_early, t_late=cfg.t_late)


def ttfs_predict(t_out: Tensor) -> Tensor:
    """Class = the output neuron that fires first; ``-1`` where no output neuron fires."""
    first = t_out.argmin(dim=1)
    return torch.where(torch.isfinite(t_out.min(dim=1).values), first, torch.full_like(first, -1))


def ttfs_accuracy(model: TTFSNetwork, times: Tensor, labels: Tensor, *, batch_size: int = 1000) -> float:
    """Fraction of samples whose first output spike is the label's (a sample with no output spike is wrong)."""
    correct = 0
    with torch.no_grad():
        for i in range(0, times.shape[0], batch_size):
            pred = ttfs_predict(model(times[i : i + batch_size]))
            correct += int((pred == labels[i : i + batch_size]).sum())
    return correct / max(1, times.shape[0])


def _bump(model: TTFSNetwork, layer_times: tuple[Tensor, ...], cfg: TTFSTrainConfig, state: dict[str, float]) -> bool:
    """Weight bumping (module docstring); returns True if a layer was bumped."""
    for index, times in enumerate(layer_times):
        silent = torch.isinf(times)
        limit = cfg.max_missing[0] if index < len(layer_times) - 1 else cfg.max_missing[1]
        if float(silent.double().mean()) > limit:
            value = state["value"] * 2.0 if state["layer"] == index else cfg.bump
            layer = model.layers[index]
            assert isinstance(layer, TTFSLayer)
            with torch.no_grad():
                layer.weight[:, silent.any(dim=0)] += value
            state["layer"], state["value"] = index, value
            return True
    state["layer"], state["value"] = -1.0, cfg.bump
    return False


def fit_ttfs(
    config: TTFSTrainConfig | None = None,
    *,
    data: ExactData | None = None,
    on_epoch: EpochCallback | None = None,
) -> TTFSFitResult:
    """Train a TTFS network on Yin-Yang with exact gradients (see the module docstring for the recipe).

    Args:
        config: hyper-parameters (default :class:`TTFSTrainConfig` ``()``).
        data: optional ``(train_features, train_labels, test_features, test_labels)``, features ``[N, F]`` in
            ``[0, 1]``, int64 labels; default: the published Yin-Yang splits (first ``train_size`` /
            ``test_size`` samples, :func:`~spikeforge.training.exact_common.yinyang_data`).
        on_epoch: called with each epoch's history row.

    Returns:
        :class:`~spikeforge.training.exact_common.ExactFitResult`; ``history`` rows hold ``epoch, loss,
        train_acc, test_acc, lr, seconds, bumps, skipped``: ``loss`` is the mean over the batches that made
        a gradient step (NaN if none did), ``bumps`` / ``skipped`` the number of batches that bumped weights / had
        a non-finite gradient.
    """
    cfg = TTFSTrainConfig() if config is None else config
    (f_train, y_train, f_test, y_test), num_classes = check_data(
        yinyang_data(cfg.train_size, cfg.test_size) if data is None else data
    )
    x_train, x_test = ttfs_encode(f_train, cfg), ttfs_encode(f_test, cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = TTFSNetwork(
        (x_train.shape[1], cfg.hidden, num_classes),
        params=TTFSParams(), bias_times=(cfg.bias_time,), weight_mean=cfg.weight_mean, weight_std=cfg.weight_std,
        dtype=x_train.dtype, generator=gen, max_dw_norm=cfg.max_dw_norm,
    )  # fmt: skip
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    bump_state = {"layer": -1.0, "value": cfg.bump}
    history: list[dict[str, float]] = []
    for epoch in range(cfg.epochs):
        start = time.perf_counter()
        for group in optimiser.param_groups:
            group["lr"] = step_lr(cfg.lr, cfg.lr_gamma, cfg.lr_step, epoch)
        order = torch.randperm(x_train.shape[0], generator=gen)
        total_loss, correct, seen, stepped, bumps, skipped = 0.0, 0, 0, 0, 0, 0
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            t_in = x_train[idx]
            if cfg.input_noise > 0:  # Göltz et al.'s training noise; negative times reflected
                t_in = (t_in + cfg.input_noise * torch.randn(t_in.shape, generator=gen, dtype=t_in.dtype)).abs()
            layer_times = model.forward_all(t_in)
            out = layer_times[-1]
            correct += int((ttfs_predict(out.detach()) == y_train[idx]).sum())
            seen += len(idx)
            if _bump(model, layer_times, cfg, bump_state):
                bumps += 1
                continue
            loss = first_spike_cross_entropy(
                out, y_train[idx], tau0=cfg.xi, t_max=cfg.t_max, alpha=cfg.alpha, tau1=cfg.beta
            )  # fmt: skip
            optimiser.zero_grad()
            loss.backward()
            if not all(p.grad is None or bool(torch.isfinite(p.grad).all()) for p in model.parameters()):
                skipped += 1
                continue
            optimiser.step()
            total_loss += float(loss.detach()) * len(idx)
            stepped += len(idx)
        row = {
            "epoch": float(epoch + 1), "loss": total_loss / stepped if stepped else math.nan,
            "train_acc": correct / max(1, seen), "test_acc": ttfs_accuracy(model, x_test, y_test),
            "lr": optimiser.param_groups[0]["lr"], "seconds": time.perf_counter() - start, "bumps": float(bumps),
            "skipped": float(skipped),
        }  # fmt: skip
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
    test_accuracy = history[-1]["test_acc"] if history else ttfs_accuracy(model, x_test, y_test)
    return ExactFitResult(model=model, history=history, test_acc=test_accuracy, config=asdict(cfg))
