"""Spiking language models: SpikeGPT (RWKV-4 with spiking activations) and its WKV operator.

::

    from spikeforge.lm import SpikeGPT, SpikeGPTConfig
    model = SpikeGPT(SpikeGPTConfig(vocab_size=81, d_model=128, n_layers=4))
    logits, state = model(tokens)          # parallel form, tokens [T, B] (time-major)
    logits, state = model.step(token, state)  # recurrent form, one token [B]
"""

from spikeforge.lm.model import LM_NEURONS
from spikeforge.lm.model import BlockState
from spikeforge.lm.model import SpikeGPT
from spikeforge.lm.model import SpikeGPTConfig
from spikeforge.lm.wkv import WKVState
from spikeforge.lm.wkv import wkv_parallel
from spikeforge.lm.wkv import wkv_step

__all__ = ["SpikeGPT", "SpikeGPTConfig", "BlockState", "LM_NEURONS", "WKVState", "wkv_parallel", "wkv_step"]
