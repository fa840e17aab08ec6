"""Spiking transformers: Spikformer (Zhou et al., ICLR 2023) and the Spike-driven Transformer (Yao et al.,
NeurIPS 2023), their non-spiking twins, the "spike-driven" check and BatchNorm folding.

Tokens are time-major ``[T, B, N, D]``; images ``[T, B, C, H, W]``. Every product between activations is a
module (:class:`SpikeMatmul`, :class:`Hadamard`, :class:`TokenSum`), so :func:`spike_driven_report` and
:func:`spikeforge.energy.count` see its inputs::

    from spikeforge.transformer import build_transformer, spike_driven_report
    net = build_transformer("sdt", (1, 28, 28), 10).eval()
    print(spike_driven_report(net, x_seq).exceptions)     # ('0.conv1.conv',): the conv on real pixels
"""

from spikeforge.transformer._ops import Hadamard
from spikeforge.transformer._ops import ReLUTwin
from spikeforge.transformer._ops import Softmax
from spikeforge.transformer._ops import SpikeMatmul
from spikeforge.transformer._ops import TokenMean
from spikeforge.transformer._ops import TokenSum
from spikeforge.transformer.blocks import LIF_DEFAULTS
from spikeforge.transformer.blocks import SDSA
from spikeforge.transformer.blocks import SSA
from spikeforge.transformer.blocks import Block
from spikeforge.transformer.blocks import LinearBN
from spikeforge.transformer.blocks import SpikingMLP
from spikeforge.transformer.models import KINDS
from spikeforge.transformer.models import ConvBN
from spikeforge.transformer.models import Head
from spikeforge.transformer.models import PatchSplit
from spikeforge.transformer.models import TransformerBody
from spikeforge.transformer.models import TransformerOptions
from spikeforge.transformer.models import build_transformer
from spikeforge.transformer.models import check_transformer_options
from spikeforge.transformer.models import fold_batchnorm
from spikeforge.transformer.spike_driven import ProductRecord
from spikeforge.transformer.spike_driven import SpikeDrivenReport
from spikeforge.transformer.spike_driven import spike_driven_report

__all__ = [
    "SpikeMatmul", "Hadamard", "TokenSum", "TokenMean", "Softmax", "ReLUTwin", "LIF_DEFAULTS", "LinearBN", "SSA",
    "SDSA", "SpikingMLP", "Block", "ConvBN", "PatchSplit", "TransformerBody", "Head", "TransformerOptions",
    "check_transformer_options", "build_transformer", "fold_batchnorm", "KINDS", "ProductRecord",
    "SpikeDrivenReport", "spike_driven_report",
]  # fmt: skip
