r"""The LIF family (IF, LIF, CubaLIF, ALIF, RecurrentLIF; LI uses its leak): one membrane update, one
derivation of its constants, one set of constructor options and one choice between the fused kernels and
the reference loop.

Per step, for an input ``u`` (the input current, or CubaLIF's synaptic current)::

    V'     = v_rest + beta (V[t] - v_rest) + gain u     (IF: V' = V[t] + gain u, no leak)   integrate()
    z[t]   = H(V' - th);  V[t+1] = reset(V', z[t])      th = v_th (ALIF: v_th + b a[t])       fire()

with ``beta = exp(-dt / tau_mem)`` and ``gain = (1 - beta) R`` ("exact") or ``R`` ("none") from
:func:`leak`; CubaLIF's ``alpha`` and ALIF's ``rho`` are :func:`~spikeforge._core.discretize.decay` of their
time constants. The pure step functions of each model call :func:`integrate` and :func:`fire`; the fused
kernels (:mod:`spikeforge.backends`) run the same recurrence from :meth:`LIFFamily.membrane_spec`.

Adding a member: one file with ``Params``/``State``, ``init``, a pure ``step`` built from these functions and
a :class:`LIFFamily` subclass that passes its time constants to ``LIFFamily.__init__`` (plus
:meth:`LIFFamily._spec_fields` for what it adds to the fused recurrence), then its registration.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any
from typing import ClassVar
from typing import Literal
from typing import TypedDict
from typing import get_args

from torch import Tensor

from spikeforge._core.checks import check_finite
from spikeforge._core.checks import check_seq
from spikeforge._core.codes import RESET_CODES
from spikeforge._core.compat import Unpack
from spikeforge._core.discretize import decay
from spikeforge._core.discretize import tau_from_decay
from spikeforge._core.reset import RESET_MODES
from spikeforge._core.reset import ResetMode
from spikeforge._core.reset import apply_reset
from spikeforge._core.reset import check_reset_mode
from spikeforge._core.spec import FusedSpec
from spikeforge._core.spike import SurrogateLike
from spikeforge._core.spike import spike
from spikeforge.backends import check_backend
from spikeforge.backends import fused_run
from spikeforge.backends import select_kernel
from spikeforge.backends.lif_pool import fused_pool_run
from spikeforge.backends.lif_pool import supports_pool
from spikeforge.neurons._validate import check_reset_rule
from spikeforge.neurons.base import Capabilities
from spikeforge.neurons.base import Neuron
from spikeforge.surrogate import Surrogate

__all__ = [
    "LIFFamily", "SpikeOptions", "LeakyOptions", "OPTION_DEFAULTS", "InputScaling", "INPUT_SCALINGS", "input_gain",
    "check_input_scaling", "leak", "integrate", "fire", "tau_or_beta",
]  # fmt: skip

InputScaling = Literal["exact", "none"]
INPUT_SCALINGS: tuple[str, ...] = get_args(InputScaling)


# ---- the membrane update and its constants -------------------------------------------------------
def check_input_scaling(input_scaling: str) -> None:
    if input_scaling not in INPUT_SCALINGS:
        raise ValueError(f"unknown input_scaling {input_scaling!r}; choose one of {INPUT_SCALINGS}")


def input_gain(beta: float | Tensor, r: float | Tensor, input_scaling: str) -> float | Tensor:
    """Gain applied to the input current per step: ``(1 - beta) R`` (exact) or ``R`` (none)."""
    if input_scaling == "exact":
        return (1 - beta) * r
    if input_scaling == "none":
        return r
    check_input_scaling(input_scaling)
    raise AssertionError("unreachable")


def leak(
    tau_mem: float | Tensor, r: float | Tensor, input_scaling: str, dt: float
) -> tuple[float | Tensor, float | Tensor]:
    """``(beta, gain)`` of one step: ``beta = exp(-dt / tau_mem)`` and the input gain (:func:`input_gain`)."""
    beta = decay(tau_mem, dt)
    return beta, input_gain(beta, r, input_scaling)


def tau_or_beta(tau_mem: float | Tensor | None, beta: float | None, dt: float) -> float | Tensor:
    """``tau_mem``, or the time constant of the per-step decay ``beta`` (the decay-factor form) when given."""
    if beta is not None:
        return tau_from_decay(beta, dt)
    if tau_mem is None:
        raise ValueError("give tau_mem or beta")
    return tau_mem


def integrate(
    v: Tensor, u: Tensor, beta: float | Tensor | None, v_rest: float | Tensor, gain: float | Tensor
) -> Tensor:
    """The membrane before the spike test: ``v_rest + beta (v - v_rest) + gain u``; ``beta=None``: ``v + gain u``."""
    if beta is None:
        return v + gain * u
    return v_rest + beta * (v - v_rest) + gain * u


def fire(
    v: Tensor,
    threshold: float | Tensor,
    v_reset: float | Tensor,
    reset: str,
    surrogate: SurrogateLike,
    detach_reset: bool,
) -> tuple[Tensor, Tensor]:
    """Spikes ``H(v - threshold)`` and the membrane after the reset: ``(z, v_next)``."""
    z = spike(v - threshold, surrogate)
    return z, apply_reset(v, z.detach() if detach_reset else z, threshold, v_reset, reset)


# ---- constructor options shared by the family ----------------------------------------------------
class SpikeOptions(TypedDict, total=False):
    """Keyword options of every LIF-family module (defaults in :data:`OPTION_DEFAULTS`)."""

    dt: float  # time step, same unit as the time constants
    v_th: float | Tensor  # threshold (a tensor: per neuron)
    v_reset: float  # value after a "to_value" reset; "subtract" removes v_th - v_reset
    reset: ResetMode  # "subtract" | "to_value" | "none"
    surrogate: Surrogate | str | None  # a Surrogate, a registered name, or None (fast sigmoid)
    detach_reset: bool  # keep the reset out of the gradient
    learn_threshold: bool  # make v_th trainable
    backend: str  # fused-kernel choice (spikeforge.backends); only members with capabilities.fused


class LeakyOptions(SpikeOptions, total=False):
    """:class:`SpikeOptions` plus the leak of every member but IF."""

    v_rest: float  # resting potential
    r: float  # membrane resistance
    input_scaling: InputScaling  # "exact": gain (1 - beta) R ; "none": gain R


OPTION_DEFAULTS: dict[str, Any] = {
    "dt": 1.0,
    "v_th": 1.0,
    "v_reset": 0.0,
    "reset": "subtract",
    "surrogate": None,
    "detach_reset": True,
    "learn_threshold": False,
    "backend": "auto",
    "v_rest": 0.0,
    "r": 1.0,
    "input_scaling": "exact",
}


class LIFFamily(Neuron):
    """Base class of the LIF family. Subclasses pass their time constants; this class stores the shared
    options, derives the per-step constants and runs a fused kernel where one applies.

    Constructor (called by subclasses):
        taus: the positive time constants, e.g. ``{"tau_mem": 10.0, "tau_syn": 5.0}`` (trainable with
            ``learn_tau``, kept > 0 through a log).
        fixed: further non-trainable parameters registered after them (ALIF's ``adapt``).
        learn_tau: make the time constants trainable.
        size: per-neuron parameters of this size (last input dim) instead of scalars.
        **options: :class:`LeakyOptions` (IF: :class:`SpikeOptions`; without ``backend`` where
            ``capabilities.fused`` is False).

    Class attributes: ``leaky`` (False for IF: no ``v_rest``, ``r``, ``input_scaling``), ``capabilities``.
    Module attributes after construction: ``dt, surrogate, v_th, v_reset, reset, detach_reset`` and, if
    leaky, ``v_rest, r, input_scaling``; ``backend`` if fused.
    """

    capabilities = Capabilities(lif_family=True, fused=True)
    leaky: ClassVar[bool] = True
    v_reset: float  # constants (set by _add_constant / _set_constant, checked by neurons._validate)
    reset: str
    v_rest: float
    r: float
    input_scaling: str

    def __init__(
        self,
        taus: Mapping[str, float | Tensor],
        *,
        fixed: Mapping[str, float | Tensor] | None = None,
        learn_tau: bool = False,
        size: int | None = None,
        **options: Unpack[LeakyOptions],
    ) -> None:
        o = {**OPTION_DEFAULTS, **self._check_option_names(options)}
        super().__init__(dt=o["dt"], surrogate=o["surrogate"])
        check_reset_mode(o["reset"])
        for name, value in taus.items():
            self._add_param(
                name, value, learnable=learn_tau, size=self._size(learn_tau, size), positive=True, example=10.0
            )
        for name, value in (fixed or {}).items():
            self._add_param(name, value, size=size)
        self._add_param("v_th", o["v_th"], learnable=o["learn_threshold"], size=self._size(o["learn_threshold"], size))
        self._spec_names = (*taus, *(fixed or {}), "v_th")  # must be plain floats for membrane_spec()
        self._add_constant("v_reset", o["v_reset"], example=0.0)
        self._set_constant("reset", o["reset"], choices=RESET_MODES)
        self.detach_reset = bool(o["detach_reset"])
        v_next: float | Tensor = self.v_reset  # the membrane one step after a reset, with no input
        if self.leaky:
            check_input_scaling(o["input_scaling"])
            self._add_constant("v_rest", o["v_rest"], example=0.0)
            self._add_constant(
                "r", o["r"], example=1.0, positive=True, why="the membrane resistance sets the input gain"
            )
            self._set_constant("input_scaling", o["input_scaling"], choices=INPUT_SCALINGS)
            tau = taus["tau_mem"]
            v_next = self.v_rest + decay(tau.detach() if isinstance(tau, Tensor) else tau, self.dt) * (
                self.v_reset - self.v_rest
            )
        check_reset_rule(type(self).__name__, o["reset"], o["v_th"], self.v_reset, v_next)
        if self.capabilities.fused:
            check_backend(o["backend"])
            self.backend: str = o["backend"]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Give a member's ``__init__(..., **options)`` the full signature (every option, with its default), so
        ``help()`` and ``inspect.signature`` (e.g. model builders choosing which defaults apply) see them."""
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        sig = inspect.signature(init)
        hints = {name: getattr(h, "__forward_arg__", h) for name, h in LeakyOptions.__annotations__.items()}
        explicit = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        keyword = inspect.Parameter.KEYWORD_ONLY
        options = [
            inspect.Parameter(name, keyword, default=OPTION_DEFAULTS[name], annotation=hints[name])
            for name in cls._option_names()
        ]
        init.__signature__ = sig.replace(parameters=[*explicit, *options])

    @classmethod
    def _option_names(cls) -> tuple[str, ...]:
        """The keyword options this member takes: :class:`LeakyOptions` (IF: :class:`SpikeOptions`), without
        ``backend`` unless a fused kernel runs it."""
        names = LeakyOptions.__annotations__ if cls.leaky else SpikeOptions.__annotations__
        return tuple(n for n in names if n != "backend" or cls.capabilities.fused)

    @classmethod
    def _check_option_names(cls, options: Mapping[str, Any]) -> Mapping[str, Any]:
        allowed = cls._option_names()
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            hint = " (no fused kernel runs this model: it uses the reference loop)" if "backend" in unknown else ""
            raise TypeError(
                f"{cls.__name__} got unexpected keyword argument(s) {unknown}{hint}; its options are {list(allowed)}"
            )
        return options

    def _size(self, learnable: bool, size: int | None) -> int | None:
        """The size of a parameter stored per neuron (``size``), or None for a scalar."""
        return size

    def step_options(self) -> dict[str, bool]:
        return {"detach_reset": self.detach_reset}

    # ---- the per-step constants ----------------------------------------------------------------
    def _value(self, name: str, like: Tensor | None) -> Any:
        """A parameter as a python float, or (``like`` given and the parameter a tensor) the tensor cast to
        ``like``'s dtype and device (see :meth:`membrane_spec`)."""
        value: Any = getattr(self, name, None) if ("log_" + name) not in self._parameters else None
        if like is None or (value is not None and not isinstance(value, Tensor)):
            return float(value)
        return self._get(name, like)

    def _spec_fields(self, value: Callable[[str], Any]) -> dict[str, Any]:
        """What this member adds to (or replaces in) the fused recurrence, e.g. CubaLIF's ``has_syn, alpha``;
        ``value(name)`` reads a parameter as :meth:`membrane_spec` does."""
        return {}

    def membrane_spec(self, like: Tensor | None = None) -> FusedSpec | None:
        """The per-step membrane constants (the one derivation of beta, gain, alpha, ... of this family).

        Without ``like``: python floats, or None when a parameter is a tensor (trainable or per-neuron): what
        the fused kernels take. With ``like``: always a spec, whose tensor parameters give tensor constants (cast
        to ``like``'s dtype and device), e.g. for the events engine."""
        if like is None and not self._all_float(*self._spec_names):
            return None

        def value(name: str) -> Any:
            return self._value(name, like)

        fields: dict[str, Any] = {
            "v_th": value("v_th"),
            "v_reset": self.v_reset,
            "reset": RESET_CODES[self.reset],
            "detach_reset": self.detach_reset,
        }
        if self.leaky:
            beta, gain = leak(value("tau_mem"), self.r, self.input_scaling, self.dt)
            fields.update(beta=beta, v_rest=self.v_rest, gain=gain if like is not None else float(gain))
        return FusedSpec(**{**fields, **self._spec_fields(value)})

    # ---- running: fused kernel or reference loop -------------------------------------------------
    def _run(self, x_seq: Tensor, state: Any) -> tuple[Tensor, Any]:
        """The fused kernel ``backend`` selects (spec from :meth:`fused_spec`), else the reference loop."""
        spec = self.fused_spec()
        if spec is None or self.backend == "reference":
            return super()._run(x_seq, state)
        kernel = select_kernel(self.backend, x_seq)
        if kernel is None:  # "auto" while torch.compile traces
            return super()._run(x_seq, state)
        if not kernel.checks_finite:
            check_finite(x_seq, "x_seq")
        fields = self._prepare(x_seq[0], state)._asdict()
        z, v, i, a = fused_run(x_seq, fields["v"], fields.get("i"), fields.get("a"), spec, kernel, self.surrogate)
        finals = {"v": v, "i": i, "a": a}
        return z, self.State(*(finals[f] for f in self.State._fields))

    def run_pooled(self, x_seq: Tensor, state: Any, k: int, is_max: bool = False) -> tuple[Tensor, Any] | None:
        """This layer then ``k x k`` tiling average (``is_max``: max) pooling of its spikes, fused (the spikes
        are never stored; :mod:`spikeforge.backends.lif_pool`): ``(pooled [T, ..., H / k, W / k], final_state)``,
        equal to ``forward`` followed by the pool. None where the selected kernel has no fused pool (the caller then
        runs the two layers one after the other). ``x_seq`` is ``[T, B, C, H, W]``, H and W multiples of k."""
        spec = self.fused_spec()
        if spec is None or self.backend == "reference" or x_seq.dim() != 5:
            return None
        check_seq(x_seq, "x_seq", finite=False)  # the kernel checks NaN/inf in its own pass
        kernel = select_kernel(self.backend, x_seq)
        if not supports_pool(kernel, self.surrogate):
            return None
        fields = self._prepare(x_seq[0], state)._asdict()
        pooled, v, i, a = fused_pool_run(
            x_seq, fields["v"], fields.get("i"), fields.get("a"), spec, kernel, self.surrogate, k, is_max
        )
        finals = {"v": v, "i": i, "a": a}
        return pooled, self.State(*(finals[f] for f in self.State._fields))

    def extra_repr(self) -> str:
        backend = f", backend={self.backend!r}" if self.capabilities.fused else ""
        return super().extra_repr() + backend
