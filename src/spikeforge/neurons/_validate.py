"""The one validation layer of neuron parameters, used by every registered neuron at construction.

Every check raises a one-line error naming the model, the parameter, the value and the fix:
``ValueError`` for a bad value, ``TypeError`` for something that is not a number or a tensor.

Rules (a tensor parameter, e.g. per-neuron or trainable, is checked element by element):

* every scalar parameter is a finite number; ``dt`` and every time constant are ``> 0``;
* LIF family: ``r > 0`` (the membrane resistance sets the input gain). ``reset="subtract"`` needs
  ``v_th > v_reset``: it removes ``v_th - v_reset``, so otherwise the "reset" leaves the membrane where it
  was or raises it. ``reset="to_value"`` is refused when the membrane one step after the reset, with no input,
  is still above the threshold (``v_rest + beta (v_reset - v_rest) > v_th``; IF: ``v_reset > v_th``): a neuron
  that fired once would fire on every step. A reset above ``v_th`` that the leak brings below it within the
  step stays allowed (a defined, if unusual, after-potential), as does ``v_rest > v_th`` with a low reset (a
  pacemaker). ``reset="none"`` does not use ``v_reset``. ALIF: ``adapt >= 0`` (its threshold
  ``v_th + adapt a`` never falls below ``v_th``, so the rules with ``v_th`` are safe for it);
* Izhikevich: ``c < v_peak`` (the after-spike reset lies below the spike cut-off);
* Hodgkin-Huxley: ``c_m, g_l > 0`` and ``g_na, g_k >= 0``.

Numerical divergence (Izhikevich's forward Euler, or float overflow of any explicit scheme) depends on the
input as much as on ``dt`` (measured: regular spiking stays finite up to ``dt = 2`` ms for inputs 0-50, fast
spiking at ``I = 5`` already diverges at ``dt = 2``), so no bound on ``dt`` alone is both safe and not
over-strict. The cheapest correct check is at run time instead: :func:`check_state_finite` tests the state
once per call (after the whole sequence: NaN is absorbing in these updates, so a state that diverged at any
step is still non-finite at the end) and names ``dt`` and the parameters in its error.

Checks run at construction; a trainable parameter that the optimiser later moves out of range is not
re-checked (the runtime check still catches a state that becomes non-finite).
"""

from __future__ import annotations

import math
import numbers
import zlib
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "check_param", "check_below", "check_reset_rule", "check_state_finite", "pack_constants",
    "constants_mismatch", "CONSTANTS_FORMAT",
]  # fmt: skip

#: Version of the constant table written by :func:`pack_constants` (row 0, column 0).
CONSTANTS_FORMAT = 1


def _show(value: float | Tensor) -> str:
    """A python float as ``repr`` (exact); a tensor element to its dtype's precision (``0.2``, not ``0.2000000029``)."""
    if isinstance(value, Tensor):
        digits = {torch.float64: 17, torch.float32: 8}.get(value.dtype, 4)
        return repr(float(f"{float(value):.{digits}g}"))
    return repr(float(value))


def _first_bad(t: Tensor, bad: Tensor) -> str:
    """``'[i, j]=value'`` of the first element where ``bad`` holds."""
    idx = tuple(int(i) for i in torch.nonzero(bad)[0])
    where = "" if t.dim() == 0 else "[" + ", ".join(map(str, idx)) + "]"
    return f"{where}={_show(t.detach()[idx] if idx else t.detach())}"


def check_param(
    owner: str,
    name: str,
    value: object,
    *,
    example: float,
    positive: bool = False,
    nonnegative: bool = False,
    why: str = "",
) -> None:
    """Refuse a parameter that is not a finite number (or a non-empty tensor of them), or not ``> 0``
    (``positive``) / ``>= 0`` (``nonnegative``). ``example`` is a valid value shown in the fix; ``why`` a short
    reason (e.g. ``"a time constant, in the unit of dt"``)."""
    reason = f" ({why})" if why else ""
    fix = f"give e.g. {name}={example!r}"
    if isinstance(value, Tensor):
        if value.numel() == 0:
            raise ValueError(f"{owner}: {name} is an empty tensor; {fix} or a tensor with one value per neuron")
        if not (value.is_floating_point() or value.dtype in (torch.int32, torch.int64, torch.int16, torch.int8)):
            raise TypeError(f"{owner}: {name} must be a real tensor, got dtype {value.dtype}; {fix}")
        t = value.detach()
        checks = [(~torch.isfinite(t), "is not finite")]
        if positive:
            checks.append((t <= 0, f"must be > 0{reason}"))
        if nonnegative:
            checks.append((t < 0, f"must be >= 0{reason}"))
        for bad, problem in checks:
            if bool(bad.any()):
                raise ValueError(f"{owner}: {name}{_first_bad(t, bad)} {problem}; {fix}")
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a number or a tensor, got {type(value).__name__}; {fix}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{owner}: {name}={_show(v)} is not finite; {fix}")
    if positive and v <= 0:
        raise ValueError(f"{owner}: {name}={_show(v)} must be > 0{reason}; {fix}")
    if nonnegative and v < 0:
        raise ValueError(f"{owner}: {name}={_show(v)} must be >= 0{reason}; {fix}")


def _lowest(value: float | Tensor) -> float | Tensor:
    return value.detach().min() if isinstance(value, Tensor) else float(value)


def _highest(value: float | Tensor) -> float | Tensor:
    return value.detach().max() if isinstance(value, Tensor) else float(value)


