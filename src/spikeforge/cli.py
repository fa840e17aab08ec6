"""The ``spikeforge`` command line: ``train``, ``evaluate`` and ``info``.

A thin veneer over the public API (:func:`spikeforge.train.train`, :func:`spikeforge.train.evaluate`,
:func:`spikeforge.train.evaluate_checkpoint`, :mod:`spikeforge.data`, :mod:`spikeforge.plots`).
Human-readable text goes to stdout, progress to stderr; ``--json`` prints exactly one JSON object on
stdout. Exit codes: 0 success, 1 a known error (missing file, existing run directory, bad
checkpoint, invalid value), 2 a usage error (unknown option or name), 130 interrupted. ``--debug``
adds the traceback.

Example::

    spikeforge train                      # the Yin-Yang main job with defaults
    spikeforge evaluate runs/yinyang-mlp-20250101-120000/best.pt --split test
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import math
import platform
import re
import sys
import time
import traceback
import types
import typing
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from spikeforge.cli_tools import add_tool_parsers

__all__ = ["main", "build_parser", "collect_info", "UsageError"]

PROG = "spikeforge"

_FMT = argparse.RawDescriptionHelpFormatter  # keep the epilog's line breaks
_RESERVED = {"out", "data_dir", "resume", "overwrite", "quiet", "json", "debug", "plots", "command", "handler"}

EXAMPLES = {
    "train": "example:\n  spikeforge train --epochs 5 --hidden 64 --out runs/yy-small\n"
    "  spikeforge train --dataset yinyang --neuron alif --surrogate atan --json > summary.json",
    "evaluate": "example:\n  spikeforge evaluate runs/yy-small/best.pt --split test --json",
    "info": "example:\n  spikeforge info --json",
}


class UsageError(Exception):
    """A bad command-line argument (exit code 2)."""


# ---- parser ---------------------------------------------------------------------------------------


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """``X | None`` -> ``(X, True)``; anything else -> ``(tp, False)``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _or_none(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """Wrap an argument parser so that ``none`` gives None (for ``X | None`` fields)."""

    def parse_or_none(text: str) -> Any:
        return None if text.lower() == "none" else parse(text)

    parse_or_none.__name__ = getattr(parse, "__name__", "value")
    return parse_or_none


def _parse_bool(text: str) -> bool:
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def _parse_json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"expected a JSON object like '{{\"tau_mem\": 10}}': {e}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


_NAMED = ("dataset", "model", "neuron", "surrogate", "encoding", "decoding", "device")


def _show_default(value: Any) -> str:
    if isinstance(value, tuple):
        return " ".join(str(v) for v in value)
    return "none" if value is None else str(value)


def _field_docs(doc: str) -> dict[str, str]:
    """``{field: text}`` from a Google-style ``Attributes:`` section (``a / b: text`` documents both)."""
    out: dict[str, str] = {}
    lines = doc.expandtabs().splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Attributes:")
    except StopIteration:
        return out
    indent = len(lines[start]) - len(lines[start].lstrip()) + 4
    current: list[str] = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        level = len(line) - len(line.lstrip())
        if level < indent:
            break
        head, sep, text = line.strip().partition(":")
        if level == indent and sep and all(n.strip().isidentifier() for n in head.split("/")):
            current = [n.strip() for n in head.split("/")]
            for n in current:
                out[n] = text.strip()
        else:
            for n in current:
                out[n] += " " + line.strip()
    clean = {k: re.sub(r":\w+:`~?([^`]*)`", r"\1", v.replace("``", "")) for k, v in out.items()}
    return {k: " ".join(v.split()).rstrip(".") for k, v in clean.items()}


def _add_config_options(p: argparse.ArgumentParser) -> None:
    """One ``--option`` per TrainConfig field, typed and defaulted from the dataclass."""
    from spikeforge.train import TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    docs = _field_docs(TrainConfig.__doc__ or "")
    group = p.add_argument_group("training configuration (TrainConfig fields)")
    for f in dataclasses.fields(TrainConfig):
        if not f.init or f.name in _RESERVED:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = _field_default(f)
        tp, optional = _unwrap_optional(hints.get(f.name, type(default)))
        origin = typing.get_origin(tp) or tp
        doc = docs.get(f.name, f"TrainConfig.{f.name}").replace("%", "%%")
        # default SUPPRESS: only options given on the command line appear in the namespace, so that
        # --resume can start from the run's saved config.json (see _train_config)
        kw: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": doc}
        if origin in (tuple, list):
            elem = (typing.get_args(tp) or (int,))[0]
            kw.update(nargs="+", type=elem if elem in (int, float, str) else int, metavar="N")
        elif tp is bool:
            kw.update(type=_parse_bool, metavar="BOOL")
        elif origin is dict:
            kw.update(type=_parse_json_object, metavar="JSON")
        elif tp in (int, float, str):
            kw.update(type=tp, metavar="NAME" if f.name in _NAMED else tp.__name__.upper())
        else:
            kw.update(type=str, metavar="VALUE")
        if optional:
            kw["type"] = _or_none(kw["type"])
            kw["help"] += " ('none' for None)"
        kw["help"] += f"; default: {_show_default(default)}".replace("%", "%%")
        group.add_argument(flag, **kw)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (subcommands ``train``, ``evaluate``, ``info``)."""
    from spikeforge import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train and evaluate spiking neural networks (spikeforge).",
        epilog="example:\n  spikeforge train            # Yin-Yang main job\n  spikeforge info",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="{train,evaluate,info,energy,export,import,convert}")

    t = sub.add_parser(
        "train", parents=[common], formatter_class=_FMT, epilog=EXAMPLES["train"],
        help="train a model (default: the Yin-Yang main job)",
        description="Train an SNN classifier and write config.json, metrics.json, checkpoints and plots into a run directory.",
    )
    t.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="run directory (default: runs/<dataset>-<model>-<timestamp>)")
    t.add_argument("--data-dir", dest="data_dir", type=str, default=None, metavar="DIR",
                   help="folder with dataset files (for datasets read from files)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    t.add_argument("--overwrite", action="store_true", help="replace an existing, non-empty --out")
    t.add_argument("--no-plots", dest="plots", action="store_false", help="skip the PNG plots")
    t.add_argument("--json", action="store_true", help="print only one JSON object (the summary) on stdout")
    t.add_argument("--quiet", action="store_true", help="no progress output on stderr")
    _add_config_options(t)
    t.set_defaults(handler=cmd_train)

    e = sub.add_parser(
        "evaluate", parents=[common], formatter_class=_FMT, epilog=EXAMPLES["evaluate"],
        help="evaluate a checkpoint on a dataset split",
        description="Load a checkpoint (best.pt or checkpoint.pt) and report accuracy, loss and spiking activity.",
    )
    e.add_argument("checkpoint", type=Path, help="path to a checkpoint written by 'spikeforge train'")
    e.add_argument("--split", choices=("test", "validation", "train"), default="test", help="dataset split")
    e.add_argument("--data-dir", dest="data_dir", type=str, default=None, metavar="DIR",
                   help="folder with dataset files (for datasets read from files)")
    e.add_argument("--json", action="store_true", help="print only one JSON object (the metrics) on stdout")
    e.set_defaults(handler=cmd_evaluate)

    i = sub.add_parser(
        "info", parents=[common], formatter_class=_FMT, epilog=EXAMPLES["info"],
        help="show version, datasets, neurons, surrogates and backends",
        description="List what this installation provides: datasets, models, neurons, surrogates, compute backends.",
    )
    i.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    i.set_defaults(handler=cmd_info)
    add_tool_parsers(sub, common)
    return parser


# ---- helpers --------------------------------------------------------------------------------------


def _spiking_neurons() -> list[str]:
    from spikeforge.neurons import NEURON_REGISTRY, list_neurons

    return [n for n in list_neurons() if NEURON_REGISTRY[n].capabilities.spiking]


def _name_choices() -> dict[str, Callable[[], list[str]]]:
    """TrainConfig fields that name a registered component -> function listing the valid names."""
    from spikeforge import data, models
    from spikeforge.surrogate import list_surrogates

    out: dict[str, Callable[[], list[str]]] = {
        "dataset": data.list_datasets,
        "model": models.list_models,
        "neuron": _spiking_neurons,  # hidden layers must spike; the LI readout is added by the model
        "surrogate": list_surrogates,
    }
    for key in ("encoding", "decoding"):  # published as tuples by spikeforge.models
        names = getattr(models, f"{key.upper()}S", None)
        if names is not None:
            out[key] = lambda names=names: list(names)
    return out


def _check_names(values: Mapping[str, Any]) -> None:
    for key, list_fn in _name_choices().items():
        if key in values and values[key] is not None:
            valid = list(list_fn())
            if values[key] not in valid:
                raise UsageError(f"unknown {key} {values[key]!r}; valid choices: {', '.join(valid)}")


def _jsonable(obj: Any) -> Any:
    """Tensors, numpy values, Paths and tuples -> plain JSON types; non-finite floats -> None."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):  # tensor / numpy
        return _jsonable(obj.tolist())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    return str(obj)


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return "-" if v is None else str(v)


def _table(rows: Sequence[tuple[str, Any]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {_fmt_value(v)}" for k, v in rows)


def _pct(v: Any) -> str:
    return f"{100 * v:.2f} %" if isinstance(v, (int, float)) else "-"


def _activity_rows(metrics: Mapping[str, Any]) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    rates = metrics.get("firing_rates")
    if isinstance(rates, Mapping):
        for name, r in rates.items():
            rows.append((f"firing rate {name}", f"{r:.4f} spikes/neuron/step" if isinstance(r, (int, float)) else r))
    n = metrics.get("spikes_per_sample")
    if isinstance(n, (int, float)):
        rows.append(("spikes per sample", f"{n:.1f}"))
    return rows


def _emit(summary: Mapping[str, Any], text: str, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(_jsonable(summary), indent=2, allow_nan=False) + "\n")
    else:
        sys.stdout.write(text + "\n")
    sys.stdout.flush()


# ---- subcommands ----------------------------------------------------------------------------------


def _train_config(args: argparse.Namespace) -> Any:
    """TrainConfig from the options given; the others come from the defaults, or with ``--resume``
    from the run's ``config.json`` (so ``spikeforge train --resume --out DIR`` needs nothing else)."""
    from spikeforge.train import TrainConfig

    base: dict[str, Any] = {}
    saved = Path(args.out) / "config.json" if getattr(args, "resume", False) and args.out is not None else None
    if saved is not None and saved.is_file():
        try:
            base = json.loads(saved.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{str(saved)!r} is not valid JSON ({e}); fix it or drop --resume") from None
        if not isinstance(base, dict):
            raise ValueError(f"{str(saved)!r} does not hold a TrainConfig object; fix it or drop --resume")
    fields = {f.name: f for f in dataclasses.fields(TrainConfig) if f.init}
    values = {k: v for k, v in base.items() if k in fields}
    values.update({name: getattr(args, name) for name in fields if hasattr(args, name)})
    for name, value in values.items():
        if isinstance(value, list) and isinstance(_field_default(fields[name]), tuple):
            values[name] = tuple(value)
    if "data_dir" in fields and (args.data_dir is not None or "data_dir" not in values):
        values["data_dir"] = args.data_dir
    _check_names(values)
    try:
        return TrainConfig(**values)
    except (TypeError, ValueError) as e:
        raise UsageError(str(e)) from e


def _default_out(config: Any) -> Path:
    return Path("runs") / f"{config.dataset}-{config.model}-{time.strftime('%Y%m%d-%H%M%S')}"


def cmd_train(args: argparse.Namespace) -> int:
    """``spikeforge train``: run :func:`spikeforge.train.train`, then evaluate, plot and summarise."""
    config = _train_config(args)
    if args.resume and args.out is None:
        raise UsageError("--resume needs --out DIR (the run directory to continue)")
    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite exclude each other; pick one")
    from spikeforge.data import get_dataset
    from spikeforge.distributed import env_ranks
    from spikeforge.progress import ProgressCallback
    from spikeforge.train import evaluate, train

    out_dir = args.out if args.out is not None else _default_out(config)
    progress = ProgressCallback(quiet=args.quiet)
    result = train(config, out_dir, resume=args.resume, overwrite=args.overwrite, callbacks=[progress])
    if env_ranks()[0] != 0:  # under torchrun only rank 0 evaluates, plots and reports
        return 0
    test_ds = get_dataset(config.dataset, "test", data_dir=config.data_dir)
    test_metrics = evaluate(result.model, test_ds, batch_size=config.eval_batch_size)
    plots: list[str] = []
    if args.plots:
        plots = _make_plots(result, test_ds, Path(result.out_dir), quiet=args.quiet)
    summary = _train_summary(result, test_metrics, plots)
    summary["energy_per_inference_j"] = _energy_per_inference(result.model, test_ds)
    _emit(summary, _train_text(summary), args.json)
    return 0


def _make_plots(result: Any, test_ds: Any, out_dir: Path, *, quiet: bool) -> list[str]:
    """The PNGs of :func:`spikeforge.plots.plot_run` on the first 256 test samples (skipped without matplotlib)."""
    from spikeforge.plots import plot_run

    x = test_ds.x[:256].to(next(result.model.parameters()).device)
    try:
        return [str(p) for p in plot_run(result.model, x, result.history, out_dir)]
    except ImportError as e:  # training succeeded; do not fail the run over an optional extra
        if not quiet:
            print(f"{PROG}: note: plots skipped: {e}", file=sys.stderr)
        return []


def _energy_per_inference(model: Any, test_ds: Any) -> dict[str, float]:
    """Energy per inference (J, memory included) on the default chips, counted on 256 test samples."""
    import torch

    from spikeforge.energy import DEFAULT_HARDWARE, summarize

    model.eval()
    x = test_ds.x[:256].to(next(model.parameters()).device)
    with torch.no_grad():
        x_seq = model.encode(x, generator=torch.Generator(device=x.device).manual_seed(0))
        energy = summarize(model, x_seq, hardware=DEFAULT_HARDWARE)
    return {chip: float(r.total_j) for chip, r in energy.reports.items()}


def _best_entry(history: Sequence[Mapping[str, Any]], best_epoch: int) -> Mapping[str, Any]:
    for h in history:
        if h.get("epoch") == best_epoch:
            return h
    return history[-1] if history else {}


def _train_summary(result: Any, test_metrics: Mapping[str, Any], plots: list[str]) -> dict[str, Any]:
    cfg = result.config
    best = _best_entry(result.history, result.best_epoch)
    out_dir = Path(result.out_dir)
    return {
        "run_dir": str(out_dir),
        "dataset": cfg.dataset,
        "model": cfg.model,
        "neuron": cfg.neuron,
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch,
        "train_acc": best.get("train_acc"),
        "val_acc": result.val_acc,
        "test_acc": result.test_acc,
        "test_loss": test_metrics.get("loss"),
        "firing_rates": dict(test_metrics.get("firing_rates", {})),
        "spikes_per_sample": test_metrics.get("spikes_per_sample"),
        "wall_time_s": result.wall_time_s,
        "checkpoint": str(out_dir / "best.pt"),
        "plots": plots,
    }


def _train_text(s: Mapping[str, Any]) -> str:
    rows: list[tuple[str, Any]] = [
        ("run directory", s["run_dir"]),
        ("dataset / model", f"{s['dataset']} / {s['model']} ({s['neuron']})"),
        ("epochs run", s["epochs_run"]),
        ("best epoch", s["best_epoch"]),
        ("train accuracy", _pct(s["train_acc"])),
        ("val accuracy", _pct(s["val_acc"])),
        ("test accuracy", _pct(s["test_acc"])),
        *_activity_rows(s),
        *[(f"energy/inference {chip}", f"{j * 1e9:.3g} nJ") for chip, j in s.get("energy_per_inference_j", {}).items()],
        ("wall time", f"{s['wall_time_s']:.1f} s" if isinstance(s["wall_time_s"], (int, float)) else "-"),
        ("best checkpoint", s["checkpoint"]),
    ]
    if s["plots"]:
        rows.append(("plots", ", ".join(Path(p).name for p in s["plots"])))
    return "Training summary\n" + _table(rows)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``spikeforge evaluate CHECKPOINT``: accuracy and activity of a saved model on one split."""
    from spikeforge.train import evaluate_checkpoint

    if not args.checkpoint.exists():
        raise FileNotFoundError(f"checkpoint {str(args.checkpoint)!r} does not exist")
    metrics = dict(evaluate_checkpoint(args.checkpoint, args.split, data_dir=args.data_dir))
    summary = {"checkpoint": str(args.checkpoint), "split": args.split, **metrics}
    rows: list[tuple[str, Any]] = [
        ("checkpoint", summary["checkpoint"]),
        ("split", args.split),
        ("accuracy", _pct(metrics.get("accuracy"))),
        ("loss", metrics.get("loss")),
        *_activity_rows(metrics),
    ]
    _emit(summary, "Evaluation\n" + _table(rows), args.json)
    return 0


def _matplotlib_version() -> str | None:
    if importlib.util.find_spec("matplotlib") is None:
        return None
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("matplotlib")
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


def collect_info() -> dict[str, Any]:
    """What ``spikeforge info`` reports, as a JSON-safe dict."""
    import torch

    from spikeforge import __version__
    from spikeforge.data import dataset_info, list_datasets
    from spikeforge.backends import available_backends
    from spikeforge.neurons import list_neurons

    datasets = []
    for name in list_datasets():
        info = dataset_info(name)
        datasets.append({
            "name": name, "input_shape": list(info.input_shape), "num_classes": info.num_classes,
            "splits": dict(info.splits), "needs_files": info.needs_files,
        })
    names = {k: list(fn()) for k, fn in _name_choices().items() if k != "dataset"}
    return {
        "version": __version__,
        "python": platform.python_version(),
        "datasets": datasets,
        "models": names["model"],
        "neurons": list_neurons(),
        "spiking_neurons": names["neuron"],
        "surrogates": names["surrogate"],
        **{f"{k}s": v for k, v in names.items() if k in ("encoding", "decoding")},
        "backends": {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available(),
            "cuda_devices": torch.cuda.device_count() if torch.cuda.is_available() else 0,
            "matplotlib": _matplotlib_version(),
            "neuron_kernels": available_backends(),
        },
    }


def cmd_info(args: argparse.Namespace) -> int:
    """``spikeforge info``: version, datasets, models, neurons, surrogates, backends."""
    info = collect_info()
    b = info["backends"]
    lines = [f"spikeforge {info['version']} (Python {info['python']})", "", "datasets:"]
    for d in info["datasets"]:
        splits = ", ".join(f"{k} {n}" for k, n in d["splits"].items())
        files = " [needs files: --data-dir]" if d["needs_files"] else ""
        lines.append(f"  {d['name']:<14} input {tuple(d['input_shape'])}, {d['num_classes']} classes; {splits}{files}")
    lines += [
        "",
        f"models:      {', '.join(info['models'])}",
        f"neurons:     {', '.join(n if n in info['spiking_neurons'] else n + ' (readout)' for n in info['neurons'])}",
        f"surrogates:  {', '.join(info['surrogates'])}",
        "",
        "backends:",
        f"  torch       {b['torch']} ({b['threads']} threads)",
        f"  cuda        {'available, ' + str(b['cuda_devices']) + ' device(s)' if b['cuda'] else 'not available'}",
        f"  matplotlib  {b['matplotlib'] or 'not installed (pip install spikeforge[plot])'}",
        f"  neurons     {', '.join(b['neuron_kernels'])} (fused kernels; 'numba' needs spikeforge[fast], 'triton' spikeforge[gpu] and a CUDA GPU)",
    ]
    _emit(info, "\n".join(lines), args.json)
    return 0


# ---- entry point ----------------------------------------------------------------------------------


def _one_line(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return " ".join(text.split())


def _steady_malloc() -> bool:
    """Keep large freed buffers inside this process (glibc only; the command line owns its process).

    Training allocates ``[T, B, ...]`` activations afresh on every step. With glibc's default settings a
    freed buffer above the mmap threshold goes back to the OS and the next step faults every page in
    again, which measured as a large share of a step here (``benchmarks/RESULTS.md``, ``--malloc``). This
    raises the mmap threshold to its maximum (32 MiB) and the trim threshold to 2 GiB, as the
    environment variables ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` would; if either is
    already set, the user's choice stands. Returns True when applied. Never called on ``import spikeforge``.
    """
    import ctypes
    import ctypes.util
    import os

    if os.environ.get("MALLOC_MMAP_THRESHOLD_") or os.environ.get("MALLOC_TRIM_THRESHOLD_"):
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to tune
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, 32 * 2**20)) and bool(mallopt(m_trim_threshold, 2**31 - 1))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    if argv is None:  # run as the program (not called from Python code): the process is ours
        _steady_malloc()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, or an argparse usage error (already printed)
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    debug = bool(getattr(args, "debug", False))
    where = f"{PROG} {args.command}"
    try:
        return int(args.handler(args))
    except UsageError as e:
        if debug:
            traceback.print_exc()
        print(f"{where}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except (OSError, ValueError, ImportError) as e:  # missing/existing files, bad checkpoints, bad values
        if debug:
            traceback.print_exc()
        print(f"{where}: error: {_one_line(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\n{where}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
