"""Whole transformer networks: the spike-driven property, BatchNorm folding, gradients to every parameter,
checkpoints shared by a spiking model and its twin, and the training-config entry points."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from transformer_ref import randomize_bn

from spikeforge.data import dataset_info
from spikeforge.models import build_model
from spikeforge.neurons import LIF
from spikeforge.train import TrainConfig
from spikeforge.transformer import ReLUTwin
from spikeforge.transformer import build_transformer
from spikeforge.transformer import check_transformer_options
from spikeforge.transformer import fold_batchnorm
from spikeforge.transformer import spike_driven_report

SMALL = {"dim": 8, "depth": 2, "heads": 2, "mlp_ratio": 2}


def _net(kind: str, gen: torch.Generator, *, spiking: bool = True, dtype: torch.dtype = torch.float32) -> nn.Module:
    torch.manual_seed(0)
    net = build_transformer(kind, (1, 16, 16), 3, options=SMALL, spiking=spiking).to(dtype).eval()
    randomize_bn(net, gen, bias=0.5, spread=1.5)
    return net


def _images(gen: torch.Generator, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.rand(4, 2, 1, 16, 16, generator=gen, dtype=dtype)  # [T, B, C, H, W]


def test_sdt_is_spike_driven_but_for_the_pixel_conv(gen: torch.Generator) -> None:
    net, x = _net("sdt", gen), _images(gen)
    report = spike_driven_report(net, x)
    assert report.exceptions == ("layers.0.conv1.conv",)  # the stem's conv reads real pixels (the paper's too)
    names = {p.name for p in report.products}
    for block in range(SMALL["depth"]):
        for op in ("q.lin", "k.lin", "v.lin", "qk_mask", "column_sum", "v_mask", "proj.lin"):
            assert f"layers.1.blocks.{block}.attn.{op}" in names
        assert {f"layers.1.blocks.{block}.mlp.fc1.lin", f"layers.1.blocks.{block}.mlp.fc2.lin"} <= names
    # busy network: every LIF layer fires somewhere and is silent somewhere (the check is not vacuous)
    outs: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda mod, a, o: outs.append(o[0])) for m in net.modules() if isinstance(m, LIF)]
    with torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()
    assert all(0 < o.sum() < o.numel() for o in outs), [float(o.mean()) for o in outs]


def test_spikformer_and_twin_are_not_spike_driven(gen: torch.Generator) -> None:
    spikformer = spike_driven_report(_net("spikformer", gen), _images(gen))
    # spikes added to spikes (the SEW residual) reach the Q/K/V projections and the MLP as integers
    assert "layers.1.blocks.1.attn.q.lin" in spikformer.exceptions
    assert "layers.1.blocks.1.mlp.fc1.lin" in spikformer.exceptions
    twin = spike_driven_report(_net("sdt", gen, spiking=False), _images(gen))
    assert len(twin.exceptions) == len(twin.products)  # ReLU activations are real-valued everywhere
    assert "binary inputs" in spikformer.table()


@pytest.mark.parametrize("kind", ["sdt", "spikformer"])
@pytest.mark.parametrize("spiking", [True, False])
def test_batchnorm_fold_is_exact(kind: str, spiking: bool, gen: torch.Generator) -> None:
    net = _net(kind, gen, spiking=spiking, dtype=torch.float64)
    x = _images(gen, torch.float64)
    folded = fold_batchnorm(net)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    assert any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())  # the original is kept
    torch.testing.assert_close(folded(x)[0], net(x)[0], rtol=1e-9, atol=1e-9)


def test_fold_refuses_training_mode(gen: torch.Generator) -> None:
    with pytest.raises(ValueError, match="eval"):
        fold_batchnorm(_net("sdt", gen).train())


@pytest.mark.parametrize("kind", ["sdt", "spikformer"])
@pytest.mark.parametrize("spiking", [True, False])
def test_gradients_reach_every_parameter(kind: str, spiking: bool, gen: torch.Generator) -> None:
    net = _net(kind, gen, spiking=spiking).train()
    out, _ = net(_images(gen))
    (out * torch.randn(out.shape, generator=gen)).sum().backward()
    dead = [n for n, p in net.named_parameters() if p.grad is None or not bool(p.grad.abs().sum() > 0)]
    assert not dead, dead


@pytest.mark.parametrize("kind", ["sdt", "spikformer"])
def test_checkpoints_load_between_spiking_model_and_twin(kind: str, gen: torch.Generator) -> None:
    spiking, twin = _net(kind, gen), _net(kind, gen, spiking=False)
    torch.manual_seed(1)
    other = build_transformer(kind, (1, 16, 16), 3, options=SMALL)  # different weights
    assert list(spiking.state_dict()) == list(twin.state_dict())
    twin.load_state_dict(other.state_dict())  # strict
    for (name, a), b in zip(twin.state_dict().items(), other.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=name)
    spiking.load_state_dict(twin.state_dict())  # and back; the LIF constants are checked against the twin's table
    x = _images(gen)
    torch.testing.assert_close(spiking(x)[0], other.eval()(x)[0], rtol=0, atol=0)  # same weights, same run


def test_twin_checkpoint_with_other_lif_constants_refuses(gen: torch.Generator) -> None:
    twin = build_transformer("sdt", (1, 16, 16), 3, options=SMALL, spiking=False, neuron_kwargs={"v_th": 2.0})
    with pytest.raises(RuntimeError, match="v_th"):
        build_transformer("sdt", (1, 16, 16), 3, options=SMALL).load_state_dict(twin.state_dict())


def test_relu_twin_refuses_tensor_neuron_parameters() -> None:
    with pytest.raises(ValueError, match="tensor parameters"):
        ReLUTwin(LIF(2.0, learn_tau=True))


def test_train_config_builds_the_transformer_models() -> None:
    info = dataset_info("digits")  # 1x8x8 images: 4 tokens
    for model in ("spikformer", "sdt", "vit-twin"):
        cfg = TrainConfig(dataset="digits", model=model, time_steps=2, transformer_kwargs=SMALL)
        clf = build_model(cfg, info)
        x = torch.rand(3, *info.input_shape)
        assert clf(x).shape == (3, info.num_classes)
    sdt = build_model(TrainConfig(dataset="digits", model="sdt", transformer_kwargs=SMALL), info)
    twin = build_model(TrainConfig(dataset="digits", model="vit-twin", transformer_kwargs=SMALL), info)
    twin.load_state_dict(sdt.state_dict())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"model": "sdt", "transformer_kwargs": {"width": 8}}, "unknown transformer options"),
        ({"model": "sdt", "transformer_kwargs": {"dim": 10, "heads": 4}}, "multiple of heads"),
        ({"model": "sdt", "transformer_kwargs": {"depth": 0}}, "positive int"),
        ({"model": "mlp", "transformer_kwargs": {"dim": 8}}, "for models"),
        ({"model": "sdt", "neuron": "if"}, "LIF neurons"),
    ],
)
def test_bad_transformer_configs_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TrainConfig(dataset="digits", **kwargs)


def test_options_and_shapes_errors() -> None:
    assert check_transformer_options(None).dim == 64
    with pytest.raises(ValueError, match="H, W >= 4"):
        build_transformer("sdt", (1, 3, 28), 10)
    with pytest.raises(ValueError, match="unknown transformer kind"):
        build_transformer("vit", (1, 28, 28), 10)
    net = build_transformer("sdt", (1, 16, 16), 3, options=SMALL)
    with pytest.raises(ValueError, match=r"\[T, B, C=1"):
        net(torch.zeros(4, 2, 3, 16, 16))


def test_trainer_runs_a_transformer_and_its_checkpoint_loads(tmp_path) -> None:
    from spikeforge.train import load_checkpoint
    from spikeforge.train import train
    from spikeforge.transformer import TransformerBody

    cfg = TrainConfig(dataset="digits", model="sdt", transformer_kwargs=SMALL, epochs=1, time_steps=2, lr=2e-3)
    result = train(cfg, tmp_path / "run")
    assert len(result.history) == 1 and 0.0 <= result.test_acc <= 1.0
    model, config, _ = load_checkpoint(tmp_path / "run" / "best.pt")
    assert config.model == "sdt" and config.transformer_kwargs == SMALL
    assert isinstance(model.network.layers[1], TransformerBody)
    twin = build_model(
        TrainConfig(dataset="digits", model="vit-twin", transformer_kwargs=SMALL), dataset_info("digits")
    )
    twin.load_state_dict(model.state_dict())  # the spiking run initialises its twin
