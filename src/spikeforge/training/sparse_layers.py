"""Which Linear layers of the trainer's models run spike-sparse (``TrainConfig.sparse``).

A Linear fed by binary spikes can be a :class:`~spikeforge.events.SparseLinear`: the same parameters and
``state_dict`` as ``nn.Linear``, and on every call it measures the input's spike density and takes the sparse path
below its crossover, the dense GEMM above. The per-call density check costs time, so the sparse layer is built only
where ``benchmarks/sparse_default.py`` measured that it can win (``benchmarks/RESULTS.md``, "Sparse Linear by
default (issue 20, session 8)").
"""

from __future__ import annotations

from torch import nn

from spikeforge.events import SparseLinear
from spikeforge.training.choices import check_sparse

__all__ = ["SPARSE_MIN_OUT_FEATURES", "spike_linear"]

#: ``sparse="auto"``: a spike-fed Linear becomes a SparseLinear only with at least this many outputs. Measured at
#: the trainer's shapes, one thread, forward + backward: with 3 or 10 outputs (256 -> 3 of Yin-Yang, 1024 -> 10 of
#: the Fashion-MNIST MLP, 128 -> 10 of the conv model) the sparse path never beat ``F.linear`` at any density from
#: 1 to 40 % (the exact density pass alone costs about what the whole dense product does), so those stay
#: ``nn.Linear``; with 128 outputs (1568 -> 128) it took 0.68-0.84x the dense time at 1-5 % density, with 1024
#: (1024 -> 1024) 0.44-0.66x. 64 lies between the measured widths 10 and 128 (it was not measured itself).
SPARSE_MIN_OUT_FEATURES = 64


def spike_linear(n_in: int, n_out: int, *, sparse: str, dropout: float = 0.0) -> nn.Linear:
    """The Linear layer for ``n_in`` spike inputs: a :class:`~spikeforge.events.SparseLinear` with ``sparse="auto"``
    where it can pay (at least :data:`SPARSE_MIN_OUT_FEATURES` outputs, no dropout before it), else ``nn.Linear``.

    After ``nn.Dropout`` the training input is not binary (kept spikes are scaled by ``1 / (1 - p)``), so the
    sparse path could run only in evaluation while training would pay the density check on every call: such a
    layer stays ``nn.Linear``. Both initialise alike (same ``state_dict``, same RNG draws).
    """
    if check_sparse("sparse", sparse) == "auto" and n_out >= SPARSE_MIN_OUT_FEATURES and dropout == 0:
        return SparseLinear(n_in, n_out)
    return nn.Linear(n_in, n_out)
