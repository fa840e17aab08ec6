"""NIR (Neuromorphic Intermediate Representation) export and import.

``to_nir(model, dt=...)`` writes a network as a ``nir.NIRGraph``; ``from_nir(graph, dt=...)`` builds an
:class:`~spikeforge.layers.SNNSequential` from one. ``nir.write`` / ``nir.read`` do the file I/O;
:func:`export_checkpoint` and :func:`import_file` are the command-line entry points. The optional
``nir`` package is imported only when these functions run (``pip install 'spikeforge[nir]'``).

The parameter contract (``dt``, ``tau``, ``R``, ``v_rest``, ``v_th``, ``v_reset``, reset mode,
``input_scaling`` <-> NIR's continuous-time fields), the two discretizations (``"exact"``, the
default, and ``"euler"``, the convention of snnTorch/SpikingJelly/Norse) and the named
approximations are documented in one place: :mod:`spikeforge.nir._mapping`.

Supported layers: ``nn.Linear`` (Affine/Linear), ``nn.Conv1d``/``nn.Conv2d``, ``nn.Flatten``,
``nn.AvgPool2d`` and :class:`~spikeforge.nir.layers.SumPool2d`, ``nn.MaxPool2d`` directly after a
spiking layer (exactly SumPool2d + Threshold(0.5) on 0/1 spikes), :class:`~spikeforge.nir.layers.Threshold`,
:class:`~spikeforge.nir.layers.Scale`, and the neurons IF, LIF, CubaLIF, LI and RecurrentLIF (a
NIR subgraph ``Input -> LIF <-> Linear -> Output``). Dropout/Identity are skipped (inference), an
eval-mode BatchNorm directly after a Conv/Linear is folded into it. The initial state is not part
of NIR: imported neurons start as spikeforge's do (LIF/LI/CubaLIF at ``v_rest``, IF at 0).

Example::

    graph = to_nir(net, dt=1.0)
    nir.write("net.nir", graph)
    net2 = from_nir(nir.read("net.nir"), dt=1.0)    # same spikes as net
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from spikeforge.nir._export import network_layers, require_nir, to_nir
from spikeforge.nir._import import SUPPORTED_NODES, from_nir
from spikeforge.nir._mapping import (
    APPROXIMATIONS,
    DISCRETIZATIONS,
    NIRApproximationWarning,
    NIRExportError,
    NIRImportError,
)
from spikeforge.nir.layers import Scale, SumPool2d, Threshold

__all__ = [
    "to_nir", "from_nir", "export_checkpoint", "import_file", "summarize",
    "DISCRETIZATIONS", "APPROXIMATIONS", "SUPPORTED_NODES",
    "NIRApproximationWarning", "NIRExportError", "NIRImportError",
    "Threshold", "Scale", "SumPool2d",
]  # fmt: skip


def summarize(net: nn.Module) -> str:
    """One line per layer of an SNNSequential (or any module list): index, class and its settings."""
    lines = []
    for i, layer in enumerate(network_layers(net)):
        extra = layer.extra_repr()
        lines.append(f"  {i:>3}  {type(layer).__name__}({extra})")
    return "\n".join(lines)


def _common_dt(net: nn.Module) -> float:
    from spikeforge.neurons import Neuron

    dts = sorted({float(layer.dt) for layer in network_layers(net) if isinstance(layer, Neuron)})
    if len(dts) != 1:
        raise ValueError(f"the network's neuron layers use dt values {dts}; pass dt= explicitly")
    return dts[0]


def export_checkpoint(
    checkpoint: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    dt: float | None = None,
    discretization: str = "exact",
    approximate: tuple[str, ...] = (),
) -> str:
    """Write the network of a training checkpoint as a NIR file; returns a human-readable summary.

    Args:
        checkpoint: a ``spikeforge train`` checkpoint (``best.pt`` / ``checkpoint.pt``).
        out_path: the NIR (HDF5) file to write.
        dt: NIR time step; ``None`` uses the neurons' own ``dt`` (they must agree).
        discretization, approximate: see :func:`to_nir`.
    The encoder and decoder of the classifier are not part of NIR: the graph maps the encoded input
    sequence to the readout layer's output.
    """
    nir = require_nir()
    from spikeforge.train import load_checkpoint

    model, config, _info = load_checkpoint(checkpoint)
    net = model.network
    input_shape: Any = None
    try:
        from spikeforge.data import dataset_info

        input_shape = tuple(int(v) for v in dataset_info(config.dataset).input_shape)
    except Exception:  # noqa: BLE001 - unknown dataset: fall back to inferring from the first layer
        input_shape = None
    step = _common_dt(net) if dt is None else float(dt)
    graph = to_nir(net, dt=step, input_shape=input_shape, discretization=discretization, approximate=approximate)
    nir.write(str(out_path), graph)
    n_nodes = len(graph.nodes) - 2
    return (
        f"wrote {out_path}: {n_nodes} NIR nodes, dt={step}, discretization={discretization}\n"
        f"network (encoding {model.encoding!r} and decoding {model.decoding!r} are not part of the graph):\n"
        f"{summarize(net)}"
    )


def import_file(
    path: str | os.PathLike[str],
    *,
    dt: float,
    discretization: str | None = None,
    dtype: torch.dtype | None = None,
) -> tuple[nn.Module, str]:
    """Read a NIR file and build the network: returns ``(SNNSequential, summary text)``.

    Raises:
        FileNotFoundError: no such file.
        NIRImportError: the file is not a readable NIR graph, or holds unsupported nodes.
    """
    nir = require_nir()
    if not os.path.isfile(path):
        raise FileNotFoundError(f"NIR file {str(path)!r} does not exist")
    try:
        graph = nir.read(str(path))
    except Exception as err:  # noqa: BLE001 - h5py/nir raise OSError, KeyError, AssertionError, ValueError...
        raise NIRImportError(
            f"{str(path)!r} is not a readable NIR graph ({type(err).__name__}: {err}){_diagnose(path)}; "
            f"supported nodes: {', '.join(SUPPORTED_NODES)}"
        ) from err
    net = from_nir(graph, dt=dt, discretization=discretization, dtype=dtype)
    n_params = sum(p.numel() for p in net.parameters())
    return net, f"imported {path}: {len(net.layers)} layers, {n_params} parameters, dt={dt}\n{summarize(net)}"


def _diagnose(path: str | os.PathLike[str]) -> str:
    """Name the nodes of a NIR file that ``nir.read`` rejected: unknown types, or missing fields."""
    import h5py

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
    except Exception:  # noqa: BLE001 - not even HDF5: nothing more to say
        return ""
    return ("; node " + "; node ".join(found)) if found else ""
