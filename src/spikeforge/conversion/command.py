"""Train-or-load, convert and evaluate over ``T``: the library side of ``spikeforge convert``.

:func:`convert_command` is what the CLI calls; it returns a :class:`ConversionReport` with
``to_dict()`` and ``table()``. The small models used here and in ``benchmarks/conversion.py`` are
built by :func:`vgg_small` and :func:`mlp`.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn

from spikeforge.conversion.convert import METHODS, convert
from spikeforge.conversion.diagnostics import DEFAULT_STEPS, AccuracyCurve, accuracy_over_time, layer_errors
from spikeforge.conversion.qcfs import QCFS

__all__ = ["vgg_small", "mlp", "train_ann", "ann_accuracy", "convert_command", "ConversionReport", "ARCHS"]

ARCHS: tuple[str, ...] = ("vgg", "mlp")


def _act(kind: str, levels: int, threshold: float) -> Callable[[], nn.Module]:
    return (lambda: QCFS(levels, threshold)) if kind == "qcfs" else nn.ReLU


def vgg_small(in_shape: Sequence[int], num_classes: int, *, activation: str = "relu", levels: int = 4,
              threshold: float = 4.0, channels: Sequence[int] = (8, 16), hidden: int = 64) -> nn.Sequential:
    """VGG-style CNN: per width ``c``: ``[Conv3x3 c, BN, act] x 2, AvgPool2``; then ``Linear hidden, act, Linear``.

    Args:
        in_shape: ``(C, H, W)``; activation: ``"relu"`` or ``"qcfs"`` (with ``levels`` and initial ``threshold``).
    """
    if activation not in ("relu", "qcfs"):
        raise ValueError(f"activation must be 'relu' or 'qcfs', got {activation!r}")
    act = _act(activation, levels, threshold)
    c, h, w = in_shape
    layers: list[nn.Module] = []
    for width in channels:
        for _ in range(2):
            layers += [nn.Conv2d(c, width, 3, padding=1), nn.BatchNorm2d(width), act()]
            c = width
        layers.append(nn.AvgPool2d(2))
        h, w = h // 2, w // 2
    layers += [nn.Flatten(), nn.Linear(c * h * w, hidden), act(), nn.Linear(hidden, num_classes)]
    return nn.Sequential(*layers)


def mlp(in_shape: Sequence[int], num_classes: int, *, activation: str = "relu", levels: int = 4,
        threshold: float = 4.0, hidden: int = 128) -> nn.Sequential:
    """``Flatten, Linear hidden, BN, act, Linear hidden, BN, act, Linear num_classes``."""
    if activation not in ("relu", "qcfs"):
        raise ValueError(f"activation must be 'relu' or 'qcfs', got {activation!r}")
    act = _act(activation, levels, threshold)
    n_in = 1
    for d in in_shape:
        n_in *= int(d)
    return nn.Sequential(nn.Flatten(), nn.Linear(n_in, hidden), nn.BatchNorm1d(hidden), act(),
                         nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), act(), nn.Linear(hidden, num_classes))


def train_ann(model: nn.Module, x: Tensor, y: Tensor, *, epochs: int = 3, batch_size: int = 128, lr: float = 1e-3,
              generator: torch.Generator | None = None) -> nn.Module:
    """Minimal Adam + cross-entropy loop (cosine learning rate); returns ``model`` in eval mode."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n_batches = epochs * ((x.shape[0] + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, n_batches))
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(x.shape[0], generator=generator)
        for idx in perm.split(batch_size):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


@torch.no_grad()
def ann_accuracy(model: nn.Module, x: Tensor, y: Tensor, *, batch_size: int = 1000) -> float:
    model.eval()
    correct = sum(int((model(xb).argmax(-1) == yb).sum()) for xb, yb in zip(x.split(batch_size), y.split(batch_size)))
    return correct / x.shape[0]


@dataclass
class ConversionReport:
    """Result of :func:`convert_command`."""

    dataset: str
    arch: str
    method: str
    input: str
    levels: int | None
    percentile: float | None
    ann_accuracy: float
    curve: AccuracyCurve
    layer_errors: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    plot: str | None = None
    saved_ann: str | None = None
    correction: str = "none"
    correction_steps: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["curve"] = self.curve.to_dict()
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def table(self) -> str:
        what = f"{self.method}" + (f" (L={self.levels})" if self.method == "qcfs" else f" (p={self.percentile})")
        if self.correction != "none":
            what += f" + {self.correction} correction at T={self.correction_steps}"
        lines = [f"{self.dataset} / {self.arch} / {what} / input={self.input}", self.curve.table()]
        if self.layer_errors:
            lines.append(f"per-layer conversion error at T={self.curve.steps[-1]}:")
            lines.append(f"{'layer':>12} {'lambda':>9} {'MAE':>9} {'rel L1':>8}")
            for e in self.layer_errors:
                lines.append(f"{e['name']:>12} {e['threshold']:9.4f} {e['mae']:9.5f} {e['rel_l1']:8.4f}")
        return "\n".join(lines)


