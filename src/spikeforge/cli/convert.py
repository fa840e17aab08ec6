"""``spikeforge convert``: train (or load) an ANN, convert it to an SNN and evaluate it over ``T``.

:func:`convert_command` returns a :class:`ConversionReport` (``to_dict()`` is the ``--json`` result,
``table()`` the text). The ANNs come from :mod:`spikeforge.training.ann`, the conversion from
:func:`spikeforge.conversion.convert`.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Literal
from typing import cast

import torch

from spikeforge.cli._common import MAX_EPOCHS
from spikeforge.cli._common import MAX_TIME_STEPS
from spikeforge.cli._common import Command
from spikeforge.cli._common import Output
from spikeforge.cli._common import UsageError
from spikeforge.cli._common import add_data_dir
from spikeforge.cli._common import capped_int
from spikeforge.cli._common import existing_file
from spikeforge.cli._common import percentile
from spikeforge.cli._common import positive_float
from spikeforge.cli._common import positive_int
from spikeforge.cli._common import writable_file
from spikeforge.conversion import CORRECTIONS
from spikeforge.conversion import DEFAULT_STEPS
from spikeforge.conversion import INPUT_MODES
from spikeforge.conversion import METHODS
from spikeforge.conversion import AccuracyCurve
from spikeforge.training.threads import use_threads

__all__ = ["COMMAND", "run", "convert_command", "ConversionReport"]


def _arguments(c: argparse.ArgumentParser) -> None:
    from spikeforge.data import list_datasets
    from spikeforge.training.ann import ANN_ARCHS

    c.add_argument("--dataset", choices=list_datasets(), default="digits", help="dataset to train and test on")
    c.add_argument(
        "--arch", choices=("auto", *ANN_ARCHS), default="auto",
        help="ANN architecture; auto: vgg for images of 16x16 pixels or more, mlp for flat inputs and small images",
    )  # fmt: skip
    c.add_argument("--method", choices=METHODS, default="qcfs", help="conversion method (ANN activation to match)")
    c.add_argument("--levels", type=positive_int, default=4, help="QCFS quantisation levels L")
    c.add_argument("--percentile", type=percentile, default=99.9, help="Rueckauer percentile (100 = max-norm)")
    c.add_argument("--input", choices=INPUT_MODES, default="analog", help="SNN input: analog currents or rate spikes")
    c.add_argument(
        "--steps", type=capped_int(MAX_TIME_STEPS, "MAX_TIME_STEPS"), nargs="+", default=list(DEFAULT_STEPS), metavar="T",
        help="time steps T at which the SNN is evaluated",
    )  # fmt: skip
    c.add_argument(
        "--epochs", type=capped_int(MAX_EPOCHS, "MAX_EPOCHS"), default=None,
        help="ANN training epochs (default: 20 for data sets under 10 000 training samples, else 3)",
    )  # fmt: skip
    c.add_argument("--batch-size", dest="batch_size", type=positive_int, default=128, help="ANN training batch size")
    c.add_argument("--lr", type=positive_float, default=1e-3, help="ANN learning rate (Adam, cosine-annealed)")
    c.add_argument(
        "--calib-size", dest="calib_size", type=positive_int, default=1000,
        help="training samples used to calibrate thresholds and corrections",
    )  # fmt: skip
    c.add_argument(
        "--test-size", dest="test_size", type=positive_int, default=None, help="evaluate on the first N test samples"
    )
    c.add_argument("--seed", type=int, default=0, help="seeds the ANN's weights, the batch order and the encoders")
    add_data_dir(c)
    c.add_argument("--load", default=None, metavar="PATH", help="ANN checkpoint written by --save (skips training)")
    c.add_argument("--save", default=None, metavar="PATH", help="write the trained ANN checkpoint here")
    c.add_argument("--plot", default=None, metavar="PNG", help="write the accuracy-over-T plot here")
    c.add_argument(
        "--correction", choices=CORRECTIONS, default="none",
        help="post-conversion offset correction of the mean per-channel rate error (Li et al. 2021); "
        "'none' is the paper-faithful conversion",
    )  # fmt: skip
    c.add_argument(
        "--correction-steps",
        dest="correction_steps",
        type=positive_int,
        default=None,
        metavar="T",
        help="T used to measure the correction (default: L for QCFS)",
    )
    c.add_argument(
        "--correction-iterations", dest="correction_iterations", type=positive_int, default=1,
        help="passes of the layer-by-layer correction",
    )  # fmt: skip
    c.add_argument("--no-errors", dest="errors", action="store_false", help="skip per-layer conversion errors")


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
    epochs: int | None = None
    warnings: list[str] = field(default_factory=list)

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
        trained = f" / ANN trained {self.epochs} epochs" if self.epochs is not None else ""
        lines = [f"{self.dataset} / {self.arch}{trained} / {what} / input={self.input}", self.curve.table()]
        if self.layer_errors:
            lines.append(f"per-layer conversion error at T={self.curve.steps[-1]}:")
            lines.append(f"{'layer':>12} {'lambda':>9} {'MAE':>9} {'rel L1':>8}")
            for e in self.layer_errors:
                lines.append(f"{e['name']:>12} {e['threshold']:9.4f} {e['mae']:9.5f} {e['rel_l1']:8.4f}")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _load_ann(
    path: str, method: str, in_shape: tuple[int, ...], num_classes: int, dataset: str
) -> tuple[Any, str, int]:
    """``(ann in eval mode, arch, levels)`` from a checkpoint written by ``--save`` (checked by
    :func:`spikeforge.training.ann.load_ann`), refused unless it fits ``method`` and the dataset's inputs."""
    from spikeforge.training.ann import load_ann

    ann, saved = load_ann(path)
    if saved["method"] != method:
        raise ValueError(f"{path} holds a {saved['method']!r} ANN; pass --method {saved['method']}")
    if tuple(saved["in_shape"]) != tuple(in_shape) or saved["num_classes"] != num_classes:
        raise ValueError(
            f"{path} holds an ANN for inputs of shape {list(saved['in_shape'])} and {saved['num_classes']} classes, "
            f"but dataset {dataset!r} has inputs of shape {list(in_shape)} and {num_classes} classes; pass the "
            "--dataset it was trained on"
        )
    return ann, saved["arch"], int(saved["levels"])


