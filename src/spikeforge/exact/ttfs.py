r"""Analytic time-to-first-spike (TTFS) layers with exact gradients (Göltz et al. 2021; Mostafa 2017).

References: J. Göltz, L. Kriener et al., "Fast and energy-efficient neuromorphic deep learning with first-spike
times", Nature Machine Intelligence 3, 823-835 (2021), arXiv:1912.11443; H. Mostafa, "Supervised learning based
on temporal coding in spiking neural networks", IEEE TNNLS 29(7), 2018 (arXiv:1606.08165, 2016/2017).

Each neuron is a current-based LIF with rest 0 that spikes **at most once**; its first-spike time has a closed
form (:mod:`spikeforge.exact._ttfs_kernels`) for ``tau_mem == tau_syn`` (Lambert :math:`W_0`),
``tau_mem == 2 * tau_syn`` (a quadratic in :math:`e^{-t/\tau_m}`) and ``tau_mem == inf`` (Mostafa's non-leaky
neuron). Times are in the units of ``tau_syn``; an input or output that never spikes is ``+inf``.

**Causal set** (Göltz et al., Methods): the output spike depends only on the inputs that arrive before it. Inputs
are sorted by time :math:`t_{(1)} \le \dots \le t_{(N)}`; for each prefix :math:`k` the closed form gives the
rising crossing :math:`t^*_k` of the membrane driven by the first :math:`k` inputs, and the spike time is
:math:`t^*_k` for the first :math:`k` with :math:`t_{(k)} \le t^*_k \le t_{(k+1)}` (:math:`t_{(N+1)} = \infty`).
Ties in input times are handled by this rule (the prefix that splits a tie has an empty interval). A crossing
exactly at :math:`t_{(k+1)}` is assigned to prefix :math:`k`: input :math:`k+1` is then not causal.

**Gradients** are exact: autograd differentiates the closed form of the selected prefix (the sort order and the
prefix choice are piecewise constant, as in the paper). They match float64 central differences to round-off
wherever no spike appears or disappears under the perturbation; near the point where the membrane maximum just
touches threshold they diverge like :math:`1/\sqrt{u_{max} - \vartheta}` (a property of the true derivative;
the optional ``max_dw_norm`` reproduces Göltz et al.'s per-sample clipping of such weight updates).

**Never firing**: an output whose membrane never exceeds threshold (strictly; a tangent touch does not fire) gets
``t = +inf`` and gradient **0** with respect to every weight and input time; losses in
:mod:`spikeforge.exact.losses` replace ``inf`` by a finite ``t_max`` so that they stay finite.

Cost: time and memory :math:`O(B \cdot N_{in} \cdot N_{out})` per layer (every prefix of every output is
evaluated at once); use float64 for gradient checks (float32 works for training).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor
from torch import nn

from spikeforge.exact._ttfs_kernels import TTFSParams
from spikeforge.exact._ttfs_kernels import crossing_time
from spikeforge.exact._ttfs_kernels import kernel_sums
from spikeforge.exact._ttfs_kernels import psp_kernel

__all__ = [
    "TTFSParams", "ttfs_spike_times", "ttfs_membrane", "ttfs_max_membrane", "TTFSLayer", "TTFSNetwork", "MAX_SPAN",
]  # fmt: skip

#: Largest span (in units of the smallest time constant) of the finite input times of one sample: the closed
#: forms use :math:`e^{(t_i - t_{min})/\tau}`, which overflows float64 beyond ~709.
MAX_SPAN = 600.0


def _check(t_in: object, weight: object) -> tuple[Tensor, Tensor]:
    if not isinstance(t_in, Tensor) or not isinstance(weight, Tensor):
        raise TypeError(
            "t_in and weight must be torch.Tensors; wrap them with torch.as_tensor(..., dtype=torch.float64)"
        )
    if not t_in.is_floating_point() or not weight.is_floating_point():
        raise TypeError(f"t_in and weight must be floating point, got {t_in.dtype} and {weight.dtype}; use .double()")
    if t_in.dim() != 2:
        raise ValueError(
            f"t_in must be [B, N_in] spike times, got shape {tuple(t_in.shape)}; for one sample use t_in.unsqueeze(0)"
        )
    if weight.dim() != 2 or weight.shape[0] != t_in.shape[1]:
        raise ValueError(
            f"weight must be [N_in, N_out] with N_in = {t_in.shape[1]} (t_in is {tuple(t_in.shape)}), got "
            f"{tuple(weight.shape)}"
        )
    if t_in.dtype != weight.dtype:
        raise TypeError(f"t_in is {t_in.dtype} but weight is {weight.dtype}; convert both to one dtype")
    if bool(torch.isnan(t_in).any()):
        raise ValueError("t_in contains NaN; mark an input that never spikes with +inf")
    if bool((t_in == -math.inf).any()):
        raise ValueError("t_in contains -inf; spike times must be finite, or +inf for no spike")
    if not bool(torch.isfinite(weight).all()):
        raise ValueError("weight contains NaN or inf; check the learning rate or re-initialise the layer")
    return t_in, weight


def _sorted_inputs(t_in: Tensor, weight: Tensor, params: TTFSParams) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Sorted times ``[B, N]``, their finite mask, times relative to ``r0`` (0 where not finite), sorted weights
    ``[B, N, N_out]`` (0 where not finite) and the reference times ``r0`` ``[B, 1]`` (first finite time)."""
    ts, order = torch.sort(t_in, dim=1, stable=True)
    finite = torch.isfinite(ts)
    r0 = ts[:, :1].detach()
    r0 = torch.where(torch.isfinite(r0), r0, torch.zeros_like(r0))
    x = torch.where(finite, ts - r0, torch.zeros_like(ts))
    tau_min = min(params.tau_syn, params.tau_mem)
    if x.numel() and float(x.detach().max()) > MAX_SPAN * tau_min:
        raise ValueError(
            f"finite input spike times of one sample span {float(x.detach().max()):.4g} > {MAX_SPAN} * {tau_min} "
            "(the smallest time constant): the closed form would overflow; rescale the times or mark late inputs "
            "+inf"
        )
    w = torch.where(finite[:, :, None], weight[order], torch.zeros((), dtype=weight.dtype, device=weight.device))
    return ts, finite, x, w, r0


