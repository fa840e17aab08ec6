"""``spikeforge export CHECKPOINT --nir OUT.nir``: write a trained network as a NIR graph."""

from __future__ import annotations

import argparse
import io
import os
import re
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from spikeforge._core.files import atomic_write_bytes
from spikeforge.cli._common import PROG
from spikeforge.cli._common import Command
from spikeforge.cli._common import Output
from spikeforge.cli._common import UsageError
from spikeforge.cli._common import existing_file
from spikeforge.cli._common import numbered
from spikeforge.cli._common import positive_float
from spikeforge.cli._common import writable_file
from spikeforge.cli.import_ import network_layer_lines

__all__ = ["COMMAND", "run", "export_network", "export_checkpoint"]


def _arguments(ex: argparse.ArgumentParser) -> None:
    ex.add_argument("checkpoint", type=Path, help="a best.pt or checkpoint.pt written by 'spikeforge train'")
    ex.add_argument("--nir", type=Path, required=True, metavar="OUT.nir", help="the NIR (HDF5) file to write")
    ex.add_argument("--dt", type=positive_float, default=None, help="NIR time step (default: the neurons' dt)")
    ex.add_argument(
        "--discretization",
        choices=["exact", "euler"],
        default="exact",
        help="euler matches snnTorch/SpikingJelly (use with --dt 1e-4)",
    )
    ex.add_argument(
        "--approximate",
        action="append",
        default=[],
        choices=["subtract_as_reset"],
        help="allow a named lossy mapping (reset by subtraction written as reset to v_reset)",
    )


def _common_dt(net: nn.Module) -> float:
    from spikeforge.neurons import Neuron
    from spikeforge.nir import network_layers

    dts = sorted({float(layer.dt) for layer in network_layers(net) if isinstance(layer, Neuron)})
    if len(dts) != 1:
        raise ValueError(f"the network's neuron layers use dt values {dts}; pass dt= explicitly")
    return dts[0]


def _input_shape(dataset: str) -> tuple[int, ...] | None:
    """One sample's shape for ``dataset``; None (inferred from the first layer) for an unknown dataset."""
    from spikeforge.data import dataset_info

    try:
        return tuple(int(v) for v in dataset_info(dataset).step_shape)
    except Exception:
        return None


def export_network(
    checkpoint: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    dt: float | None = None,
    discretization: str = "exact",
    approximate: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Write the network of a training checkpoint as a NIR file; returns what was written (the ``--json`` result).

    Args:
        checkpoint: a ``spikeforge train`` checkpoint (``best.pt`` / ``checkpoint.pt``).
        out_path: the NIR (HDF5) file to write.
        dt: NIR time step; ``None`` uses the neurons' own ``dt`` (they must agree).
        discretization, approximate: see :func:`spikeforge.nir.to_nir`.
    The encoder and decoder of the classifier are not part of NIR: the graph maps the encoded input
    sequence to the readout layer's output.
    """
    from spikeforge.nir import require_nir
    from spikeforge.nir import to_nir
    from spikeforge.training.saved import load_checkpoint

    nir = require_nir()
    model, config, _info = load_checkpoint(checkpoint)
    net = model.network
    step = _common_dt(net) if dt is None else float(dt)
    graph = to_nir(
        net, dt=step, input_shape=_input_shape(config.dataset), discretization=discretization, approximate=approximate
    )
    buffer = io.BytesIO()  # rendered in memory, then written by the safe writer (never through a planted link)
    nir.write(buffer, graph)
    atomic_write_bytes(out_path, buffer.getvalue())
    return {
        "nir": str(out_path), "nodes": len(graph.nodes) - 2, "dt": step, "discretization": discretization,
        "approximate": list(approximate), "encoding": model.encoding, "decoding": model.decoding,
        "layers": network_layer_lines(net),
    }  # fmt: skip


def _text(r: Mapping[str, Any]) -> str:
    return (
        f"wrote {r['nir']}: {r['nodes']} NIR nodes, dt={r['dt']}, discretization={r['discretization']}\n"
        f"network (encoding {r['encoding']!r} and decoding {r['decoding']!r} are not part of the graph):\n"
        f"{numbered(r['layers'])}"
    )


def export_checkpoint(checkpoint: str | os.PathLike[str], out_path: str | os.PathLike[str], **kwargs: Any) -> str:
    """:func:`export_network` and the summary text ``spikeforge export`` prints."""
    return _text(export_network(checkpoint, out_path, **kwargs))


def _flag_hint(message: str) -> str:
    """The library's hint ``approximate=('name',)`` written as the command line's ``--approximate name``."""
    return re.sub(r"approximate=\('(\w+)',\)", r"--approximate \1", message)


def run(args: argparse.Namespace) -> Output:
    """Export; a lossy mapping allowed by ``--approximate`` is reported as one ``warning:`` line on stderr (and in
    the result's ``warnings``), not as a Python warning with a source line."""
    from spikeforge.nir import NIRApproximationWarning
    from spikeforge.nir import NIRExportError

    existing_file(args.checkpoint, "checkpoint")
    writable_file(args.nir, "--nir")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", NIRApproximationWarning)
            result = export_network(
                args.checkpoint, args.nir, dt=args.dt, discretization=args.discretization,
                approximate=tuple(args.approximate),
            )  # fmt: skip
    except NIRExportError as e:
        if _flag_hint(str(e)) != str(e):  # a flag the user can add: a usage error (exit code 2)
            raise UsageError(_flag_hint(str(e))) from e
        raise NIRExportError(str(e)) from e  # the model has no NIR form: a runtime failure (exit code 1)
    notes = [str(w.message) for w in caught if issubclass(w.category, NIRApproximationWarning)]
    for w in caught:
        if not issubclass(w.category, NIRApproximationWarning):  # pass any other warning on unchanged
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    for note in notes:
        print(f"{PROG} export: warning: {note}", file=sys.stderr)
    result["warnings"] = notes
    return Output(result, _text(result))


COMMAND = Command(
    "export", "write a checkpoint's network as a NIR graph", "Export a trained network to NIR (needs the nir extra).",
    ("spikeforge export runs/yy/best.pt --nir yy.nir --approximate subtract_as_reset",), run, _arguments,
)  # fmt: skip
