r"""Hodgkin-Huxley neuron (Hodgkin & Huxley 1952, J. Physiol. 117:500-544), squid giant axon, in the
modern convention with the resting potential near -65 mV.

Units: membrane potential ``V`` in mV, time in ms, input current density ``I`` in uA/cm^2, conductances in
mS/cm^2, capacitance in uF/cm^2 (so ``I / C_m`` is in mV/ms). Rates are in 1/ms.

Continuous time::

    C_m dV/dt = I - g_Na m^3 h (V - E_Na) - g_K n^4 (V - E_K) - g_L (V - E_L)
    dx/dt     = alpha_x(V) (1 - x) - beta_x(V) x             for the gates x in {m, h, n}

    alpha_n = 0.01 (V + 55) / (1 - exp(-(V + 55) / 10))      beta_n = 0.125 exp(-(V + 65) / 80)
    alpha_m = 0.1 (V + 40) / (1 - exp(-(V + 40) / 10))       beta_m = 4 exp(-(V + 65) / 18)
    alpha_h = 0.07 exp(-(V + 65) / 20)                       beta_h = 1 / (1 + exp(-(V + 35) / 10))

with C_m = 1, g_Na = 120, g_K = 36, g_L = 0.3, E_Na = 50, E_K = -77, E_L = -54.387 (defaults). The
removable singularities of alpha_n (V = -55) and alpha_m (V = -40) are evaluated through
``x / (1 - exp(-x))`` with a Taylor branch near 0, so values and gradients are finite there.

Discrete time (exponential Euler, staggered: gates with the old ``V``, then ``V`` with the new gates; each
sub-update is the exact solution of its linear ODE with the other variables held over the step)::

    x_inf = alpha_x / (alpha_x + beta_x),  tau_x = 1 / (alpha_x + beta_x)     at V[t]
    x[t+1] = x_inf + (x[t] - x_inf) exp(-dt / tau_x)
    G      = g_Na m^3 h + g_K n^4 + g_L                       at the new gates
    V_inf  = (g_Na m^3 h E_Na + g_K n^4 E_K + g_L E_L + I[t]) / G
    V[t+1] = V_inf + (V[t] - V_inf) exp(-dt G / C_m)
    z[t]   = H(V[t+1] - v_th) [V[t] <= v_th]                  upward crossing of v_th (default 0 mV)

The scheme is first order in ``dt`` and unconditionally stable (gates stay in [0, 1]); the default
``dt = 0.01`` ms matches a tight-tolerance ODE solver to within a few hundredths of a ms in spike times
(see the tests). The spike's surrogate gradient flows through the new ``V``; there is no reset (the
action potential's own dynamics repolarise the membrane). The initial state is ``V = v_init`` (-65 mV)
with every gate at its steady state ``x_inf(v_init)``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from spikeforge._core.spike import SurrogateLike
from spikeforge._core.spike import spike
from spikeforge.neurons.base import Neuron
from spikeforge.neurons.base import register_neuron
from spikeforge.surrogate import Surrogate

__all__ = ["HHParams", "HHState", "HHRates", "hh_rates", "hh_init", "hh_step", "HodgkinHuxley"]

_TAYLOR_BELOW = 1e-4  # |x| below which x / (1 - exp(-x)) uses its Taylor series


class HHParams(NamedTuple):
    c_m: float | Tensor = 1.0  # membrane capacitance, uF/cm^2
    g_na: float | Tensor = 120.0  # maximal sodium conductance, mS/cm^2
    g_k: float | Tensor = 36.0  # maximal potassium conductance, mS/cm^2
    g_l: float | Tensor = 0.3  # leak conductance, mS/cm^2
    e_na: float | Tensor = 50.0  # reversal potentials, mV
    e_k: float | Tensor = -77.0
    e_l: float | Tensor = -54.387
    v_th: float | Tensor = 0.0  # spike detection threshold (upward crossing), mV
    v_init: float | Tensor = -65.0  # initial membrane potential, mV


class HHState(NamedTuple):
    v: Tensor  # membrane potential, mV [B, ...]
    m: Tensor  # sodium activation gate, in [0, 1]
    h: Tensor  # sodium inactivation gate, in [0, 1]
    n: Tensor  # potassium activation gate, in [0, 1]


class HHRates(NamedTuple):
    alpha_m: Tensor
    beta_m: Tensor
    alpha_h: Tensor
    beta_h: Tensor
    alpha_n: Tensor
    beta_n: Tensor


def _x_over_one_minus_exp(x: Tensor) -> Tensor:
    """``x / (1 - exp(-x))`` with its limit 1 at ``x = 0``; finite value and gradient everywhere near 0."""
    small = x.abs() < _TAYLOR_BELOW
    safe = torch.where(small, torch.ones_like(x), x)  # keeps the unused branch (and its gradient) finite
    exact = safe / -torch.expm1(-safe)
    taylor = 1.0 + x / 2.0 + x * x / 12.0
    return torch.where(small, taylor, exact)


def hh_rates(v: Tensor) -> HHRates:
    """Opening (alpha) and closing (beta) rates in 1/ms of the m, h, n gates at membrane potential ``v`` (mV)."""
    return HHRates(
        alpha_m=_x_over_one_minus_exp((v + 40.0) / 10.0),  # = 0.1 (V + 40) / (1 - exp(-(V + 40) / 10))
        beta_m=4.0 * torch.exp(-(v + 65.0) / 18.0),
        alpha_h=0.07 * torch.exp(-(v + 65.0) / 20.0),
        beta_h=torch.sigmoid((v + 35.0) / 10.0),
        alpha_n=0.1 * _x_over_one_minus_exp((v + 55.0) / 10.0),  # = 0.01 (V + 55) / (1 - exp(...))
        beta_n=0.125 * torch.exp(-(v + 65.0) / 80.0),
    )


def hh_init(x_t: Tensor, p: HHParams) -> HHState:
    """``V = v_init`` and each gate at its steady state ``alpha / (alpha + beta)`` there; ``x_t``'s shape/dtype."""
    v = torch.zeros_like(x_t) + p.v_init
    r = hh_rates(v)
    return HHState(
        v=v,
        m=r.alpha_m / (r.alpha_m + r.beta_m),
        h=r.alpha_h / (r.alpha_h + r.beta_h),
        n=r.alpha_n / (r.alpha_n + r.beta_n),
    )


