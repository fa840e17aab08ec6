"""PatchSplit's fast paths: the pixel conv run once on a time-constant image, and the first LIF fused with its
2x2 max pool. Both must give the outputs and gradients of the plain path (forced here by no-op hooks, which
must see every step and every spike)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from transformer_ref import randomize_bn

from spikeforge.transformer import build_transformer

SMALL = {"dim": 8, "depth": 1, "heads": 2, "mlp_ratio": 2}


def _pair(kind: str, spiking: bool, gen: torch.Generator) -> tuple[nn.Module, nn.Module]:
    nets = []
    for _ in range(2):
        torch.manual_seed(0)
        net = build_transformer(kind, (1, 16, 16), 3, options=SMALL, spiking=spiking).train()
        randomize_bn(net, torch.Generator().manual_seed(5), bias=0.5, spread=1.5)
        nets.append(net)
    return nets[0], nets[1]


def _const_images(gen: torch.Generator) -> torch.Tensor:
    return torch.rand(2, 1, 16, 16, generator=gen).unsqueeze(0).repeat(4, 1, 1, 1, 1) * 2  # [T, B, C, H, W]


@pytest.mark.parametrize("kind, spiking", [("sdt", True), ("spikformer", True), ("sdt", False)])
@pytest.mark.parametrize("constant", [True, False])
def test_fast_paths_equal_plain_path(kind: str, spiking: bool, constant: bool, gen: torch.Generator) -> None:
    fast, plain = _pair(kind, spiking, gen)
    x = _const_images(gen)
    if not constant:
        x = x + torch.rand(x.shape, generator=gen) * 0.1
    stem = plain.layers[0]
    seen: list[int] = []
    hooks = [
        stem.conv1.conv.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[0])),
        stem.act1.register_forward_hook(lambda m, i, o: None),
    ]
    out_p, _ = plain(x)
    for h in hooks:
        h.remove()
    assert seen == [4 * 2]  # the hooked conv saw all T*B images
    out_f, _ = fast(x)
    torch.testing.assert_close(out_f, out_p)
    w = torch.randn(out_f.shape, generator=gen)
    (out_f * w).sum().backward()
    (out_p * w).sum().backward()
    for (name, p), q in zip(fast.named_parameters(), plain.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-5, msg=name)
    for (name, b), c in zip(fast.named_buffers(), plain.buffers()):
        if name.endswith("running_mean"):
            torch.testing.assert_close(b, c, msg=name)
    assert out_f.abs().sum() > 0


def test_differentiated_images_get_per_step_gradients(gen: torch.Generator) -> None:
    fast, plain = _pair("sdt", True, gen)
    x = _const_images(gen)
    xf, xp = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    plain.layers[0].conv1.conv.register_forward_hook(lambda m, i, o: None)
    w = torch.randn(4, 2, 3, generator=gen)
    (fast(xf)[0] * w).sum().backward()
    (plain(xp)[0] * w).sum().backward()
    torch.testing.assert_close(xf.grad, xp.grad, rtol=1e-4, atol=1e-6)
    assert (xf.grad[1:] != 0).any()


def test_odd_image_sizes_skip_the_fused_pool(gen: torch.Generator) -> None:
    torch.manual_seed(0)
    net = build_transformer("sdt", (1, 18, 18), 3, options=SMALL)  # 18 -> 9: the second pool floors
    out, _ = net(torch.rand(2, 1, 1, 18, 18, generator=gen))
    assert out.shape == (2, 1, 3)
    net2 = build_transformer("sdt", (1, 17, 17), 3, options=SMALL)  # 17: the first pool floors too
    assert net2(torch.rand(2, 1, 1, 17, 17, generator=gen))[0].shape == (2, 1, 3)
