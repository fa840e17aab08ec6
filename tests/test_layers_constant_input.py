"""SNNSequential on a time-constant input (the "constant" code): the leading per-step layers run once, on one step.

Checked against a per-step loop written here, against the ordinary path (forced by a no-op hook), for gradients
(finite differences in float64), BatchNorm statistics, and the cases that must keep the ordinary path."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import spikeforge as sf
from spikeforge.layers import SNNSequential
from spikeforge.layers import _static_prefix
from spikeforge.layers import steps_equal


def _conv_net(seed: int = 0) -> SNNSequential:
    torch.manual_seed(seed)
    return SNNSequential(
        nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), sf.LIF(2.0, v_th=0.3), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(4 * 3 * 3, 5), sf.LIF(2.0, v_th=0.3), nn.Linear(5, 3), sf.LI(4.0),
    )  # fmt: skip


def _const(t: int, b: int, *shape: int, gen: torch.Generator, dtype=torch.float32) -> torch.Tensor:
    return torch.rand(b, *shape, generator=gen, dtype=dtype).unsqueeze(0).repeat(t, *([1] * (len(shape) + 1)))


def _force_ordinary(net: SNNSequential) -> torch.utils.hooks.RemovableHandle:
    return net.layers[0].register_forward_hook(lambda m, i, o: None)  # a hook must see every step


def test_steps_equal_detects_constant_inputs(gen):
    x = _const(4, 3, 2, 5, gen=gen)
    assert steps_equal(x)
    y = x.clone()
    y[3, 2, 1, 4] += 1e-7
    assert not steps_equal(y)
    assert not steps_equal(x[:1])  # one step: nothing to save
    nan = x.clone()
    nan[:, 0, 0, 0] = float("nan")  # NaN != NaN: the ordinary path runs (and its checks raise)
    assert not steps_equal(nan)


def test_constant_input_equals_hand_written_per_step_loop(gen):
    net = _conv_net().double().eval()
    x = _const(6, 2, 1, 6, 6, gen=gen, dtype=torch.float64) * 3
    assert _static_prefix(list(net.layers), x) == 2  # conv and BN; the LIF stops the prefix
    out, _ = net(x)
    conv, bn, lif1, pool, flat, lin1, lif2, lin2, li = net.layers
    s1 = s2 = s3 = None
    ref = []
    for t in range(6):
        z1, s1 = lif1.step(bn(conv(x[t])), s1)
        z2, s2 = lif2.step(lin1(flat(pool(z1))), s2)
        v, s3 = li.step(lin2(z2), s3)
        ref.append(v)
    torch.testing.assert_close(out, torch.stack(ref))
    assert out.abs().sum() > 0


def test_constant_input_same_outputs_gradients_and_bn_stats_as_ordinary_path(gen):
    fast, slow = _conv_net(1).train(), _conv_net(1).train()
    x = _const(5, 8, 1, 6, 6, gen=gen) * 2
    out_f, _ = fast(x)
    handle = _force_ordinary(slow)
    out_s, _ = slow(x)
    handle.remove()
    torch.testing.assert_close(out_f, out_s)
    w = torch.randn(out_f.shape, generator=gen)
    (out_f * w).sum().backward()
    (out_s * w).sum().backward()
    for (name, p), q in zip(fast.named_parameters(), slow.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6, msg=name)
    bn_f, bn_s = fast.layers[1], slow.layers[1]
    torch.testing.assert_close(bn_f.running_mean, bn_s.running_mean)
    # the Bessel factor of the running variance: n / (n - 1) with n = B*H*W (one step) instead of T*B*H*W
    n = 8 * 6 * 6
    expected = (bn_s.running_var - 0.9) / (5 * n / (5 * n - 1)) * (n / (n - 1)) + 0.9
    torch.testing.assert_close(bn_f.running_var, expected)
    assert bn_f.num_batches_tracked == bn_s.num_batches_tracked == 1


def test_constant_input_gradient_matches_finite_differences(gen):
    torch.manual_seed(3)
    net = SNNSequential(nn.Linear(3, 4), nn.Linear(4, 2), sf.LI(3.0)).double()  # smooth: no spikes
    x = _const(4, 2, 3, gen=gen, dtype=torch.float64)
    assert _static_prefix(list(net.layers), x) == 2
    w = net.layers[0].weight

    def loss() -> torch.Tensor:
        return (net(x)[0] ** 2).sum()

    loss().backward()
    eps, fd = 1e-6, torch.zeros_like(w)
    with torch.no_grad():
        for i in range(w.shape[0]):
            for j in range(w.shape[1]):
                w[i, j] += eps
                up = loss()
                w[i, j] -= 2 * eps
                down = loss()
                w[i, j] += eps
                fd[i, j] = (up - down) / (2 * eps)
    torch.testing.assert_close(w.grad, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(
    "first, expected",
    [
        (nn.Dropout(0.5), 0),  # random per step: must not be shared across steps
        (nn.ReLU(), 0),  # not on the list (exact types only)
        (nn.Identity(), 3),
    ],
)
def test_prefix_stops_at_layers_not_known_to_be_per_step(first, expected, gen):
    net = SNNSequential(first, nn.Linear(3, 4), nn.BatchNorm1d(4), sf.LIF(2.0))
    assert _static_prefix(list(net.layers), _const(3, 5, 3, gen=gen)) == expected


def test_dropout_first_keeps_a_fresh_mask_per_step(gen):
    torch.manual_seed(0)
    net = SNNSequential(nn.Dropout(0.5), nn.Linear(50, 50, bias=False), sf.LI(1.0)).train()
    with torch.no_grad():
        net.layers[1].weight.copy_(torch.eye(50))
    out, _ = net(_const(3, 1, 50, gen=gen) + 1.0)
    # LI(1.0) with input scaling: each step's output is that step's dropped input; the masks differ per step
    dropped = [set((out[t, 0] == 0).nonzero().flatten().tolist()) for t in range(3)]
    assert len({frozenset(d) for d in dropped}) > 1


def test_non_constant_hooked_or_differentiated_inputs_take_the_ordinary_path(gen):
    net = _conv_net()
    x = _const(3, 2, 1, 6, 6, gen=gen)
    assert _static_prefix(list(net.layers), x) == 2
    # each step's input gradient is its own; the shared step would get their sum
    assert _static_prefix(list(net.layers), x.clone().requires_grad_(True)) == 0
    xg = x.clone().requires_grad_(True)
    out, _ = net(xg)
    out.sum().backward()
    assert (xg.grad[1:] != 0).any()
    x[2] += 0.5
    assert _static_prefix(list(net.layers), x) == 0
    seen = []
    handle = net.layers[0].register_forward_hook(lambda m, i, o: seen.append(i[0].shape[0]))
    net(_const(3, 2, 1, 6, 6, gen=gen))
    handle.remove()
    assert seen == [3 * 2]  # the hook saw all T*B images, as the energy counters need


def test_energy_counts_are_per_step_on_constant_input(gen):
    from spikeforge.energy import count

    net = _conv_net().eval()
    x = _const(4, 2, 1, 6, 6, gen=gen)
    jitter = x.clone()
    jitter[1:, 0, 0, 0, 0] += 1e-3  # not bit-equal: the ordinary path
    assert not steps_equal(jitter)
    a, b = count(net, x), count(net, jitter)
    assert a.per_inference("macs") == b.per_inference("macs") > 0
