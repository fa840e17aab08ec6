"""NIR (Neuromorphic Intermediate Representation) export and import.

``to_nir(model, dt=...)`` writes a network as a ``nir.NIRGraph``; ``from_nir(graph, dt=...)`` builds an
:class:`~spikeforge.layers.SNNSequential` from one. ``nir.write`` writes a file; read one with
``read_nir(path, max_bytes=...)``, never ``nir.read``: it refuses, before reading any data, the HDF5
features that make ``nir.read`` open other local files (external storage and links, virtual datasets,
soft links) and files whose declared data exceeds ``max_bytes`` (256 MiB by default; see
:mod:`spikeforge.nir._read`). ``spikeforge export`` / ``spikeforge import`` on the command line:
:mod:`spikeforge.cli.export`, :mod:`spikeforge.cli.import_`. The optional ``nir`` package is imported only when these functions
run (``pip install 'spikeforge[nir]'``).

The parameter contract (``dt``, ``tau``, ``R``, ``v_rest``, ``v_th``, ``v_reset``, reset mode,
``input_scaling`` <-> NIR's continuous-time fields), the two discretizations (``"exact"``, the
default, and ``"euler"``, the convention of snnTorch/SpikingJelly/Norse) and the named
approximations are documented in one place: :mod:`spikeforge.nir._mapping`.

Supported layers: ``nn.Linear`` (Affine/Linear), ``nn.Conv1d``/``nn.Conv2d``, ``nn.Flatten``,
``nn.AvgPool2d`` and :class:`~spikeforge.nir.layers.SumPool2d`, ``nn.MaxPool2d`` directly after a
spiking layer (exactly SumPool2d + Threshold(0.5) on 0/1 spikes), :class:`~spikeforge.nir.layers.Threshold`,
:class:`~spikeforge.nir.layers.Scale`, and the neurons IF, LIF, CubaLIF, LI and RecurrentLIF (a
NIR subgraph ``Input -> LIF <-> Linear -> Output``). Dropout/Identity are skipped (inference), an
eval-mode BatchNorm directly after a Conv/Linear is folded into it.

Delays (:class:`~spikeforge.synapses.DelayedLinear`): a rounded (``layer.rounded()``) per-axon layer is exported
as NIR ``Delay(delay = d * dt)`` followed by the Affine/Linear, and a ``Delay -> Affine/Linear`` pair imports as
one (delays must be whole multiples of ``dt``). NIR cannot express: per-synapse delays (its Delay node delays a
whole channel, one value per input, not one per weight), interpolated (training) delays (a temporal convolution),
and the :class:`~spikeforge.synapses.SRM` layer (no spike-response-model node: its refractory response is an
alpha kernel of its own spikes, not a reset); these are refused with a message naming the limitation. The initial state is not part
of NIR: imported neurons start as spikeforge's do (LIF/LI/CubaLIF at ``v_rest``, IF at 0).

Example::

    graph = to_nir(net, dt=1.0)
    nir.write("net.nir", graph)
    net2 = from_nir(read_nir("net.nir"), dt=1.0)    # same spikes as net
"""

from __future__ import annotations

from spikeforge.nir._export import network_layers
from spikeforge.nir._export import require_nir
from spikeforge.nir._export import to_nir
from spikeforge.nir._import import SUPPORTED_NODES
from spikeforge.nir._import import from_nir
from spikeforge.nir._mapping import APPROXIMATIONS
from spikeforge.nir._mapping import DISCRETIZATIONS
from spikeforge.nir._mapping import NIRApproximationWarning
from spikeforge.nir._mapping import NIRExportError
from spikeforge.nir._mapping import NIRImportError
from spikeforge.nir._read import MAX_NIR_BYTES
from spikeforge.nir._read import NIRFileError
from spikeforge.nir._read import read_nir
from spikeforge.nir.layers import Scale
from spikeforge.nir.layers import SumPool2d
from spikeforge.nir.layers import Threshold

__all__ = [
    "to_nir", "from_nir", "read_nir", "network_layers", "require_nir",
    "DISCRETIZATIONS", "APPROXIMATIONS", "SUPPORTED_NODES", "MAX_NIR_BYTES",
    "NIRApproximationWarning", "NIRExportError", "NIRImportError", "NIRFileError",
    "Threshold", "Scale", "SumPool2d",
]  # fmt: skip
