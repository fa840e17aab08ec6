"""count(): exact per-layer counts against hand loops, path equivalence, hooks removed, bad input."""

from __future__ import annotations

import inspect
import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikeforge import LI, LIF, RecurrentLIF, SNNSequential, record
from spikeforge.neurons import NEURON_REGISTRY, get_neuron
from spikeforge.energy import conv_fanout, count
from spikeforge.models import SNNClassifier


def _init(net: nn.Module, gen: torch.Generator) -> nn.Module:
    """Deterministic weights (nn.Linear/Conv initialise from the global RNG): mostly positive, so layers spike."""
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.rand(p.shape, generator=gen) * 1.2 - 0.2)
    return net.eval()


def _spikes(shape: tuple[int, ...], p: float, gen: torch.Generator) -> torch.Tensor:
    return (torch.rand(shape, generator=gen) < p).to(torch.get_default_dtype())


def _hand_conv_fanout(c_in: int, c_out: int, groups: int, size: tuple[int, int], k: int, s: int, p: int, d: int) -> torch.Tensor:
    """Brute force: for every input (c, h, w), count (output channel, output position, tap) reading it."""
    h_in, w_in = size
    h_out = (h_in + 2 * p - d * (k - 1) - 1) // s + 1
    w_out = (w_in + 2 * p - d * (k - 1) - 1) // s + 1
    fan = torch.zeros(c_in, h_in, w_in, dtype=torch.float64)
    out_per_group = c_out // groups
    for oh, ow, kh, kw in itertools.product(range(h_out), range(w_out), range(k), range(k)):
        h, w = oh * s - p + kh * d, ow * s - p + kw * d
        if 0 <= h < h_in and 0 <= w < w_in:
            fan[:, h, w] += out_per_group  # every input channel feeds the c_out/groups outputs of its group
    return fan


def test_linear_lif_linear_counts_match_hand_computation(gen: torch.Generator) -> None:
    net = _init(SNNSequential(nn.Linear(5, 7), LIF(2.0, v_th=0.3), nn.Linear(7, 3), LI()), gen)
    x = _spikes((6, 4, 5), 0.4, gen)
    counts = count(net, x)
    _, rec = record(net, x)
    z = rec["layers.1"]  # [T, B, 7] spikes of the LIF layer
    w0, b0 = net.layers[0].weight.detach(), net.layers[0].bias.detach()
    current = x @ w0.t() + b0
    l0, l1, l2, l3 = (counts.layer(f"layers.{i}") for i in range(4))
    assert l0.synops == int((x != 0).sum()) * 7 and l0.macs == 0 and l0.input_binary is True
    assert l0.dense_macs == 6 * 4 * 5 * 7 and l0.weight_reads == l0.synops
    assert l1.neuron_updates == 6 * 4 * 7 and l1.spikes == int(z.sum())
    assert l1.active_updates == int((current != 0).sum())
    assert l1.state_reads == l1.state_writes == 6 * 4 * 7  # LIF state: v only
    assert l2.synops == int(z.sum()) * 3 and l2.input_binary is True
    assert l3.spikes == 0 and l3.neuron_updates == 6 * 4 * 3
    assert counts.input_spikes == int(x.sum())
    assert counts.per_inference("synops") == (l0.synops + l2.synops) / 4
    assert counts.firing_rates()["layers.1"] == pytest.approx(float(z.mean()))
    per_step = counts.bytes_per_step()  # per inference per time step, float32
    assert per_step["state_read"] == per_step["state_write"] == (7 + 3) * 4
    assert per_step["weight_read"] == pytest.approx((l0.synops + l2.synops) * 4 / (6 * 4))


def test_analog_input_counts_dense_macs(gen: torch.Generator) -> None:
    net = SNNSequential(nn.Linear(4, 6), LIF()).eval()
    x = torch.rand(3, 2, 4, generator=gen) + 0.1
    layer = count(net, x).layer("layers.0")
    assert layer.input_binary is False and layer.synops == 0
    assert layer.macs == layer.dense_macs == 3 * 2 * 4 * 6
    assert count(net, x).input_spikes is None


@pytest.mark.parametrize(
    "c_in,c_out,groups,k,s,p,d,size",
    [(2, 3, 1, 3, 1, 1, 1, (5, 6)), (2, 4, 1, 3, 2, 1, 1, (7, 6)), (4, 4, 2, 3, 2, 2, 2, (9, 8)), (1, 2, 1, 2, 3, 0, 1, (8, 8))],
)
def test_conv_fanout_matches_brute_force(c_in: int, c_out: int, groups: int, k: int, s: int, p: int, d: int, size: tuple[int, int]) -> None:
    conv = nn.Conv2d(c_in, c_out, k, stride=s, padding=p, dilation=d, groups=groups)
    expected = _hand_conv_fanout(c_in, c_out, groups, size, k, s, p, d)
    assert torch.equal(conv_fanout(conv, (c_in, *size)), expected)


