"""``spikeforge info``: version, datasets, and the valid names of models, neurons, surrogates, codes, backends."""

from __future__ import annotations

import argparse
import importlib.util
import platform
from typing import Any

from spikeforge.cli._common import Command
from spikeforge.cli._common import Output

__all__ = ["COMMAND", "run", "collect_info"]


def _matplotlib_version() -> str | None:
    if importlib.util.find_spec("matplotlib") is None:
        return None
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version

    try:
        return version("matplotlib")
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


def _datasets() -> list[dict[str, Any]]:
    from spikeforge.data import dataset_info
    from spikeforge.data import list_datasets
    from spikeforge.data.registry import files_found

    out = []
    for name in list_datasets():
        info = dataset_info(name)
        out.append({
            "name": name, "input_shape": list(info.input_shape), "num_classes": info.num_classes,
            "splits": dict(info.splits), "needs_files": info.needs_files, "files_found": files_found(name),
        })  # fmt: skip
    return out


def collect_info() -> dict[str, Any]:
    """What ``spikeforge info`` reports, as a JSON-safe dict: the valid value of every name option."""
    import torch

    from spikeforge import __version__
    from spikeforge.backends import available_backends
    from spikeforge.neurons import list_neurons
    from spikeforge.surrogate import list_surrogates
    from spikeforge.training.choices import spiking_neurons
    from spikeforge.training.models import DECODINGS
    from spikeforge.training.models import ENCODINGS
    from spikeforge.training.models import list_models

    return {
        "version": __version__,
        "python": platform.python_version(),
        "datasets": _datasets(),
        "models": list_models(),
        "neurons": list_neurons(),
        "spiking_neurons": spiking_neurons(),
        "surrogates": list_surrogates(),
        "encodings": list(ENCODINGS),
        "decodings": list(DECODINGS),
        "backends": {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available(),
            "cuda_devices": torch.cuda.device_count() if torch.cuda.is_available() else 0,
            "matplotlib": _matplotlib_version(),
            "neuron_kernels": available_backends(),
        },
    }


def _text(info: dict[str, Any]) -> str:
    b = info["backends"]
    lines = [f"spikeforge {info['version']} (Python {info['python']})", "", "datasets:"]
    for d in info["datasets"]:
        splits = ", ".join(f"{k} {n}" for k, n in d["splits"].items())
        files = "" if not d["needs_files"] else " [files found]" if d["files_found"] else " [needs files: --data-dir]"
        lines.append(f"  {d['name']:<14} input {tuple(d['input_shape'])}, {d['num_classes']} classes; {splits}{files}")
    neurons = (n if n in info["spiking_neurons"] else n + " (readout)" for n in info["neurons"])
    cuda = f"available, {b['cuda_devices']} device(s)" if b["cuda"] else "not available"
    lines += [
        "",
        f"models:      {', '.join(info['models'])}",
        f"neurons:     {', '.join(neurons)}",
        f"surrogates:  {', '.join(info['surrogates'])}",
        f"encodings:   {', '.join(info['encodings'])}",
        f"decodings:   {', '.join(info['decodings'])}",
        "",
        "backends:",
        f"  torch       {b['torch']} ({b['threads']} threads)",
        f"  cuda        {cuda}",
        f"  matplotlib  {b['matplotlib'] or 'not installed (pip install spikeforge[plot])'}",
        f"  neurons     {', '.join(b['neuron_kernels'])} (fused kernels; 'numba' needs spikeforge[fast], "
        "'triton' spikeforge[gpu] and a CUDA GPU)",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> Output:
    info = collect_info()
    return Output(info, _text(info))


COMMAND = Command(
    "info", "show version, datasets, neurons, surrogates and backends",
    "List what this installation provides: datasets, models, neurons, surrogates, compute backends.",
    ("spikeforge info --json",), run,
)  # fmt: skip
