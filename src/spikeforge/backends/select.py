"""Which fused kernel runs a sequence: one table of backends, read by :func:`select_kernel`.

Each row names the kernel, whether its package is installed (and how to install it), which inputs it
runs (a reason naming the fix when it cannot) and whether ``backend="auto"`` may pick it. ``auto`` takes
the first backend of :data:`AUTO_PREFERENCE` that it may pick. Adding a backend is one row (and, if
``auto`` should consider it, its place in that tuple).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from spikeforge.backends.numba_kernel import NumbaKernel
from spikeforge.backends.numba_kernel import numba_available
from spikeforge.backends.spec import Kernel
from spikeforge.backends.torch_kernel import TorchKernel
from spikeforge.backends.triton_kernel import TRITON_DTYPES
from spikeforge.backends.triton_kernel import TritonKernel
from spikeforge.backends.triton_kernel import device_problem
from spikeforge.backends.triton_kernel import triton_available
from spikeforge.backends.triton_kernel import triton_installed

__all__ = [
    "Backend", "BACKEND_TABLE", "AUTO_PREFERENCE", "BACKENDS", "check_backend", "available_backends",
    "select_kernel",
]  # fmt: skip

_FLOAT = (torch.float32, torch.float64)


@dataclass(frozen=True)
class Backend:
    """One row of the backend table.

    Attributes:
        make: builds the kernel.
        installed: whether its package imports here (else ``install`` is the fix).
        problem: why it cannot run ``x`` (device, dtype), naming the fix; None when it can.
        auto: whether ``backend="auto"`` may pick it for ``x`` (only where spikes equal the reference loop's).
        listed: shown by :func:`available_backends` when installed (debugging aids are not).
    """

    make: Callable[[], Kernel]
    installed: Callable[[], bool]
    install: str
    problem: Callable[[Tensor], str | None]
    auto: Callable[[Tensor], bool]
    listed: Callable[[], bool]


def _triton_problem(x: Tensor, interpret: bool) -> str | None:
    if x.dtype not in TRITON_DTYPES:
        return f"backend='triton' runs {', '.join(map(str, TRITON_DTYPES))} tensors, got {x.dtype}; use backend='auto'"
    return device_problem(x, interpret)


def _triton_auto(x: Tensor) -> bool:
    """CUDA float32/float64 on Turing or newer (float16/bfloat16 carry the membrane in float32: not auto)."""
    if x.device.type != "cuda" or x.dtype not in _FLOAT:
        return False
    return triton_installed() and torch.cuda.get_device_capability(x.device) >= (7, 5)


def _numba_problem(x: Tensor) -> str | None:
    if x.device.type != "cpu" or x.dtype not in _FLOAT:
        return f"backend='numba' runs float32/float64 CPU tensors, got {x.dtype} on {x.device}; use backend='auto'"
    return None


BACKEND_TABLE: dict[str, Backend] = {
    "torch": Backend(
        make=TorchKernel,
        installed=lambda: True,
        install="",
        problem=lambda x: None,
        auto=lambda x: True,
        listed=lambda: True,
    ),
    "numba": Backend(
        make=NumbaKernel,
        installed=numba_available,
        install="backend='numba' needs numba: pip install 'spikeforge[fast]'",
        problem=_numba_problem,
        auto=lambda x: _numba_problem(x) is None and numba_available(),
        listed=numba_available,
    ),
    "triton": Backend(
        make=TritonKernel,
        installed=triton_installed,
        install="backend='triton' needs triton and a CUDA build of torch: pip install 'spikeforge[gpu]'",
        problem=lambda x: _triton_problem(x, interpret=False),
        auto=_triton_auto,
        listed=triton_available,
    ),
    "triton_interpret": Backend(  # the Triton kernel source run op by op on CPU tensors (tests, debugging)
        make=lambda: TritonKernel(interpret=True),
        installed=triton_installed,
        install="backend='triton_interpret' needs triton: pip install triton",
        problem=lambda x: _triton_problem(x, interpret=True),
        auto=lambda x: False,
        listed=lambda: False,
    ),
}
AUTO_PREFERENCE = ("triton", "numba", "torch")  # backend="auto": the first of these whose row may run x
BACKENDS: tuple[str, ...] = ("auto", "reference", *BACKEND_TABLE)  # the built-in names


def check_backend(backend: str) -> None:
    """Raise unless ``backend`` is ``"auto"``, ``"reference"`` or a row of :data:`BACKEND_TABLE`."""
    names = ("auto", "reference", *BACKEND_TABLE)
    if backend not in names:
        raise ValueError(f"unknown backend {backend!r}; choose one of {names}")


def available_backends() -> list[str]:
    """The backends that run here at full speed: ``reference`` and every listed, installed row."""
    return ["reference", *(name for name, row in BACKEND_TABLE.items() if row.listed())]


def select_kernel(backend: str, x: Tensor) -> Kernel | None:
    """The kernel to use for input ``x``, or None for the reference loop.

    ``"reference"`` is the loop; a table name is that kernel (raising, with the fix, when it is not installed
    or cannot run ``x``); ``"auto"`` is the first row that may run ``x`` (the loop while ``torch.compile``
    traces).
    """
    if backend == "reference":
        return None
    if backend == "auto":
        if torch.compiler.is_compiling():
            return None
        return next(BACKEND_TABLE[name].make() for name in AUTO_PREFERENCE if BACKEND_TABLE[name].auto(x))
    check_backend(backend)
    row = BACKEND_TABLE[backend]
    if not row.installed():
        raise ImportError(row.install)
    problem = row.problem(x)
    if problem is not None:
        raise ValueError(problem)
    return row.make()
