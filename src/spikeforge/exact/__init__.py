"""Exact, event-based simulation and gradients (issue 15): spike times found by root finding on the closed
form of current-based LIF neurons (:mod:`~spikeforge.exact.simulate`) and EventProp's adjoint gradients
(:mod:`~spikeforge.exact.eventprop`). Compiled with Numba when the ``fast`` extra is installed
(``pip install spikeforge[fast]``); without it the same float64 loops run interpreted, much slower."""

from spikeforge.exact.eventprop import EventPropFunction
from spikeforge.exact.eventprop import eventprop
from spikeforge.exact.simulate import EventConfig
from spikeforge.exact.simulate import check_network
from spikeforge.exact.simulate import max_membrane
from spikeforge.exact.simulate import simulate

__all__ = ["EventConfig", "simulate", "max_membrane", "check_network", "eventprop", "EventPropFunction"]
