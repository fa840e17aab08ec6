r"""Stage 3 of conversion: activation observers and robust layer-wise scales (Rueckauer et al. 2017).

Rueckauer, Lungu, Hu, Pfeiffer, Liu, "Conversion of continuous-valued deep networks to efficient
event-driven networks for image classification", Front. Neurosci. 11:682 (2017). For each activation
layer ``l`` the scale ``lambda_l`` is the ``p``-th percentile of its activations on calibration data
(``p = 100`` is plain max-norm; the authors' toolbox default is ``p = 99.9``). The percentile is taken
over the *strictly positive* activations (zeros carry no information about the scale, and including
them would make ``lambda_l`` depend on the layer's sparsity); numpy's ``"linear"`` interpolation is
used. A layer that never activates gets ``lambda_l = 1``.

Observers are forward hooks that live only inside :func:`observe_activations`; they are removed in a
``finally`` block, so an exception in the middle of calibration leaves no hook behind.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor
from torch import nn

__all__ = ["percentile", "observe_activations", "calibrate_scales", "iter_calibration"]


def percentile(values: Tensor, p: float) -> float:
    """``p``-th percentile (0..100) of a 1-D tensor with numpy's default linear interpolation.

    Uses ``torch.kthvalue`` so it works beyond ``torch.quantile``'s input-size limit.
    """
    if not 0.0 < float(p) <= 100.0:
        raise ValueError(f"percentile must lie in (0, 100], got {p!r} (100 = max-norm, 99.9 = Rueckauer default)")
    v = values.reshape(-1)
    n = v.numel()
    if n == 0:
        raise ValueError("percentile of an empty tensor is undefined")
    pos = (float(p) / 100.0) * (n - 1)
    lo = int(pos)
    hi = min(lo + 1, n - 1)
    a = torch.kthvalue(v, lo + 1).values.item()
    b = torch.kthvalue(v, hi + 1).values.item() if hi != lo else a
    return a + (b - a) * (pos - lo)


def iter_calibration(data: Any, *, batch_size: int = 256) -> Iterator[Tensor]:
    """Yield input batches from a tensor ``[N, ...]``, a dataset with ``.x``, or an iterable of
    tensors / ``(x, y)`` pairs."""
    if isinstance(data, Tensor):
        if data.dim() < 1 or data.shape[0] == 0:
            raise ValueError(f"calibration data must be a non-empty [N, ...] tensor, got shape {tuple(data.shape)}")
        yield from data.split(batch_size)
        return
    if isinstance(getattr(data, "x", None), Tensor):
        yield from iter_calibration(data.x, batch_size=batch_size)
        return
    if not isinstance(data, Iterable):
        raise TypeError(
            f"calibration data must be a tensor [N, ...], a dataset with .x, or an iterable of batches; got {type(data).__name__}"
        )
    seen = False
    for item in data:
        xb = item[0] if isinstance(item, (tuple, list)) else item
        if not isinstance(xb, Tensor):
            raise TypeError(f"calibration batches must be tensors or (x, y) pairs, got {type(xb).__name__}")
        seen = True
        yield xb
    if not seen:
        raise ValueError("calibration data is empty; give at least one batch")


@contextmanager
def observe_activations(model: nn.Module, names: Iterable[str]) -> Iterator[dict[str, list[Tensor]]]:
    """Attach observers to the submodules ``names`` of ``model``; yield ``{name: [positive values]}``.

    Each observer stores the strictly positive outputs (flattened, detached) of its module for every
    call. All hooks are removed when the ``with`` block exits, also when it exits with an exception.
    """
    store: dict[str, list[Tensor]] = {}
    handles = []

    def make(name: str) -> Any:
        def hook(module: nn.Module, args: Any, output: Tensor) -> None:
            out = output.detach().reshape(-1)
            store[name].append(out[out > 0])

        return hook

    try:
        for name in names:
            store[name] = []
            handles.append(model.get_submodule(name).register_forward_hook(make(name)))
        yield store
    finally:
        for h in handles:
            h.remove()


def calibrate_scales(
    model: nn.Module,
    data: Any,
    names: Iterable[str],
    *,
    percentile_value: float = 99.9,
    batch_size: int = 256,
) -> dict[str, float]:
    """Run ``model`` on calibration ``data`` (no grad) and return ``{name: lambda}`` per observed module.

    Args:
        model: the (traced, BatchNorm-folded) ANN in eval mode.
        data: see :func:`iter_calibration`.
        names: qualified names of the activation submodules to observe.
        percentile_value: ``p`` in (0, 100]; 100 gives max-norm.
        batch_size: batch size when ``data`` is a tensor.
    """
    names = list(names)
    if not 0.0 < float(percentile_value) <= 100.0:
        raise ValueError(f"percentile must lie in (0, 100], got {percentile_value!r}")
    with observe_activations(model, names) as store, torch.no_grad():
        for xb in iter_calibration(data, batch_size=batch_size):
            model(xb)
    scales: dict[str, float] = {}
    for name in names:
        vals = torch.cat(store[name]) if store[name] else torch.zeros(0)
        scales[name] = percentile(vals, percentile_value) if vals.numel() > 0 else 1.0
    return scales


def check_scales(scales: Mapping[str, float]) -> None:
    """Raise if any scale is not finite and positive."""
    for name, s in scales.items():
        if not (s > 0 and s < float("inf")):
            raise ValueError(f"scale of layer {name!r} is {s}; calibration data must produce finite activations")
