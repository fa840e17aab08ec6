"""Thin ``nn.Module`` shell shared by every neuron model, the opt-in ``Stateful`` wrapper and the
``reset_states`` / ``detach_states`` helpers.

A :class:`Neuron` owns parameters, never state. ``forward(x_seq, state=None) -> (out_seq, state)``
runs the model's pure step function through the one time loop (:func:`spikeforge._core.scan.loop`);
``step(x_t, state=None) -> (out_t, state)`` advances one time step for streaming. The base knows no
backend and no model's state fields: a family with a faster multi-step path (the LIF family's fused
kernels, :mod:`spikeforge.neurons._family`) overrides :meth:`Neuron._run`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from typing import ClassVar
from typing import NamedTuple
from typing import TypeVar

import torch
from torch import Tensor
from torch import nn

from spikeforge._core.checks import check_finite
from spikeforge._core.checks import check_float_tensor
from spikeforge._core.checks import check_seq
from spikeforge._core.checks import check_state
from spikeforge._core.registry import Registry
from spikeforge._core.scan import loop
from spikeforge._core.spec import FusedSpec
from spikeforge.neurons import _validate as V
from spikeforge.surrogate import Surrogate
from spikeforge.surrogate import resolve_surrogate

__all__ = [
    "Capabilities", "Neuron", "Stateful", "reset_states", "detach_states", "register_neuron", "get_neuron",
    "list_neurons", "NEURON_REGISTRY",
]  # fmt: skip

N = TypeVar("N", bound=type["Neuron"])
NEURON_REGISTRY: Registry[type[Neuron]] = Registry("neuron")  # read access; register_neuron adds


def register_neuron(name: str) -> Callable[[N], N]:
    """Class decorator adding a :class:`Neuron` subclass to the registry (duplicate names raise)."""

    def deco(cls: N) -> N:
        NEURON_REGISTRY.add(name, cls)
        cls.registry_name = name
        return cls

    return deco


list_neurons = NEURON_REGISTRY.names  # the registered names, sorted


def get_neuron(name: str, **kwargs: Any) -> Neuron:
    """Build a registered neuron module by name, e.g. ``get_neuron("lif", tau_mem=10.0)``."""
    return NEURON_REGISTRY.lookup(name)(**kwargs)


@dataclass(frozen=True)
class Capabilities:
    """What a neuron type supports, declared once on the class; integrations (fused kernels, the events
    engine, NIR export, energy counting, the contract tests) ask this instead of keeping ``isinstance`` lists.

    Attributes:
        spiking: the output is binary spikes (False for readouts such as ``LI``, whose output is ``V``).
        lif_family: :meth:`Neuron.membrane_spec` describes one step exactly (LIF, IF, CubaLIF, ALIF,
            RecurrentLIF): the events engine and NIR export read the membrane constants from it.
        fused: the fused multi-step kernels can run it (whenever ``membrane_spec()`` is not None).
        recurrent: the input of each step adds ``z[t-1] @ w_rec^T`` (a ``w_rec`` ``[N, N]`` parameter).
    """

    spiking: bool = True
    lif_family: bool = False
    fused: bool = False
    recurrent: bool = False


class Neuron(nn.Module):
    """Base class of neuron modules.

    Subclasses set ``State`` and ``Params`` (the NamedTuple types), ``init_fn(x_t, params) -> State`` and
    ``step_fn(x_t, state, params, *, dt, surrogate, **step_options) -> (out, State)`` as static functions,
    and ``capabilities``. :meth:`params` reads each ``Params`` field from the attribute, buffer or parameter
    of the same name (stored with :meth:`_add_param`); a model whose parameters nest overrides it.
    """

    State: ClassVar[type[Any]]
    Params: ClassVar[type[Any]]
    init_fn: ClassVar[Callable[..., Any]]
    step_fn: ClassVar[Callable[..., Any]]
    capabilities: ClassVar[Capabilities] = Capabilities()
    registry_name: ClassVar[str] = ""
    dt: float

    def __init__(self, *, dt: float = 1.0, surrogate: Surrogate | str | None = None) -> None:
        super().__init__()
        self._constants: dict[str, tuple[str, ...] | None] = {}  # name -> its choices (None: a number)
        self._add_constant("dt", dt, example=1.0, positive=True, why="the time step")
        self.surrogate = resolve_surrogate(surrogate)

    # ---- parameters -------------------------------------------------------------------------
    def _check(self, name: str, value: object, *, example: float, **rule: Any) -> None:
        """:func:`~spikeforge.neurons._validate.check_param` with this model's name in the message."""
        V.check_param(type(self).__name__, name, value, example=example, **rule)

    def _add_constant(self, name: str, value: object, *, example: float, **rule: Any) -> None:
        """Check a scalar parameter (:meth:`_check`) and store it as a float constant (:meth:`_set_constant`)."""
        self._check(name, value, example=example, **rule)
        if isinstance(value, Tensor) and value.numel() != 1:
            raise TypeError(f"{type(self).__name__}: {name} takes one value per layer, got a tensor of shape "
                            f"{tuple(value.shape)}; give e.g. {name}={example!r}")  # fmt: skip
        self._set_constant(name, float(value))  # type: ignore[arg-type]

    def _set_constant(self, name: str, value: float | str, *, choices: tuple[str, ...] | None = None) -> None:
        """Store a scalar constant (already validated) as an attribute and in the ``state_dict`` table
        (:meth:`get_extra_state`); ``choices``: the valid names of a string constant."""
        setattr(self, name, value)
        self._constants[name] = choices

    def _add_param(
        self,
        name: str,
        value: float | Tensor,
        *,
        learnable: bool = False,
        size: int | tuple[int, ...] | None = None,
        positive: bool = False,
        example: float = 1.0,
    ) -> None:
        """Store a model parameter as a float (a constant of the ``state_dict`` table), a buffer (fixed tensor)
        or an ``nn.Parameter``; checked finite (and ``> 0`` if ``positive``) first.

        Positive learnable parameters (time constants) are stored as their log, so training keeps
        them > 0; :meth:`_get` returns the value itself.
        """
        why = "a time constant, in the unit of dt" if name.startswith("tau") else ""
        self._check(name, value, example=example, positive=positive, why=why)
        if not learnable and size is None and not isinstance(value, Tensor):
            self._set_constant(name, float(value))
            return
        if isinstance(value, Tensor) and value.is_floating_point():
            t = value.detach().clone()  # keep the caller's precision (e.g. float64)
        else:
            t = torch.as_tensor(value, dtype=torch.get_default_dtype())
        if size is not None:
            shape = (size,) if isinstance(size, int) else tuple(size)
            t = t.expand(shape).clone()
        if positive and learnable:
            name_stored = "log_" + name
            t = t.log()
        else:
            name_stored = name
        if learnable:
            setattr(self, name_stored, nn.Parameter(t))
        else:
            self.register_buffer(name_stored, t)

    def _get(self, name: str, like: Tensor) -> float | Tensor:
        """Value of a parameter stored by :meth:`_add_param`, cast to ``like``'s dtype/device."""
        if "log_" + name in self._parameters:
            return self._parameters["log_" + name].exp().to(like.dtype)  # type: ignore[union-attr]
        value = getattr(self, name)
        if isinstance(value, Tensor):
            return value.to(dtype=like.dtype, device=like.device)
        return value

    def params(self, like: Tensor) -> NamedTuple:
        """The model's ``Params`` NamedTuple with tensors cast to ``like``'s dtype and device."""
        return self._read_params(self.Params, like)

    def _read_params(self, params_type: type[Any], like: Tensor) -> Any:
        """A ``params_type`` NamedTuple whose every field is read with :meth:`_get`."""
        return params_type(*(self._get(name, like) for name in params_type._fields))

    @property
    def spiking(self) -> bool:
        return self.capabilities.spiking

    def membrane_spec(self, like: Tensor | None = None) -> FusedSpec | None:
        """The per-step membrane constants of a LIF-family layer (floats; with ``like``, tensor parameters
        as tensors in ``like``'s dtype and device), else None (see :class:`~spikeforge.neurons.LIFFamily`)."""
        return None

    def fused_spec(self) -> FusedSpec | None:
        """Constants for a fused multi-step kernel (:meth:`membrane_spec` where ``capabilities.fused``), or None
        when this layer must use the reference loop."""
        return self.membrane_spec() if self.capabilities.fused else None

    def _all_float(self, *names: str) -> bool:
        """Whether each named parameter is a plain python float (not a buffer, not trainable)."""
        return all(not isinstance(getattr(self, n, None), Tensor) and "log_" + n not in self._parameters for n in names)

    def step_options(self) -> dict[str, Any]:
        """Extra keyword arguments of ``step_fn`` (e.g. ``detach_reset``)."""
        return {}

    # ---- scalar constants in the state_dict ----------------------------------------------------
    def _constant_values(self) -> dict[str, float | str]:
        return {name: getattr(self, name) for name in self._constants}

    def _constant_choices(self) -> dict[str, tuple[str, ...]]:
        return {name: c for name, c in self._constants.items() if c is not None}

    def get_extra_state(self) -> Tensor:
        """The scalar constants (``dt``, float parameters, ``reset``, ...), which are not tensors and so not
        otherwise in the ``state_dict``, as one float64 table (:func:`~spikeforge.neurons._validate.pack_constants`).

        Loading checks them: a ``state_dict`` saved from ``LIF(tau_mem=50)`` refuses to load into
        ``LIF(tau_mem=5)`` (``load_state_dict`` raises naming both values) instead of silently running with 5.
        The constants are compared, never overwritten (build the module with the saved values). A ``state_dict``
        without the table (saved before it existed) loads as before, with this module's constants."""
        return V.pack_constants(type(self).__name__, self._constant_values(), self._constant_choices())

    def set_extra_state(self, state: Any) -> None:
        """Nothing to restore: :meth:`_load_from_state_dict` has compared the saved constants with this module's."""

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        key = prefix + "_extra_state"
        if key in state_dict:
            kind, mine = type(self).__name__, self._constant_values()
            problem = V.constants_mismatch(kind, mine, self._constant_choices(), state_dict[key])
            if problem is not None:
                error_msgs.append(f"{prefix[:-1]}: {problem}" if prefix else problem)  # names the layer
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        if key in missing_keys:  # a state_dict from before the table: this module's constants apply
            missing_keys.remove(key)

    # ---- numerical divergence -----------------------------------------------------------------
    #: Whether a run checks its final state for NaN/inf (explicit schemes that can diverge, see
    #: :func:`~spikeforge.neurons._validate.check_state_finite`); the exact LIF-family updates cannot.
    checks_divergence: ClassVar[bool] = False

    def _check_diverged(self, state: Any) -> Any:
        if self.checks_divergence:
            shown = {k: v for k, v in self._constant_values().items() if k != "dt" and not isinstance(v, str)}
            V.check_state_finite(type(self).__name__, state, self.dt, shown)
        return state

    # ---- state ------------------------------------------------------------------------------
    def init_state(self, x_t: Tensor) -> Any:
        """Fresh state for one input step ``x_t`` ``[B, ...]`` (dtype and device follow ``x_t``)."""
        return type(self).init_fn(x_t, self.params(x_t))

    def _prepare(self, x_t: Tensor, state: Any) -> Any:
        if state is None:
            return self.init_state(x_t)
        check_state(state, x_t, self.State)
        return state

    def _stepper(self, like: Tensor) -> Callable[[Tensor, Any], tuple[Tensor, Any]]:
        p = self.params(like)
        fn = type(self).step_fn
        opts = self.step_options()
        dt, sg = self.dt, self.surrogate

        def run(x_t: Tensor, s: Any) -> tuple[Tensor, Any]:
            return fn(x_t, s, p, dt=dt, surrogate=sg, **opts)

        return run

    # ---- running ----------------------------------------------------------------------------
    def step(self, x_t: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """One time step. ``x_t``: ``[B, ...]``. Returns ``(out_t, new_state)``."""
        check_float_tensor(x_t, "x_t", min_dim=1)
        state = self._prepare(x_t, state)
        out, new_state = self._stepper(x_t)(x_t, state)
        return out, self._check_diverged(new_state)

    def forward(self, x_seq: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """Run over a sequence. ``x_seq``: ``[T, B, ...]``. Returns ``(out_seq [T, B, ...], final_state)``."""
        check_seq(x_seq, "x_seq", finite=False)  # NaN/inf: in _run, where a kernel may check it in its own pass
        return self._run(x_seq, state)

    def _run(self, x_seq: Tensor, state: Any) -> tuple[Tensor, Any]:
        """The multi-step computation of :meth:`forward` on a checked ``[T, B, ...]`` sequence: the reference
        loop over ``step_fn``. A family with a faster path overrides this (and checks NaN/inf itself)."""
        check_finite(x_seq, "x_seq")
        state = self._prepare(x_seq[0], state)
        out, final = loop(self._stepper(x_seq), x_seq, state)
        return out, self._check_diverged(final)

    def trace(self, x_seq: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """Like :meth:`forward` but returns the state after every step: ``(out_seq, state_seq)``."""
        check_seq(x_seq, "x_seq")
        state = self._prepare(x_seq[0], state)
        out, states = loop(self._stepper(x_seq), x_seq, state, record=True)
        return out, self._check_diverged(states)

    def extra_repr(self) -> str:
        return f"dt={self.dt}, surrogate={self.surrogate}"


class Stateful(nn.Module):
    """Opt-in wrapper that keeps the last state of a neuron between calls and returns only the output.

    It composes with ``nn.Sequential`` and truncated BPTT::

        net = nn.Sequential(SeqToBatch(nn.Linear(4, 8)), Stateful(LIF()))
        y = net(x_chunk1); detach_states(net); y = net(x_chunk2); reset_states(net)

    The state is a plain attribute (not a buffer, not in ``state_dict``). A state that does not match
    the next input (batch size, dtype, device) raises; call :func:`reset_states` first.
    """

    def __init__(self, neuron: Neuron) -> None:
        super().__init__()
        if not isinstance(neuron, Neuron):
            raise TypeError(f"Stateful wraps a spikeforge Neuron, got {type(neuron).__name__}")
        self.neuron = neuron
        self.state: Any = None

    def forward(self, x_seq: Tensor) -> Tensor:
        out, self.state = self.neuron(x_seq, self.state)
        return out

    def step(self, x_t: Tensor) -> Tensor:
        out, self.state = self.neuron.step(x_t, self.state)
        return out

    def reset(self) -> None:
        self.state = None

    def detach(self) -> None:
        if self.state is not None:
            self.state = type(self.state)(*(t.detach() for t in self.state))


def reset_states(model: nn.Module) -> None:
    """Forget the carried state of every :class:`Stateful` in ``model`` (walks ``model.modules()``)."""
    for m in model.modules():
        if isinstance(m, Stateful):
            m.reset()


def detach_states(model: nn.Module) -> None:
    """Cut the autograd graph of every carried state in ``model`` (truncated BPTT)."""
    for m in model.modules():
        if isinstance(m, Stateful):
            m.detach()
