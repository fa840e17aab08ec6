"""Argument validation shared by encoders, decoders, losses, the time loop and neurons. Messages name the fix.

Each public entry point checks its input once (:func:`check_seq` for a time-major sequence); nested calls
inside the library do not check again.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "check_float_tensor", "check_range", "check_num_steps", "check_generator", "check_number", "check_seq",
    "check_int", "check_state", "check_finite",
]  # fmt: skip


_FINITE_CHUNK = 1 << 20  # elements per slice of the exact test: bounds its temporaries (mask, |x|) to one slice


def _all_finite(x: Tensor) -> bool:
    """True iff every element is finite, without a copy of ``x``.

    One reduction pass in ``x``'s own dtype (no float64 copy): NaN and inf propagate through a sum, so a
    finite sum proves every element finite. Only when the sum is not finite (a bad element, or finite values
    whose sum overflowed) is the exact element-wise test run, slice by slice, so its temporaries stay at
    about ``_FINITE_CHUNK`` elements.
    """
    if x.numel() == 0:
        return True
    x = x.detach()
    return bool(torch.isfinite(x.sum())) or _finite_exact(x)


def _finite_exact(x: Tensor) -> bool:
    """``torch.isfinite(x).all()`` in slices of at most about ``_FINITE_CHUNK`` elements (views, no copy)."""
    if x.numel() <= _FINITE_CHUNK or x.dim() == 0:
        return bool(torch.isfinite(x).all())
    if x.dim() == 1:
        return all(bool(torch.isfinite(part).all()) for part in x.split(_FINITE_CHUNK))
    rows = _FINITE_CHUNK // x[0].numel()
    if rows == 0:  # one slice along dim 0 is itself too large: recurse into it
        return all(_finite_exact(part) for part in x.unbind(0))
    return all(bool(torch.isfinite(part).all()) for part in x.split(rows))


def check_float_tensor(x: object, name: str, *, min_dim: int = 0, finite: bool = True) -> Tensor:
    """Return ``x`` if it is a finite floating-point tensor with at least ``min_dim`` dims."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}; wrap it with torch.as_tensor(...)")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}; convert it with {name}.float()")
    if x.dim() < min_dim:
        raise ValueError(f"{name} must have at least {min_dim} dims, got shape {tuple(x.shape)}")
    if finite:
        check_finite(x, name)
    return x


def check_finite(x: Tensor, name: str) -> None:
    """Raise unless every element of ``x`` is finite (skipped while ``torch.compile`` traces)."""
    if not torch.compiler.is_compiling() and not _all_finite(x):
        raise ValueError(f"{name} contains NaN or inf; clean it first (e.g. torch.nan_to_num)")


def check_seq(x: object, name: str, *, floating: bool = True, finite: bool = True) -> Tensor:
    """A time-major sequence ``[T, B, ...]`` with ``T >= 1``: the one rank/length check of every public entry
    point that takes a sequence (neuron modules, containers, the time loop, encoders, losses).

    Args:
        floating: also require a floating-point dtype (the time loop :func:`~spikeforge._core.scan.scan`
            accepts any tensor).
        finite: also reject NaN/inf (one pass over ``x``; skip it where a later pass checks it anyway).
    """
    if floating:
        x = check_float_tensor(x, name, finite=finite)
    elif not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape [T, B, ...], got {type(x).__name__}")
    if x.dim() < 2:
        raise ValueError(
            f"{name} must be time-major [T, B, ...] with at least 2 dims, got shape {tuple(x.shape)}; "
            f"add a batch dimension with {name}.unsqueeze(1)"
        )
    if x.shape[0] == 0:
        raise ValueError(f"{name} has T = 0 time steps; give at least one time step")
    return x


def check_range(x: Tensor, name: str, lo: float, hi: float) -> None:
    """Raise unless ``lo <= x <= hi`` everywhere."""
    if x.numel() and not torch.compiler.is_compiling():
        if bool((x < lo).any()) or bool((x > hi).any()):
            raise ValueError(
                f"{name} must lie in [{lo}, {hi}], got values in [{float(x.min())}, {float(x.max())}]; "
                f"rescale it (e.g. min-max normalise) or clamp with {name}.clamp({lo}, {hi})"
            )


def check_int(value: object, name: str, *, minimum: int, maximum: int | None = None) -> int:
    """An ``int`` (not ``bool``) in ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        upper = "" if maximum is None else f" and <= {maximum}"
        raise ValueError(f"{name} must be >= {minimum}{upper}, got {value}")
    return value


def check_num_steps(num_steps: object) -> int:
    return check_int(num_steps, "num_steps", minimum=1)


def check_number(value: object, name: str, *, positive: bool = False, nonnegative: bool = False) -> float:
    """A finite real number (``int`` or ``float``, not ``bool``), optionally > 0 or >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    fval = float(value)
    if not math.isfinite(fval):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and fval <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    if nonnegative and fval < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return fval


def check_generator(generator: object, x: Tensor) -> torch.Generator | None:
    """``None`` or a ``torch.Generator`` on the device type of ``x``."""
    if generator is None:
        return None
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}; "
            "build one with torch.Generator(device=x.device).manual_seed(seed)"
        )
    if generator.device.type != x.device.type:
        raise ValueError(
            f"generator is on {generator.device} but the input is on {x.device}; "
            f"build it with torch.Generator(device={str(x.device)!r})"
        )
    return generator


def check_state(state: Any, x_t: Tensor, state_type: type) -> None:
    """Raise if a carried state does not match the input step ``x_t`` (type, shape, dtype, device)."""
    if not isinstance(state, state_type):
        raise TypeError(
            f"state must be a {state_type.__name__}, got {type(state).__name__}; pass state=None to start fresh"
        )
    fields: Any = state  # a NamedTuple of tensors
    for field, t in zip(fields._fields, fields):
        if not isinstance(t, Tensor):
            raise TypeError(f"state.{field} must be a tensor, got {type(t).__name__}")
        if t.shape != x_t.shape or t.dtype != x_t.dtype or t.device != x_t.device:
            raise ValueError(
                f"carried state.{field} has shape {tuple(t.shape)}, {t.dtype} on {t.device} but the input step is "
                f"{tuple(x_t.shape)}, {x_t.dtype} on {x_t.device} (e.g. a smaller last batch); call "
                "spikeforge.reset_states(model) or pass state=None before feeding a new batch"
            )
