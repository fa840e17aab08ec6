"""Delays and SRM in the integrations: energy counts vs hand loops, DelayedLinear == nn.Linear counts, SRM
counted as a spiking neuron layer, interpolated delays refused."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spikeforge.energy import count
from spikeforge.energy import estimate
from spikeforge.layers import SNNSequential
from spikeforge.layers import record
from spikeforge.neurons import LIF
from spikeforge.synapses import SRM
from spikeforge.synapses import DelayedLinear

T, B, NI, NO, D = 9, 3, 4, 5, 3


def spikes(gen: torch.Generator, t: int = T, n: int = NI) -> torch.Tensor:
    return (torch.rand(t, B, n, generator=gen) < 0.4).float()


def delayed(per: str, delays: torch.Tensor) -> DelayedLinear:
    return DelayedLinear(NI, NO, D, per=per, delays=delays).rounded().eval()


def hand_synops(x: torch.Tensor, delay_of) -> int:
    """Spikes that arrive inside the run, per real synapse: plain loops over (t, b, i, o)."""
    n = 0
    t_len, n_b, n_in = x.shape
    for t in range(t_len):
        for b in range(n_b):
            for i in range(n_in):
                if x[t, b, i] != 0:
                    n += sum(1 for o in range(NO) if t + delay_of(o, i) <= t_len - 1)
    return n


@pytest.mark.parametrize("per", ["axon", "synapse"])
def test_delayed_linear_counts_match_hand_loops(per: str, gen: torch.Generator) -> None:
    shape = (NI,) if per == "axon" else (NO, NI)
    d = torch.randint(0, D + 1, shape, generator=gen).float()
    d.view(-1)[0] = D  # at least one delay at max_delay
    layer = delayed(per, d)
    x = spikes(gen)
    x[-1] = 1.0  # spikes in the last steps: some never arrive inside the run
    c = count(SNNSequential(layer, LIF()), x).layer("layers.0")
    delay_of = (lambda o, i: int(d[i])) if per == "axon" else (lambda o, i: int(d[o, i]))
    want = hand_synops(x, delay_of)
    assert c.synops == want and c.weight_reads == want and c.macs == 0
    assert want < int(x.sum()) * NO  # the test can tell "delivered" from "sent"
    assert c.dense_macs == T * B * NI * NO and c.kind == "linear" and c.input_binary is True
    assert c.delay_buffer == (D + 1) * NI and c.weights == NO * NI
    reads = NI if per == "axon" else sum(len({int(d[o, i]) for o in range(NO)}) for i in range(NI))
    assert c.state_writes == T * B * NI and c.state_reads == T * B * reads


def test_same_counts_as_nn_linear_given_identical_spikes(gen: torch.Generator) -> None:
    lin = nn.Linear(NI, NO)
    ref = SNNSequential(lin, LIF(v_th=0.2), nn.Linear(NO, 2), LIF()).eval()
    for per, shape in (("axon", (NI,)), ("synapse", (NO, NI))):
        layer = delayed(per, torch.zeros(shape))
        with torch.no_grad():
            layer.weight.copy_(lin.weight)
            assert layer.bias is not None
            layer.bias.copy_(lin.bias)
        net = SNNSequential(layer, ref.layers[1], ref.layers[2], ref.layers[3]).eval()
        x = spikes(gen)
        a, b = count(net, x), count(ref, x)
        for la, lb in zip(a.layers, b.layers, strict=True):
            assert la.synops == lb.synops and la.dense_macs == lb.dense_macs and la.spikes == lb.spikes
        assert a.total("synops") == b.total("synops") > 0
    # non-zero delays, silent last D steps: every spike arrives, the first layer counts as nn.Linear
    x = spikes(gen)
    x[-D:] = 0.0
    layer = delayed("synapse", torch.randint(0, D + 1, (NO, NI), generator=gen).float())
    c = count(SNNSequential(layer, LIF()), x).layer("layers.0")
    assert c.synops == count(SNNSequential(nn.Linear(NI, NO), LIF()), x).layer("layers.0").synops


def test_analog_input_counts_dense_macs(gen: torch.Generator) -> None:
    layer = delayed("axon", torch.tensor([0.0, 1.0, 2.0, 3.0]))
    x = torch.rand(T, B, NI, generator=gen) + 0.1
    c = count(SNNSequential(layer, LIF()), x).layer("layers.0")
    assert c.synops == 0 and c.macs == c.dense_macs == c.weight_reads == T * B * NI * NO
    assert c.input_binary is False


def test_interpolated_delays_refused_before_running() -> None:
    net = SNNSequential(DelayedLinear(NI, NO, D), LIF())
    with pytest.raises(ValueError, match=r"rounded\(\)"):
        count(net, torch.zeros(T, B, NI))


def test_srm_counted_as_spiking_neuron_layer(gen: torch.Generator) -> None:
    net = SNNSequential(nn.Linear(NI, NO), SRM(tau_s=2.0, v_th=0.3)).eval()
    with torch.no_grad():
        net.layers[0].weight.uniform_(0.2, 1.0, generator=gen)
    x = spikes(gen)
    c = count(net, x)
    _, rec = record(net, x)
    z = rec["layers.1"]
    srm = c.layer("layers.1")
    assert srm.kind == "neuron" and srm.spiking and srm.module_type == "SRM"
    assert srm.neuron_updates == T * B * NO and srm.spikes == int(z.sum()) > 0
    assert srm.state_reads == srm.state_writes == 4 * T * B * NO  # ps, qs, pr, qr per neuron
    assert c.layer("layers.0").synops == int(x.sum()) * NO
    notes = " ".join(estimate(c, "loihi").caveats)
    assert "SRM layers ['layers.1']" in notes and "per neuron, not per synapse" in notes


def test_delay_caveat_in_report(gen: torch.Generator) -> None:
    net = SNNSequential(delayed("axon", torch.tensor([0.0, 1.0, 2.0, 3.0])), LIF())
    notes = " ".join(estimate(count(net, spikes(gen)), "loihi").caveats)
    assert "delayed layers ['layers.0']" in notes and "(max_delay + 1) x in_features" in notes
