"""The oneDNN Linear path against F.linear (forward, input/weight/bias gradients) and its dispatch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import spikeforge as sf
from spikeforge.backends.gemm import linear, onednn_available

pytestmark = pytest.mark.skipif(not onednn_available(), reason="oneDNN (mkldnn) not available in this torch build")


@pytest.mark.parametrize("bias", [True, False])
def test_matches_f_linear_forward_and_backward(bias, gen):
    x = (torch.rand(300, 40, generator=gen) < 0.2).float().requires_grad_()
    w = torch.randn(24, 40, generator=gen, requires_grad=True)
    b = torch.randn(24, generator=gen, requires_grad=True) if bias else None
    gy = torch.randn(300, 24, generator=gen)
    outs = []
    for fn in (linear, F.linear):
        y = fn(x, w, b)
        grads = torch.autograd.grad(y, [x, w] + ([b] if bias else []), gy)
        outs.append((y, grads))
    torch.testing.assert_close(outs[0][0], outs[1][0], rtol=1e-5, atol=1e-5)
    for a, c in zip(outs[0][1], outs[1][1]):
        torch.testing.assert_close(a, c, rtol=1e-4, atol=1e-4)
    assert outs[0][0].grad_fn.name().endswith("OneDNNLinearBackward")


def test_expanded_output_gradient():
    x = torch.rand(50, 8, requires_grad=True)
    w = torch.randn(4, 8, requires_grad=True)
    linear(x, w).sum().backward()  # gy is a stride-0 expanded tensor
    torch.testing.assert_close(w.grad, torch.ones(50, 4).t() @ x.detach(), rtol=1e-5, atol=1e-5)


def test_float64_and_3d_use_f_linear():
    x = torch.rand(5, 3, dtype=torch.float64)
    w = torch.rand(2, 3, dtype=torch.float64)
    assert torch.equal(linear(x, w), F.linear(x, w))
    x3 = torch.rand(2, 5, 3)
    assert torch.equal(linear(x3, w.float()), F.linear(x3, w.float()))


def test_sequential_uses_module_call_when_hooked():
    torch.manual_seed(0)
    net = sf.SNNSequential(nn.Linear(6, 5), sf.LIF())
    seen = []
    net.layers[0].register_forward_hook(lambda m, a, o: seen.append(o.shape))
    x = torch.rand(4, 3, 6)
    out, _ = net(x)
    assert seen == [torch.Size([12, 5])]
