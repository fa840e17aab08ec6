"""A fused neuron layer followed by k x k tiling average pooling (spikeforge.backends.lif_pool, issue 20).

The fused pass must give exactly what the layer then ``avg_pool2d`` gives (pooled spikes and final states
bit-identical; gradients bit-identical to the same kernel unfused, and within tolerance of the reference time
loop), it must really run inside ``SNNSequential`` (a spy on the kernel), and it must step aside where its
output could be observed (hooks, ``record``) or where the pool does not tile the input.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from _fused_cases import NEURONS
from _fused_cases import SCALE
from torch import nn

import spikeforge as sf
from spikeforge.backends import available_backends
from spikeforge.backends.numba_kernel import NumbaKernel
from spikeforge.surrogate import FastSigmoid
from spikeforge.surrogate import get_surrogate

pytestmark = pytest.mark.skipif("numba" not in available_backends(), reason="the fused pool runs on the numba backend")


def _inputs(name, dtype, shape, seed):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(shape, generator=g, dtype=torch.float64) * SCALE[name]).to(dtype)
    w = torch.randn(shape[:-2] + (shape[-2] // 1, shape[-1] // 1), generator=g, dtype=torch.float64).to(dtype)
    return x, w, g


def _layer_then_pool(neuron, x, s0, k, is_max=False):
    z, st = neuron(x, s0)
    t, b = z.shape[:2]
    pool = F.max_pool2d if is_max else F.avg_pool2d
    pooled = pool(z.reshape(t * b, *z.shape[2:]), k)
    return pooled.reshape(t, b, *z.shape[2:-2], *(d // k for d in z.shape[-2:])), st


def _grads(run, x, s0, wp):
    xx = x.clone().requires_grad_()
    ss = type(s0)(*(t.clone().requires_grad_() for t in s0))
    pooled, st = run(xx, ss)
    loss = (pooled * wp).sum() + sum((t * (k + 1)).sum() for k, t in enumerate(st))
    return pooled.detach(), [t.detach() for t in st], torch.autograd.grad(loss, [xx, *ss])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", sorted(NEURONS))
@pytest.mark.parametrize("reset", ["to_value", "subtract", "none"])
@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("is_max", [False, True], ids=["avg", "max"])
def test_fused_pool_equals_layer_then_pool(dtype, name, reset, k, is_max):
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-4)
    shape = (12, 2, 3, 2 * k, 3 * k)  # [T, B, C, H, W]
    for detach, sg_name in itertools.product((True, False), ("fast_sigmoid", "atan")):
        seed = hash((name, reset, detach, sg_name, k, is_max)) % 2**31
        x, _, g = _inputs(name, dtype, shape, seed)
        wp = torch.randn(shape[:3] + (2, 3), generator=g, dtype=torch.float64).to(dtype)
        kw = dict(reset=reset, detach_reset=detach, surrogate=get_surrogate(sg_name))
        numba_layer = NEURONS[name](backend="numba", **kw).to(dtype)
        ref_layer = NEURONS[name](backend="reference", **kw).to(dtype)
        s0 = numba_layer.init_state(x[0])
        s0 = type(s0)(*(t + 0.1 * torch.rand(t.shape, generator=g, dtype=torch.float64).to(dtype) for t in s0))
        fused = _grads(lambda xx, ss, m=numba_layer: m.run_pooled(xx, ss, k, is_max), x, s0, wp)
        unfused = _grads(lambda xx, ss, m=numba_layer: _layer_then_pool(m, xx, ss, k, is_max), x, s0, wp)
        ref = _grads(lambda xx, ss, m=ref_layer: _layer_then_pool(m, xx, ss, k, is_max), x, s0, wp)
        assert ref[0].sum() > 0, "the case should spike"
        assert torch.equal(fused[0], ref[0]) and torch.equal(fused[0], unfused[0]), (detach, sg_name)
        for a, b, c in zip(fused[1], unfused[1], ref[1]):
            assert torch.equal(a, b) and torch.equal(a, c)
        for a, b, c in zip(fused[2], unfused[2], ref[2]):
            assert torch.equal(a, b), (name, reset, detach, sg_name, "fused vs unfused numba")
            torch.testing.assert_close(a, c, **tol, msg=f"{name} {reset} detach={detach} {sg_name}")


def test_fused_pool_matches_hand_written_lif():
    # an independent reference written out here: v <- 0.9 v + x; z = [v > 1]; v <- v - z; 2x2 tile means
    g = torch.Generator().manual_seed(3)
    x = torch.rand(15, 2, 4, 6, 8, generator=g, dtype=torch.float64) * 0.6
    lif = sf.LIF(beta=0.9, input_scaling="none", reset="subtract", backend="numba").double()
    pooled, st = lif.run_pooled(x, None, 2)
    v = torch.zeros(x.shape[1:], dtype=torch.float64)
    want = []
    for t in range(x.shape[0]):
        v = 0.9 * v + x[t]
        z = (v > 1.0).double()
        v = v - z
        tiles = z.reshape(2, 4, 3, 2, 4, 2)
        want.append(
            (tiles[:, :, :, 0, :, 0] + tiles[:, :, :, 0, :, 1] + tiles[:, :, :, 1, :, 0] + tiles[:, :, :, 1, :, 1]) / 4
        )
    assert torch.stack(want).sum() > 0
    assert torch.equal(pooled, torch.stack(want))
    torch.testing.assert_close(st.v, v, rtol=0, atol=1e-12)


def test_fused_max_pool_routes_the_gradient_to_the_first_spike_of_each_tile():
    # independent reference: max_pool2d's rule for binary tiles, written out: the tile's gradient goes to its
    # first spike in row-major order, or to its top-left element when none spiked (one step, v0 = 0: the
    # neuron's dL/dx is nonzero exactly where dL/dz is)
    x = torch.tensor([[0.5, 1.5, 1.5, 1.5], [1.5, 0.2, 0.1, 0.3]], dtype=torch.float64).reshape(1, 1, 1, 2, 4)
    lif = sf.LIF(beta=0.5, input_scaling="none", surrogate=FastSigmoid(1.0), backend="numba").double()
    xx = x.clone().requires_grad_()
    pooled, _ = lif.run_pooled(xx, None, 2, True)
    assert pooled.flatten().tolist() == [1.0, 1.0]
    pooled.sum().backward()
    g = xx.grad.reshape(2, 4)
    # tile 0: spikes at (0, 1) and (1, 0): the first in row-major order is (0, 1); tile 1: (0, 2) first
    assert [(i, j) for i in range(2) for j in range(4) if g[i, j] != 0] == [(0, 1), (0, 2)]
    silent = torch.full((1, 1, 1, 2, 2), 0.1, dtype=torch.float64, requires_grad=True)
    out, _ = lif.run_pooled(silent, None, 2, True)
    out.sum().backward()
    assert out.item() == 0.0 and silent.grad.flatten().ne(0).tolist() == [True, False, False, False]


def _conv_net(pool, lif_kw=None):
    torch.manual_seed(0)
    kw = dict(beta=0.9, input_scaling="none", surrogate=FastSigmoid(25.0), detach_reset=False) | (lif_kw or {})
    c1, c2 = nn.Conv2d(1, 4, 3, bias=False), nn.Conv2d(4, 6, 3, bias=False)
    fc = nn.Linear(6 * 2 * 2, 5, bias=False)
    for m in (c1, c2, fc):
        nn.init.normal_(m.weight, 0.0, 1.2)
    return sf.SNNSequential(c1, sf.LIF(**kw), pool(), c2, sf.LIF(**kw), pool(), nn.Flatten(), fc, sf.LIF(**kw))


def _train_step(net, x):
    out, states = net(x)
    (out * torch.linspace(-1, 1, out.shape[-1])).sum().backward()
    return out, states, [p.grad for p in net.parameters()]


@pytest.mark.parametrize("pool_type", [nn.AvgPool2d, nn.MaxPool2d])
def test_sequential_fuses_and_equals_the_unfused_net(monkeypatch, pool_type):
    calls = []
    real = NumbaKernel.forward_pool
    monkeypatch.setattr(NumbaKernel, "forward_pool", staticmethod(lambda *a: calls.append(1) or real(*a)))
    x = (torch.rand(10, 3, 1, 14, 14, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    fused = _train_step(_conv_net(lambda: pool_type(2)), x)
    assert len(calls) == 2, "both conv LIF layers should run fused with their pools"
    unfused = _train_step(_conv_net(lambda: sf.SeqToBatch(pool_type(2))), x)  # SeqToBatch: never fused
    reference = _train_step(_conv_net(lambda: pool_type(2), {"backend": "reference"}), x)
    assert len(calls) == 2
    assert fused[0].sum() > 0
    assert torch.equal(fused[0], unfused[0]) and torch.equal(fused[0], reference[0])
    for a, b in zip(fused[1], unfused[1]):
        assert torch.equal(a.v, b.v)
    for a, b, c in zip(fused[2], unfused[2], reference[2]):
        assert a.abs().sum() > 0
        assert torch.equal(a, b)
        torch.testing.assert_close(a, c, rtol=1e-4, atol=1e-5)


def test_not_fused_where_the_spikes_are_observed_or_the_pool_does_not_tile(monkeypatch):
    calls = []
    real = NumbaKernel.forward_pool
    monkeypatch.setattr(NumbaKernel, "forward_pool", staticmethod(lambda *a: calls.append(1) or real(*a)))
    x = (torch.rand(6, 2, 1, 14, 14, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    net = _conv_net(lambda: nn.AvgPool2d(2))
    out, rec = sf.record(net, x)  # record hooks every neuron: its spikes must exist
    assert not calls
    assert set(rec) == {"layers.1", "layers.4", "layers.8"} and rec["layers.1"].shape == (6, 2, 4, 12, 12)
    assert torch.equal(out[0], net(x)[0]) and len(calls) == 2
    calls.clear()
    odd = sf.SNNSequential(nn.Conv2d(1, 2, 2), sf.LIF(), nn.AvgPool2d(2))  # 13 x 13: the pool does not tile
    y, _ = odd(x)
    assert not calls and y.shape == (6, 2, 2, 6, 6)
    sf.SNNSequential(sf.LIF(backend="reference"), nn.AvgPool2d(2))(x)  # the reference loop never fuses
    learnt = sf.LIF(learn_tau=True)  # a trainable tau has no fused kernel: the layers run one after the other
    y, _ = sf.SNNSequential(learnt, nn.AvgPool2d(2))(x)
    z, _ = learnt(x)
    assert torch.equal(y, F.avg_pool2d(z.flatten(0, 1), 2).reshape(y.shape))
    assert sf.LIF(backend="torch").run_pooled(x, None, 2) is None  # only the Numba kernel has the fused pool
    sf.SNNSequential(sf.LIF(), nn.AvgPool2d(2, stride=1))(x)  # overlapping windows: not a tiling pool
    sf.SNNSequential(sf.LIF(), nn.MaxPool2d(2, dilation=2))(x)
    from spikeforge.layers import _tiling_max_pool

    x4 = x[0]
    assert _tiling_max_pool(nn.MaxPool2d(2), x4) == 2 and _tiling_max_pool(nn.MaxPool2d(7), x4) == 7
    for pool in (nn.MaxPool2d(2, return_indices=True), nn.MaxPool2d(2, padding=1), nn.MaxPool2d(3), nn.MaxPool2d(2, 1)):
        assert _tiling_max_pool(pool, x4) == 0, pool
    assert not calls


def test_streaming_step_equals_fused_forward():
    x = (torch.rand(8, 2, 1, 14, 14, generator=torch.Generator().manual_seed(2)) < 0.3).float()
    net = _conv_net(lambda: nn.AvgPool2d(2))
    out, _ = net(x)
    states, steps = None, []
    for t in range(x.shape[0]):
        y, states = net.step(x[t], states)
        steps.append(y)
    assert torch.equal(torch.stack(steps), out)


def test_second_order_gradients_equal_the_unfused_net():
    g = torch.Generator().manual_seed(4)
    x = torch.rand(6, 2, 3, 4, 4, generator=g, dtype=torch.float64) * 2.0
    grads = []
    for pool in (nn.AvgPool2d(2), sf.SeqToBatch(nn.AvgPool2d(2))):
        xx = x.clone().requires_grad_()
        net = sf.SNNSequential(sf.LIF(beta=0.8, input_scaling="none", surrogate=FastSigmoid(5.0)), pool).double()
        out, _ = net(xx)
        (gx,) = torch.autograd.grad((out * out).sum(), xx, create_graph=True)
        (ggx,) = torch.autograd.grad((gx * gx).sum(), xx)
        grads.append((gx.detach(), ggx))
    assert grads[0][1].abs().sum() > 0
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_backward_twice_and_bad_input():
    x = (torch.rand(5, 2, 2, 4, 4) * 3).requires_grad_()
    lif = sf.LIF(backend="numba")
    pooled, _ = lif.run_pooled(x, None, 2)
    loss = (pooled * torch.linspace(-1, 1, 2)).sum()
    (g1,) = torch.autograd.grad(loss, x, retain_graph=True)
    (g2,) = torch.autograd.grad(loss, x)
    assert g1.abs().sum() > 0 and torch.equal(g1, g2)
    bad = torch.rand(5, 2, 2, 4, 4)
    bad[3, 1, 0, 2, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        sf.SNNSequential(sf.LIF(), nn.AvgPool2d(2))(bad)
    assert sf.LIF(backend="reference").run_pooled(bad, None, 2) is None
    with pytest.raises(ValueError, match="multiples of k=2"):
        from spikeforge.backends.lif_pool import fused_pool_run

        fused_pool_run(bad[..., :3], bad[0, ..., :3], None, None, lif.fused_spec(), NumbaKernel(), lif.surrogate, 2)