def _clip_per_sample(grad: Tensor, max_dw_norm: float) -> Tensor:
    """Göltz et al.'s update clipping on the per-sample weight gradient ``[B, N_in, N_out]``: zero the
    contribution of every (sample, output neuron) whose largest entry exceeds ``max_dw_norm``."""
    too_large = grad.abs().amax(dim=1, keepdim=True) > max_dw_norm
    return torch.where(too_large, torch.zeros_like(grad), grad)


def ttfs_spike_times(
    t_in: Tensor, weight: Tensor, params: TTFSParams | None = None, *, max_dw_norm: float | None = None
) -> Tensor:
    r"""First-spike times of a layer of TTFS neurons (closed form, exact gradients; see the module docstring).

    Args:
        t_in: input spike times ``[B, N_in]``; ``+inf`` marks an input that never spikes. Any finite value is
            allowed (negative too); NaN and ``-inf`` are rejected.
        weight: ``[N_in, N_out]`` synaptic weights (current amplitudes, in units of ``c_mem * threshold /
            tau_syn`` when all parameters are 1).
        params: neuron parameters (default :class:`TTFSParams` ``()``: all 1, ``tau_mem = tau_syn``).
        max_dw_norm: if given, the update clipping of Göltz et al. (their ``max_dw_norm``, 0.2 on Yin-Yang): in
            the backward pass, the weight gradient of each (sample, output neuron) pair whose largest entry
            exceeds this is set to 0 (the diverging derivatives of a membrane that barely reaches threshold). The
            gradient with respect to ``t_in`` is not clipped. ``None`` (default): exact gradients.

    Returns:
        ``[B, N_out]`` first-spike times, ``+inf`` where the neuron never fires (gradient 0 there).

    Raises:
        TypeError, ValueError: wrong type, shape, dtype, NaN/-inf times, non-finite weights, or a time span too
            large for float64 (:data:`MAX_SPAN`).
    """
    params = TTFSParams() if params is None else params
    if not isinstance(params, TTFSParams):
        raise TypeError(f"params must be a TTFSParams, got {type(params).__name__}")
    t_in, weight = _check(t_in, weight)
    batch, n_in = t_in.shape
    n_out = weight.shape[1]
    inf = torch.full((batch, n_out), math.inf, dtype=t_in.dtype, device=t_in.device)
    if n_in == 0 or batch == 0 or n_out == 0:
        return inf
    ts, finite, x, w, r0 = _sorted_inputs(t_in, weight, params)
    if max_dw_norm is not None:
        if not (isinstance(max_dw_norm, (int, float)) and math.isfinite(max_dw_norm) and max_dw_norm > 0):
            raise ValueError(f"max_dw_norm must be a finite number > 0 or None, got {max_dw_norm!r}")
        if w.requires_grad:  # w is the per-sample copy of the weights: its gradient is per sample
            limit = float(max_dw_norm)
            w.register_hook(lambda g: _clip_per_sample(g, limit))
    s1, s2 = kernel_sums(x[:, :, None], w, params, dim=1, cumulative=True)  # [B, N, N_out] per prefix
    t_rel, valid = crossing_time(s1, s2, params)
    cand = r0[:, :, None] + t_rel
    with torch.no_grad():
        lower = ts[:, :, None]
        upper = torch.cat([ts[:, 1:], ts.new_full((batch, 1), math.inf)], dim=1)[:, :, None]
        ok = valid & finite[:, :, None] & (cand >= lower) & (cand <= upper)
        fired = ok.any(dim=1)
        prefix = torch.arange(n_in, device=ok.device)[None, :, None]
        first = torch.where(ok, prefix, n_in).amin(dim=1).clamp(max=n_in - 1)  # the first causal prefix
    t_out = cand.gather(1, first[:, None, :]).squeeze(1)
    return torch.where(fired, t_out, inf)


