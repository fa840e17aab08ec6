r"""Spike-response-model neurons as in SLAYER (Shrestha & Orchard, "SLAYER: Spike Layer Error Reassignment in
Time", NeurIPS 2018), after Gerstner's SRM.

The membrane is a sum of kernels, not an integrated ODE state::

    u[t] = (eps * x)[t] + (nu * z)[t]              x: input current (e.g. W s_in), z: own spikes
    eps[k] = (k dt / tau_s) exp(1 - k dt / tau_s)                  PSP kernel (peak 1 at k dt = tau_s)
    nu[k]  = -scale_ref theta (k dt / tau_r) exp(1 - k dt / tau_r)  refractory kernel (SLAYER: scale_ref = 2)
    z[t]   = H(u[t] - theta)                                       strict: no spike at u == theta

Both kernels are 0 at ``k = 0``, so an input or a spike acts from the next step on. The kernels are not
truncated: ``k a^k`` (``a = exp(-dt / tau)``) is generated exactly by the two-variable recurrence
``p' = a (p + x)``, ``q' = a (q + p + x)`` with ``(k a^k * x)[t] = q[t]`` -- the state of :func:`srm_step`
(``ps, qs`` for the input, ``pr, qr`` for the own spikes).

Forward of :class:`SRM` over a sequence: the PSP part ``eps * x`` by one causal temporal convolution (``method``:
a direct Toeplitz product, an FFT, or the kernel's exact recurrence), then the refractory part by a short
no-grad loop over time that carries ``(pr, qr)`` only (the spikes depend on it, so it is sequential). ``"fused"``
runs both in one compiled pass (Numba, CPU float32/float64; with :class:`SlayerPDF` the backward too).
``"auto"`` takes ``"fused"`` where it can run, else the direct product below ``SCAN_FROM`` steps and the
recurrence above. The step function is the reference; every path equals it up to floating-point rounding.

Backward (SLAYER, eq. for the error signal): the spike derivative is the probability density
:class:`SlayerPDF` ``rho(u) = alpha exp(-beta |u - theta|)``, and the error is reassigned to earlier inputs through
the transposed (time-reversed) PSP kernel -- exactly what autograd of the convolution computes. As in SLAYER, the
refractory term carries no gradient (``detach_refractory=True``; with ``False`` the sequence runs the step loop and
autograd also flows through the refractory response).
"""

from __future__ import annotations

import math
from typing import Any
from typing import NamedTuple
from typing import cast

import torch
from torch import Tensor

from spikeforge._core.checks import check_finite
from spikeforge._core.checks import check_seq
from spikeforge._core.spike import SurrogateLike
from spikeforge._core.spike import spike
from spikeforge.neurons.base import Capabilities
from spikeforge.neurons.base import Neuron
from spikeforge.surrogate import Surrogate
from spikeforge.synapses._srm_fused import fused_membrane
from spikeforge.synapses._srm_fused import fused_srm
from spikeforge.synapses._srm_fused import numba_ready
from spikeforge.synapses._srm_ops import METHODS
from spikeforge.synapses._srm_ops import SCAN_FROM
from spikeforge.synapses._srm_ops import SlayerPDF
from spikeforge.synapses._srm_ops import alpha_filter

#: ``SRM(method=...)``: the PSP filters of :func:`epsilon_filter`, or ``"fused"``: the whole membrane in one
#: compiled pass (Numba, CPU), which ``"auto"`` takes whenever it can run.
SRM_METHODS = (*METHODS, "fused")

__all__ = ["SRMParams", "SRMState", "srm_init", "srm_step", "srm_membrane", "SRM", "SlayerPDF", "epsilon_filter"]


class SRMParams(NamedTuple):
    tau_s: float | Tensor = 4.0  # PSP (epsilon) kernel time constant, unit of dt
    tau_r: float | Tensor = 4.0  # refractory kernel time constant, unit of dt
    v_th: float | Tensor = 1.0  # theta
    scale_ref: float | Tensor = 2.0  # refractory kernel amplitude in units of theta (SLAYER: 2)


