r"""Spike-sparse Linear and Conv2d: work proportional to the number of input spikes.

For a binary input ``x`` (every element 0 or 1) the layer output is a sum of weight columns,

.. math::  y_m = b + \sum_{j:\, x_{mj} = 1} W_{:, j},

so only the columns of active inputs are read. On CPU (float32/float64, Numba installed) the layer runs
the kernels of :mod:`spikeforge.events._sparse_kernel`: one compiled pass builds the active-index lists
of every row (CSR) and checks that ``x`` is binary; the forward sums the active rows of ``W^T [in, out]``
(``nnz(x) * out`` additions on contiguous rows); the weight gradient
``dW^T_j = \sum_{m: x_{mj}=1} dy_m`` reuses the same lists, transposed once, and the same row-sum kernel
with table ``dy``. Elsewhere (GPU, other dtypes, no Numba) the same sums run as
``embedding_bag(mode="sum")``. The input gradient ``dy W`` is dense, as it must be for surrogate-gradient
training. A custom :class:`torch.autograd.Function` ties the two together.

The spike density ``nnz(x) / numel(x)`` is measured on every call; non-binary input, or a density above
``crossover``, takes the dense path (``F.linear`` / ``F.conv2d``), so the layers are drop-in
replacements whose results equal the dense path to float rounding (spikes downstream exactly, barring
ties at threshold within rounding error). ``sparse_linear`` first estimates the density on about 64 evenly
spaced rows (microseconds) and goes straight to the dense path when the estimate exceeds 1.25x ``crossover``;
only below that does it run the exact pass (at 1568 -> 128, 512 rows: about half the dense forward, 15 % of forward + backward).

Default crossovers (:data:`LINEAR_CROSSOVER`, :data:`CONV2D_CROSSOVER`) were measured on a shared 2-core CPU
(AVX-512), one torch thread, torch 2.13 (numbers in ``benchmarks/RESULTS.md``). Issue 20, session 8
(``benchmarks/sparse_default.py`` on an Intel Xeon, the other core busy, input gradient needed as in training): ``sparse_linear``
1024 -> 1024 with 3200 rows breaks even with ``F.linear`` at about 8 % density forward + backward and 10 %
forward alone; 1568 -> 128 with 512 rows at about 10 % (both); so the default is 10 % (it was 20 %, from
``benchmarks/events.py``, which measured 40-45 % without the input gradient and on a quieter machine). With
3 or 10 outputs the sparse path never wins (the density check costs as much as the product). ``sparse_conv2d``
breaks even only below 0.1 % (16 -> 32, 3x3): the dense convolution is hard to beat on a CPU. Both layers
accept ``crossover=`` for other machines and shapes.
"""

from __future__ import annotations

from typing import Any
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor
from torch import nn

from spikeforge.events._sparse_fn import _kernel_csr
from spikeforge.events._sparse_fn import _SparseConv2dFn
from spikeforge.events._sparse_fn import _SparseLinearFn
from spikeforge.events._sparse_fn import _SparseLinearKernelFn
from spikeforge.events._sparse_fn import conv2d_pairs as conv2d_pairs  # re-exported: its home before the split

__all__ = [
    "LINEAR_CROSSOVER", "CONV2D_CROSSOVER", "spike_density", "sparse_linear", "sparse_conv2d", "SparseLinear",
    "SparseConv2d",
]  # fmt: skip

LINEAR_CROSSOVER = 0.1
"""Density above which :func:`sparse_linear` runs the dense GEMM (measured 8-10 % in training; module docstring)."""
CONV2D_CROSSOVER = 0.001
"""Density above which :func:`sparse_conv2d` runs the dense convolution (measured about 0.1 %)."""


