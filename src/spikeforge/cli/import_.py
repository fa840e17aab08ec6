"""``spikeforge import FILE.nir``: read a NIR graph and list the spikeforge network it builds."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from spikeforge.cli._common import Command
from spikeforge.cli._common import Output
from spikeforge.cli._common import layer_lines
from spikeforge.cli._common import numbered
from spikeforge.cli._common import positive_float
from spikeforge.cli._common import positive_int

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
    im.add_argument(
        "--max-bytes", type=positive_int, default=None,
        help="refuse files larger than this or declaring more data, in bytes (default 256 MiB); "
        "raise it only for a file you trust",
    )  # fmt: skip


def network_layer_lines(net: nn.Module) -> list[str]:
    """``Class(settings)`` of each layer of an SNNSequential (or any module list)."""
    from spikeforge.nir import network_layers

    return layer_lines(network_layers(net))


def network_text(net: nn.Module) -> str:
    """One line per layer of an SNNSequential (or any module list): index, class and its settings."""
    return numbered(network_layer_lines(net))


def read_network(
    path: str | os.PathLike[str],
    *,
    dt: float,
    discretization: str | None = None,
    dtype: torch.dtype | None = None,
    max_bytes: int | None = None,
) -> SNNSequential:
    """Read a NIR file (checked first by :func:`spikeforge.nir.read_nir`) and build the network (an SNNSequential).

    ``max_bytes`` caps the file's size and declared data (default ``spikeforge.nir.MAX_NIR_BYTES``, 256 MiB).

    Raises:
        FileNotFoundError: no such file.
        NIRFileError: the file uses an unsafe HDF5 feature (external storage or links, soft links, virtual
            datasets) or exceeds ``max_bytes``; nothing was read.
        NIRImportError: the file is not a readable NIR graph (the error names the bad nodes), or holds
            unsupported nodes.
    """
    from spikeforge.nir import MAX_NIR_BYTES
    from spikeforge.nir import from_nir
    from spikeforge.nir import read_nir

    graph = read_nir(path, max_bytes=MAX_NIR_BYTES if max_bytes is None else max_bytes)
    return from_nir(graph, dt=dt, discretization=discretization, dtype=dtype)


def import_file(
    path: str | os.PathLike[str],
    *,
    dt: float,
    discretization: str | None = None,
    dtype: torch.dtype | None = None,
    max_bytes: int | None = None,
) -> tuple[SNNSequential, str]:
    """:func:`read_network` and the summary text ``spikeforge import`` prints: ``(network, text)``."""
    net = read_network(path, dt=dt, discretization=discretization, dtype=dtype, max_bytes=max_bytes)
    n_params = sum(p.numel() for p in net.parameters())
    return net, f"imported {path}: {len(net.layers)} layers, {n_params} parameters, dt={dt}\n{network_text(net)}"


def run(args: argparse.Namespace) -> Output:
    net, text = import_file(args.path, dt=args.dt, discretization=args.discretization, max_bytes=args.max_bytes)
    result = {
        "path": str(args.path), "dt": args.dt, "discretization": args.discretization,
        "parameters": sum(p.numel() for p in net.parameters()), "layers": network_layer_lines(net),
    }  # fmt: skip
    return Output(result, text)


COMMAND = Command(
    "import", "load a NIR graph and print the spikeforge network", "Import a NIR graph (needs the nir extra).",
    ("spikeforge import yy.nir --dt 1.0",), run, _arguments,
)  # fmt: skip
