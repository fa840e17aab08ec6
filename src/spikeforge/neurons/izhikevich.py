r"""Izhikevich simple spiking neuron (Izhikevich 2003, "Simple model of spiking neurons",
IEEE Trans. Neural Networks 14(6):1569-1572).

Continuous time (``v`` membrane potential in mV, ``u`` recovery variable, ``t`` in ms, ``I`` input in the
model's dimensionless current units, as in the paper)::

    dv/dt = 0.04 v^2 + 5 v + 140 - u + I
    du/dt = a (b v - u)
    if v > v_peak (30 mV):  v <- c,  u <- u + d

Discrete time (semi-implicit Euler, the ordering of the paper's own code: ``v`` first, then ``u`` with the
new ``v``; then the spike test and the reset)::

    v'     = v[t] + dt (0.04 v[t]^2 + 5 v[t] + 140 - u[t] + I[t])
    u'     = u[t] + dt a (b v' - u[t])
    z[t]   = H(v' - v_peak)                       strict: no spike at v' == v_peak
    v[t+1] = c           where z[t] = 1, else v'
    u[t+1] = u' + d      where z[t] = 1, else u'

The default ``dt = 0.1`` ms keeps the inter-spike intervals within about 10 % of the converged ODE
(measured against dt = 0.01 ms: fast spiking 8.0 vs 7.4 ms, regular spiking 45.2 vs 44.9 ms at I = 10).
``dt = 0.5`` ms is the step of the paper's own code (which integrates ``v`` with two 0.5 ms Euler half-steps
per 1 ms step of ``u``): 5x cheaper, same qualitative patterns, but fast-spiking intervals 40-50 % too long.
The initial state is ``v = v_init`` (-65 mV, as in the paper's code) and ``u = b v_init``.

Named parameter sets (a, b, c, d) from Fig. 2 of the paper are in :data:`IZHIKEVICH_PRESETS`.

Gradients: the spike uses the surrogate of the distance ``v' - v_peak`` (in mV, so a surrogate with a width
of a few mV, e.g. ``FastSigmoid(slope=0.1)``, gives useful gradients). ``detach_reset=True`` (default) keeps
both jumps (``v <- c`` and ``u <- u + d``) out of the autograd graph, as in :mod:`spikeforge.neurons.lif`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from spikeforge._core.spike import SurrogateLike
from spikeforge._core.spike import spike
from spikeforge.neurons._validate import check_below
from spikeforge.neurons.base import Neuron
from spikeforge.neurons.base import register_neuron
from spikeforge.surrogate import Surrogate

__all__ = [
    "IzhikevichParams", "IzhikevichState", "izhikevich_init", "izhikevich_step", "izhikevich_preset", "Izhikevich",
    "IZHIKEVICH_PRESETS",
]  # fmt: skip


class IzhikevichParams(NamedTuple):
    a: float | Tensor = 0.02  # recovery rate, 1/ms
    b: float | Tensor = 0.2  # sensitivity of u to v
    c: float | Tensor = -65.0  # after-spike reset of v, mV
    d: float | Tensor = 8.0  # after-spike increment of u
    v_peak: float | Tensor = 30.0  # spike cut-off, mV
    v_init: float | Tensor = -65.0  # initial v, mV (u starts at b v_init)


class IzhikevichState(NamedTuple):
    v: Tensor  # membrane potential, mV [B, ...]
    u: Tensor  # recovery variable [B, ...]


# (a, b, c, d) of Izhikevich 2003, Fig. 2 (cortical cell classes).
IZHIKEVICH_PRESETS: dict[str, tuple[float, float, float, float]] = {
    "regular_spiking": (0.02, 0.2, -65.0, 8.0),
    "intrinsically_bursting": (0.02, 0.2, -55.0, 4.0),
    "chattering": (0.02, 0.2, -50.0, 2.0),
    "fast_spiking": (0.1, 0.2, -65.0, 2.0),
    "low_threshold_spiking": (0.02, 0.25, -65.0, 2.0),
}
_ALIASES = {
    "rs": "regular_spiking",
    "ib": "intrinsically_bursting",
    "ch": "chattering",
    "fs": "fast_spiking",
    "lts": "low_threshold_spiking",
}


def izhikevich_preset(name: str) -> IzhikevichParams:
    """Parameters of a named cell class: a key of :data:`IZHIKEVICH_PRESETS` or its abbreviation
    (``"RS"``, ``"IB"``, ``"CH"``, ``"FS"``, ``"LTS"``, case-insensitive)."""
    if not isinstance(name, str):
        raise TypeError(f"preset must be a string, got {type(name).__name__}")
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in IZHIKEVICH_PRESETS:
        valid = ", ".join(list(IZHIKEVICH_PRESETS) + [k.upper() for k in _ALIASES])
        raise ValueError(f"unknown Izhikevich preset {name!r}; choose one of: {valid}")
    a, b, c, d = IZHIKEVICH_PRESETS[key]
    return IzhikevichParams(a=a, b=b, c=c, d=d)


def izhikevich_init(x_t: Tensor, p: IzhikevichParams) -> IzhikevichState:
    """Initial state ``v = v_init``, ``u = b v_init`` with ``x_t``'s shape, dtype and device."""
    v = torch.zeros_like(x_t) + p.v_init
    return IzhikevichState(v=v, u=p.b * v)


