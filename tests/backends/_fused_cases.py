"""Neuron cases shared by the fused-backend tests (numba/torch in test_fused.py, triton in test_triton_kernel.py)."""

from __future__ import annotations

import spikeforge as sf

NEURONS = {
    "if": lambda **kw: sf.IF(v_th=1.0, v_reset=-0.2 if kw["reset"] == "to_value" else 0.0, **kw),
    "lif": lambda **kw: sf.LIF(6.0, dt=0.5, v_rest=0.1, v_th=0.9, v_reset=-0.1, r=1.3, **kw),
    "lif_raw": lambda **kw: sf.LIF(beta=0.85, input_scaling="none", **kw),
    "cuba_lif": lambda **kw: sf.CubaLIF(8.0, 3.0, **kw),
    "alif": lambda **kw: sf.ALIF(10.0, 30.0, 0.7, **kw),
}
# input scale per neuron so that every case spikes, but not on every step
SCALE = {"if": 0.6, "lif": 4.0, "lif_raw": 0.8, "cuba_lif": 1.2, "alif": 3.0}
