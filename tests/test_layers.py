"""SNNSequential, SeqToBatch and record: equivalence with hand-threaded layers, recording, torch.compile."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import spikeforge as sf
from spikeforge.layers import SeqToBatch, SNNSequential, record, recording


def _net(seed=0):
    torch.manual_seed(seed)
    return SNNSequential(nn.Linear(4, 16), sf.LIF(5.0), nn.Linear(16, 3), sf.LI(5.0))


def test_sequential_equals_hand_threaded_per_step_loop(gen):
    net = _net().double()
    x = torch.rand(25, 8, 4, generator=gen, dtype=torch.float64) * 2
    out, states = net(x)
    lin1, lif, lin2, li = net.layers
    s1 = s2 = None
    outs = []
    for t in range(25):
        z, s1 = lif.step(lin1(x[t]), s1)
        v, s2 = li.step(lin2(z), s2)
        outs.append(v)
    torch.testing.assert_close(out, torch.stack(outs))
    for a, b in zip(states, [s1, s2]):
        torch.testing.assert_close(a.v, b.v)


def test_streaming_step_equals_forward(gen):
    net = _net().double()
    x = torch.rand(10, 2, 4, generator=gen, dtype=torch.float64) * 2
    out, _ = net(x)
    st = None
    for t in range(10):
        o, st = net.step(x[t], st)
        torch.testing.assert_close(o, out[t])


@pytest.mark.parametrize("per", ["axon", "synapse"])
@pytest.mark.parametrize("rounded", [True, False])
def test_streaming_threads_delay_lines_and_equals_forward(per, rounded, gen):
    from spikeforge.synapses import SRM
    from spikeforge.synapses import DelayedLinear
    from spikeforge.synapses import DelayLine

    torch.manual_seed(1)
    dl = DelayedLinear(3, 6, 4, per=per, generator=gen).double()
    dl = dl.rounded() if rounded else dl
    with torch.no_grad():
        dl.weight.uniform_(0.1, 0.9, generator=gen)
    net = SNNSequential(dl, sf.LIF(3.0, v_th=0.4), nn.Linear(6, 2), SRM(tau_s=2.0, v_th=0.3)).double()
    x = (torch.rand(12, 2, 3, generator=gen, dtype=torch.float64) < 0.5).double()
    out, _ = net(x)
    _, rec = record(net, x)
    assert rec["layers.1"].sum() > 0  # spikes reach the LIF layer through the delays
    st = None
    for t in range(12):
        o, st = net.step(x[t], st)
        torch.testing.assert_close(o, out[t])
    assert len(st) == 3 and isinstance(st[0], DelayLine) and st[0].history.shape == (5, 2, 3)
    with pytest.raises(ValueError, match="one per neuron layer and per SequenceLayer"):
        net.step(x[0], st[1:])


def test_sequence_layer_without_step_is_refused_in_streaming():
    class Reverse(sf.layers.SequenceLayer):
        def forward(self, x_seq):
            return x_seq.flip(0)

    with pytest.raises(TypeError, match="Reverse mixes time steps"):
        SNNSequential(Reverse(), sf.LIF()).step(torch.zeros(2, 3))


def test_conv_batchnorm_pool_dropout_flatten_fold_time(gen):
    torch.manual_seed(0)
    net = SNNSequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        sf.LIF(),
        nn.AvgPool2d(2),
        nn.Dropout(0.5),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 5),
        sf.LI(),
    ).eval()
    x = torch.rand(6, 3, 1, 8, 8, generator=gen)
    out, states = net(x)
    assert out.shape == (6, 3, 5) and len(states) == 2
    # per-time-step reference with the same layers
    conv, bn, lif, pool, drop, flat, lin, li = net.layers
    s1 = s2 = None
    for t in range(6):
        z, s1 = lif.step(bn(conv(x[t])), s1)
        v, s2 = li.step(lin(flat(drop(pool(z)))), s2)
        torch.testing.assert_close(out[t], v, rtol=1e-5, atol=1e-5)


def test_seq_to_batch_calls_layer_once():
    calls = []
    lin = nn.Linear(3, 2)
    lin.register_forward_hook(lambda m, a, o: calls.append(a[0].shape))
    y = SeqToBatch(lin)(torch.rand(7, 5, 3))
    assert y.shape == (7, 5, 2) and calls == [torch.Size([35, 3])]
    with pytest.raises(TypeError, match="stateless"):
        SeqToBatch(sf.LIF())
    with pytest.raises(ValueError, match=r"\[T, B"):
        SeqToBatch(lin)(torch.rand(3))


def test_record_returns_every_neuron_layer_and_leaves_modules_clean(gen):
    net = _net()
    x = torch.rand(12, 4, 4, generator=gen) * 2
    attrs_before = {n: set(vars(m)) for n, m in net.named_modules()}
    hooks_before = [len(m._forward_hooks) for m in net.modules()]
    (out, _), rec = record(net, x)
    assert set(rec) == {"layers.1", "layers.3"}
    assert rec["layers.1"].shape == (12, 4, 16) and not rec["layers.1"].requires_grad
    torch.testing.assert_close(rec["layers.3"], out.detach())
    # independent check of the spikes: rerun the first two layers by hand
    z, _ = net.layers[1](SeqToBatch(net.layers[0])(x))
    assert torch.equal(rec["layers.1"], z)
    assert {n: set(vars(m)) for n, m in net.named_modules()} == attrs_before
    assert [len(m._forward_hooks) for m in net.modules()] == hooks_before


def test_record_removes_hooks_on_error():
    net = _net()
    with pytest.raises(ValueError):
        record(net, torch.full((3, 2, 4), float("nan")))
    assert all(len(m._forward_hooks) == 0 for m in net.modules())


def test_sequential_bad_input():
    net = _net()
    with pytest.raises(ValueError, match="neuron layers"):
        net(torch.rand(3, 2, 4), [None])
    with pytest.raises(ValueError, match="T = 0"):
        net(torch.rand(0, 2, 4))
    with pytest.raises(TypeError, match="bare Neuron"):
        SNNSequential(sf.Stateful(sf.LIF()))
    with pytest.raises(ValueError, match="at least one"):
        SNNSequential()


def test_gradient_through_network_matches_finite_difference_on_smooth_path():
    # readout only (no spikes): the whole network is smooth, gradcheck applies
    torch.manual_seed(0)
    net = SNNSequential(nn.Linear(3, 4), sf.LI(4.0), nn.Linear(4, 2), sf.LI(2.0)).double()
    x = torch.rand(5, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: net(x)[0], (x,))


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_torch_compile_gives_same_spikes(backend):
    torch.manual_seed(0)
    net = SNNSequential(nn.Linear(8, 32), sf.LIF(2.0), nn.Linear(32, 4), sf.LIF(2.0))
    with torch.no_grad():
        net.layers[0].weight.mul_(4)
        net.layers[2].weight.abs_().mul_(4)
    x = torch.rand(10, 4, 8) * 3
    ref, _ = net(x)
    compiled = torch.compile(net, backend=backend)
    out, _ = compiled(x)
    assert ref.sum() > 0
    assert torch.equal(out, ref)
    # gradients agree too
    g_ref = torch.autograd.grad(net(x)[0].sum(), net.layers[0].weight)[0]
    g_cmp = torch.autograd.grad(compiled(x)[0].sum(), net.layers[0].weight)[0]
    torch.testing.assert_close(g_cmp, g_ref)


@pytest.mark.parametrize("k", [2, 3])
def test_folded_tiling_avgpool_matches_and_saves_nothing(k: int) -> None:
    from spikeforge.layers import _fold

    g = torch.Generator().manual_seed(0)
    x = (torch.rand(4, 3, 2, 6 * k, 3 * k, generator=g) < 0.3).float().requires_grad_()
    w = torch.randn(4, 3, 2, 6, 3, generator=g)
    pool = nn.AvgPool2d(k)
    saved: list[torch.Tensor] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = _fold(x, pool)
    assert not saved  # the spike input is not kept for the backward
    (gx,) = torch.autograd.grad((y * w).sum(), x)
    # independent reference: torch's own pooling on [T*B, ...]
    xr = x.detach().clone().requires_grad_()
    yr = torch.nn.functional.avg_pool2d(xr.reshape(12, 2, 6 * k, 3 * k), k).reshape(4, 3, 2, 6, 3)
    (gr,) = torch.autograd.grad((yr * w).sum(), xr)
    assert torch.equal(y, yr) and torch.equal(gx, gr)


def test_folded_tiling_avgpool_gradcheck_and_fallbacks() -> None:
    from spikeforge.layers import _fold, _tiling_pool

    x = torch.rand(2, 2, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: _fold(a, nn.AvgPool2d(2)), (x,))
    z = torch.zeros(4, 1, 4, 4)
    assert _tiling_pool(nn.AvgPool2d(2), z) == 2
    for layer, inp in (
        (nn.AvgPool2d(3, stride=1), z),
        (nn.AvgPool2d(2, padding=1), z),
        (nn.AvgPool2d(2, ceil_mode=True), z),
        (nn.AvgPool2d(3), z),
        (nn.AvgPool2d(2, divisor_override=3), z),
        (nn.MaxPool2d(2), z),
    ):
        assert _tiling_pool(layer, inp) == 0  # overlapping, padded, ragged or other pools use torch's layer
    # a pool that does not tile still gives torch's result through the fold
    y = _fold(torch.ones(2, 2, 1, 5, 5, requires_grad=True), nn.AvgPool2d(2))
    assert y.shape == (2, 2, 1, 2, 2)


def test_recording_inputs_and_outputs_of_every_neuron_layer(gen):
    """recording(inputs=True) keeps what each neuron layer receives, recording() what it returns: checked against
    the layers run one by one; the hooks are gone after the block."""
    torch.manual_seed(0)
    lin1, lif, lin2, li = nn.Linear(4, 6), sf.LIF(tau_mem=5.0), nn.Linear(6, 3), sf.LI(tau_mem=5.0)
    net = SNNSequential(lin1, lif, lin2, li)
    x = torch.rand(7, 2, 4, generator=gen) * 3
    with recording(net) as outs, recording(net, inputs=True) as ins:
        net(x)
    assert set(ins) == set(outs) == {"layers.1", "layers.3"}
    with torch.no_grad():  # SNNSequential folds Linear over T*B (another GEMM): equal up to float rounding
        torch.testing.assert_close(ins["layers.1"], lin1(x))
        torch.testing.assert_close(ins["layers.3"], lin2(outs["layers.1"]))
        torch.testing.assert_close(outs["layers.1"], lif(ins["layers.1"])[0], rtol=0, atol=0)
        torch.testing.assert_close(outs["layers.3"], li(ins["layers.3"])[0], rtol=0, atol=0)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
