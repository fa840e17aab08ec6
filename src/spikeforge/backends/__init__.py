"""Fused multi-step backends for LIF-family neurons, chosen automatically.

``backend`` on a neuron module:

* ``"reference"``: the one time loop over the pure step function (the oracle; always available,
  traceable by ``torch.compile``, needed for learnable tensors such as trainable ``tau``/``v_th``).
* ``"torch"``: one autograd node for the whole sequence with a hand-written backward, plain eager
  PyTorch (any device).
* ``"numba"``: the same recurrence compiled by Numba for the CPU (``pip install 'spikeforge[fast]'``).
* ``"auto"`` (default): ``numba`` on CPU float32/float64 when installed, else ``torch``; the reference
  loop while ``torch.compile`` traces, or when the layer has trainable/per-neuron tensor parameters.

Every fused path is tested against the reference loop: identical spikes, gradients within tolerance.
A CUDA/Triton kernel is not written yet; on GPU ``auto`` uses the eager ``torch`` kernel.
"""

from __future__ import annotations

from torch import Tensor

from spikeforge.backends.numba_kernel import NumbaKernel, numba_available
from spikeforge.backends.spec import RESET_CODES, FusedSpec, Kernel, fused_run
from spikeforge.backends.torch_kernel import TorchKernel

__all__ = ["BACKENDS", "FusedSpec", "Kernel", "fused_run", "select_kernel", "available_backends", "RESET_CODES", "check_backend"]

BACKENDS = ("auto", "reference", "torch", "numba")


def check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")


def available_backends() -> list[str]:
    out = ["reference", "torch"]
    if numba_available():
        out.append("numba")
    return out


def select_kernel(backend: str, x: Tensor) -> Kernel | None:
    """The kernel to use for input ``x``, or None for the reference loop."""
    import torch

    if backend == "reference":
        return None
    if backend == "torch":
        return TorchKernel()
    if backend == "numba":
        if not numba_available():
            raise ImportError("backend='numba' needs numba: pip install 'spikeforge[fast]'")
        if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"backend='numba' runs float32/float64 CPU tensors, got {x.dtype} on {x.device}; use backend='auto'")
        return NumbaKernel()
    check_backend(backend)
    if torch.compiler.is_compiling():
        return None
    if x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and numba_available():
        return NumbaKernel()
    return TorchKernel()