class SRMState(NamedTuple):
    ps: Tensor  # sum_{k>=1} a_s^k x[t-k]
    qs: Tensor  # sum_{k>=1} k a_s^k x[t-k]
    pr: Tensor  # sum_{k>=1} a_r^k z[t-k]
    qr: Tensor  # sum_{k>=1} k a_r^k z[t-k]


def _coefficients(p: SRMParams, dt: float) -> tuple[float, float, float, float]:
    """``(a_s, c_s, a_r, c_r)``: ``eps[k] = c_s k a_s^k`` and ``nu[k] = c_r k a_r^k``."""
    tau_s, tau_r = float(p.tau_s), float(p.tau_r)
    a_s, a_r = math.exp(-dt / tau_s), math.exp(-dt / tau_r)
    return a_s, math.e * dt / tau_s, a_r, -float(p.scale_ref) * float(p.v_th) * math.e * dt / tau_r


def srm_init(x_t: Tensor, p: SRMParams) -> SRMState:
    z = torch.zeros_like(x_t)
    return SRMState(z, z.clone(), z.clone(), z.clone())


def srm_membrane(state: SRMState, p: SRMParams, *, dt: float) -> Tensor:
    """The membrane ``u[t]`` of the step that starts from ``state``: ``c_s qs + c_r qr``."""
    _, c_s, _, c_r = _coefficients(p, dt)
    return c_s * state.qs + c_r * state.qr


def srm_step(
    x_t: Tensor, state: SRMState, p: SRMParams, *, dt: float, surrogate: SurrogateLike, detach_refractory: bool = True
) -> tuple[Tensor, SRMState]:
    """One SRM step. ``x_t``: input current ``[B, ...]`` (it reaches the membrane from the next step on)."""
    a_s, c_s, a_r, c_r = _coefficients(p, dt)
    u = c_s * state.qs + c_r * state.qr
    z = spike(u - p.v_th, surrogate)
    zr = z.detach() if detach_refractory else z
    new = SRMState(
        ps=a_s * (state.ps + x_t),
        qs=a_s * (state.qs + state.ps + x_t),
        pr=a_r * (state.pr + zr),
        qr=a_r * (state.qr + state.pr + zr),
    )
    return z, new


