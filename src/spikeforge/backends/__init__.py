"""Fused multi-step backends for LIF-family neurons, chosen automatically.

``backend`` on a neuron module:

* ``"reference"``: the one time loop over the pure step function (the oracle; always available,
  traceable by ``torch.compile``, needed for learnable tensors such as trainable ``tau``/``v_th``).
* ``"torch"``: one autograd node for the whole sequence with a hand-written backward, plain eager
  PyTorch (any device).
* ``"numba"``: the same recurrence compiled by Numba for the CPU (``pip install 'spikeforge[fast]'``).
* ``"triton"``: the same recurrence as one Triton GPU kernel per direction, the time loop in registers
  (CUDA tensors, float32/float64, and float16/bfloat16 computed in float32; needs ``triton`` and a CUDA
  build of torch: ``pip install 'spikeforge[gpu]'``). With ``TRITON_INTERPRET=1`` the same kernels also
  run on CPU tensors in Triton's (slow) interpreter, which is how the CPU test suite checks them.
* ``"auto"`` (default): ``triton`` on CUDA float32/float64 when installed (compute capability >= 7.5),
  ``numba`` on CPU float32/float64 when installed, else ``torch``; the reference loop while
  ``torch.compile`` traces, or when the layer has trainable/per-neuron tensor parameters.

Every fused path is tested against the reference loop: identical spikes, gradients within tolerance.
``auto`` never picks a path whose spikes can differ from the reference loop (float16/bfloat16 Triton runs
carry the membrane in float32, so they are used only when ``backend="triton"`` is asked for).
"""

from __future__ import annotations

from torch import Tensor

from spikeforge.backends.numba_kernel import NumbaKernel, numba_available
from spikeforge.backends.spec import RESET_CODES, FusedSpec, Kernel, fused_run
from spikeforge.backends.torch_kernel import TorchKernel
from spikeforge.backends.triton_kernel import TRITON_DTYPES, TritonKernel, triton_available, triton_installed, triton_interpreting

__all__ = ["BACKENDS", "FusedSpec", "Kernel", "fused_run", "select_kernel", "available_backends", "RESET_CODES", "check_backend"]

BACKENDS = ("auto", "reference", "torch", "numba", "triton")


def check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")


def available_backends() -> list[str]:
    out = ["reference", "torch"]
    if numba_available():
        out.append("numba")
    if triton_available():
        out.append("triton")
    return out


def _triton_auto(x: Tensor) -> bool:
    """``auto`` runs Triton on CUDA float32/float64 (Turing or newer), never in the CPU interpreter."""
    import torch

    if x.device.type != "cuda" or x.dtype not in (torch.float32, torch.float64):
        return False
    return triton_installed() and not triton_interpreting() and torch.cuda.get_device_capability(x.device) >= (7, 5)


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
    if backend == "triton":
        if not triton_installed():
            raise ImportError("backend='triton' needs triton and a CUDA build of torch: pip install 'spikeforge[gpu]'")
        if x.device.type != "cuda" and not triton_interpreting():
            where = "move the model and input to the GPU with .cuda()" if torch.cuda.is_available() else "no CUDA GPU is visible here"
            raise ValueError(
                f"backend='triton' runs CUDA tensors, got {x.device}: {where}; or use backend='auto' "
                "(or set TRITON_INTERPRET=1 to run the slow Triton interpreter on the CPU)"
            )
        if x.dtype not in TRITON_DTYPES:
            raise ValueError(f"backend='triton' runs {', '.join(map(str, TRITON_DTYPES))} tensors, got {x.dtype}; use backend='auto'")
        return TritonKernel()
    check_backend(backend)
    if torch.compiler.is_compiling():
        return None
    if _triton_auto(x):
        return TritonKernel()
    if x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and numba_available():
        return NumbaKernel()
    return TorchKernel()
