r"""Linear layers with learnable transmission delays, over time-major ``[T, B, in_features]`` spike trains.

Two placements of the delays:

* ``per="axon"`` (SLAYER, Shrestha & Orchard, NeurIPS 2018): one delay ``d_i`` per input channel, shared by all
  of that channel's synapses: ``y[t] = W x_d[t] + b`` with ``x_d[t, :, i] = x[t - d_i, :, i]``.
* ``per="synapse"`` (DCLS, Hammouamri, Khalfaoui-Hassani & Masquelier, ICLR 2024): one delay ``d_oi`` per
  weight: ``y[t, :, o] = b_o + sum_i W_oi x[t - d_oi, :, i]``.

While training, a delay is a real position and the shift is an interpolation over the integer taps
``j = 0 .. max_delay``, so the layer is a causal temporal convolution ``y[t] = sum_j K[j] x[t - j]`` whose kernel
is differentiable in the delays:

* ``interpolation="gaussian"`` (DCLS): tap weights ``exp(-(j - d)^2 / (2 sigma^2))`` normalised over the taps.
  ``sigma`` is a constant the training loop anneals towards 0 (:func:`sigma_schedule`, :meth:`set_sigma`): a
  wide Gaussian lets a delay "see" spikes several steps away; a narrow one is (almost) an integer shift.
* ``interpolation="linear"`` (SLAYER): weights ``1 - |j - d|`` on the two taps around ``d``, an exact
  fractional shift whose gradient in ``d`` is ``x[t - floor d] - x[t - ceil d]`` (times the weight).

For inference, :meth:`DelayedLinear.rounded` returns a copy whose delays are rounded to integers (round half to
even) and run as *exact* integer shifts: a gather (per axon) or one matrix product per distinct delay (per
synapse), no interpolation. Delays are kept inside ``[0, max_delay]``: call :meth:`DelayedLinear.clamp_delays_`
after each optimiser step (the forward pass also clamps, so a delay pushed outside still runs).

A delay of ``d`` steps needs ``T > d``: the forward refuses sequences with ``T <= max_delay``. Before ``t = 0``
the input is zero (every sequence starts from silence; there is no carried delay line between calls).
"""

from __future__ import annotations

import copy
import math
from typing import NamedTuple

import torch
from torch import Tensor
from torch import nn

from spikeforge._core.checks import check_int
from spikeforge._core.checks import check_number
from spikeforge._core.checks import check_seq
from spikeforge.layers import SequenceLayer
from spikeforge.synapses._delay_ops import causal_conv
from spikeforge.synapses._delay_ops import gaussian_taps
from spikeforge.synapses._delay_ops import linear_taps
from spikeforge.synapses._delay_ops import shift_per_channel
from spikeforge.synapses._delay_ops import shift_per_synapse

__all__ = ["DelayedLinear", "DelayLine", "sigma_schedule", "check_delays"]


class DelayLine(NamedTuple):
    """Streaming state of a :class:`DelayedLinear`: the last ``max_delay + 1`` inputs, newest first."""

    history: Tensor  # [max_delay + 1, B, in_features]; history[j] = x[t - j]


PLACEMENTS = ("axon", "synapse")
INTERPOLATIONS = ("gaussian", "linear")


def check_delays(delays: Tensor, max_delay: int, name: str = "delays") -> Tensor:
    """Refuse NaN/inf, negative delays and delays above ``max_delay`` (one line naming the fix)."""
    if not isinstance(delays, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(delays).__name__}; wrap it with torch.tensor(...)")
    if not bool(torch.isfinite(delays).all()):
        raise ValueError(f"{name} contains NaN or inf; give finite delays in steps, 0 <= d <= max_delay={max_delay}")
    if delays.numel() and float(delays.min()) < 0:
        raise ValueError(
            f"{name} must be >= 0 (a synapse cannot deliver a spike before it is sent), got min {float(delays.min())}"
        )
    if delays.numel() and float(delays.max()) > max_delay:
        raise ValueError(
            f"{name} has a delay of {float(delays.max())} steps > max_delay={max_delay}; build the layer with "
            f"max_delay >= {math.ceil(float(delays.max()))}"
        )
    return delays


def sigma_schedule(epoch: int, epochs: int, start: float, end: float = 0.1) -> float:
    """Linear annealing of the Gaussian width: ``start`` at epoch 0, ``end`` (> 0) at the last epoch ``epochs - 1``.

    Use with ``layer.set_sigma(...)`` at the start of each epoch, then switch to ``layer.rounded()`` for inference."""
    epochs = check_int(epochs, "epochs", minimum=1)
    epoch = check_int(epoch, "epoch", minimum=0, maximum=epochs - 1)
    start = check_number(start, "start", positive=True)
    end = check_number(end, "end", positive=True)
    frac = epoch / (epochs - 1) if epochs > 1 else 1.0
    return start + (end - start) * frac