def izhikevich_step(
    x_t: Tensor,
    state: IzhikevichState,
    p: IzhikevichParams,
    *,
    dt: float,
    surrogate: SurrogateLike,
    detach_reset: bool = True,
) -> tuple[Tensor, IzhikevichState]:
    """One Izhikevich step of ``dt`` ms. ``x_t``: input current ``[B, ...]``. Returns ``(spikes, new_state)``."""
    v, u = state
    v_new = v + dt * (0.04 * v * v + 5.0 * v + 140.0 - u + x_t)
    u_new = u + dt * p.a * (p.b * v_new - u)
    z = spike(v_new - p.v_peak, surrogate)
    zr = z.detach() if detach_reset else z
    v_next = v_new * (1 - zr) + zr * p.c
    u_next = u_new + zr * p.d
    return z, IzhikevichState(v_next, u_next)


@register_neuron("izhikevich")
class Izhikevich(Neuron):
    """Izhikevich (2003) layer over ``[T, B, ...]`` input currents. See the module docstring.

    Args:
        preset: named cell class for ``a, b, c, d`` (default ``"regular_spiking"``; see
            :data:`IZHIKEVICH_PRESETS`); unknown names raise ``ValueError`` listing the valid ones.
        a, b, c, d: override the preset's values (finite floats or per-neuron tensors; ``c`` in mV, below
            ``v_peak``).
        v_peak: spike cut-off in mV (default 30). v_init: initial ``v`` in mV (default -65).
        dt: time step in ms (default 0.1; see the module docstring). Forward Euler diverges for a large
            ``dt`` or input (where depends on both); a run whose state becomes NaN/inf raises ``ValueError``
            naming ``dt`` and the parameters (one check of the final state per call).
        surrogate: a :class:`~spikeforge.surrogate.Surrogate`, a registered name, or None (library default).
        detach_reset: keep the after-spike jumps out of the gradient (default True).
        size: per-neuron parameters of this size (last input dim) instead of scalars.
    """

    State = IzhikevichState
    Params = IzhikevichParams
    init_fn = staticmethod(izhikevich_init)
    step_fn = staticmethod(izhikevich_step)
    checks_divergence = True  # forward Euler: a large dt or input diverges (neurons._validate)

    def __init__(
        self,
        preset: str = "regular_spiking",
        *,
        a: float | Tensor | None = None,
        b: float | Tensor | None = None,
        c: float | Tensor | None = None,
        d: float | Tensor | None = None,
        v_peak: float = 30.0,
        v_init: float = -65.0,
        dt: float = 0.1,
        surrogate: Surrogate | str | None = None,
        detach_reset: bool = True,
        size: int | None = None,
    ) -> None:
        super().__init__(dt=dt, surrogate=surrogate)
        base = izhikevich_preset(preset)
        self.preset = preset
        for name, value, default in (("a", a, base.a), ("b", b, base.b), ("c", c, base.c), ("d", d, base.d)):
            self._add_param(name, default if value is None else value, size=size, example=float(default))
        self._add_param("v_peak", v_peak, example=30.0)
        self._add_param("v_init", v_init, example=-65.0)
        check_below(type(self).__name__, "c", base.c if c is None else c, "v_peak", v_peak,
                    "the after-spike reset must lie below the spike cut-off, or every step fires")  # fmt: skip
        self.detach_reset = detach_reset

    @classmethod
    def from_preset(cls, name: str, **kwargs: object) -> Izhikevich:
        """Build the module for a named cell class, e.g. ``Izhikevich.from_preset("FS", dt=0.25)``."""
        return cls(name, **kwargs)  # type: ignore[arg-type]

    def step_options(self) -> dict[str, bool]:
        return {"detach_reset": self.detach_reset}

    def extra_repr(self) -> str:
        return f"preset={self.preset!r}, {super().extra_repr()}"