def test_conv_synops_with_padding_and_stride_edges(gen: torch.Generator) -> None:
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1, bias=False)
    net = SNNSequential(conv, LIF()).eval()
    x = _spikes((3, 2, 2, 7, 6), 0.3, gen)
    layer = count(net, x).layer("layers.0")
    fan = _hand_conv_fanout(2, 3, 1, (7, 6), 3, 2, 1, 1)
    hand = sum(float(fan[c, h, w]) for t, b, c, h, w in (x != 0).nonzero().tolist())
    assert layer.synops == int(hand)
    # corners feed fewer outputs than interior inputs: padding edges matter
    assert fan[0, 0, 0] < fan[0, 3, 3]
    h_out, w_out = 4, 3
    assert layer.dense_macs == 3 * 2 * (2 * 3 * 3 * 3 * h_out * w_out)


def test_conv_dense_macs_standard_formula_on_analog_input(gen: torch.Generator) -> None:
    conv = nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), groups=2)
    net = SNNSequential(conv, LIF()).eval()
    x = torch.randn(2, 3, 4, 9, 5, generator=gen)
    y = conv(x.flatten(0, 1))
    layer = count(net, x).layer("layers.0")
    assert layer.macs == 2 * 3 * (4 // 2) * 3 * 2 * 6 * y.shape[-2] * y.shape[-1]


def _pool_reads_reference(pool: nn.Module, h: int, w: int) -> tuple[int, int]:
    """(real inputs summed over windows, number of windows) by probing torch with one-hot inputs."""
    reads = 0
    for i, j in itertools.product(range(h), range(w)):
        e = torch.zeros(1, 1, h, w)
        e[0, 0, i, j] = 1.0
        reads += int((pool(e) != 0).sum())
    windows = pool(torch.ones(1, 1, h, w)).numel()
    return reads, windows


@pytest.mark.parametrize(
    "pool,is_avg",
    [
        (nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), False),
        (nn.MaxPool2d(2), False),
        (nn.AvgPool2d(3, stride=2, padding=1), True),
        (nn.AdaptiveAvgPool2d((3, 2)), True),
    ],
)
def test_pooling_adds_match_probe(pool: nn.Module, is_avg: bool, gen: torch.Generator) -> None:
    h, w = 7, 6
    net = SNNSequential(pool).eval()
    x = _spikes((2, 3, 4, h, w), 0.5, gen)
    layer = count(net, x).layer("layers.0")
    reads, windows = _pool_reads_reference(pool, h, w)
    per_map = reads - windows + (windows if is_avg else 0)
    assert layer.adds == 2 * 3 * 4 * per_map


def test_recurrent_synops_from_previous_spikes(gen: torch.Generator) -> None:
    n = 5
    w_rec = torch.randn(n, n, generator=gen)
    net = SNNSequential(nn.Linear(3, n), RecurrentLIF(n, 2.0, w_rec=w_rec, v_th=0.2))
    _init(net.layers[0], gen)
    x = _spikes((8, 2, 3), 0.6, gen)
    _, rec = record(net, x)
    z = rec["layers.1"]
    layer = count(net, x).layer("layers.1")
    hand = sum(int(z[t - 1].sum()) * n for t in range(1, 8))  # no spikes before the first step
    assert z.sum() > 0 and layer.synops == hand
    assert layer.dense_macs == 8 * 2 * n * n and layer.weights == n * n
    assert layer.state_reads == 8 * 2 * n * 2  # RLIF state: v and z
    assert count(net, x).recurrent


def test_streaming_equals_forward_and_classifier_equals_network(gen: torch.Generator) -> None:
    net = _init(SNNSequential(nn.Linear(4, 6), LIF(3.0, v_th=0.2), nn.Linear(6, 2), LI()), gen)

    class Streaming(nn.Module):
        def __init__(self, inner: SNNSequential) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
            states = None
            outs = []
            for x_t in x_seq:
                y, states = self.inner.step(x_t, states)
                outs.append(y)
            return torch.stack(outs)

    x = _spikes((5, 3, 4), 0.5, gen)
    a, b = count(net, x), count(Streaming(net), x)
    for key in ("synops", "macs", "spikes", "neuron_updates", "active_updates", "state_reads", "dense_macs"):
        assert a.total(key) == b.total(key), key
    clf = SNNClassifier(net, time_steps=5, encoding="rate")
    c = count(clf, x)
    assert [layer.name for layer in c.layers] == ["network." + layer.name for layer in a.layers]
    assert c.total("synops") == a.total("synops")


