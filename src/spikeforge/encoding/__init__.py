"""Spike codes: encoders ``[B, ...] -> [T, B, ...]`` and decoders ``[T, B, ...] -> [B, ...]``.

Encoders: :func:`constant` (analog current), :func:`rate` (Bernoulli), :func:`poisson`,
:func:`latency` (time to first spike), :func:`phase` (weighted phase), :func:`burst`,
:func:`delta` (send-on-delta for streaming signals). Decoders: :func:`spike_count`, :func:`spike_rate`,
:func:`first_spike_time`, :func:`soft_first_spike_time`, :func:`max_membrane`, :func:`phase_decode`,
:func:`delta_reconstruct`. All outputs follow the input's dtype and device; randomness only through a
keyword-only ``generator``.
"""

from spikeforge.encoding.decode import first_spike_time
from spikeforge.encoding.decode import max_membrane
from spikeforge.encoding.decode import soft_first_spike_time
from spikeforge.encoding.decode import spike_count
from spikeforge.encoding.decode import spike_rate
from spikeforge.encoding.delta import DeltaState
from spikeforge.encoding.delta import delta
from spikeforge.encoding.delta import delta_reconstruct
from spikeforge.encoding.delta import delta_step
from spikeforge.encoding.rate import constant
from spikeforge.encoding.rate import poisson
from spikeforge.encoding.rate import rate
from spikeforge.encoding.temporal import burst
from spikeforge.encoding.temporal import latency
from spikeforge.encoding.temporal import phase
from spikeforge.encoding.temporal import phase_decode

__all__ = [
    "constant", "rate", "poisson", "latency", "phase", "phase_decode", "burst", "delta", "delta_step",
    "delta_reconstruct", "DeltaState", "spike_count", "spike_rate", "first_spike_time", "soft_first_spike_time",
    "max_membrane",
]  # fmt: skip
