"""spikeforge.energy.count on the transformer modules, against hand counts on tiny inputs, and on whole models."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor
from torch import nn
from transformer_ref import randomize_bn

from spikeforge.energy import count
from spikeforge.energy import estimate
from spikeforge.neurons import LIF
from spikeforge.transformer import Hadamard
from spikeforge.transformer import ReLUTwin
from spikeforge.transformer import Softmax
from spikeforge.transformer import SpikeMatmul
from spikeforge.transformer import TokenMean
from spikeforge.transformer import TokenSum
from spikeforge.transformer import build_transformer
from spikeforge.transformer import fold_batchnorm


class _Two(nn.Module):
    """Runs ``op(x_seq, other)``: count() feeds the first operand, the second is fixed."""

    def __init__(self, op: nn.Module, other: Tensor, *, other_first: bool = False) -> None:
        super().__init__()
        self.op, self.other, self.other_first = op, other, other_first

    def forward(self, x: Tensor) -> Tensor:
        return self.op(self.other, x) if self.other_first else self.op(x, self.other)


A = torch.tensor([[[[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]]]])  # [T=1, B=1, N=2, M=3], binary, 3 nonzeros
R = torch.tensor([[[[0.5, -1.0], [2.0, 0.0], [1.5, 3.0]]]])  # [1, 1, M=3, P=2], real


def test_matmul_binary_left_counts_spikes_times_fanout() -> None:
    c = count(_Two(SpikeMatmul(), R), A).layer("op")
    assert (c.synops, c.macs, c.dense_macs, c.kind) == (3 * 2, 0, 2 * 3 * 2, "matmul")  # 3 spikes x P=2
    assert c.input_binary is True


def test_matmul_binary_right_counts_spikes_times_rows() -> None:
    left = torch.rand(1, 1, 4, 2)  # [N=4, M=2] real
    right = torch.tensor([[[[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]]]])  # [M=2, P=3], 4 spikes
    c = count(_Two(SpikeMatmul(), right), left).layer("op")
    assert (c.synops, c.macs, c.dense_macs) == (4 * 4, 0, 4 * 2 * 3)  # 4 spikes x N=4 rows


def test_matmul_real_operands_are_macs() -> None:
    c = count(_Two(SpikeMatmul(0.125), R.transpose(-2, -1)), R).layer("op")  # [3, 2] @ [2, 3]
    assert (c.synops, c.macs, c.dense_macs) == (0, 3 * 2 * 3, 3 * 2 * 3)
    assert c.input_binary is False


def test_mask_counts_events_times_broadcast_fanout() -> None:
    v = torch.rand(1, 2, 5, 3)  # [T, B, N=5, D=3] real
    mask = torch.tensor([[[[1.0, 0.0, 1.0]], [[0.0, 0.0, 0.0]]]])  # [1, B=2, 1, 3]: 2 ones, reach N=5 each
    c = count(_Two(Hadamard(), mask, other_first=True), v).layer("op")
    assert (c.synops, c.macs, c.dense_macs, c.kind) == (2 * 5, 0, 30, "mask")
    both_real = count(_Two(Hadamard(), torch.rand(1, 2, 5, 3)), v).layer("op")
    assert (both_real.synops, both_real.macs) == (0, 30)


def test_token_sum_mean_softmax_relu_by_hand() -> None:
    spikes = torch.tensor([[[[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]]])  # [1, 1, N=3, D=2], 3 spikes
    assert count(TokenSum(), spikes).layer("").synops == 3  # one counter increment per spike
    real = torch.rand(2, 1, 3, 2) + 0.5
    assert count(TokenSum(), real).layer("").adds == 2 * (6 - 2)  # N - 1 = 2 adds per output, 2 x 2 outputs
    assert count(TokenMean(), real).layer("").adds == 12  # N - 1 adds + 1 division per output
    sm = count(Softmax(), real).layer("")  # rows of n = 2: 2 exp (MAC), 1 add, 2 divisions
    assert (sm.macs, sm.adds) == (12, 2 * 12 - 6)
    relu = count(ReLUTwin(LIF(2.0)), real).layer("")
    assert (relu.adds, relu.kind, relu.neuron_updates) == (12, "activation", 0)


def _sdt(spiking: bool = True) -> nn.Module:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(7)
    net = build_transformer("sdt", (1, 16, 16), 3, options={"dim": 8, "depth": 1, "heads": 2, "mlp_ratio": 2},
                            spiking=spiking).eval()  # fmt: skip
    randomize_bn(net, gen, bias=1.5, spread=1.5)
    return net


def test_sdt_attention_counts_match_recorded_tensors() -> None:
    net = _sdt()
    x = torch.rand(3, 2, 1, 16, 16, generator=torch.Generator().manual_seed(3))
    seen: dict[str, tuple[Tensor, ...]] = {}
    attn = net.layers[1].blocks[0].attn
    hooks = [
        m.register_forward_hook(lambda mod, a, o, n=n: seen.__setitem__(n, (*a, o)))
        for n, m in (("qk", attn.qk_mask), ("col", attn.column_sum), ("vm", attn.v_mask), ("q", attn.q.lin))
    ]
    net(x)
    for h in hooks:
        h.remove()
    c = count(net, x)
    q, k, _ = seen["qk"]
    assert c.layer("layers.1.blocks.0.attn.qk_mask").synops == int(q.count_nonzero())  # same shape: fan-out 1
    assert c.layer("layers.1.blocks.0.attn.column_sum").synops == int((q * k).count_nonzero())
    v, mask, _ = seen["vm"]
    assert c.layer("layers.1.blocks.0.attn.v_mask").synops == int(v.count_nonzero())
    s_in = seen["q"][0]
    assert c.layer("layers.1.blocks.0.attn.q.lin").synops == int(s_in.count_nonzero()) * 8
    assert 0 < int(q.count_nonzero()) < q.numel() and 0 < int(mask.count_nonzero()) < mask.numel()
    assert c.uncounted == ()


def test_folded_sdt_does_macs_only_in_the_pixel_conv() -> None:
    """Spike-driven, priced: after BN folding, every MAC of the SDT model is in the conv that reads pixels."""
    net = fold_batchnorm(_sdt())
    x = torch.rand(3, 2, 1, 16, 16)
    c = count(net, x)
    conv1 = c.layer("layers.0.conv1.conv")
    assert c.total("macs") == conv1.macs == conv1.dense_macs == 3 * 2 * (1 * 9 * 4 * 16 * 16)
    assert c.total("synops") > 0 and c.uncounted == ()
    twin = count(fold_batchnorm(_sdt(spiking=False)), x[:1])
    assert twin.total("synops") == 0 and twin.total("macs") > 0 and twin.uncounted == ()
    assert estimate(c, "cmos45").total_j > 0


def test_count_refuses_training_mode() -> None:
    with pytest.raises(ValueError, match="eval"):
        count(_sdt().train(), torch.rand(2, 1, 1, 16, 16))


def test_spikformer_ssa_products_match_recorded_tensors() -> None:
    torch.manual_seed(0)
    net = build_transformer("spikformer", (1, 16, 16), 3, options={"dim": 8, "depth": 1, "heads": 2, "mlp_ratio": 2})
    randomize_bn(net.eval(), torch.Generator().manual_seed(7), bias=1.5, spread=1.5)
    x = torch.rand(3, 2, 1, 16, 16, generator=torch.Generator().manual_seed(3))
    attn = net.layers[1].blocks[0].attn
    seen: dict[str, tuple[Tensor, ...]] = {}
    hooks = [
        m.register_forward_hook(lambda mod, a, o, n=n: seen.__setitem__(n, (*a, o)))
        for n, m in (("qk", attn.qk), ("av", attn.av))
    ]
    net(x)
    for h in hooks:
        h.remove()
    c = count(net, x)
    q, _, _ = seen["qk"]  # [T, B, H, N, d] @ [T, B, H, d, N]: Q is binary, N targets per spike
    n_tokens = q.shape[-2]
    assert c.layer("layers.1.blocks.0.attn.qk").synops == int(q.count_nonzero()) * n_tokens
    a, v, _ = seen["av"]  # scores (integers > 1 somewhere: not binary) @ V (binary): each V spike adds a column
    assert bool((a > 1).any())
    assert c.layer("layers.1.blocks.0.attn.av").synops == int(v.count_nonzero()) * a.shape[-2]
    assert c.layer("layers.1.blocks.0.attn.av").macs == 0