def ttfs_max_membrane(t_in: Tensor, weight: Tensor, params: TTFSParams | None = None) -> Tensor:
    r"""Exact maximum over time of the membrane of a **non-spiking** layer (a max-membrane read-out).

    On each interval between consecutive input times the membrane has the closed form of the prefix of inputs
    received so far, so its maximum is at an interval start, at the interior stationary point (``equal``:
    :math:`t = r + \tau(1 + b/a)` if :math:`a > 0`; ``double``: :math:`y = a_m / (2 a_s)` if :math:`a_s > 0`;
    ``nonleaky``: none), or 0 (before the first input, and the limit :math:`t \to \infty` of a leaky membrane).
    For ``nonleaky`` the limit :math:`\tau_s \sum_i w_i / C_m` is included: the supremum, approached but not
    reached. Pair it with :func:`spikeforge.exact.losses.max_voltage_cross_entropy`; gradients (autograd through
    the closed form) reach the time and weights of the inputs that shape the maximum.

    Args:
        t_in: ``[B, N_in]`` input times (``+inf`` = no spike).
        weight: ``[N_in, N_out]``.

    Returns:
        ``[B, N_out]`` maxima of :func:`ttfs_membrane` over all ``t``.
    """
    params = TTFSParams() if params is None else params
    t_in, weight = _check(t_in, weight)
    batch, n_in = t_in.shape
    zero = torch.zeros((batch, weight.shape[1]), dtype=t_in.dtype, device=t_in.device) + 0.0 * weight.sum()
    if n_in == 0 or batch == 0:
        return zero
    _, finite, x, w, _ = _sorted_inputs(t_in, weight, params)
    s1, s2 = kernel_sums(x[:, :, None], w, params, dim=1, cumulative=True)  # [B, N, N_out]
    kind, c = params.kernel, params.c_mem
    xk = x[:, :, None]
    nxt = torch.cat([x[:, 1:], x.new_full((batch, 1), math.inf)], dim=1)
    nxt = torch.where(torch.cat([finite[:, 1:], finite.new_zeros(batch, 1)], dim=1), nxt, math.inf)[:, :, None]
    if kind == "equal":
        tau = params.tau_syn

        def u_at(z: Tensor) -> Tensor:
            return tau / c * torch.exp(-z) * (s1 * z - s2)

        start = u_at(xk / tau)
        pos = s1 > 0
        z_star = 1.0 + s2 / torch.where(pos, s1, torch.ones_like(s1))
        inside = pos & (z_star * tau >= xk) & (z_star * tau <= nxt)
        interior = u_at(torch.where(inside, z_star, xk / tau))
    elif kind == "double":
        tm = params.tau_mem

        def u_of_y(y: Tensor) -> Tensor:
            return tm / c * (s1 * y - s2 * y * y)

        start = u_of_y(torch.exp(-xk / tm))
        pos = s2 > 0
        y_star = s1 / (2.0 * torch.where(pos, s2, torch.ones_like(s2)))
        t_star = -tm * torch.log(torch.where(pos & (y_star > 0), y_star, torch.ones_like(y_star)))
        inside = pos & (y_star > 0) & (t_star >= xk) & (t_star <= nxt)
        interior = u_of_y(torch.where(inside, y_star, torch.exp(-xk / tm)))
    else:
        start = params.tau_syn / c * (s2 - s1 * torch.exp(-xk / params.tau_syn))
        last = finite & ~torch.cat([finite[:, 1:], finite.new_zeros(batch, 1)], dim=1)
        inside = last[:, :, None].expand_as(s2)
        interior = torch.where(inside, params.tau_syn / c * s2, start)
    cands = torch.where(finite[:, :, None], torch.maximum(start, interior), torch.zeros_like(start))
    return torch.maximum(cands.amax(dim=1), zero)