class DelayedLinear(SequenceLayer):
    """Linear layer with one learnable delay per input channel or per synapse (see the module docstring).

    Args:
        in_features, out_features: as :class:`torch.nn.Linear`.
        max_delay: the largest delay in steps (taps ``0 .. max_delay``); sequences need ``T > max_delay``.
        per: ``"axon"`` (one delay per input channel, SLAYER) or ``"synapse"`` (one per weight, DCLS).
        interpolation: ``"gaussian"`` (DCLS, width ``sigma``) or ``"linear"`` (SLAYER).
        sigma: width of the Gaussian in steps (> 0); default ``max(max_delay / 2, 0.5)`` (DCLS starts wide).
        delays: initial delays (``[in_features]`` per axon, ``[out_features, in_features]`` per synapse); default
            uniform in ``[0, max_delay]`` drawn with ``generator``.
        bias: add a learnable bias.
        learn_delays: make the delays an ``nn.Parameter`` (else a buffer).
        generator: for the default delays (weights are initialised as ``nn.Linear`` does, from torch's RNG).

    Example::

        net = SNNSequential(DelayedLinear(8, 32, max_delay=20), LIF(), nn.Linear(32, 2), LI())
        out, _ = net(x_seq)                     # x_seq [T > 20, B, 8]
        net.layers[0].clamp_delays_()           # after each optimiser step
        fast = net.layers[0].rounded()          # integer delays, exact shifts
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        max_delay: int,
        *,
        per: str = "synapse",
        interpolation: str = "gaussian",
        sigma: float | None = None,
        delays: Tensor | None = None,
        bias: bool = True,
        learn_delays: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_features = check_int(in_features, "in_features", minimum=1)
        self.out_features = check_int(out_features, "out_features", minimum=1)
        self.max_delay = check_int(max_delay, "max_delay", minimum=0)
        if per not in PLACEMENTS:
            raise ValueError(f"per must be one of {PLACEMENTS}, got {per!r}")
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
        self.per, self.interpolation = per, interpolation
        self.integer = False  # True after rounded(): exact integer shifts
        self.sigma = 1.0
        self.set_sigma(max(self.max_delay / 2, 0.5) if sigma is None else sigma)
        ref = nn.Linear(in_features, out_features, bias=bias)  # nn.Linear's initialisation
        self.weight = nn.Parameter(ref.weight.detach().clone())
        self.bias = nn.Parameter(ref.bias.detach().clone()) if ref.bias is not None else None
        shape = (in_features,) if per == "axon" else (out_features, in_features)
        if delays is None:
            d = torch.rand(shape, generator=generator) * self.max_delay
        else:
            d = check_delays(delays, self.max_delay).detach().to(torch.get_default_dtype()).clone()
            if tuple(d.shape) != shape:
                raise ValueError(f"delays per {per} must have shape {shape}, got {tuple(d.shape)}")
        if learn_delays:
            self.delays = nn.Parameter(d)
        else:
            self.register_buffer("delays", d)

    # ---- delays -----------------------------------------------------------------------------
    def set_sigma(self, sigma: float) -> None:
        """Set the Gaussian width in steps (> 0): anneal it towards 0 during training (:func:`sigma_schedule`)."""
        self.sigma = check_number(sigma, "sigma", positive=True)

    @torch.no_grad()
    def clamp_delays_(self) -> None:
        """Clamp the delays into ``[0, max_delay]`` in place (call after each optimiser step, as DCLS does)."""
        self.delays.clamp_(0.0, float(self.max_delay))

    def delay_values(self) -> Tensor:
        """The delays the forward pass uses (clamped into ``[0, max_delay]``; integers after :meth:`rounded`)."""
        return self.delays.detach().clamp(0.0, float(self.max_delay))

    def rounded(self) -> DelayedLinear:
        """A copy with integer delays (``round(clamp(d, 0, max_delay))``, half to even) that runs exact integer
        shifts, no interpolation. The copy's delays are a buffer (not learnt); its weights are copies."""
        new = copy.deepcopy(self)
        d = self.delay_values().round()
        del new.delays
        new.register_buffer("delays", d.clone())
        new.integer = True
        return new

    def kernel(self, like: Tensor | None = None) -> Tensor:
        """Tap weights of the delays: ``[in, D+1]`` per axon, ``[out, in, D+1]`` per synapse (the Gaussian or
        linear interpolation; one-hot at the integer delay after :meth:`rounded`)."""
        d = self.delays if like is None else self.delays.to(like.dtype)
        taps = self.max_delay + 1
        if self.integer:
            return nn.functional.one_hot(d.round().to(torch.long), taps).to(d.dtype)
        if self.interpolation == "gaussian":
            return gaussian_taps(d.clamp(0.0, float(self.max_delay)), taps, self.sigma)
        return linear_taps(d, taps)

    # ---- state_dict -------------------------------------------------------------------------
    def get_extra_state(self) -> dict[str, object]:
        """The non-tensor settings, saved in the ``state_dict``: a rounded layer's ``integer`` mode and the current
        ``sigma`` are restored on load; a different placement, interpolation or ``max_delay`` refuses to load."""
        return {"per": self.per, "interpolation": self.interpolation, "max_delay": self.max_delay,
                "integer": self.integer, "sigma": self.sigma}  # fmt: skip

    def set_extra_state(self, state: object) -> None:
        if not isinstance(state, dict):
            raise ValueError(f"DelayedLinear: unreadable saved settings {state!r}")
        for key in ("per", "interpolation", "max_delay"):
            if state.get(key) != getattr(self, key):
                raise ValueError(
                    f"DelayedLinear: the state_dict was saved with {key}={state.get(key)!r} but this layer has "
                    f"{key}={getattr(self, key)!r}; build the layer with the saved settings"
                )
        self.integer = bool(state.get("integer", False))
        self.set_sigma(float(state.get("sigma", self.sigma)))

    # ---- forward ----------------------------------------------------------------------------
    def _check_input(self, x_seq: Tensor) -> None:
        check_seq(x_seq, "x_seq")
        if x_seq.dim() != 3 or x_seq.shape[-1] != self.in_features:
            raise ValueError(
                f"DelayedLinear expects [T, B, in_features={self.in_features}], got {tuple(x_seq.shape)}; "
                "flatten the features with x.flatten(2)"
            )
        if x_seq.shape[0] <= self.max_delay:
            raise ValueError(
                f"a delay of up to max_delay={self.max_delay} steps needs T > {self.max_delay}, got T = "
                f"{x_seq.shape[0]}: feed longer sequences or build the layer with max_delay <= {x_seq.shape[0] - 1}"
            )
        if not bool(torch.isfinite(self.delays).all()):
            raise ValueError("DelayedLinear.delays contains NaN or inf (a diverged update?); lower the learning rate")

    def forward(self, x_seq: Tensor) -> Tensor:
        """``x_seq [T, B, in]`` -> ``[T, B, out]``."""
        self._check_input(x_seq)
        w = self.weight.to(x_seq.dtype)
        b = None if self.bias is None else self.bias.to(x_seq.dtype)
        if self.integer:
            steps = self.delays.round().to(torch.long)
            if self.per == "axon":
                return nn.functional.linear(shift_per_channel(x_seq, steps), w, b)
            return shift_per_synapse(x_seq, w, steps, b)
        k = self.kernel(like=x_seq)
        if self.per == "axon":
            return nn.functional.linear(causal_conv(x_seq, k, depthwise=True), w, b)
        y = causal_conv(x_seq, w.unsqueeze(-1) * k, depthwise=False)
        return y if b is None else y + b

    def step(self, x_t: Tensor, line: DelayLine | None = None) -> tuple[Tensor, DelayLine]:
        """One time step for streaming: ``x_t [B, in]`` -> ``(y_t [B, out], line)``. ``line=None`` starts from
        silence; the steps of a sequence give the same outputs as :meth:`forward` on it (``T`` has no lower
        bound here: the line holds zeros for the steps before the first)."""
        if not isinstance(x_t, Tensor) or x_t.dim() != 2 or x_t.shape[-1] != self.in_features:
            shape = tuple(x_t.shape) if isinstance(x_t, Tensor) else type(x_t).__name__
            raise ValueError(f"DelayedLinear.step expects x_t [B, in_features={self.in_features}], got {shape}")
        taps = self.max_delay + 1
        if line is None:
            hist = x_t.new_zeros((taps, *x_t.shape))
        elif not isinstance(line, DelayLine) or line.history.shape != (taps, *x_t.shape):
            raise ValueError(
                f"line must be a DelayLine with history [{taps}, {x_t.shape[0]}, {self.in_features}]; "
                "pass line=None to start a new stream"
            )
        else:
            hist = line.history
        hist = torch.cat([x_t.unsqueeze(0), hist[:-1]])  # hist[j] = x[t - j]
        w = self.weight.to(x_t.dtype)
        b = None if self.bias is None else self.bias.to(x_t.dtype)
        if self.integer and self.per == "synapse":
            steps = self.delays.round().to(torch.long)
            y = x_t.new_zeros((x_t.shape[0], self.out_features))
            for value in torch.unique(steps).tolist():
                y = y + nn.functional.linear(hist[value], torch.where(steps == value, w, torch.zeros_like(w)))
            y = y if b is None else y + b
        elif self.integer:
            idx = self.delays.round().to(torch.long)
            xs = hist[idx, :, torch.arange(self.in_features, device=x_t.device)].t()  # [B, in]: x[t - d_i, :, i]
            y = nn.functional.linear(xs, w, b)
        elif self.per == "axon":
            k = self.kernel(like=x_t)  # [in, taps]
            y = nn.functional.linear(torch.einsum("ij,jbi->bi", k, hist), w, b)
        else:
            k = self.kernel(like=x_t)  # [out, in, taps]
            y = torch.einsum("oij,jbi->bo", w.unsqueeze(-1) * k, hist)
            y = y if b is None else y + b
        return y, DelayLine(hist)

    def extra_repr(self) -> str:
        mode = "integer" if self.integer else f"{self.interpolation}, sigma={self.sigma:g}"
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, max_delay={self.max_delay}, "
            f"per={self.per!r}, {mode}, bias={self.bias is not None}"
        )