def test_hooks_removed_and_modules_unchanged(gen: torch.Generator) -> None:
    net = SNNSequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), LIF(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Dropout(0.5), nn.Linear(18, 3), LI()).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    attrs = {n: set(vars(m)) for n, m in net.named_modules()}
    count(net, _spikes((2, 2, 1, 6, 6), 0.5, gen))
    for n, m in net.named_modules():
        assert not m._forward_hooks and not m._forward_pre_hooks, n
        assert set(vars(m)) == attrs[n], n
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_batchnorm_and_float64(gen: torch.Generator) -> None:
    net = SNNSequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), LIF()).to(torch.float64).eval()
    x = _spikes((2, 3, 1, 5, 5), 0.5, gen).double()
    counts = count(net, x)
    assert counts.bytes_per_element == 8
    assert counts.layer("layers.1").macs == 2 * 3 * 2 * 3 * 3


def test_unknown_module_with_parameters_raises_naming_it() -> None:
    class Gain(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.g = nn.Parameter(torch.ones(()))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.g

    net = SNNSequential(nn.Linear(2, 3), Gain(), LIF()).eval()
    with pytest.raises(TypeError, match=r"layers\.1.*Gain"):
        count(net, torch.ones(2, 1, 2))
    assert not net.layers[0]._forward_hooks  # raised before any hook was registered
    with pytest.raises(TypeError, match="LayerNorm"):
        count(SNNSequential(nn.LayerNorm(2), LIF()).eval(), torch.ones(2, 1, 2))


def test_parameter_free_unknown_module_is_listed_not_silent() -> None:
    counts = count(SNNSequential(nn.Linear(2, 3), nn.ReLU(), LIF()).eval(), torch.ones(2, 1, 2))
    assert counts.uncounted == ("layers.1",)


def test_bad_input() -> None:
    net = SNNSequential(nn.Linear(2, 3), LIF()).eval()
    with pytest.raises(ValueError, match="NaN"):
        count(net, torch.full((2, 1, 2), float("nan")))
    with pytest.raises(TypeError, match="floating"):
        count(net, torch.ones(2, 1, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"\[T, B"):
        count(net, torch.ones(2))
    with pytest.raises(ValueError, match=r"\[T, B"):
        count(net, torch.ones(0, 1, 2))
    with pytest.raises(TypeError, match="nn.Module"):
        count(lambda x: x, torch.ones(2, 1, 2))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="eval"):
        count(SNNSequential(nn.Linear(2, 3), nn.Dropout(0.2), LIF()), torch.ones(2, 1, 2))
    with pytest.raises(KeyError, match="layers.0"):
        count(net, torch.ones(2, 1, 2)).layer("nope")
    with pytest.raises(ValueError, match="valid"):
        count(net, torch.ones(2, 1, 2)).total("energy")


def test_neuron_step_only_is_refused() -> None:
    lif = LIF()

    class StepOnly(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lif = lif

        def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
            state = None
            outs = []
            for x_t in x_seq:
                z, state = self.lif.step(x_t, state)
                outs.append(z)
            return torch.stack(outs)

    with pytest.raises(ValueError, match="forward"):
        count(StepOnly(), torch.ones(3, 1, 2))


def test_conv_fanout_bad_module() -> None:
    with pytest.raises(TypeError, match="Conv"):
        conv_fanout(nn.Linear(2, 2), (2,))


def test_unbatched_conv_fanout_sum_equals_dense_without_padding() -> None:
    conv = nn.Conv1d(3, 4, 3)
    fan = conv_fanout(conv, (3, 10))
    assert float(fan.sum()) == 3 * 3 * 4 * 8  # no padding: every tap reads a real input
    ref = F.conv_transpose1d(torch.ones(1, 4, 8, dtype=torch.float64), torch.ones(4, 3, 3, dtype=torch.float64))
    assert torch.equal(fan, ref[0])


@pytest.mark.parametrize("name", sorted(NEURON_REGISTRY))
def test_every_registered_neuron_is_counted(name: str, gen: torch.Generator) -> None:
    n = 4
    cls = NEURON_REGISTRY[name]
    neuron = get_neuron(name, size=n) if "size" in inspect.signature(cls.__init__).parameters else get_neuron(name)
    net = SNNSequential(nn.Linear(3, n), neuron)
    _init(net, gen)
    x = _spikes((5, 2, 3), 0.5, gen)
    layer = count(net, x).layer("layers.1")
    _, rec = record(net, x)
    n_fields = len(neuron.init_state(torch.zeros(2, n)))
    assert layer.neuron_updates == 5 * 2 * n
    assert layer.state_reads == layer.state_writes == 5 * 2 * n * n_fields
    assert layer.spikes == (int((rec["layers.1"] != 0).sum()) if cls.capabilities.spiking else 0)
