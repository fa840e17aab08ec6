"""``spikeforge import FILE.nir``: read a NIR graph and list the spikeforge network it builds."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import torch
from torch import nn

from spikeforge.cli._common import Command
from spikeforge.cli._common import Output
from spikeforge.cli._common import layer_lines
from spikeforge.cli._common import numbered
from spikeforge.cli._common import positive_float

if TYPE_CHECKING:
    from spikeforge.layers import SNNSequential

__all__ = ["COMMAND", "run", "read_network", "import_file", "network_text", "network_layer_lines"]


def _arguments(im: argparse.ArgumentParser) -> None:
    im.add_argument("path", type=Path, help="the NIR file to read")
    im.add_argument("--dt", type=positive_float, default=1.0, help="time step of the built network")
    im.add_argument(
        "--discretization", choices=["exact", "euler"], default=None,
        help="how NIR's continuous-time nodes become steps (default: as the file records, else exact)",
    )  # fmt: skip


def network_layer_lines(net: nn.Module) -> list[str]:
    """``Class(settings)`` of each layer of an SNNSequential (or any module list)."""
    from spikeforge.nir import network_layers

    return layer_lines(network_layers(net))


def network_text(net: nn.Module) -> str:
    """One line per layer of an SNNSequential (or any module list): index, class and its settings."""
    return numbered(network_layer_lines(net))


def read_network(
    path: str | os.PathLike[str], *, dt: float, discretization: str | None = None, dtype: torch.dtype | None = None
) -> SNNSequential:
    """Read a NIR file and build the network (an SNNSequential).

    Raises:
        FileNotFoundError: no such file.
        NIRImportError: the file is not a readable NIR graph (the error names the bad nodes), or holds
            unsupported nodes.
    """
    from spikeforge.nir import SUPPORTED_NODES
    from spikeforge.nir import NIRImportError
    from spikeforge.nir import from_nir
    from spikeforge.nir import require_nir

    nir = require_nir()
    if not os.path.isfile(path):
        raise FileNotFoundError(f"NIR file {str(path)!r} does not exist")
    try:
        graph = nir.read(str(path))
    except Exception as err:
        raise NIRImportError(
            f"{str(path)!r} is not a readable NIR graph ({type(err).__name__}: {err}){_diagnose(path)}; "
            f"supported nodes: {', '.join(SUPPORTED_NODES)}"
        ) from err
    return from_nir(graph, dt=dt, discretization=discretization, dtype=dtype)


def import_file(
    path: str | os.PathLike[str], *, dt: float, discretization: str | None = None, dtype: torch.dtype | None = None
) -> tuple[SNNSequential, str]:
    """:func:`read_network` and the summary text ``spikeforge import`` prints: ``(network, text)``."""
    net = read_network(path, dt=dt, discretization=discretization, dtype=dtype)
    n_params = sum(p.numel() for p in net.parameters())
    return net, f"imported {path}: {len(net.layers)} layers, {n_params} parameters, dt={dt}\n{network_text(net)}"


def _diagnose(path: str | os.PathLike[str]) -> str:
    """Name the nodes of a NIR file that ``nir.read`` rejected: unknown types, or missing fields."""
    import h5py

    from spikeforge.nir import require_nir

    nir = require_nir()
    known = set(nir.ir.__all__) - {"NIRNode", "str2NIRNode", "dict2NIRNode"}
    found: list[str] = []

    def walk(group: Any, prefix: str) -> None:
        for name, node in group.items():
            raw = node["type"][()] if isinstance(node, h5py.Group) and "type" in node else None
            kind = raw.decode("utf8") if isinstance(raw, bytes) else raw
            if kind is None:
                found.append(f"{prefix}{name!r} has no 'type' field")
            elif kind not in known:
                found.append(f"{prefix}{name!r} has unknown type {kind!r}")
            elif kind == "NIRGraph" and "nodes" in node:
                walk(node["nodes"], f"{prefix}{name}.")

    try:
        with h5py.File(path, "r") as f:
            walk(f["node"]["nodes"], "")
    except Exception:
        return ""
    return ("; node " + "; node ".join(found)) if found else ""


def run(args: argparse.Namespace) -> Output:
    net, text = import_file(args.path, dt=args.dt, discretization=args.discretization)
    result = {
        "path": str(args.path), "dt": args.dt, "discretization": args.discretization,
        "parameters": sum(p.numel() for p in net.parameters()), "layers": network_layer_lines(net),
    }  # fmt: skip
    return Output(result, text)


COMMAND = Command(
    "import", "load a NIR graph and print the spikeforge network", "Import a NIR graph (needs the nir extra).",
    ("spikeforge import yy.nir --dt 1.0",), run, _arguments,
)  # fmt: skip
