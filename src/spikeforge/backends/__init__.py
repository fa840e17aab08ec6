"""Fused multi-step backends for LIF-family neurons, chosen automatically.

``backend`` on a neuron module:

* ``"reference"``: the one time loop over the pure step function (the oracle; always available,
  traceable by ``torch.compile``, needed for learnable tensors such as trainable ``tau``/``v_th``).
* ``"torch"``: one autograd node for the whole sequence with a hand-written backward, plain eager
  PyTorch (any device).
* ``"numba"``: the same recurrence compiled by Numba for the CPU (``pip install 'spikeforge[fast]'``).
* ``"triton"``: the same recurrence as one Triton GPU kernel per direction, the time loop in registers
  (CUDA tensors, float32/float64, and float16/bfloat16 computed in float32; needs ``triton`` and a CUDA
  build of torch: ``pip install 'spikeforge[gpu]'``).
* ``"triton_interpret"``: the same Triton kernels run on CPU tensors in Triton's (slow) interpreter, which
  is how the CPU test suite checks them (an explicit choice: ``TRITON_INTERPRET`` is not read).
* ``"auto"`` (default): ``triton`` on CUDA float32/float64 when installed (compute capability >= 7.5),
  ``numba`` on CPU float32/float64 when installed, else ``torch``; the reference loop while
  ``torch.compile`` traces, or when the layer has trainable/per-neuron tensor parameters.

A fused neuron layer followed by a tiling ``AvgPool2d``/``MaxPool2d`` runs with the pool as one Numba pass
in ``SNNSequential`` (:mod:`spikeforge.backends.lif_pool`): the spikes are pooled chunk by chunk in cache and
the backward reads the pooled gradient, so neither full-size tensor is stored.

The choice is one table (:mod:`spikeforge.backends.select`). Every fused path is tested against the
reference loop: identical spikes, gradients within tolerance. Second-order gradients
(``torch.autograd.grad(..., create_graph=True)``, e.g. a gradient penalty) are the reference loop's too:
under ``create_graph`` the fused node reruns the sequence as differentiable torch ops (at the reference
loop's speed) instead of its hand-written backward, which autograd cannot differentiate.
``auto`` never picks a path whose spikes can differ from the reference loop (float16/bfloat16 Triton runs
carry the membrane in float32, so they are used only when ``backend="triton"`` is asked for).
"""

from __future__ import annotations

from spikeforge.backends.numba_kernel import NumbaKernel
from spikeforge.backends.numba_kernel import numba_available
from spikeforge.backends.select import AUTO_PREFERENCE
from spikeforge.backends.select import BACKEND_TABLE
from spikeforge.backends.select import BACKENDS
from spikeforge.backends.select import Backend
from spikeforge.backends.select import available_backends
from spikeforge.backends.select import check_backend
from spikeforge.backends.select import select_kernel
from spikeforge.backends.spec import RESET_CODES
from spikeforge.backends.spec import FusedSpec
from spikeforge.backends.spec import Kernel
from spikeforge.backends.spec import fused_run
from spikeforge.backends.spec import surrogate_kernel_code
from spikeforge.backends.torch_kernel import TorchKernel
from spikeforge.backends.triton_kernel import TRITON_DTYPES
from spikeforge.backends.triton_kernel import TritonKernel
from spikeforge.backends.triton_kernel import triton_available
from spikeforge.backends.triton_kernel import triton_installed

__all__ = [
    "BACKENDS", "BACKEND_TABLE", "AUTO_PREFERENCE", "Backend", "FusedSpec", "Kernel", "fused_run", "select_kernel",
    "available_backends", "RESET_CODES", "check_backend", "surrogate_kernel_code", "NumbaKernel", "TorchKernel",
    "TritonKernel", "numba_available", "triton_available", "triton_installed", "TRITON_DTYPES",
]  # fmt: skip
