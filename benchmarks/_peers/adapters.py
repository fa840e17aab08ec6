"""One adapter per library, and ``ADAPTERS``: the table ``benchmarks/peers.py`` runs (in this order).

Every adapter runs the same dynamics ``v <- 0.9 v + I; s = H(v - 1); v <- v - s`` (soft reset, reset not
detached) with the fast-sigmoid surrogate (k = 25) where the library allows it, and each runs a net the
way the library's own documentation does (see the ``peers.py`` docstring); the imports are inside
``network`` so that a missing library only fails its own child process.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .base import PeerAdapter, Run, layerwise, n_lif, scan
from .nets import Config, fold


class Spikeforge(PeerAdapter):
    """``SNNSequential``: stateless layers once on ``[T*B, ...]``, LIF over the whole sequence."""

    name = "spikeforge"
    module = "spikeforge"
    backend = "auto"

    def network(self, cfg: Config, seq: list[nn.Module | None]) -> Run:
        import spikeforge as sf
        from spikeforge.surrogate import FastSigmoid

        def mk() -> nn.Module:
            return sf.LIF(
                beta=0.9, input_scaling="none", reset="subtract", surrogate=FastSigmoid(25.0), detach_reset=False,
                backend=self.backend,
            )

        if cfg.kind == "lif":
            neuron = mk()
            return lambda x: neuron(x)[0]
        net = sf.SNNSequential(*[mk() if m is None else m for m in seq])
        return lambda x: net(x)[0]


class SpikeforgeReference(Spikeforge):
    """The plain time loop over the pure step function: the reference of the agreement check."""

    name = "spikeforge_reference"
    backend = "reference"


class SnnTorch(PeerAdapter):
    """``Leaky`` per step; the Linear folded over ``T*B`` in the Linear configs, the whole net per step in conv.

    snnTorch's ``Leaky`` applies the reset one step late, so its spikes differ by design.
    """

    name = "snntorch"
    module = "snntorch"

    def network(self, cfg: Config, seq: list[nn.Module | None]) -> Run:
        import snntorch as snn
        from snntorch import surrogate

        neurons = [
            snn.Leaky(beta=0.9, spike_grad=surrogate.fast_sigmoid(25), reset_mechanism="subtract")
            for _ in range(n_lif(seq))
        ]

        def run_per_step(x: torch.Tensor) -> torch.Tensor:  # conv: the whole net per time step (its tutorials)
            mems = [neu.init_leaky() for neu in neurons]
            outs = []
            for t in range(x.shape[0]):
                h, k = x[t], 0
                for m in seq:
                    if m is not None:
                        h = m(h)
                    else:
                        h, mems[k] = neurons[k](h, mems[k])
                        k += 1
                outs.append(h)
            return torch.stack(outs)

        if cfg.kind == "conv":
            return run_per_step
        # Linear configs: Linear once on [T, B, N] (= on [T*B, N]), Leaky per step
        return lambda x: layerwise(seq, x, _call, lambda k, h: scan(neurons[k], h, neurons[k].init_leaky()))


class SpikingJelly(PeerAdapter):
    """Multi-step ``LIFNode(step_mode="m")``, stateless layers in ``SeqToANNContainer`` (CPU: its torch path)."""

    name = "spikingjelly"
    module = "spikingjelly"

    def network(self, cfg: Config, seq: list[nn.Module | None]) -> Run:
        from spikingjelly.activation_based import functional, layer, neuron, surrogate

        sj_net = nn.Sequential(*[
            neuron.LIFNode(
                tau=10.0, decay_input=False, v_reset=None, surrogate_function=surrogate.SoftSign(alpha=25.0),
                step_mode="m",
            )
            if m is None else layer.SeqToANNContainer(m)
            for m in seq
        ])

        def run_sj(x: torch.Tensor) -> torch.Tensor:
            functional.reset_net(sj_net)
            return sj_net(x)

        return run_sj


class Norse(PeerAdapter):
    """Stateless layers folded over ``T*B``; ``LIFBoxCell`` per step."""

    name = "norse"
    module = "norse"

    def network(self, cfg: Config, seq: list[nn.Module | None]) -> Run:
        import norse.torch as nt
        from norse.torch.functional.reset import reset_subtract

        p = nt.LIFBoxParameters(
            tau_mem_inv=torch.tensor(100.0), v_leak=torch.tensor(0.0), v_th=torch.tensor(1.0),
            v_reset=torch.tensor(0.0), method="super", alpha=torch.tensor(25.0), reset_method=reset_subtract,
        )
        cells = [nt.LIFBoxCell(p, dt=1e-3) for _ in range(n_lif(seq))]
        # dt * tau_mem_inv = 0.1: scale the input by 10
        return lambda x: layerwise(seq, x, fold, lambda k, h: scan(cells[k], 10.0 * h, None))


class _FastSigmoid:
    """Sinabs surrogate: the fast sigmoid, k = 25."""

    def __call__(self, v_mem: torch.Tensor, spike_threshold: torch.Tensor) -> torch.Tensor:
        return 1.0 / (1.0 + 25.0 * (v_mem - spike_threshold).abs()) ** 2


class Sinabs(PeerAdapter):
    """Stateless layers folded over ``B*T``; ``LIF`` on batch-major ``[B, T, ...]``."""

    name = "sinabs"
    module = "sinabs"

    def network(self, cfg: Config, seq: list[nn.Module | None]) -> Run:
        import sinabs.layers as sl
        from sinabs.activation import MembraneSubtract, SingleSpike

        neurons = [
            sl.LIF(
                tau_mem=-1.0 / math.log(0.9), norm_input=False, spike_fn=SingleSpike, reset_fn=MembraneSubtract(),
                surrogate_grad_fn=_FastSigmoid(),
            )
            for _ in range(n_lif(seq))
        ]

        def lif(k: int, h: torch.Tensor) -> torch.Tensor:
            neurons[k].reset_states()
            return neurons[k](h)

        def run_sinabs(x: torch.Tensor) -> torch.Tensor:  # sinabs is batch-major [B, T, ...]
            # fold = sinabs FlattenTime -> layer -> UnflattenTime
            return layerwise(seq, x.transpose(0, 1).contiguous(), fold, lif).transpose(0, 1)

        return run_sinabs


def _call(m: nn.Module, h: torch.Tensor) -> torch.Tensor:
    return m(h)


def _table(*adapters: PeerAdapter) -> dict[str, PeerAdapter]:
    table: dict[str, PeerAdapter] = {}
    for a in adapters:
        if a.name in table:
            raise ValueError(f"two adapters named {a.name!r}: rename one")
        table[a.name] = a
    return table


ADAPTERS = _table(Spikeforge(), SpikeforgeReference(), SnnTorch(), SpikingJelly(), Norse(), Sinabs())


def get_adapter(name: str) -> PeerAdapter:
    if name not in ADAPTERS:
        raise ValueError(f"unknown library {name!r}; choose from {list(ADAPTERS)}")
    return ADAPTERS[name]
