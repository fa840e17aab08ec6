"""Neuron cases shared by the fused-backend tests (numba/torch in test_fused.py, triton in test_triton_kernel.py).

Which neurons the fused kernels run comes from the registry and each class's ``capabilities.fused``; the
tables below only tune a case (constructor arguments and input scale so that every case spikes, but not on
every step). A fused neuron without an entry is tested with its defaults; ``lif_raw`` is an extra variant.
"""

from __future__ import annotations

from typing import Any, Callable

from spikeforge.neurons import NEURON_REGISTRY, Neuron, get_neuron

FUSED_NEURONS = sorted(name for name, cls in NEURON_REGISTRY.items() if cls.capabilities.fused)
DEFAULT_SCALE = 2.0

# registered name -> (input scale, constructor arguments for a reset mode)
_TUNING: dict[str, tuple[float, Callable[[str], dict[str, Any]]]] = {
    "if": (0.6, lambda reset: {"v_th": 1.0, "v_reset": -0.2 if reset == "to_value" else 0.0}),
    "lif": (4.0, lambda reset: {"tau_mem": 6.0, "dt": 0.5, "v_rest": 0.1, "v_th": 0.9, "v_reset": -0.1, "r": 1.3}),
    "cuba_lif": (1.2, lambda reset: {"tau_mem": 8.0, "tau_syn": 3.0}),
    "alif": (3.0, lambda reset: {"tau_mem": 10.0, "tau_adapt": 30.0, "adapt": 0.7}),
}
# extra case -> (registered name, input scale, constructor arguments)
_VARIANTS: dict[str, tuple[str, float, dict[str, Any]]] = {
    "lif_raw": ("lif", 0.8, {"beta": 0.85, "input_scaling": "none"}),
}


def _factory(registered: str, tuning: Callable[[str], dict[str, Any]]) -> Callable[..., Neuron]:
    return lambda **kw: get_neuron(registered, **tuning(kw.get("reset", "subtract")), **kw)


NEURONS: dict[str, Callable[..., Neuron]] = {}
SCALE: dict[str, float] = {}
for _name in FUSED_NEURONS:
    SCALE[_name], _tune = _TUNING.get(_name, (DEFAULT_SCALE, lambda reset: {}))
    NEURONS[_name] = _factory(_name, _tune)
for _name, (_registered, _scale, _kwargs) in _VARIANTS.items():
    if _registered in FUSED_NEURONS:
        SCALE[_name] = _scale
        NEURONS[_name] = _factory(_registered, lambda reset, kw=_kwargs: kw)
assert set(_TUNING) <= set(FUSED_NEURONS), f"tuning for neurons that are not fused: {set(_TUNING) - set(FUSED_NEURONS)}"