def convert_command(
    *,
    dataset: str = "digits",
    arch: str = "auto",
    method: str = "qcfs",
    levels: int = 4,
    percentile: float = 99.9,
    input: str = "analog",
    steps: Sequence[int] = DEFAULT_STEPS,
    epochs: int | None = None,
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
        arch: ``"vgg"`` or ``"mlp"`` (:data:`spikeforge.training.ann.ANN_ARCHS`), or ``"auto"``
            (:func:`~spikeforge.training.ann.default_arch` of the input shape).
        method: ``"qcfs"`` (ANN trained with QCFS, ``levels`` = L) or ``"rueckauer"`` (ReLU ANN).
        input: ``"analog"`` or ``"rate"``.
        steps: the ``T`` values to report.
        epochs, batch_size, lr: ANN training (ignored with ``load``); ``epochs=None``:
            :func:`~spikeforge.training.ann.default_epochs` of the training set size.
        calib_size: training samples used for calibration (``"rueckauer"``).
        test_size: evaluate on the first ``test_size`` test samples (None = all).
        seed: seeds the weight init and the batch order.
        load: path of a checkpoint written with ``save`` (skips training).
        save: write the trained ANN checkpoint (``state_dict`` + architecture) here.
        plot: write the accuracy-vs-T PNG here (needs ``spikeforge[plot]``).
        errors: also compute per-layer conversion errors at ``max(steps)`` on 256 test samples.
        correction: ``"none"`` (default, paper-faithful), ``"bias"`` or ``"membrane"``: per-layer
            mean-error offsets from ``calib_size`` training images (see :func:`spikeforge.conversion.convert`).
        correction_steps: ``T`` for the correction; default ``levels`` for ``"qcfs"``, else ``min(steps)``.
        correction_iterations: passes of the layer-by-layer correction.
    The report's ``warnings`` say when the ANN's test accuracy is near chance
    (:func:`~spikeforge.training.ann.near_chance`): its SNN accuracies then mean little.
    """
    import torch

    from spikeforge.conversion import accuracy_over_time
    from spikeforge.conversion import convert
    from spikeforge.conversion import layer_errors
    from spikeforge.data import get_dataset
    from spikeforge.training.ann import activation_of
    from spikeforge.training.ann import ann_accuracy
    from spikeforge.training.ann import build_ann
    from spikeforge.training.ann import default_arch
    from spikeforge.training.ann import default_epochs
    from spikeforge.training.ann import near_chance
    from spikeforge.training.ann import save_ann
    from spikeforge.training.ann import train_ann

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    gen = torch.Generator().manual_seed(seed)
    loaded = None
    if load is not None:  # checked before any data is read: a bad file fails fast
        from spikeforge.data import dataset_info

        info = dataset_info(dataset)
        loaded = _load_ann(load, method, tuple(int(d) for d in info.input_shape), int(info.num_classes), dataset)
    train = get_dataset(dataset, "train", data_dir=data_dir)
    test = get_dataset(dataset, "test", data_dir=data_dir)
    x_test, y_test = (test.x, test.y) if test_size is None else (test.x[:test_size], test.y[:test_size])
    in_shape, num_classes = tuple(train.x.shape[1:]), int(train.y.max()) + 1
    timing: dict[str, float] = {}
    arch = default_arch(in_shape) if arch == "auto" else arch
    epochs = default_epochs(int(train.x.shape[0])) if epochs is None else epochs
    t0 = time.perf_counter()
    if loaded is not None:
        ann, arch, levels = loaded
        epochs = None
    else:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            ann = build_ann(arch, in_shape, num_classes, activation=activation_of(method), levels=levels)
        train_ann(ann, train.x, train.y, epochs=epochs, batch_size=batch_size, lr=lr, generator=gen)
        timing["train"] = time.perf_counter() - t0
    if save is not None:
        save_ann(save, ann, arch=arch, method=method, levels=levels, in_shape=in_shape, num_classes=num_classes)
    acc_ann = ann_accuracy(ann, x_test, y_test)
    warnings = []
    if near_chance(acc_ann, num_classes):
        warnings.append(
            f"the ANN reached only {100 * acc_ann:.1f} % test accuracy (chance {100 / num_classes:.1f} %), so the "
            "SNN accuracies below mean little; train longer (--epochs) or use another --arch"
        )
    t1 = time.perf_counter()
    calib = train.x[torch.randperm(train.x.shape[0], generator=gen)[:calib_size]]
    if correction != "none" and correction_steps is None:
        correction_steps = levels if method == "qcfs" else min(int(t) for t in steps)
    use_calib = method == "rueckauer" or correction != "none"
    snn = convert(
        ann,
        calib if use_calib else None,
        method=cast(Literal["rueckauer", "qcfs"], method),  # checked against METHODS above
        percentile=percentile,
        input=cast(Literal["analog", "rate"], input),  # convert() checks it against INPUT_MODES
        correction=cast(Literal["none", "bias", "membrane"], correction),  # convert() checks it against CORRECTIONS
        correction_steps=correction_steps if correction != "none" else None,
        correction_iterations=correction_iterations,
        generator=gen,
    )
    curve = accuracy_over_time(snn, x_test, y_test, steps, ann_accuracy=acc_ann, label=f"{method} SNN", generator=gen)
    timing["convert_and_evaluate"] = time.perf_counter() - t1
    errs = [asdict(e) for e in layer_errors(snn, x_test[:256], max(curve.steps), generator=gen)] if errors else []
    plot_path = str(curve.plot(plot)) if plot is not None else None
    return ConversionReport(
        dataset,
        arch,
        method,
        input,
        levels if method == "qcfs" else None,
        percentile if method == "rueckauer" else None,
        acc_ann,
        curve,
        errs,
        timing,
        plot_path,
        save,
        correction,
        correction_steps if correction != "none" else None,
        epochs,
        warnings,
    )


_KEYS = [
    "dataset",
    "arch",
    "method",
    "levels",
    "percentile",
    "input",
    "steps",
    "epochs",
    "batch_size",
    "lr",
    "calib_size",
    "test_size",
    "seed",
    "data_dir",
    "load",
    "save",
    "plot",
    "errors",
    "correction",
    "correction_steps",
    "correction_iterations",
]


def _threads(args: argparse.Namespace, shape: tuple[int, ...]) -> int:
    """Threads for ``convert``: :func:`spikeforge.training.threads.threads_for_module` of the ANN it trains (the
    ``--arch`` given, or the dataset's default), on one ``--batch-size`` batch."""
    from spikeforge.data import dataset_info
    from spikeforge.training.ann import activation_of
    from spikeforge.training.ann import build_ann
    from spikeforge.training.ann import default_arch
    from spikeforge.training.threads import threads_for_module

    arch = default_arch(shape) if args.arch == "auto" else args.arch
    with torch.random.fork_rng(devices=[]):
        ann = build_ann(arch, shape, int(dataset_info(args.dataset).num_classes), activation=activation_of(args.method))
    return threads_for_module(ann, shape, args.batch_size).threads


def run(args: argparse.Namespace) -> Output:
    import sys

    from spikeforge.data import dataset_info

    shape = tuple(dataset_info(args.dataset).input_shape)
    if args.arch == "vgg" and len(shape) != 3:
        raise UsageError(
            f"--arch vgg needs image inputs, but {args.dataset!r} has flat inputs of shape {shape}; "
            "use --arch mlp (or leave --arch out)"
        )
    writable_file(args.save, "--save")
    writable_file(args.plot, "--plot")
    if args.load is not None:
        existing_file(args.load, "--load")
    with use_threads(_threads(args, shape)):  # the training's thread policy, from the ANN's work
        report = convert_command(**{k: getattr(args, k) for k in _KEYS})
    for warning in report.warnings:
        print(f"spikeforge convert: warning: {warning}", file=sys.stderr)
    return Output(result=report.to_dict(), text=report.table())


COMMAND = Command(
    "convert", "train or load an ANN, convert it to an SNN, evaluate accuracy over T",
    "ANN-to-SNN conversion (Rueckauer 2017 percentile norm or Bu et al. 2022 QCFS).",
    ("spikeforge convert --dataset digits --method qcfs --levels 4 --steps 1 2 4 8 16",), run, _arguments,
)  # fmt: skip