def ttfs_membrane(t: Tensor, t_in: Tensor, weight: Tensor, params: TTFSParams | None = None) -> Tensor:
    """Membrane potential ``u(t)`` of a TTFS layer with the spike (and everything after it) ignored.

    Useful for plots and checks: the neuron's first spike is the first time this exceeds the threshold.

    Args:
        t: ``[T]`` evaluation times.
        t_in: ``[B, N_in]`` input times (``+inf`` = no spike).
        weight: ``[N_in, N_out]``.

    Returns:
        ``[T, B, N_out]`` (time-major), :math:`\\sum_i w_i \\kappa(t - t_i)\\Theta(t - t_i) / C_m`.
    """
    params = TTFSParams() if params is None else params
    t_in, weight = _check(t_in, weight)
    if not isinstance(t, Tensor) or t.dim() != 1:
        raise ValueError("t must be a 1-D tensor of evaluation times; build it with torch.linspace(...)")
    s = t[:, None, None] - t_in[None, :, :]  # [T, B, N_in]
    s = torch.where(torch.isfinite(s), s, torch.full_like(s, -1.0))  # inputs at +inf never arrive
    return torch.einsum("tbi,io->tbo", psp_kernel(s, params), weight)


class TTFSLayer(nn.Module):
    """A layer of TTFS neurons: ``weight`` ``[N_in + n_bias, N_out]`` and fixed bias spikes appended to the input.

    Args:
        in_features: number of input neurons ``N_in``.
        out_features: number of neurons ``N_out``.
        params: neuron parameters (shared by the layer).
        bias_times: times of the bias spikes (one extra, trainable input row of ``weight`` each; Göltz et al. use
            one bias spike at ``0.9 tau_syn`` per layer).
        weight_mean, weight_std: normal initialisation of ``weight`` (Göltz et al., Yin-Yang: ``1.5, 0.8`` for the
            hidden layer and ``0.5, 0.8`` for the output layer).
        dtype: parameter dtype (float64 by default: exact gradient checks need it).
        generator: RNG for the initialisation.
        max_dw_norm: per-sample update clipping of the weight gradient (see :func:`ttfs_spike_times`); ``None``
            = exact gradients. A plain attribute: change it at any time.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        params: TTFSParams | None = None,
        bias_times: Sequence[float] = (),
        weight_mean: float = 0.0,
        weight_std: float = 1.0,
        dtype: torch.dtype = torch.float64,
        generator: torch.Generator | None = None,
        max_dw_norm: float | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        bias = [float(b) for b in bias_times]
        if any(not math.isfinite(b) for b in bias):
            raise ValueError(f"bias_times must be finite, got {tuple(bias_times)}")
        if not math.isfinite(weight_std) or weight_std < 0 or not math.isfinite(weight_mean):
            raise ValueError(f"need finite weight_mean and weight_std >= 0, got {weight_mean}, {weight_std}")
        self.params = TTFSParams() if params is None else params
        self.max_dw_norm = max_dw_norm
        self.in_features, self.out_features = in_features, out_features
        w = torch.empty(in_features + len(bias), out_features, dtype=dtype)
        w.normal_(weight_mean, weight_std, generator=generator)
        self.weight = nn.Parameter(w)
        self.register_buffer("bias_times", torch.tensor(bias, dtype=dtype))

    def forward(self, t_in: Tensor) -> Tensor:
        """``[B, N_in]`` input times -> ``[B, N_out]`` first-spike times (``+inf`` = silent)."""
        if not isinstance(t_in, Tensor) or t_in.dim() != 2 or t_in.shape[1] != self.in_features:
            shape = tuple(t_in.shape) if isinstance(t_in, Tensor) else type(t_in).__name__
            raise ValueError(f"expected input times [B, {self.in_features}], got {shape}")
        bias: Tensor = self.bias_times  # type: ignore[assignment]
        full = torch.cat([t_in, bias.to(t_in.dtype).expand(t_in.shape[0], -1)], dim=1)
        return ttfs_spike_times(full, self.weight.to(t_in.dtype), self.params, max_dw_norm=self.max_dw_norm)

    def extra_repr(self) -> str:
        bias: Tensor = self.bias_times  # type: ignore[assignment]
        return f"{self.in_features}, {self.out_features}, params={self.params}, bias_times={bias.tolist()}"


class TTFSNetwork(nn.Module):
    """Feed-forward stack of :class:`TTFSLayer` (Göltz et al. 2021): spike times in, output spike times out.

    Args:
        sizes: ``(N_in, N_1, ..., N_out)``, at least two entries (e.g. ``(4, 120, 3)`` for Yin-Yang).
        params: neuron parameters of every layer.
        bias_times: bias-spike times appended to the input of *every* layer (Göltz: ``(0.9,)``).
        weight_mean, weight_std: per-layer normal initialisation (one value or one per layer; Göltz Yin-Yang:
            ``(1.5, 0.5)`` and ``(0.8, 0.8)``).
        dtype: parameter dtype.
        generator: RNG for the initialisation.
        max_dw_norm: per-sample update clipping in every layer (see :func:`ttfs_spike_times`; Göltz: 0.2).
    """

    def __init__(
        self,
        sizes: Sequence[int],
        *,
        params: TTFSParams | None = None,
        bias_times: Sequence[float] = (0.9,),
        weight_mean: float | Sequence[float] = (1.5, 0.5),
        weight_std: float | Sequence[float] = (0.8, 0.8),
        dtype: torch.dtype = torch.float64,
        generator: torch.Generator | None = None,
        max_dw_norm: float | None = None,
    ) -> None:
        super().__init__()
        sizes = tuple(sizes)
        if len(sizes) < 2:
            raise ValueError(f"sizes must list at least input and output sizes, got {sizes}")
        n_layers = len(sizes) - 1
        means = _per_layer(weight_mean, n_layers, "weight_mean")
        stds = _per_layer(weight_std, n_layers, "weight_std")
        self.sizes = sizes
        layers = []
        for i in range(n_layers):
            layer = TTFSLayer(
                sizes[i],
                sizes[i + 1],
                params=params,
                bias_times=bias_times,
                weight_mean=means[i],
                weight_std=stds[i],
                dtype=dtype,
                generator=generator,
                max_dw_norm=max_dw_norm,
            )
            layers.append(layer)
        self.layers = nn.ModuleList(layers)

    def forward_all(self, t_in: Tensor) -> tuple[Tensor, ...]:
        """Spike times of every layer, first hidden layer to output, each ``[B, N_l]``."""
        out = []
        t = t_in
        for layer in self.layers:
            t = layer(t)
            out.append(t)
        return tuple(out)

    def forward(self, t_in: Tensor) -> Tensor:
        """``[B, N_in]`` input times -> ``[B, N_out]`` output first-spike times (``+inf`` = silent)."""
        return self.forward_all(t_in)[-1]


def _per_layer(value: float | Sequence[float], n: int, name: str) -> tuple[float, ...]:
    if isinstance(value, (int, float)):
        return (float(value),) * n
    values = tuple(float(v) for v in value)
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise ValueError(f"{name} needs one value or one per layer ({n}), got {len(values)}")
    return values
