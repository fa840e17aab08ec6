"""Exact gradients (issue 15), without surrogates.

- Continuous-time, event-based simulation of feed-forward current-based LIF networks: spike times are roots of the
  membrane's closed form, found to float64 precision (:mod:`~spikeforge.exact.simulate`), and EventProp's adjoint
  gradients (Wunderlich & Pehle 2021, :mod:`~spikeforge.exact.eventprop`). Compiled with Numba when the ``fast``
  extra is installed (``pip install spikeforge[fast]``); without it the same float64 loops run interpreted.
- Analytic time-to-first-spike layers (Göltz et al. 2021; Mostafa 2017 as the non-leaky case,
  :mod:`~spikeforge.exact.ttfs`), the losses of those papers (:mod:`~spikeforge.exact.losses`) and the Yin-Yang
  latency code (:mod:`~spikeforge.exact.encode`).
"""

from spikeforge.exact.encode import T_BIAS
from spikeforge.exact.encode import T_EARLY
from spikeforge.exact.encode import T_LATE
from spikeforge.exact.encode import append_bias_spikes
from spikeforge.exact.encode import latency_times
from spikeforge.exact.encode import yinyang_spike_times
from spikeforge.exact.eventprop import EventPropFunction
from spikeforge.exact.eventprop import eventprop
from spikeforge.exact.losses import first_spike_cross_entropy
from spikeforge.exact.losses import max_voltage_cross_entropy
from spikeforge.exact.losses import silent_to_t_max
from spikeforge.exact.losses import spike_count_regulariser
from spikeforge.exact.losses import time_regulariser
from spikeforge.exact.simulate import EventConfig
from spikeforge.exact.simulate import check_network
from spikeforge.exact.simulate import max_membrane
from spikeforge.exact.simulate import simulate
from spikeforge.exact.ttfs import MAX_SPAN
from spikeforge.exact.ttfs import TTFSLayer
from spikeforge.exact.ttfs import TTFSNetwork
from spikeforge.exact.ttfs import TTFSParams
from spikeforge.exact.ttfs import ttfs_max_membrane
from spikeforge.exact.ttfs import ttfs_membrane
from spikeforge.exact.ttfs import ttfs_spike_times

__all__ = [
    # continuous-time simulation and EventProp
    "EventConfig", "simulate", "max_membrane", "check_network", "eventprop", "EventPropFunction",
    # analytic time-to-first-spike
    "TTFSParams", "ttfs_spike_times", "ttfs_membrane", "ttfs_max_membrane", "TTFSLayer", "TTFSNetwork", "MAX_SPAN",
    # losses and codes
    "first_spike_cross_entropy", "time_regulariser", "max_voltage_cross_entropy", "spike_count_regulariser",
    "silent_to_t_max", "latency_times", "yinyang_spike_times", "append_bias_spikes", "T_EARLY", "T_LATE", "T_BIAS",
]  # fmt: skip
