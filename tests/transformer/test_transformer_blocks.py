"""Attention blocks against einsum/loop references written in the tests (tests/transformer/_ref.py), shapes
``[T, B, N, D]`` and their errors, the twin's softmax attention and gradients."""

from __future__ import annotations

import pytest
import torch
from transformer_ref import lif_ref
from transformer_ref import linear_bn_ref
from transformer_ref import randomize_bn
from transformer_ref import sdsa_ref
from transformer_ref import softmax_attention_ref
from transformer_ref import ssa_ref

from spikeforge.transformer import SDSA
from spikeforge.transformer import SSA
from spikeforge.transformer import Hadamard
from spikeforge.transformer import SpikeMatmul
from spikeforge.transformer import SpikingMLP
from spikeforge.transformer import TokenSum


def _setup(cls: type, gen: torch.Generator, *, spiking: bool = True, dim: int = 8, heads: int = 2):
    torch.manual_seed(0)
    m = cls(dim, heads, spiking=spiking).double().eval()
    randomize_bn(m, gen)
    x = 2.0 * torch.rand(5, 3, 6, dim, generator=gen, dtype=torch.float64)  # [T, B, N, D]
    return m, x


def test_ssa_matches_reference(gen: torch.Generator) -> None:
    m, x = _setup(SSA, gen)
    out = m(x)
    ref = ssa_ref(x, m)
    assert out.shape == x.shape
    assert 0 < ref.sum() < ref.numel()  # some spikes, not all: the comparison is not vacuous
    torch.testing.assert_close(out, ref, rtol=0, atol=0)


def test_sdsa_matches_reference(gen: torch.Generator) -> None:
    m, _ = _setup(SDSA, gen)
    s = (torch.rand(5, 3, 6, 8, generator=gen) < 0.5).double()  # SDSA reads spikes
    out = m(s)
    ref = sdsa_ref(s, m)
    mask_input: list[torch.Tensor] = []
    h = m.attn_act.register_forward_hook(lambda mod, a, o: mask_input.append(o[0]))
    m(s)
    h.remove()
    assert 0 < mask_input[0].sum() < mask_input[0].numel()  # the channel mask is neither empty nor full
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", [SSA, SDSA])
def test_twin_attention_is_softmax_attention(cls: type, gen: torch.Generator) -> None:
    m, x = _setup(cls, gen, spiking=False)
    seen: list[torch.Tensor] = []
    h = m.proj.register_forward_pre_hook(lambda mod, a: seen.append(a[0]))
    m(x)
    h.remove()
    torch.testing.assert_close(seen[0], torch.relu(softmax_attention_ref(x, m)))


def test_mlp_matches_reference(gen: torch.Generator) -> None:
    torch.manual_seed(0)
    for pre_act in (True, False):
        m = SpikingMLP(8, 16, pre_act=pre_act).double().eval()
        randomize_bn(m, gen)
        x = 2.0 * torch.rand(4, 2, 5, 8, generator=gen, dtype=torch.float64)
        if pre_act:
            ref = linear_bn_ref(lif_ref(linear_bn_ref(lif_ref(x), m.fc1)), m.fc2)
        else:
            ref = lif_ref(linear_bn_ref(lif_ref(linear_bn_ref(x, m.fc1)), m.fc2))
        torch.testing.assert_close(m(x), ref, rtol=1e-12, atol=1e-12)


def test_ops_match_einsum(gen: torch.Generator) -> None:
    a = torch.rand(2, 3, 4, 5, generator=gen)
    b = torch.rand(2, 3, 5, 6, generator=gen)
    torch.testing.assert_close(SpikeMatmul(0.5)(a, b), 0.5 * torch.einsum("xynm,xymp->xynp", a, b))
    torch.testing.assert_close(TokenSum()(a), torch.einsum("xynm->xym", a).unsqueeze(2))
    mask = (torch.rand(2, 3, 1, 5, generator=gen) < 0.5).float()
    torch.testing.assert_close(Hadamard()(a, mask), torch.einsum("xynm,xym->xynm", a, mask[:, :, 0]))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: SDSA(8, 2)(torch.zeros(4, 2, 8)), r"\[T, B, N, D\]"),
        (lambda: SDSA(8, 2)(torch.zeros(4, 2, 3, 6)), "D=8"),
        (lambda: SSA(8, 3), "multiple of heads"),
        (lambda: SpikingMLP(8, 16, pre_act=True)(torch.zeros(4, 2, 3, 7)), "D=8"),
        (lambda: SpikeMatmul()(torch.zeros(2, 3, 4), torch.zeros(3, 4, 5)), "same leading dims"),
        (lambda: Hadamard()(torch.zeros(2, 3), torch.zeros(4, 5)), "broadcast"),
        (lambda: SDSA(8, 2)(torch.zeros(4, 2, 3, 8, dtype=torch.int64)), "floating-point"),
    ],
)
def test_bad_shapes_raise_one_clear_error(call, match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_twin_attention_gradcheck(gen: torch.Generator) -> None:
    m, _ = _setup(SDSA, gen, spiking=False, dim=4, heads=2)
    x = torch.rand(2, 1, 3, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(m, (x,))