def _gate(x: Tensor, alpha: Tensor, beta: Tensor, dt: float) -> Tensor:
    total = alpha + beta
    x_inf = alpha / total
    return x_inf + (x - x_inf) * torch.exp(-dt * total)


def hh_step(x_t: Tensor, state: HHState, p: HHParams, *, dt: float, surrogate: SurrogateLike) -> tuple[Tensor, HHState]:
    """One exponential-Euler step of ``dt`` ms. ``x_t``: injected current density ``[B, ...]`` in uA/cm^2.

    Returns ``(spikes, new_state)``; a spike marks the step on which ``V`` crosses ``v_th`` upwards.
    """
    v = state.v
    r = hh_rates(v)
    m = _gate(state.m, r.alpha_m, r.beta_m, dt)
    h = _gate(state.h, r.alpha_h, r.beta_h, dt)
    n = _gate(state.n, r.alpha_n, r.beta_n, dt)
    g_na = p.g_na * m**3 * h
    g_k = p.g_k * n**4
    g_tot = g_na + g_k + p.g_l
    v_inf = (g_na * p.e_na + g_k * p.e_k + p.g_l * p.e_l + x_t) / g_tot
    v_new = v_inf + (v - v_inf) * torch.exp(-dt * g_tot / p.c_m)
    was_below = (v <= p.v_th).to(v.dtype)
    z = spike(v_new - p.v_th, surrogate) * was_below
    return z, HHState(v_new, m, h, n)


@register_neuron("hh")
class HodgkinHuxley(Neuron):
    """Hodgkin-Huxley layer over ``[T, B, ...]`` input current densities (uA/cm^2). See the module docstring.

    Args:
        c_m: membrane capacitance (uF/cm^2, > 0).
        g_na, g_k: maximal sodium / potassium conductances (mS/cm^2, >= 0; 0 blocks the channel).
        g_l: leak conductance (mS/cm^2, > 0, which keeps the voltage update defined).
        e_na, e_k, e_l: reversal potentials (mV).
        v_th: spike detection threshold in mV (default 0). v_init: initial membrane potential (mV).
        dt: time step in ms (default 0.01).
        surrogate: a :class:`~spikeforge.surrogate.Surrogate`, a registered name, or None (library
            default). The distance to threshold is in mV: a surrogate a few mV wide gives useful gradients.
        size: per-neuron parameters of this size (last input dim) instead of scalars.
    """

    State = HHState
    Params = HHParams
    init_fn = staticmethod(hh_init)
    step_fn = staticmethod(hh_step)
    checks_divergence = True  # stable scheme, but huge inputs can overflow the rates (neurons._validate)

    def __init__(
        self,
        *,
        c_m: float | Tensor = 1.0,
        g_na: float | Tensor = 120.0,
        g_k: float | Tensor = 36.0,
        g_l: float | Tensor = 0.3,
        e_na: float | Tensor = 50.0,
        e_k: float | Tensor = -77.0,
        e_l: float | Tensor = -54.387,
        v_th: float | Tensor = 0.0,
        v_init: float | Tensor = -65.0,
        dt: float = 0.01,
        surrogate: Surrogate | str | None = None,
        size: int | None = None,
    ) -> None:
        super().__init__(dt=dt, surrogate=surrogate)
        self._check("c_m", c_m, example=1.0, positive=True, why="membrane capacitance, uF/cm^2")
        self._check("g_l", g_l, example=0.3, positive=True, why="leak conductance, mS/cm^2; keeps the update defined")
        for name, g, ex in (("g_na", g_na, 120.0), ("g_k", g_k, 36.0)):
            self._check(name, g, example=ex, nonnegative=True, why="mS/cm^2; 0 blocks the channel")
        values = {"c_m": c_m, "g_na": g_na, "g_k": g_k, "g_l": g_l, "e_na": e_na, "e_k": e_k, "e_l": e_l,
                  "v_th": v_th, "v_init": v_init}  # fmt: skip
        defaults = HHParams()
        for name, value in values.items():
            self._add_param(name, value, size=size, example=float(getattr(defaults, name)))
