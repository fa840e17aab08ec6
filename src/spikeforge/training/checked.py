"""The one checked way from a file's tensors to a model: every checkpoint loader goes through here.

A checkpoint is hostile until checked. Its pickle is read with ``weights_only=True`` (no code runs), but what it
declares may still lie: a 4 KB file whose config asks for ``hidden=[20000, 20000]`` would make a naive loader
allocate gigabytes before noticing that the weights do not fit. :func:`build_checked` therefore

1. checks the state dict's type (a dict of names to tensors), that its floating-point values are finite, and
   that it holds at most :data:`MAX_PARAMETERS` values;
2. builds the model under an allocation budget (:class:`AllocationBudget`): every tensor factory call made
   while building is sized first on the ``meta`` device (which allocates nothing) and refused once the total
   passes a few times what the file actually holds (:func:`build_budget`), so a config that declares more than
   the file holds is refused *before* the large allocation;
3. compares the built model's names and shapes with the tensors present (one line naming the first
   differences), then loads them.

File-level caps (:data:`MAX_CHECKPOINT_BYTES`, zip-format only) live in :mod:`spikeforge.training.checkpoint`.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from typing import Any
from typing import TypeVar

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

__all__ = [
    "MAX_PARAMETERS",
    "AllocationBudget",
    "BudgetExceeded",
    "build_budget",
    "build_checked",
    "check_state_dict",
    "match_state_dict",
]

#: Most values (parameters and buffers) a checkpoint may hold or a checked build may allocate: 2**27, about
#: 134 million (512 MiB of float32). The models spikeforge trains have thousands to a few million.
MAX_PARAMETERS = 2**27

M = TypeVar("M", bound=nn.Module)
#: Suffix of a module's extra state in a state dict (checked by the module itself when loaded).
_EXTRA = "_extra_state"

#: Tensor factories whose size is known before they allocate (what a module's constructor uses).
_FACTORIES: frozenset[Any] = frozenset(
    {
        torch.empty, torch.zeros, torch.ones, torch.full, torch.rand, torch.randn, torch.randint, torch.empty_strided,
        torch.eye, torch.arange, torch.linspace, torch.logspace, torch.randperm, torch.tensor, torch.as_tensor,
        torch.Tensor.new_empty, torch.Tensor.new_zeros, torch.Tensor.new_ones, torch.Tensor.new_full,
        torch.Tensor.new_tensor, torch.empty_like, torch.zeros_like, torch.ones_like, torch.full_like,
        torch.rand_like, torch.randn_like,
    }
)  # fmt: skip


class BudgetExceeded(MemoryError):
    """A checked build asked for more values than its budget (raised before allocating them)."""


class AllocationBudget(TorchFunctionMode):
    """While active, refuse any tensor factory call that would take the total number of values allocated past
    ``limit`` (sized on the ``meta`` device first, so the refused allocation never happens)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = int(limit)
        self.used = 0

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = dict(kwargs or {})
        if func in _FACTORIES and func not in (torch.tensor, torch.as_tensor, torch.Tensor.new_tensor):
            probe = func(*args, **{**kwargs, "device": "meta"})
            self.used += probe.numel() if isinstance(probe, torch.Tensor) else 0
            if self.used > self.limit:
                raise BudgetExceeded(f"building would allocate more than {self.limit:,} values")
        return func(*args, **kwargs)


def check_state_dict(state: Any, where: str) -> dict[str, torch.Tensor]:
    """``state`` as a ``{name: tensor}`` dict, or ``ValueError`` naming what is wrong with it.

    Refused: not a dict, a non-string name, a value that is not a tensor, more than :data:`MAX_PARAMETERS`
    values in all, a non-finite floating-point value.
    """
    if not isinstance(state, Mapping):
        raise ValueError(f"{where}: the weights are a {type(state).__name__}, not a dict of tensors; {_NOT_OURS}")
    total = 0
    for name, value in state.items():
        if not isinstance(name, str) or not isinstance(value, torch.Tensor):
            raise ValueError(f"{where}: weight {name!r} is a {type(value).__name__}, not a named tensor; {_NOT_OURS}")
        total += value.numel()
        if total > MAX_PARAMETERS:
            raise ValueError(
                f"{where} holds more than MAX_PARAMETERS = {MAX_PARAMETERS:,} values "
                "(spikeforge.training.checked.MAX_PARAMETERS); it is not a spikeforge model"
            )
        if (value.is_floating_point() or value.is_complex()) and not name.endswith(_EXTRA):
            if not bool(torch.isfinite(value).all()):
                raise ValueError(f"{where}: weight {name!r} holds NaN or infinite values; retrain (lower lr)")
    return dict(state)


_NOT_OURS = "the file is damaged or not from spikeforge; use a checkpoint written by spikeforge"


def build_budget(state: Mapping[str, torch.Tensor]) -> int:
    """Values a checked build of ``state`` may allocate: four times what it holds plus 2**20 (room for buffers
    and initialisation temporaries), at most :data:`MAX_PARAMETERS`."""
    held = sum(int(v.numel()) for v in state.values())
    return min(MAX_PARAMETERS, 4 * held + 2**20)


def match_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor], where: str) -> None:
    """``ValueError`` (one line, the first differences) unless ``state`` has exactly ``model``'s names and shapes."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items() if isinstance(v, torch.Tensor)}
    present = {k: tuple(v.shape) for k, v in state.items()}
    # a module's ``_extra_state`` (the neurons' constant table) is optional: files from before it load as before,
    # and when present the module's own ``load_state_dict`` compares it
    problems = [f"{k} is missing" for k in expected if k not in present and not k.endswith(_EXTRA)]
    problems += [f"{k} is not in the model" for k in present if k not in expected]
    problems += [
        f"{k} has shape {list(present[k])}, the config's model {list(s)}"
        for k, s in expected.items()
        if k in present and present[k] != s
    ]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ValueError(
            f"{where}: the weights do not match the model its config describes: {'; '.join(problems[:3])}{more}; "
            f"{_NOT_OURS}"
        )


def build_checked(build: Callable[[], M], state: Any, where: str) -> M:
    """``build()`` a model under the allocation budget of ``state`` (checked by :func:`check_state_dict`),
    compare its names and shapes with ``state``, load ``state`` and return the model in eval mode.

    ``build`` runs with torch's random state saved and restored (initialising weights that are then replaced
    must not change the caller's random draws). Its ``TypeError``/``ValueError`` (an invalid setting in the
    file's config) and a budget overrun become ``ValueError`` naming ``where``.
    """
    tensors = check_state_dict(state, where)
    budget = AllocationBudget(build_budget(tensors))
    try:
        with torch.random.fork_rng(devices=[]), budget:
            model = build()
    except BudgetExceeded:
        held = sum(int(v.numel()) for v in tensors.values())
        raise ValueError(
            f"{where}: its config declares a larger model than the weights it holds (building it would allocate "
            f"more than {budget.limit:,} values; the file holds {held:,}); {_NOT_OURS}"
        ) from None
    except (TypeError, ValueError, KeyError, IndexError, OverflowError) as err:
        message = " ".join(str(err).split())
        raise ValueError(f"{where}: its config does not describe a valid model ({message}); {_NOT_OURS}") from None
    match_state_dict(model, tensors, where)
    try:
        model.load_state_dict(tensors)
    except RuntimeError as err:  # names and shapes matched: e.g. the neurons' saved constants differ from the config's
        raise ValueError(f"{where} does not match its own config: {' '.join(str(err).split())}; {_NOT_OURS}") from None
    return model.eval()