def epsilon_filter(x_seq: Tensor, tau_s: float, *, dt: float = 1.0, method: str = "auto") -> Tensor:
    """The PSP ``(eps * x)[t] = sum_{k=0}^{t} eps[k] x[t-k]`` of ``x_seq [T, ...]`` from rest (see module doc)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    a = math.exp(-dt / tau_s)
    return (math.e * dt / tau_s) * alpha_filter(x_seq, a, method)


class SRM(Neuron):
    """SLAYER's spike-response-model layer over ``[T, B, ...]`` input currents (weights are a separate layer:
    ``SNNSequential(nn.Linear(n_in, n), SRM())`` or with a :class:`~spikeforge.synapses.DelayedLinear`).

    Args:
        tau_s: PSP kernel time constant (unit of ``dt``); tau_r: refractory kernel time constant.
        v_th: threshold ``theta`` (> 0); scale_ref: refractory amplitude in units of ``theta`` (SLAYER: 2).
        tau_rho, scale_rho: SLAYER's surrogate width and scale relative to ``theta``: the default surrogate is
            ``SlayerPDF(alpha=scale_rho / (tau_rho theta), beta=1 / (tau_rho theta))``; ``surrogate`` overrides it.
        method: PSP filter ``"auto"``, ``"direct"``, ``"fft"`` or ``"scan"`` (see the module docstring).
        detach_refractory: SLAYER's choice (no gradient through the refractory response).

    ``forward(x_seq, state=None) -> (spikes, state)`` as every neuron; :meth:`membrane_and_spikes` also returns
    the membrane. The module is not in the neuron registry (names of ``spikeforge.neurons`` do not depend on
    whether ``spikeforge.synapses`` was imported).
    """

    State = SRMState
    Params = SRMParams
    init_fn = staticmethod(srm_init)
    step_fn = staticmethod(srm_step)
    capabilities = Capabilities(spiking=True)
    tau_s: float
    tau_r: float
    v_th: float
    scale_ref: float
    tau_rho: float
    scale_rho: float
    method: str

    def __init__(
        self,
        tau_s: float = 4.0,
        tau_r: float = 4.0,
        *,
        v_th: float = 1.0,
        scale_ref: float = 2.0,
        tau_rho: float = 1.0,
        scale_rho: float = 1.0,
        dt: float = 1.0,
        surrogate: Surrogate | str | None = None,
        method: str = "auto",
        detach_refractory: bool = True,
    ) -> None:
        super().__init__(dt=dt, surrogate=surrogate)
        why = "a time constant, in the unit of dt"
        self._add_constant("tau_s", tau_s, example=4.0, positive=True, why=why)
        self._add_constant("tau_r", tau_r, example=4.0, positive=True, why=why)
        self._add_constant("v_th", v_th, example=1.0, positive=True, why="the threshold theta")
        self._add_constant("scale_ref", scale_ref, example=2.0, nonnegative=True, why="SLAYER uses 2")
        self._add_constant("tau_rho", tau_rho, example=1.0, positive=True, why="surrogate width / theta")
        self._add_constant("scale_rho", scale_rho, example=1.0, positive=True, why="surrogate scale")
        if surrogate is None:
            width = self.tau_rho * self.v_th
            self.surrogate = SlayerPDF(alpha=self.scale_rho / width, beta=1.0 / width)
        if method not in SRM_METHODS:
            raise ValueError(f"SRM: method must be one of {SRM_METHODS}, got {method!r}")
        if not isinstance(detach_refractory, bool):
            raise TypeError(f"SRM: detach_refractory must be a bool, got {detach_refractory!r}")
        self._set_constant("method", method, choices=SRM_METHODS)
        self.detach_refractory = detach_refractory

    def step_options(self) -> dict[str, Any]:
        return {"detach_refractory": self.detach_refractory}

    def _run(self, x_seq: Tensor, state: Any) -> tuple[Tensor, Any]:
        _, z, final = self._sequence(x_seq, state)
        return z, final

    def membrane_and_spikes(self, x_seq: Tensor, state: SRMState | None = None) -> tuple[Tensor, Tensor, SRMState]:
        """``(u [T, B, ...], z [T, B, ...], final_state)``: the membrane each step compared with ``v_th``."""
        check_seq(x_seq, "x_seq", finite=False)  # NaN/inf: in _sequence
        return self._sequence(x_seq, state)

    def _sequence(self, x_seq: Tensor, state: SRMState | None) -> tuple[Tensor, Tensor, SRMState]:
        check_finite(x_seq, "x_seq")
        s0 = self._prepare(x_seq[0], state)
        p = cast(SRMParams, self.params(x_seq))
        if not self.detach_refractory:  # gradient through the refractory response: the reference step loop
            zs, us, s = [], [], s0
            for x_t in x_seq.unbind(0):
                us.append(srm_membrane(s, p, dt=self.dt))
                z_t, s = srm_step(x_t, s, p, dt=self.dt, surrogate=self.surrogate, detach_refractory=False)
                zs.append(z_t)
            return torch.stack(us), torch.stack(zs), s
        a_s, c_s, a_r, c_r = _coefficients(p, self.dt)
        t_len = x_seq.shape[0]
        k = torch.arange(t_len, dtype=x_seq.dtype, device=x_seq.device)
        method = self._method(x_seq, s0)
        consts = (a_s, c_s, a_r, c_r, float(p.v_th))
        if method == "fused" and type(self.surrogate) is SlayerPDF:  # one compiled pass forward and backward
            sg = self.surrogate
            z, u, pr_t, qr_t = fused_srm(x_seq, tuple(s0), consts, (sg.alpha, sg.beta))
            refr_state: tuple[Tensor, Tensor] = (pr_t, qr_t)
        elif method == "fused":
            u, pr_t, qr_t = fused_membrane(x_seq, tuple(s0), consts)
            refr_state = (pr_t, qr_t)
            z = spike(u - p.v_th, self.surrogate)  # the loop's spikes (same value of u)
        else:
            psp = alpha_filter(x_seq, a_s, method)
            if state is not None:  # the carried history decays as a_s^t (q0 + t p0)
                kk = k.reshape(-1, *([1] * (x_seq.dim() - 1)))
                psp = psp + torch.exp(kk * math.log(a_s)) * (s0.qs + kk * s0.ps)
            psp = c_s * psp
            refr, refr_state = self._refractory(psp, s0, a_r, c_r, float(p.v_th))
            u = psp + refr
            z = spike(
                u - p.v_th, self.surrogate
            )  # the loop's spikes (same sums); the surrogate gradient flows into psp
        # final input state after T steps: sum over inputs of a^(T-t) and (T-t) a^(T-t), plus the carried history
        lag = t_len - k
        w1 = torch.exp(lag * math.log(a_s))
        flat = x_seq.reshape(t_len, -1)
        a_t = a_s**t_len
        ps = (w1 @ flat).reshape(s0.ps.shape) + a_t * s0.ps
        qs = ((lag * w1) @ flat).reshape(s0.qs.shape) + a_t * (s0.qs + t_len * s0.ps)
        pr, qr = refr_state
        return u, z, SRMState(ps, qs, pr, qr)

    def _method(self, x_seq: Tensor, s0: SRMState) -> str:
        """The PSP method to run: ``"fused"`` where it can run (auto), else ``"direct"`` / ``"scan"`` by size."""
        can_fuse = (
            x_seq.device.type == "cpu"
            and x_seq.dtype in (torch.float32, torch.float64)
            and not any(s.requires_grad for s in s0)
            and numba_ready()
        )
        if self.method == "fused" and not can_fuse:
            raise ValueError(
                "SRM(method='fused') needs a CPU float32/float64 input, a carried state without gradient and Numba "
                "(pip install 'spikeforge[fast]'); use method='auto'"
            )
        if self.method == "auto":
            return "fused" if can_fuse else ("scan" if x_seq.shape[0] >= SCAN_FROM else "direct")
        return self.method

    @staticmethod
    @torch.no_grad()
    def _refractory(
        psp: Tensor, s0: SRMState, a_r: float, c_r: float, v_th: float
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """The sequential part: ``R[t] = c_r qr[t]`` with the spikes it causes; returns ``(R, (pr_T, qr_T))``."""
        pr, qr = s0.pr.detach().clone(), s0.qr.detach().clone()
        out = torch.empty_like(psp)
        u = torch.empty_like(pr)
        z = torch.empty_like(pr)
        for t in range(psp.shape[0]):
            r = out[t]
            torch.mul(qr, c_r, out=r)
            torch.add(psp[t], r, out=u)  # the same sum as u = psp + R below, so the same spikes
            torch.sign(u.sub_(v_th), out=z).clamp_(min=0.0)  # strict Heaviside: 1 iff u - v_th > 0
            qr.add_(pr).add_(z).mul_(a_r)
            pr.add_(z).mul_(a_r)
        return out, (pr, qr)

    def extra_repr(self) -> str:
        return (
            f"tau_s={self.tau_s}, tau_r={self.tau_r}, v_th={self.v_th}, scale_ref={self.scale_ref}, "
            f"method={self.method!r}, surrogate={self.surrogate}"
        )