def check_below(
    owner: str, low: str, low_value: float | Tensor, high: str, high_value: float | Tensor, why: str
) -> None:
    """Refuse ``low >= high`` anywhere (values already checked finite; tensors compared elementwise)."""
    bad = torch.as_tensor(low_value).detach() >= torch.as_tensor(high_value).detach()
    if bool(bad.any()):
        lo, hi = _show(_highest(low_value)), _show(_lowest(high_value))
        raise ValueError(f"{owner}: {low}={lo} must be < {high}={hi} ({why}); lower {low} or raise {high}")


def check_reset_rule(
    owner: str, reset: str, v_th: float | Tensor, v_reset: float | Tensor, v_next: float | Tensor
) -> None:
    """Refuse a reset after which a neuron fires on every step (see the module docstring).

    ``v_next``: the membrane one step after a reset to ``v_reset`` with no input (``v_rest + beta (v_reset -
    v_rest)``; IF: ``v_reset``)."""
    if reset == "subtract" and bool((torch.as_tensor(v_th) <= torch.as_tensor(v_reset)).any()):
        raise ValueError(
            f"{owner}: v_th={_show(_lowest(v_th))} must be > v_reset={_show(_highest(v_reset))} with reset='subtract' "
            "(the reset removes v_th - v_reset, so it would not lower the membrane); raise v_th, lower v_reset or "
            "use reset='none'"
        )
    if reset == "to_value" and bool((torch.as_tensor(v_next) > torch.as_tensor(v_th)).any()):
        raise ValueError(
            f"{owner}: v_reset={_show(_highest(v_reset))} with reset='to_value' leaves the membrane at "
            f"{_show(_highest(v_next))} > v_th={_show(_lowest(v_th))} one step after the reset with no input, so a "
            "neuron that fired once fires on every step; lower v_reset below v_th (e.g. v_reset=0.0)"
        )


def check_state_finite(owner: str, state: Any, dt: float, params: Mapping[str, Any]) -> None:
    """Refuse a state with NaN/inf after a run (the step scheme diverged); names ``dt`` and the parameters."""
    if all(bool(torch.isfinite(t).all()) for t in state):
        return
    shown = ", ".join(f"{k}={_show(v) if not isinstance(v, Tensor) else 'per-neuron'}" for k, v in params.items())
    raise ValueError(
        f"{owner}: the state became NaN/inf during the run (the time step diverged with dt={_show(dt)}, {shown}); "
        f"use a smaller dt (e.g. dt={_show(dt / 10)}), smaller inputs, or parameters of a published cell class"
    )


# ---- scalar constants in the state_dict ------------------------------------------------------------
def _code(text: str) -> float:
    return float(zlib.crc32(text.encode()))


def pack_constants(kind: str, constants: Mapping[str, float | str], choices: Mapping[str, tuple[str, ...]]) -> Tensor:
    """The scalar constants of a module as a float64 ``[1 + n, 2]`` tensor for its ``state_dict``.

    Row 0 is ``(CONSTANTS_FORMAT, crc32(kind))``; each further row ``(crc32(name), value)``, where a named
    choice (e.g. ``reset``) is stored as its index in ``choices[name]``. A tensor (not a dict) keeps every
    ``state_dict`` value a tensor, so code that copies or moves state dicts works unchanged.
    """
    rows = [(float(CONSTANTS_FORMAT), _code(kind))]
    for name, value in constants.items():
        rows.append((_code(name), float(choices[name].index(value)) if isinstance(value, str) else float(value)))
    return torch.tensor(rows, dtype=torch.float64)


def constants_mismatch(
    kind: str, constants: Mapping[str, float | str], choices: Mapping[str, tuple[str, ...]], saved: object
) -> str | None:
    """Why ``saved`` (a :func:`pack_constants` table) does not match this module's constants, or None.

    A constant missing from ``saved`` (written before it existed) is accepted with this module's value."""
    owner = f"{kind} constants in the state_dict"
    if not isinstance(saved, Tensor) or saved.dim() != 2 or saved.shape[-1] != 2 or saved.shape[0] < 1:
        return f"{owner} are not a spikeforge constant table; load a state_dict saved from a spikeforge {kind}"
    table = saved.detach().to("cpu", torch.float64)
    if float(table[0, 0]) != CONSTANTS_FORMAT or float(table[0, 1]) != _code(kind):
        return (
            f"{owner} were saved from another neuron type or spikeforge version; build the same model that saved them"
        )
    rows = {float(c): float(v) for c, v in table[1:].tolist()}
    codes = {_code(n): n for n in constants}
    unknown = [c for c in rows if c not in codes]
    if unknown:
        return f"{owner} hold {len(unknown)} constant(s) this {kind} does not have; build the model that saved them"
    diffs = []
    for name, mine in constants.items():
        if _code(name) not in rows:
            continue
        got = rows[_code(name)]
        if isinstance(mine, str):
            opts = choices[name]
            theirs: float | str = opts[int(got)] if got.is_integer() and 0 <= got < len(opts) else f"code {got}"
        else:
            theirs = got
        if theirs != mine:
            diffs.append(f"{name}={theirs!r} (saved) vs {name}={mine!r} (this module)")
    if not diffs:
        return None
    wanted = ", ".join(d.split(" (saved)")[0] for d in diffs)
    return (
        f"{owner} differ from this module's: {'; '.join(diffs)}; build the module with the saved values "
        f"({wanted}) to load them, or load only the tensors you need"
    )