def spike_density(x: Tensor) -> float | None:
    """Fraction of nonzero elements of ``x`` if ``x`` is binary (all 0 or 1), else None."""
    if x.numel() == 0:
        return 0.0
    nnz = int(torch.count_nonzero(x))
    if nnz and int(torch.count_nonzero(x == 1)) != nnz:  # some nonzero entry is not 1 (NaN included)
        return None
    return nnz / x.numel()


_SAMPLE_ROWS = 64
_SAMPLE_MARGIN = 1.25


def _sampled_density(x2: Tensor) -> float:
    """Fraction of nonzeros of binary ``x2 [M, K]`` in about :data:`_SAMPLE_ROWS` evenly spaced rows: an estimate
    that costs microseconds, so an input far above the crossover goes to the dense path without the exact pass
    (about half the dense forward at 1568 -> 128; ``benchmarks/sparse_default.py``)."""
    sample = x2[:: max(1, x2.shape[0] // _SAMPLE_ROWS)]
    # the sum is the nonzero count of binary input (and faster than count_nonzero); for other input the estimate
    # may be anything, but such input takes the dense path either way
    return float(sample.detach().sum()) / max(sample.numel(), 1)


def _check_crossover(crossover: float) -> float:
    if isinstance(crossover, bool) or not isinstance(crossover, (int, float)) or not 0.0 <= float(crossover) <= 1.0:
        raise ValueError(f"crossover must be a density in [0, 1], got {crossover!r}")
    return float(crossover)


def sparse_linear(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    *,
    crossover: float = LINEAR_CROSSOVER,
    weight_t: Tensor | None = None,
) -> Tensor:
    """``F.linear`` that accumulates only the weight columns of active inputs when ``x`` is sparse binary.

    Args:
        x: input ``[..., in]``; binary spikes take the sparse path when their density <= ``crossover``.
        weight: ``[out, in]`` (e.g. an ``nn.Linear``'s weight, shared, not copied).
        bias: ``[out]`` or None.
        crossover: density in [0, 1] above which the dense GEMM runs.
        weight_t: optional ``weight.t().contiguous()`` computed earlier (skips one transpose per call).
    Returns:
        ``[..., out]``, equal to ``F.linear(x, weight, bias)`` up to float summation order.
    """
    crossover = _check_crossover(crossover)
    if x.dim() == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"x must be [..., {weight.shape[1]}] for weight {tuple(weight.shape)}, got {tuple(x.shape)}")
    if x.numel() == 0:
        return F.linear(x, weight, bias)
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1])
    if _sampled_density(x2) > _SAMPLE_MARGIN * crossover:  # clearly dense: skip the exact check
        return F.linear(x, weight, bias)
    csr = _kernel_csr(x2, weight)
    if csr is not None:
        ptr, idx, nnz = csr
        if nnz < 0 or nnz > crossover * x.numel():
            return F.linear(x, weight, bias)
        out = _SparseLinearKernelFn.apply(x2, weight, bias, weight_t, ptr, idx)
        return out.reshape(*lead, weight.shape[0])
    density = spike_density(x)
    if density is None or density > crossover:
        return F.linear(x, weight, bias)
    out = _SparseLinearFn.apply(x2, weight, bias, weight_t)
    return out.reshape(*lead, weight.shape[0])


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def sparse_conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    *,
    crossover: float = CONV2D_CROSSOVER,
) -> Tensor:
    """``F.conv2d`` (groups = 1, zero padding) that scatters only the kernels of active inputs.

    Args:
        x: ``[B, C, H, W]``; binary with density <= ``crossover`` takes the sparse path.
        weight: ``[O, C, KH, KW]``. bias: ``[O]`` or None. stride, padding, dilation: as ``F.conv2d``
            (integers or pairs; string padding is not supported).
    Returns:
        ``[B, O, OH, OW]``, equal to ``F.conv2d`` up to float summation order.
    """
    crossover = _check_crossover(crossover)
    if isinstance(padding, str):
        raise ValueError("sparse_conv2d takes integer padding; convert padding='same' to explicit integers")
    if x.dim() != 4 or weight.dim() != 4 or x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"x must be [B, C, H, W] with C = {weight.shape[1]} (weight {tuple(weight.shape)}), got {tuple(x.shape)}; "
            "grouped convolutions are not supported"
        )
    s, p, d = _pair(stride), _pair(padding), _pair(dilation)
    density = spike_density(x)
    if density is None or density > crossover or x.numel() == 0:
        return F.conv2d(x, weight, bias, s, p, d)
    return _SparseConv2dFn.apply(x, weight, bias, (s, p, d))


