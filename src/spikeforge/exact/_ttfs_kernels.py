r"""Neuron parameters and the closed-form threshold crossings behind :mod:`spikeforge.exact.ttfs`.

Model (Göltz et al. 2021, Methods; Mostafa 2017 for :math:`\tau_m \to \infty`): current-based LIF, rest and reset
at 0, exponential synapses, each input spike :math:`t_i` with weight :math:`w_i` adds the PSP

.. math::
    u(t) = \frac{1}{C_m} \sum_i w_i\, \kappa(t - t_i)\, \Theta(t - t_i), \qquad
    \kappa(s) = \frac{\tau_m \tau_s}{\tau_m - \tau_s} \left(e^{-s/\tau_m} - e^{-s/\tau_s}\right)

(the solution of :math:`C_m \dot u = -g_l u + I`, :math:`\tau_m = C_m / g_l`, :math:`\tau_s \dot I = -I`,
:math:`I \mathrel{+}= w_i` at :math:`t_i`). Three cases have closed-form crossings of :math:`u = \vartheta`; with
:math:`x_i = t_i - r` measured from a reference time :math:`r` and :math:`c` a scaled threshold:

* ``equal`` (:math:`\tau_m = \tau_s = \tau`, :math:`\kappa(s) = s e^{-s/\tau}`, :math:`c = C_m\vartheta/\tau`):
  with :math:`a = \sum w_i e^{x_i/\tau}`, :math:`b = \sum w_i (x_i/\tau) e^{x_i/\tau}`,

  .. math:: t = r + \tau\left[\frac{b}{a} - W_0\!\left(-\frac{c}{a} e^{b/a}\right)\right],

  valid iff :math:`a > 0` and the argument of :math:`W_0` exceeds :math:`-1/e` (computed as
  :math:`\log c - \log a + b/a < -1`); the principal branch is the rising crossing.
* ``double`` (:math:`\tau_m = 2\tau_s`, :math:`\kappa(s) = \tau_m (e^{-s/\tau_m} - e^{-s/\tau_s})`,
  :math:`c = C_m\vartheta/\tau_m`): with :math:`y = e^{-(t - r)/\tau_m}` the condition is
  :math:`a_s y^2 - a_m y + c = 0`, :math:`a_m = \sum w_i e^{x_i/\tau_m}`, :math:`a_s = \sum w_i e^{x_i/\tau_s}`;
  the rising crossing is the larger root

  .. math:: t = r + \tau_m \left[\log(2 a_s) - \log\left(a_m + \sqrt{a_m^2 - 4 a_s c}\right)\right],

  valid iff :math:`a_m > 0`, :math:`a_s > 0` and :math:`a_m^2 - 4 a_s c > 0`.
* ``nonleaky`` (:math:`\tau_m = \infty`, :math:`\kappa(s) = \tau_s (1 - e^{-s/\tau_s})`,
  :math:`c = C_m\vartheta/\tau_s`; Mostafa 2017's closed form with :math:`\tau_s = C_m = \vartheta = 1`):
  with :math:`a = \sum w_i e^{x_i/\tau_s}`, :math:`S = \sum w_i`,

  .. math:: t = r + \tau_s \left[\log a - \log(S - c)\right],

  valid iff :math:`a > 0` and :math:`S > c`.

"Valid" is the strict condition ``the membrane exceeds threshold`` (the house rule: spike iff
:math:`u > \vartheta`): a membrane that only touches threshold (tangent, or approaching it asymptotically) does
not fire. Invalid entries return 0 and a finite gradient (every branch is evaluated on safe values), never NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from spikeforge.exact._ttfs_lambertw import lambertw0

__all__ = ["TTFSParams", "Kernel", "kernel_sums", "crossing_time", "psp_kernel"]

Kernel = Literal["equal", "double", "nonleaky"]


@dataclass(frozen=True)
class TTFSParams:
    """Parameters of a time-to-first-spike LIF layer (Göltz et al. 2021 defaults: all 1, in units of ``tau_syn``).

    Args:
        tau_syn: synaptic time constant :math:`\\tau_s` (> 0).
        tau_mem: membrane time constant: exactly ``tau_syn``, ``2 * tau_syn`` or ``math.inf`` (no leak, Mostafa
            2017); only these have closed-form spike times.
        threshold: firing threshold :math:`\\vartheta > 0` (rest and reset are 0).
        c_mem: membrane capacitance :math:`C_m > 0` (``g_leak = c_mem / tau_mem``).
    """

    tau_syn: float = 1.0
    tau_mem: float = 1.0
    threshold: float = 1.0
    c_mem: float = 1.0

    def __post_init__(self) -> None:
        for name in ("tau_syn", "threshold", "c_mem"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        tm = self.tau_mem
        if isinstance(tm, bool) or not isinstance(tm, (int, float)) or math.isnan(tm):
            raise ValueError(f"tau_mem must be a number, got {tm!r}")
        if not (tm == self.tau_syn or tm == 2.0 * self.tau_syn or tm == math.inf):
            raise ValueError(
                f"tau_mem={tm!r} has no closed-form first-spike time for tau_syn={self.tau_syn!r}; use "
                "tau_mem=tau_syn (Lambert W), tau_mem=2*tau_syn (quadratic) or tau_mem=math.inf (non-leaky), or the "
                "event simulation of spikeforge.exact for other ratios"
            )

    @property
    def kernel(self) -> Kernel:
        """Which closed form applies: ``"equal"``, ``"double"`` or ``"nonleaky"``."""
        if self.tau_mem == math.inf:
            return "nonleaky"
        return "equal" if self.tau_mem == self.tau_syn else "double"


def psp_kernel(s: Tensor, params: TTFSParams) -> Tensor:
    """:math:`\\kappa(s)\\Theta(s)/C_m`: the membrane response to one unit-weight input spike ``s`` after it."""
    ts, pos = params.tau_syn, s > 0
    ss = torch.where(pos, s, torch.zeros_like(s))
    kind = params.kernel
    if kind == "equal":
        k = ss * torch.exp(-ss / ts)
    elif kind == "double":
        k = params.tau_mem * (torch.exp(-ss / params.tau_mem) - torch.exp(-ss / ts))
    else:
        k = ts * (1.0 - torch.exp(-ss / ts))
    return torch.where(pos, k, torch.zeros_like(k)) / params.c_mem


def kernel_sums(x: Tensor, w: Tensor, params: TTFSParams, *, dim: int, cumulative: bool) -> tuple[Tensor, Tensor]:
    """The two input sums of the closed form (module docstring) along ``dim``, plain or cumulative.

    Args:
        x: input times relative to the reference time, finite (masked inputs must carry ``w = 0``).
        w: weights, broadcast against ``x``.
    """
    red = (lambda v: torch.cumsum(v, dim=dim)) if cumulative else (lambda v: v.sum(dim=dim))
    ts, kind = params.tau_syn, params.kernel
    if kind == "equal":
        z = x / ts
        e = w * torch.exp(z)
        return red(e), red(e * z)
    if kind == "double":
        return red(w * torch.exp(x / params.tau_mem)), red(w * torch.exp(x / ts))
    w_full, _ = torch.broadcast_tensors(w, x)
    return red(w * torch.exp(x / ts)), red(w_full)


def crossing_time(s1: Tensor, s2: Tensor, params: TTFSParams) -> tuple[Tensor, Tensor]:
    """Rising threshold crossing relative to the reference time, from :func:`kernel_sums`.

    Returns:
        ``(t_rel, valid)``: ``t_rel`` is 0 where ``valid`` is False (and its gradient there is 0).
    """
    kind, one = params.kernel, torch.ones_like(s1)
    if kind == "equal":
        tau = params.tau_syn
        c = params.c_mem * params.threshold / tau
        pos = s1 > 0
        a = torch.where(pos, s1, one)
        m = s2 / a
        log_arg = math.log(c) - torch.log(a) + m
        valid = pos & (log_arg < -1.0)
        # W_0 only where a crossing exists (index_put keeps the gradient); elsewhere W = 0
        w0 = torch.zeros_like(log_arg).index_put((valid,), lambertw0(-torch.exp(log_arg[valid])))
        t_rel = tau * (m - w0)
    elif kind == "double":
        c = params.c_mem * params.threshold / params.tau_mem
        disc = s1 * s1 - 4.0 * s2 * c
        valid = (s1 > 0) & (s2 > 0) & (disc > 0)
        am, as_, d = (torch.where(valid, v, one) for v in (s1, s2, disc))
        t_rel = params.tau_mem * (torch.log(2.0 * as_) - torch.log(am + torch.sqrt(d)))
    else:
        c = params.c_mem * params.threshold / params.tau_syn
        valid = (s1 > 0) & (s2 > c)
        a = torch.where(valid, s1, one)
        excess = torch.where(valid, s2 - c, one)
        t_rel = params.tau_syn * (torch.log(a) - torch.log(excess))
    return torch.where(valid, t_rel, torch.zeros_like(t_rel)), valid
