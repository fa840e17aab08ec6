"""Tracing, canonicalisation and BatchNorm folding: exactness in float64, unsupported layers,
dropout removal, functional ReLU, shared modules, the caller's model left untouched."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikeforge.conversion import (
    UnsupportedLayerError,
    activation_nodes,
    canonicalize,
    convert,
    fold_batchnorm,
    fold_bn_into,
    prepare,
    trace,
)


def _randomise_bn(bn: nn.Module, gen: torch.Generator) -> None:
    n = bn.num_features
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(n, generator=gen, dtype=bn.running_mean.dtype))
        bn.running_var.copy_(torch.rand(n, generator=gen, dtype=bn.running_var.dtype) * 2 + 0.1)
        bn.weight.copy_(torch.randn(n, generator=gen, dtype=bn.weight.dtype))
        bn.bias.copy_(torch.randn(n, generator=gen, dtype=bn.bias.dtype))


def _bn_net(gen: torch.Generator) -> nn.Sequential:
    net = nn.Sequential(
        nn.Conv2d(2, 5, 3, padding=1), nn.BatchNorm2d(5), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(5, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
        nn.Linear(4 * 2 * 2, 7), nn.BatchNorm1d(7), nn.ReLU(), nn.Linear(7, 3),
    ).double()
    for m in net:
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            _randomise_bn(m, gen)
    return net.eval()


def test_bn_folding_is_exact_in_float64(gen: torch.Generator) -> None:
    net = _bn_net(gen)
    gm = prepare(net)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in gm.modules())
    x = torch.randn(16, 2, 8, 8, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), net(x), rtol=1e-12, atol=1e-12)


def test_fold_bn_into_matches_closed_form(gen: torch.Generator) -> None:
    lin, bn = nn.Linear(3, 4).double(), nn.BatchNorm1d(4).double().eval()
    _randomise_bn(bn, gen)
    folded = fold_bn_into(lin, bn)
    s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    x = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        ref = (x @ lin.weight.T + lin.bias - bn.running_mean) * s + bn.bias  # independent formula
        torch.testing.assert_close(folded(x), ref, rtol=1e-12, atol=1e-12)
    assert folded is not lin and torch.equal(lin.weight, lin.weight)  # original untouched


def test_bn_without_running_stats_raises() -> None:
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, track_running_stats=False), nn.ReLU())
    with pytest.raises(UnsupportedLayerError, match="track_running_stats"):
        prepare(net)


def test_bn_with_shared_input_is_kept_not_folded(gen: torch.Generator) -> None:
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin, self.bn = nn.Linear(3, 3), nn.BatchNorm1d(3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.lin(x)
            return self.bn(h) + h

    net = Branchy().double().eval()
    _randomise_bn(net.bn, gen)
    gm = prepare(net)
    assert any(isinstance(m, nn.BatchNorm1d) for m in gm.modules())
    x = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), net(x))


class _WithGELU(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.gelu = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gelu(self.fc(x))


def test_unsupported_module_raises_naming_it_and_listing_supported() -> None:
    with pytest.raises(UnsupportedLayerError) as info:
        convert(_WithGELU(), torch.rand(4, 4))
    msg = str(info.value)
    assert "GELU" in msg and "'gelu'" in msg and "Conv2d" in msg and "ReLU" in msg and "AvgPool2d" in msg


def test_unsupported_function_and_method_raise() -> None:
    class Fn(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(x)

    class Meth(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.exp()

    with pytest.raises(UnsupportedLayerError, match="sigmoid"):
        prepare(Fn())
    with pytest.raises(UnsupportedLayerError, match=r"\.exp\(\)"):
        prepare(Meth())


def test_untraceable_model_raises_type_error() -> None:
    class Branch(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x if x.sum() > 0 else -x

    with pytest.raises(TypeError, match="torch.fx could not trace"):
        trace(Branch())
    with pytest.raises(TypeError, match="nn.Module"):
        trace("not a model")  # type: ignore[arg-type]


def test_dropout_removed_functional_relu_canonical_and_shared_relu_split(gen: torch.Generator) -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(3, 3), nn.Linear(3, 3)
            self.relu, self.drop = nn.ReLU(inplace=True), nn.Dropout(0.5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.relu(self.a(x))
            h = F.dropout(self.drop(h), 0.3, training=self.training)
            return F.relu(self.b(h) + h).relu() + torch.relu(h)

    net = Net()
    gm = canonicalize(trace(net))
    names = activation_nodes(gm)
    assert len(names) == 4 and len(set(names)) == 4  # shared self.relu + F.relu + .relu() + torch.relu
    assert not any(isinstance(m, nn.Dropout) for m in gm.modules())
    ops = {n.target for n in gm.graph.nodes if n.op in ("call_function", "call_method")}
    assert F.dropout not in ops and F.relu not in ops and "relu" not in ops
    x = torch.randn(5, 3, generator=gen)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), net.eval()(x))


def test_convert_leaves_callers_model_untouched(gen: torch.Generator) -> None:
    net = _bn_net(gen).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    convert(net, torch.randn(8, 2, 8, 8, generator=gen, dtype=torch.float64))
    assert net.training
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(not m._forward_hooks for m in net.modules())


def test_fold_batchnorm_on_plain_graph_is_noop(gen: torch.Generator) -> None:
    net = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    gm = fold_batchnorm(canonicalize(trace(net)))
    x = torch.randn(2, 3, generator=gen)
    torch.testing.assert_close(gm(x), net(x))


# ---- the one BatchNorm fold, tested at both call sites (conversion and NIR export) ------------------------------
# The independent reference is the eval-mode module pair itself, bn(layer(x)), computed in float64; the folded
# constants are checked against the closed form rounded once to the layer's dtype.


def _fold_conversion(layer: nn.Module, bn: nn.Module) -> nn.Module:
    return fold_bn_into(layer, bn)


def _fold_conversion_graph(layer: nn.Module, bn: nn.Module) -> nn.Module:
    gm = prepare(nn.Sequential(layer, bn))
    (folded,) = [m for m in gm.modules() if isinstance(m, type(layer))]
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in gm.modules())
    return folded


def _fold_nir(layer: nn.Module, bn: nn.Module) -> nn.Module:
    from spikeforge.nir._export import _fold_and_skip

    ((_, folded),) = _fold_and_skip([layer, nn.Dropout(0.5), bn])
    return folded


FOLD_SITES = {"conversion.fold_bn_into": _fold_conversion, "conversion.prepare": _fold_conversion_graph,
              "nir.to_nir": _fold_nir}
BN_CASES = {
    "conv2d+bias": (lambda: nn.Conv2d(3, 4, 3, padding=1), lambda: nn.BatchNorm2d(4, eps=1e-3), (5, 3, 6, 6)),
    "conv2d-no-bias,affine=False": (lambda: nn.Conv2d(3, 4, 3, bias=False),
                                    lambda: nn.BatchNorm2d(4, affine=False, eps=0.25), (5, 3, 6, 6)),
    "conv1d+bias": (lambda: nn.Conv1d(2, 3, 3, stride=2), lambda: nn.BatchNorm1d(3, eps=1e-5), (5, 2, 9)),
    "linear+bias": (lambda: nn.Linear(5, 4), lambda: nn.BatchNorm1d(4, eps=0.1), (7, 5)),
    "linear-no-bias,affine=False": (lambda: nn.Linear(5, 4, bias=False), lambda: nn.BatchNorm1d(4, affine=False),
                                    (7, 5)),
}


def _bn_pair(case: str, gen: torch.Generator, dtype: torch.dtype) -> tuple[nn.Module, nn.Module, tuple[int, ...]]:
    make_layer, make_bn, shape = BN_CASES[case]
    layer, bn = make_layer().to(dtype).eval(), make_bn().to(dtype).eval()
    n = bn.num_features
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
        bn.running_mean.copy_(torch.randn(n, generator=gen, dtype=torch.float64) * 2)
        bn.running_var.copy_(torch.rand(n, generator=gen, dtype=torch.float64) * 3 + 1e-3)
        if bn.affine:
            bn.weight.copy_(torch.randn(n, generator=gen, dtype=torch.float64) * 2)
            bn.bias.copy_(torch.randn(n, generator=gen, dtype=torch.float64))
    return layer, bn, shape


@pytest.mark.parametrize("site", sorted(FOLD_SITES))
@pytest.mark.parametrize("case", sorted(BN_CASES))
def test_bn_fold_equals_eval_batchnorm_after_layer_in_float64(site: str, case: str, gen: torch.Generator) -> None:
    layer, bn, shape = _bn_pair(case, gen, torch.float64)
    folded = FOLD_SITES[site](layer, bn)
    x = torch.randn(shape, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        ref = bn(layer(x))  # independent reference: the unfolded pair in eval mode
        torch.testing.assert_close(folded(x), ref, rtol=1e-12, atol=1e-12)
    assert folded is not layer and folded.bias is not None


@pytest.mark.parametrize("site", sorted(FOLD_SITES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_bn_fold_constants_are_rounded_once_to_the_layer_dtype(site: str, dtype: torch.dtype, gen: torch.Generator) -> None:
    """The NIR copy used to compute s = gamma / sqrt(var + eps) in the layer's dtype: in bfloat16 about a third
    of the folded weights came out one ulp off the correctly rounded value (conversion computed in float64)."""
    layer, bn, _ = _bn_pair("conv2d+bias", gen, dtype)
    folded = FOLD_SITES[site](layer, bn)
    s = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    w_ref = (layer.weight.double() * s.reshape(-1, 1, 1, 1)).to(dtype)
    b_ref = ((layer.bias.double() - bn.running_mean.double()) * s + bn.bias.double()).to(dtype)
    assert folded.weight.dtype == dtype
    assert torch.equal(folded.weight, w_ref) and torch.equal(folded.bias, b_ref)


def test_bn_fold_refuses_mismatched_channels_at_both_sites() -> None:
    """The NIR copy used to broadcast a 1-feature BatchNorm over every output instead of refusing it."""
    from spikeforge.nir import NIRExportError

    layer, bn = nn.Linear(3, 4).eval(), nn.BatchNorm1d(1).eval()
    with pytest.raises(UnsupportedLayerError, match="one feature per output channel"):
        fold_bn_into(layer, bn)
    with pytest.raises(NIRExportError, match="one feature per output channel"):
        _fold_nir(layer, bn)