def _build(arch: str, in_shape: Sequence[int], num_classes: int, method: str, levels: int) -> nn.Module:
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    activation = "qcfs" if method == "qcfs" else "relu"
    builder = vgg_small if arch == "vgg" else mlp
    return builder(in_shape, num_classes, activation=activation, levels=levels)


def convert_command(
    *,
    dataset: str = "digits",
    arch: str = "vgg",
    method: str = "qcfs",
    levels: int = 4,
    percentile: float = 99.9,
    input: str = "analog",
    steps: Sequence[int] = DEFAULT_STEPS,
    epochs: int = 3,
    batch_size: int = 128,
    lr: float = 1e-3,
    calib_size: int = 1000,
    test_size: int | None = None,
    seed: int = 0,
    data_dir: str | None = None,
    load: str | None = None,
    save: str | None = None,
    plot: str | None = None,
    errors: bool = True,
    correction: str = "none",
    correction_steps: int | None = None,
    correction_iterations: int = 1,
) -> ConversionReport:
    """Train (or load) an ANN on ``dataset``, convert it with ``method`` and evaluate it over ``steps``.

    Args:
        dataset: a :mod:`spikeforge.data` name (e.g. ``"digits"``, ``"fashion_mnist"``).
        arch: ``"vgg"`` (:func:`vgg_small`) or ``"mlp"``.
        method: ``"qcfs"`` (ANN trained with QCFS, ``levels`` = L) or ``"rueckauer"`` (ReLU ANN).
        input: ``"analog"`` or ``"rate"``.
        steps: the ``T`` values to report.
        epochs, batch_size, lr: ANN training (ignored with ``load``).
        calib_size: training samples used for calibration (``"rueckauer"``).
        test_size: evaluate on the first ``test_size`` test samples (None = all).
        seed: seeds the weight init and the batch order.
        load: path of a checkpoint written with ``save`` (skips training).
        save: write the trained ANN checkpoint (``state_dict`` + architecture) here.
        plot: write the accuracy-vs-T PNG here (needs ``spikeforge[plot]``).
        errors: also compute per-layer conversion errors at ``max(steps)`` on 256 test samples.
        correction: ``"none"`` (default, paper-faithful), ``"bias"`` or ``"membrane"``: per-layer
            mean-error offsets from ``calib_size`` training images (see :func:`convert`).
        correction_steps: ``T`` for the correction; default ``levels`` for ``"qcfs"``, else ``min(steps)``.
        correction_iterations: passes of the layer-by-layer correction.
    """
    from spikeforge.data import get_dataset

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    gen = torch.Generator().manual_seed(seed)
    train = get_dataset(dataset, "train", data_dir=data_dir)
    test = get_dataset(dataset, "test", data_dir=data_dir)
    x_test, y_test = (test.x, test.y) if test_size is None else (test.x[:test_size], test.y[:test_size])
    in_shape, num_classes = tuple(train.x.shape[1:]), int(train.y.max()) + 1
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    if load is not None:
        ckpt = torch.load(load, map_location="cpu", weights_only=True)
        if ckpt.get("method") != method:
            raise ValueError(f"{load} holds a {ckpt.get('method')!r} ANN; pass --method {ckpt.get('method')}")
        arch, levels = ckpt["arch"], int(ckpt["levels"])
        ann = _build(arch, ckpt["in_shape"], ckpt["num_classes"], method, levels)
        ann.load_state_dict(ckpt["state_dict"])
        ann.eval()
    else:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            ann = _build(arch, in_shape, num_classes, method, levels)
        train_ann(ann, train.x, train.y, epochs=epochs, batch_size=batch_size, lr=lr, generator=gen)
        timing["train"] = time.perf_counter() - t0
    if save is not None:
        torch.save({"arch": arch, "method": method, "levels": levels, "in_shape": list(in_shape),
                    "num_classes": num_classes, "state_dict": ann.state_dict()}, save)
    acc_ann = ann_accuracy(ann, x_test, y_test)
    t1 = time.perf_counter()
    calib = train.x[torch.randperm(train.x.shape[0], generator=gen)[:calib_size]]
    if correction != "none" and correction_steps is None:
        correction_steps = levels if method == "qcfs" else min(int(t) for t in steps)
    use_calib = method == "rueckauer" or correction != "none"
    snn = convert(ann, calib if use_calib else None, method=method, percentile=percentile, input=input,
                  correction=correction, correction_steps=correction_steps if correction != "none" else None,  # type: ignore[arg-type]
                  correction_iterations=correction_iterations, generator=gen)
    curve = accuracy_over_time(snn, x_test, y_test, steps, ann_accuracy=acc_ann, label=f"{method} SNN",
                               generator=gen)
    timing["convert_and_evaluate"] = time.perf_counter() - t1
    errs = [asdict(e) for e in layer_errors(snn, x_test[:256], max(curve.steps), generator=gen)] if errors else []
    plot_path = str(curve.plot(plot)) if plot is not None else None
    return ConversionReport(dataset, arch, method, input, levels if method == "qcfs" else None,
                            percentile if method == "rueckauer" else None, acc_ann, curve, errs, timing,
                            plot_path, save, correction, correction_steps if correction != "none" else None)
