"""``TrainConfig.sparse``: where the model builders put a SparseLinear, and that it changes nothing but speed."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikeforge import cli
from spikeforge.cli.train import train_config
from spikeforge.data import dataset_info
from spikeforge.events import SparseLinear
from spikeforge.events import sparse as sparse_mod
from spikeforge.models import build_conv
from spikeforge.models import build_mlp
from spikeforge.models import build_model
from spikeforge.train import TrainConfig
from spikeforge.training.config import RESUMABLE_CHANGES
from spikeforge.training.rundir import check_resumable
from spikeforge.training.sparse_layers import SPARSE_MIN_OUT_FEATURES


def _kinds(net: nn.Module) -> list[str]:
    return [type(m).__name__ for m in net.layers]  # type: ignore[union-attr]


def test_default_models_keep_nn_linear_where_the_sparse_path_cannot_win() -> None:
    """Yin-Yang (256 -> 3) and the Fashion-MNIST MLP (1024 -> 10): no spike-fed layer with 64+ outputs."""
    yy = build_model(TrainConfig(), dataset_info("yinyang"))
    assert _kinds(yy.network) == ["Linear", "LIF", "Linear", "LI"]
    fm = build_model(TrainConfig(dataset="fashion_mnist", hidden=(1024,)), dataset_info("fashion_mnist"))
    assert _kinds(fm.network) == ["Flatten", "Linear", "LIF", "Linear", "LI"]


def test_auto_puts_sparse_linear_exactly_after_spikes_with_enough_outputs() -> None:
    assert SPARSE_MIN_OUT_FEATURES == 64
    mlp = build_mlp(4, (64, 63, 200), 70)  # first Linear: real input -> dense; 63 outputs -> dense
    assert _kinds(mlp) == ["Linear", "LIF", "Linear", "LIF", "SparseLinear", "LIF", "SparseLinear", "LI"]
    conv = build_conv((1, 8, 8), (4, 6), (128,), 10)  # the Linear after Flatten sees max-pooled spikes
    assert _kinds(conv) == [
        "Conv2d", "BatchNorm2d", "LIF", "MaxPool2d", "Conv2d", "BatchNorm2d", "LIF", "MaxPool2d", "Flatten",
        "SparseLinear", "LIF", "Linear", "LI",
    ]  # fmt: skip
    cfg = TrainConfig(dataset="fashion_mnist", model="conv", hidden=(128,))
    net = build_model(cfg, dataset_info("fashion_mnist")).network
    assert [type(m) for m in net.layers if isinstance(m, nn.Linear)] == [SparseLinear, nn.Linear]


def test_off_and_dropout_give_plain_nn_linear() -> None:
    for net in (
        build_mlp(4, (128, 128), 100, sparse="off"),
        build_conv((1, 8, 8), (4,), (128,), 100, sparse="off"),
        build_mlp(4, (128, 128), 100, dropout=0.2),  # after Dropout the training input is not binary
        build_model(TrainConfig(hidden=(128, 128), sparse="off"), dataset_info("yinyang")).network,
    ):
        lins = [m for m in net.modules() if isinstance(m, nn.Linear)]
        assert lins and all(type(m) is nn.Linear for m in lins)


def test_bad_sparse_value_is_refused_with_the_fix() -> None:
    for bad in ("on", "dense", True, None):
        with pytest.raises(ValueError, match=r"'auto'.*'off'.*--sparse off"):
            TrainConfig(sparse=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sparse must be 'auto'"):
        build_mlp(4, (8,), 3, sparse="yes")


def test_sparse_option_round_trips_through_cli_config_json_and_resume() -> None:
    args = cli.build_parser().parse_args(["train", "--sparse", "off"])
    cfg = train_config(args)
    assert cfg.sparse == "off"
    assert train_config(cli.build_parser().parse_args(["train"])).sparse == "auto"
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    old = TrainConfig().to_dict()
    del old["sparse"]  # a config.json written before the field existed
    assert TrainConfig.from_dict(old).sparse == "auto"
    assert "sparse" in RESUMABLE_CHANGES  # same parameters; only the summation order differs
    check_resumable(old, TrainConfig().to_dict(), Path("run"), RESUMABLE_CHANGES)
    check_resumable(TrainConfig().to_dict(), cfg.to_dict(), Path("run"), RESUMABLE_CHANGES)


@pytest.fixture
def sparse_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts the calls that took the sparse path (either autograd Function)."""
    calls: list[int] = []
    for name in ("_SparseLinearKernelFn", "_SparseLinearFn"):
        fn = getattr(sparse_mod, name)

        def counted(*args: Any, fn: Any = fn) -> Any:
            calls.append(1)
            return fn.apply(*args)

        monkeypatch.setattr(sparse_mod, name, SimpleNamespace(apply=counted))
    yield calls


def _twins(seed: int, **kw: Any) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(seed)
    auto = build_mlp(5, (96, 80), 72, **kw).double()
    torch.manual_seed(seed)
    off = build_mlp(5, (96, 80), 72, sparse="off", **kw).double()
    return auto, off


