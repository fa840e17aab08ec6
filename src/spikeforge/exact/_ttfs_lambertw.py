r"""Principal branch :math:`W_0` of the Lambert W function on :math:`[-1/e, 0]`, float64, with its derivative.

:math:`W(x)` solves :math:`W e^{W} = x`. The first-spike time of a neuron with :math:`\tau_m = \tau_s` needs the
branch :math:`W_0` (values in :math:`[-1, 0]`) on :math:`x \in [-1/e, 0)` (Göltz et al. 2021, eq. for
:math:`T` in the "equal time constants" case): :math:`W_0` gives the *rising* threshold crossing, :math:`W_{-1}`
the falling one. Only this interval is implemented, since nothing else is needed.

Method: Halley iteration (Corless et al. 1996, "On the Lambert W function", Adv. Comput. Math. 5, sec. 5)

.. math:: w_{n+1} = w_n - \frac{f}{e^{w_n}(w_n + 1) - \frac{(w_n + 2) f}{2 w_n + 2}}, \qquad f = w_n e^{w_n} - x,

started from the branch-point series :math:`w \approx -1 + p - p^2/3 + 11 p^3 / 72`, :math:`p = \sqrt{2(e x + 1)}`
near :math:`-1/e`, and from :math:`w \approx x - x^2 + 3x^3/2` near 0. The iteration runs in float64 for a fixed
for a fixed 4 steps, whatever the input dtype: from these starts (error <= 0.03) cubic convergence reaches
round-off in 3 (the tests check the residual over the whole interval).

Derivative: :math:`W'(x) = 1 / (e^{W} (1 + W))`, finite on :math:`(-1/e, 0]` and infinite at the branch point.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["lambertw0"]

#: ``-1/e``: the branch point; ``W_0(-1/e) = -1``.
BRANCH_POINT = -math.exp(-1.0)
_ITERATIONS = 4


def _w0_forward(x: Tensor) -> Tensor:
    """``W_0(x)`` for ``x`` in ``[-1/e, 0]`` (float64 inside), no autograd."""
    xd = x.detach().to(torch.float64).clamp(min=BRANCH_POINT, max=0.0)
    p = torch.sqrt((2.0 * (math.e * xd + 1.0)).clamp(min=0.0))
    near_branch = -1.0 + p - p * p / 3.0 + 11.0 / 72.0 * p * p * p
    near_zero = xd - xd * xd + 1.5 * xd * xd * xd
    w = torch.where(xd < -0.25, near_branch, near_zero)
    for _ in range(_ITERATIONS):
        ew = torch.exp(w)
        f = w * ew - xd
        wp1 = (w + 1.0).clamp(min=1e-300)  # w = -1 only at the branch point, where f = 0 already
        step = f / (ew * wp1 - (w + 2.0) * f / (2.0 * wp1))
        step = torch.nan_to_num(step, nan=0.0, posinf=0.0, neginf=0.0)
        w = (w - step).clamp(min=-1.0, max=0.0)
    return w.to(x.dtype)


class _LambertW0(torch.autograd.Function):
    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: Tensor) -> Tensor:
        w = _w0_forward(x)
        ctx.save_for_backward(w)
        return w

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> Tensor:
        (w,) = ctx.saved_tensors  # type: ignore[attr-defined]
        return grad / (torch.exp(w) * (1.0 + w))


def lambertw0(x: Tensor) -> Tensor:
    r"""Principal branch :math:`W_0(x)` for ``x`` in :math:`[-1/e, 0]`, differentiable (see the module docstring).

    Args:
        x: floating-point tensor with every element in ``[-1/e, 0]``.

    Returns:
        ``W_0(x)`` in ``[-1, 0]``, same shape and dtype; the gradient is :math:`1 / (e^W (1 + W))`
        (``inf`` exactly at the branch point ``-1/e``).

    Raises:
        ValueError: an element lies outside ``[-1/e, 0]`` (beyond rounding of the branch point in ``x``'s dtype)
            or is NaN.
    """
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(
            "x must be a floating-point torch.Tensor; convert it with torch.as_tensor(x, dtype=torch.float64)"
        )
    if x.numel():
        lo, hi = float(x.detach().min()), float(x.detach().max())
        tol = max(1e-12, 4.0 * torch.finfo(x.dtype).eps)  # -1/e rounded to x's dtype is accepted
        if math.isnan(lo) or math.isnan(hi) or lo < BRANCH_POINT * (1.0 + tol) or hi > 0.0:
            raise ValueError(
                f"lambertw0 is implemented on [-1/e, 0] only, got values in [{lo}, {hi}]; the TTFS spike time needs "
                "no other range (a value below -1/e means the membrane never reaches threshold)"
            )
    out: Tensor = _LambertW0.apply(x)
    return out
