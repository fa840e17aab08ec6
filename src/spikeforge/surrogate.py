"""Surrogate gradients (Neftci, Mostafa & Zenke 2019).

The forward pass of a spike is always the strict Heaviside step ``H(x) = [x > 0]`` of the distance to
threshold ``x = v - v_th``. The backward pass replaces the Dirac delta ``H'(x)`` by a smooth
``grad(x)``. Each surrogate is a small frozen dataclass with

* ``grad(x)``: the derivative used in the backward pass, and
* ``primitive(x)``: a function whose derivative is ``grad`` (used by tests, and a smooth
  stand-in for ``H``), and
* ``kernel_code()``: ``(code, a, b)``, how compiled kernels evaluate ``grad`` themselves (a code of
  :mod:`spikeforge._core.codes` and two constants); ``SG_CUSTOM`` (the default) makes them call ``grad``.

A registry maps names to classes; :func:`register_surrogate` rejects duplicate names. A user's own
surrogate is one small class::

    @register_surrogate("gauss")
    @dataclass(frozen=True)
    class Gauss(Surrogate):
        sigma: float = 0.5
        def grad(self, x): return torch.exp(-0.5 * (x / self.sigma) ** 2) / (self.sigma * math.sqrt(2 * math.pi))
        def primitive(self, x): return 0.5 * (1 + torch.erf(x / (self.sigma * math.sqrt(2))))
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import fields
from typing import Any
from typing import TypeVar

import torch
from torch import Tensor

from spikeforge._core.codes import SG_ATAN
from spikeforge._core.codes import SG_CUSTOM
from spikeforge._core.codes import SG_FAST_SIGMOID
from spikeforge._core.codes import SG_SIGMOID
from spikeforge._core.codes import SG_STRAIGHT_THROUGH
from spikeforge._core.codes import SG_TRIANGLE
from spikeforge._core.registry import Registry
from spikeforge._core.spike import spike

__all__ = [
    "Surrogate", "FastSigmoid", "Triangle", "ATan", "Sigmoid", "StraightThrough", "register_surrogate",
    "get_surrogate", "list_surrogates", "resolve_surrogate",
]  # fmt: skip

_REGISTRY: Registry[type[Surrogate]] = Registry("surrogate")
T = TypeVar("T", bound=type["Surrogate"])


@dataclass(frozen=True)
class Surrogate:
    """Base class. Subclasses are frozen dataclasses overriding ``grad`` and ``primitive``."""

    def grad(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def primitive(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def __call__(self, x: Tensor) -> Tensor:
        """Spikes ``[x > 0]`` with this surrogate's gradient."""
        return spike(x, self)

    def kernel_code(self) -> tuple[int, float, float]:
        """``(code, a, b)``: the formula compiled kernels use for :meth:`grad` (``spikeforge._core.codes``).

        ``SG_CUSTOM`` (this default) means "call ``grad`` in torch"; a user's surrogate needs nothing else.
        """
        return SG_CUSTOM, 0.0, 0.0

    def _code(self, owner: type, code: int, a: float, b: float = 0.0) -> tuple[int, float, float]:
        """``(code, a, b)`` for an instance of exactly ``owner`` (a subclass may override ``grad``: custom)."""
        return (code, a, b) if type(self) is owner else (SG_CUSTOM, 0.0, 0.0)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{type(self).__name__}.{f.name} must be a positive finite number, got {value!r}")


def register_surrogate(name: str) -> Callable[[T], T]:
    """Class decorator adding a surrogate class to the registry under ``name`` (duplicates raise)."""

    def deco(cls: T) -> T:
        if not (isinstance(cls, type) and issubclass(cls, Surrogate)):
            raise TypeError(f"register_surrogate expects a Surrogate subclass, got {cls!r}")
        _REGISTRY.add(name, cls)
        return cls

    return deco


list_surrogates = _REGISTRY.names  # the registered names, sorted


def get_surrogate(name: str, **kwargs: Any) -> Surrogate:
    """Build a registered surrogate by name, e.g. ``get_surrogate("atan", alpha=2.0)``."""
    return _REGISTRY.lookup(name)(**kwargs)