def test_sparse_linear_layer_equals_a_hand_computed_dense_product(sparse_calls: list[int]) -> None:
    auto, _ = _twins(0)
    lin = auto.layers[2]
    assert isinstance(lin, SparseLinear)
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand(3, 7, 96, generator=gen, dtype=torch.float64) < 0.05).double().requires_grad_(True)
    y = lin(x)
    assert sparse_calls, "the sparse path was not taken"
    w, b = lin.weight.detach(), lin.bias.detach()
    ref = torch.einsum("tbi,oi->tbo", x.detach(), w) + b  # independent reference
    torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)
    g = torch.randn(y.shape, generator=gen, dtype=torch.float64)
    y.backward(g)
    torch.testing.assert_close(lin.weight.grad, torch.einsum("tbo,tbi->oi", g, x.detach()), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(x.grad, torch.einsum("tbo,oi->tbi", g, w), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(lin.bias.grad, g.sum((0, 1)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("crossover", [1.0, None])  # forced sparse path; the default choice from density
def test_built_model_forward_and_gradients_equal_the_dense_build(
    sparse_calls: list[int], crossover: float | None
) -> None:
    auto, off = _twins(3)
    if crossover is not None:
        for m in auto.modules():
            if isinstance(m, SparseLinear):
                m.crossover = crossover
    assert sum(isinstance(m, SparseLinear) for m in auto.modules()) == 2
    for a, o in zip(auto.state_dict().values(), off.state_dict().values()):
        assert torch.equal(a, o)  # same seed, same draws
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(6, 9, 5, generator=gen, dtype=torch.float64) * 2.0  # [T, B, in]
    target = torch.randint(0, 72, (9,), generator=gen)
    outs = []
    for net in (auto, off):
        out, _ = net(x)
        F.cross_entropy(out.max(0).values, target).backward()
        outs.append(out)
    if crossover is not None:
        assert len(sparse_calls) == 2, "both SparseLinear layers must have run sparse"
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-10, atol=1e-10)
    for (name, pa), pb in zip(auto.named_parameters(), off.parameters()):
        assert pa.grad is not None and pb.grad is not None
        torch.testing.assert_close(pa.grad, pb.grad, rtol=1e-9, atol=1e-10, msg=name)
    for k in (2, 4):  # the SparseLinear layers saw spikes (else their weight gradient would be 0)
        assert float(auto.layers[k].weight.grad.abs().sum()) > 0


def test_checkpoints_load_both_ways() -> None:
    torch.manual_seed(5)
    auto = build_conv((1, 8, 8), (4,), (128,), 10)
    torch.manual_seed(6)
    off = build_conv((1, 8, 8), (4,), (128,), 10, sparse="off")
    assert any(isinstance(m, SparseLinear) for m in auto.modules())
    assert list(auto.state_dict()) == list(off.state_dict())
    x = (torch.rand(2, 3, 1, 8, 8) * 3).float()
    for src, dst in ((auto, off), (off, auto)):
        buf = io.BytesIO()
        torch.save(src.state_dict(), buf)
        buf.seek(0)
        dst.load_state_dict(torch.load(buf, weights_only=True), strict=True)
        src.eval(), dst.eval()
        with torch.no_grad():
            torch.testing.assert_close(dst(x)[0], src(x)[0], rtol=1e-5, atol=1e-5)


def test_layer_inspecting_paths_treat_sparse_linear_as_nn_linear() -> None:
    """Energy counting, the streaming pipeline (``evaluate --engine streaming``) and NIR export see the same
    network in a sparse and a dense build (they find Linear layers by isinstance / along the MRO)."""
    from spikeforge.energy import count
    from spikeforge.events.pipeline import StreamingPipeline

    auto, off = _twins(7)
    auto, off = auto.float(), off.float()
    assert isinstance(auto.layers[4], SparseLinear)  # 80 -> 72, right before the LI readout
    x = torch.rand(6, 1, 5) * 2.0
    c_auto, c_off = count(auto, x), count(off, x)
    for name in ("synops", "macs"):
        assert c_auto.total(name) == c_off.total(name), name
    assert c_auto.total("synops") > 0
    p_auto, p_off = StreamingPipeline(auto, (5,)).run(x), StreamingPipeline(off, (5,)).run(x)
    torch.testing.assert_close(p_auto.out, p_off.out)
    assert p_auto.total("synops") == p_off.total("synops")
    pytest.importorskip("nir")

    from spikeforge.nir import NIRApproximationWarning
    from spikeforge.nir import to_nir

    with pytest.warns(NIRApproximationWarning):  # the LIF's reset by subtraction, in both builds alike
        g_auto = to_nir(auto, dt=1e-3, input_shape=(5,), approximate=("subtract_as_reset",))
    with pytest.warns(NIRApproximationWarning):
        g_off = to_nir(off, dt=1e-3, input_shape=(5,), approximate=("subtract_as_reset",))
    assert {k: type(v).__name__ for k, v in g_auto.nodes.items()} == {
        k: type(v).__name__ for k, v in g_off.nodes.items()
    }
    assert "Affine" in {type(v).__name__ for v in g_auto.nodes.values()}