class SparseLinear(nn.Linear):
    """An ``nn.Linear`` whose forward is :func:`sparse_linear` (same parameters, same ``state_dict``).

    Build one around an existing layer with :meth:`from_dense` (the parameters are shared, not copied).
    ``crossover``: density above which the dense GEMM runs (default :data:`LINEAR_CROSSOVER`).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        crossover: float = LINEAR_CROSSOVER,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        self.crossover = _check_crossover(crossover)

    @classmethod
    def from_dense(cls, linear: nn.Linear, *, crossover: float = LINEAR_CROSSOVER) -> SparseLinear:
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"from_dense needs an nn.Linear, got {type(linear).__name__}")
        new = cls(linear.in_features, linear.out_features, linear.bias is not None, crossover=crossover, device="meta")
        new.weight, new.bias = linear.weight, linear.bias  # shared Parameters
        return new

    def forward(self, x: Tensor) -> Tensor:
        return sparse_linear(x, self.weight, self.bias, crossover=self.crossover, weight_t=self._transposed())

    def _transposed(self) -> Tensor:
        """``weight.t()`` in contiguous layout, rebuilt only when the weight changes (in-place version counter)."""
        w = self.weight
        key = (w._version, w.data_ptr(), w.dtype, w.device)
        cache = self.__dict__.get("_wt_cache")
        if cache is None or cache[0] != key:
            with torch.no_grad():
                cache = (key, w.detach().t().contiguous())
            self.__dict__["_wt_cache"] = cache  # derived data only; never in state_dict
        return cache[1]

    def extra_repr(self) -> str:
        return super().extra_repr() + f", crossover={self.crossover}"


class SparseConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` (groups = 1, zero padding) whose forward is :func:`sparse_conv2d`.

    Build one around an existing layer with :meth:`from_dense` (parameters shared).
    """

    def __init__(self, *args: Any, crossover: float = CONV2D_CROSSOVER, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _check_conv(self)
        self.crossover = _check_crossover(crossover)

    @classmethod
    def from_dense(cls, conv: nn.Conv2d, *, crossover: float = CONV2D_CROSSOVER) -> SparseConv2d:
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"from_dense needs an nn.Conv2d, got {type(conv).__name__}")
        _check_conv(conv)
        new = cls(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            stride=conv.stride,
            padding=conv.padding,
            dilation=conv.dilation,
            bias=conv.bias is not None,
            crossover=crossover,
            device="meta",
        )
        new.weight, new.bias = conv.weight, conv.bias
        return new

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 3:
            return self.forward(x.unsqueeze(0))[0]
        # nn.Conv2d types its geometry tuple[int, ...] (padding also str); it holds pairs, and _check_conv
        # rejected string padding
        geom = cast(
            "tuple[tuple[int, int], tuple[int, int], tuple[int, int]]", (self.stride, self.padding, self.dilation)
        )
        return sparse_conv2d(x, self.weight, self.bias, *geom, crossover=self.crossover)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", crossover={self.crossover}"


def _check_conv(conv: nn.Conv2d) -> None:
    if conv.groups != 1 or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        raise ValueError(
            "SparseConv2d supports groups=1, padding_mode='zeros' and integer padding, got "
            f"groups={conv.groups}, padding_mode={conv.padding_mode!r}, padding={conv.padding!r}; keep nn.Conv2d"
        )