def resolve_surrogate(surrogate: Surrogate | str | None) -> Surrogate:
    """Accept a Surrogate instance, a registered name, or None (the default fast sigmoid)."""
    if surrogate is None:
        return FastSigmoid()
    if isinstance(surrogate, str):
        return get_surrogate(surrogate)
    if not hasattr(surrogate, "grad"):
        raise TypeError(f"surrogate must be a Surrogate, a registered name or None, got {surrogate!r}")
    return surrogate


@register_surrogate("fast_sigmoid")
@dataclass(frozen=True)
class FastSigmoid(Surrogate):
    """SuperSpike (Zenke & Ganguli 2018): ``grad = 1 / (1 + slope |x|)^2``, peak 1 at ``x = 0``.

    Primitive ``x / (1 + slope |x|)`` (an odd function rising by ``2/slope`` overall).
    """

    slope: float = 25.0

    def kernel_code(self) -> tuple[int, float, float]:
        return self._code(FastSigmoid, SG_FAST_SIGMOID, self.slope)

    def grad(self, x: Tensor) -> Tensor:
        return 1.0 / (1.0 + self.slope * x.abs()) ** 2

    def primitive(self, x: Tensor) -> Tensor:
        return x / (1.0 + self.slope * x.abs())


@register_surrogate("triangle")
@dataclass(frozen=True)
class Triangle(Surrogate):
    """Triangle (Esser et al. 2016; Bellec et al. 2018): ``grad = max(0, 1 - |x| / width) / width``.

    Unit area; the primitive is the piecewise-quadratic ramp from 0 (``x <= -width``) to 1.
    """

    width: float = 1.0

    def kernel_code(self) -> tuple[int, float, float]:
        return self._code(Triangle, SG_TRIANGLE, self.width)

    def grad(self, x: Tensor) -> Tensor:
        return torch.clamp(1.0 - x.abs() / self.width, min=0.0) / self.width

    def primitive(self, x: Tensor) -> Tensor:
        u = torch.clamp(x / self.width, -1.0, 1.0)
        return torch.where(u < 0, 0.5 * (1 + u) ** 2, 1 - 0.5 * (1 - u) ** 2)


@register_surrogate("atan")
@dataclass(frozen=True)
class ATan(Surrogate):
    """Arctangent (Fang et al. 2021): ``grad = (alpha/2) / (1 + (pi/2 * alpha * x)^2)``, unit area.

    Primitive ``atan(pi/2 * alpha * x) / pi + 1/2``.
    """

    alpha: float = 2.0

    def kernel_code(self) -> tuple[int, float, float]:
        return self._code(ATan, SG_ATAN, math.pi / 2 * self.alpha, self.alpha / 2)

    def grad(self, x: Tensor) -> Tensor:
        return (self.alpha / 2) / (1 + (math.pi / 2 * self.alpha * x) ** 2)

    def primitive(self, x: Tensor) -> Tensor:
        return torch.atan(math.pi / 2 * self.alpha * x) / math.pi + 0.5


@register_surrogate("sigmoid")
@dataclass(frozen=True)
class Sigmoid(Surrogate):
    """Logistic sigmoid: ``grad = slope * s(1 - s)`` with ``s = sigmoid(slope * x)``; unit area.

    Primitive ``sigmoid(slope * x)``.
    """

    slope: float = 5.0

    def kernel_code(self) -> tuple[int, float, float]:
        return self._code(Sigmoid, SG_SIGMOID, self.slope)

    def grad(self, x: Tensor) -> Tensor:
        s = torch.sigmoid(self.slope * x)
        return self.slope * s * (1 - s)

    def primitive(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.slope * x)


@register_surrogate("straight_through")
@dataclass(frozen=True)
class StraightThrough(Surrogate):
    """Boxcar / straight-through estimator: ``grad = 1 / (2 width)`` for ``|x| < width``, else 0.

    With the default ``width = 0.5`` the gradient is exactly 1 inside the window (unit area).
    Primitive: the clipped linear ramp from 0 to 1.
    """

    width: float = 0.5

    def kernel_code(self) -> tuple[int, float, float]:
        return self._code(StraightThrough, SG_STRAIGHT_THROUGH, self.width, 1.0 / (2 * self.width))

    def grad(self, x: Tensor) -> Tensor:
        return (x.abs() < self.width).to(x.dtype) / (2 * self.width)

    def primitive(self, x: Tensor) -> Tensor:
        return torch.clamp((x + self.width) / (2 * self.width), 0.0, 1.0)
