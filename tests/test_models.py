"""Model builders and the SNNClassifier: shapes, composition, reference dynamics, gradients, bad input."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikeforge import losses
from spikeforge.layers import SNNSequential, record
from spikeforge.models import (
    DEFAULT_NEURON_KWARGS,
    SNNClassifier,
    build_conv,
    build_mlp,
    build_model,
    list_decodings,
    list_encodings,
    list_models,
)
from spikeforge.neurons import IF, LI, LIF, RecurrentLIF
from spikeforge.train import TrainConfig


def test_build_mlp_layers_and_shapes() -> None:
    net = build_mlp(4, (16, 8), 3)
    kinds = [type(m) for m in net.layers]
    assert kinds == [nn.Linear, LIF, nn.Linear, LIF, nn.Linear, LI]
    assert [m.out_features for m in net.layers if isinstance(m, nn.Linear)] == [16, 8, 3]
    lif = net.layers[1]
    assert lif.tau_mem == DEFAULT_NEURON_KWARGS["tau_mem"] and lif.input_scaling == "none"
    assert net.layers[-1].input_scaling == "none"
    out, states = net(torch.rand(5, 7, 4))
    assert out.shape == (5, 7, 3) and len(states) == 3


def test_build_mlp_options() -> None:
    net = build_mlp(4, (), 3, neuron_kwargs={"tau_mem": 2.0})  # no hidden layer: linear readout
    assert [type(m) for m in net.layers] == [nn.Linear, LI] and net.layers[1].tau_mem == 2.0
    net = build_mlp(4, (6,), 3, neuron="if", surrogate="atan", dropout=0.5)
    assert isinstance(net.layers[1], IF) and type(net.layers[1].surrogate).__name__ == "ATan"
    assert isinstance(net.layers[2], nn.Dropout)
    net = build_mlp(4, (6,), 3, neuron="rlif")  # a constructor with a required size receives the width
    assert isinstance(net.layers[1], RecurrentLIF)
    net = build_mlp(4, (6,), 3, readout="spiking")
    assert isinstance(net.layers[-1], LIF)
    with pytest.raises(TypeError, match="rejected neuron_kwargs"):
        build_mlp(4, (6,), 3, neuron="if", neuron_kwargs={"tau_mem": 3.0})


def test_build_conv_shapes() -> None:
    net = build_conv((1, 8, 8), (4, 6), (10,), 5)
    kinds = [type(m) for m in net.layers]
    assert kinds[:4] == [nn.Conv2d, nn.BatchNorm2d, LIF, nn.MaxPool2d]
    assert nn.Flatten in kinds and kinds[-1] is LI
    assert net.layers[kinds.index(nn.Flatten) + 1].in_features == 6 * 2 * 2
    out, _ = net(torch.rand(3, 2, 1, 8, 8))
    assert out.shape == (3, 2, 5)
    with pytest.raises(ValueError, match="shrink"):
        build_conv((1, 4, 4), (2, 2, 2), (), 3)
    with pytest.raises(ValueError, match="odd"):
        build_conv((1, 8, 8), (2,), (), 3, kernel_size=2)
    with pytest.raises(ValueError, match="C, H, W"):
        build_conv((8, 8), (2,), (), 3)  # type: ignore[arg-type]


def _reference_mlp_logits(model: SNNClassifier, x: torch.Tensor) -> torch.Tensor:
    """Hand loop of Linear -> LIF(subtract reset, raw input) -> Linear -> LI, max over time."""
    lin1, lif, lin2, li = model.network.layers
    b1, b2 = math.exp(-1.0 / lif.tau_mem), math.exp(-1.0 / li.tau_mem)
    v = torch.zeros(x.shape[0], lin1.out_features, dtype=x.dtype)
    u = torch.zeros(x.shape[0], lin2.out_features, dtype=x.dtype)
    best = torch.full_like(u, -float("inf"))
    for _ in range(model.time_steps):  # constant current: the same input every step
        v = b1 * v + x @ lin1.weight.T + lin1.bias
        z = (v > 1.0).to(x.dtype)
        v = v - z
        u = b2 * u + z @ lin2.weight.T + lin2.bias
        best = torch.maximum(best, u)
    return best


def test_classifier_matches_hand_loop() -> None:
    torch.manual_seed(0)
    model = SNNClassifier(build_mlp(4, (32,), 3), time_steps=12).double()
    with torch.no_grad():
        model.network.layers[0].weight.mul_(4.0)  # make the hidden layer fire
    x = torch.rand(9, 4, dtype=torch.float64)
    ref = _reference_mlp_logits(model, x)
    out = model(x)
    assert torch.allclose(out, ref, atol=1e-12)
    _, rec = record(model.network, model.encode(x))
    assert 0.0 < float(rec["layers.1"].mean()) < 1.0  # the reference was not trivially silent


def test_forward_paths_agree() -> None:
    torch.manual_seed(1)
    model = SNNClassifier(build_mlp(4, (16,), 3), time_steps=6, decoding="mean_membrane")
    x = torch.rand(5, 4)
    x_seq = model.encode(x)
    assert x_seq.shape == (6, 5, 4) and torch.equal(x_seq[3], x)
    out_seq, _ = model.forward_seq(x)
    assert torch.equal(model(x), out_seq.mean(0))
    assert torch.equal(model(x_seq, encoded=True), model(x))
    states = None  # streaming through SNNSequential.step gives the same readout
    steps = []
    for t in range(6):
        y, states = model.network.step(x_seq[t], states)
        steps.append(y)
    assert torch.allclose(torch.stack(steps), out_seq, atol=1e-6)


def test_decodings_and_losses() -> None:
    torch.manual_seed(2)
    x, y = torch.rand(8, 4), torch.randint(0, 3, (8,))
    net = build_mlp(4, (16,), 3)
    m_max = SNNClassifier(net, time_steps=5, decoding="max_membrane")
    out_seq, _ = m_max.forward_seq(x)
    assert torch.equal(m_max(x), out_seq.max(0).values)
    assert torch.allclose(F.cross_entropy(m_max(x), y), losses.max_membrane_cross_entropy(out_seq, y))
    spiking = build_mlp(4, (16,), 3, readout="spiking")
    with torch.no_grad():
        spiking.layers[2].weight.mul_(5.0)
    m_cnt = SNNClassifier(spiking, time_steps=5, decoding="spike_count")
    z_seq, _ = m_cnt.forward_seq(x)
    assert torch.equal(m_cnt(x), z_seq.sum(0))
    assert torch.allclose(F.cross_entropy(m_cnt(x), y), losses.rate_cross_entropy(z_seq, y))
    with pytest.raises(ValueError, match="spiking readout"):
        SNNClassifier(net, time_steps=5, decoding="spike_count")
    with pytest.raises(ValueError, match="non-spiking LI"):
        SNNClassifier(spiking, time_steps=5, decoding="max_membrane")


def test_readout_gradient_gradcheck() -> None:
    """Logits are linear in the readout weights (hidden spikes do not depend on them): gradcheck holds."""
    torch.manual_seed(3)
    model = SNNClassifier(build_mlp(4, (8,), 3), time_steps=4, decoding="mean_membrane").double()
    with torch.no_grad():
        model.network.layers[0].weight.mul_(4.0)
    x = torch.rand(3, 4, dtype=torch.float64)
    lin2 = model.network.layers[2]

    def f(w: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(model, {"network.layers.2.weight": w}, (x,))

    w = lin2.weight.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(f, (w,))


def test_surrogate_gradient_reaches_first_layer() -> None:
    torch.manual_seed(4)
    model = SNNClassifier(build_mlp(4, (16,), 3), time_steps=8)
    loss = F.cross_entropy(model(torch.rand(6, 4)), torch.randint(0, 3, (6,)))
    loss.backward()
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in model.parameters())


def test_rate_and_latency_encodings() -> None:
    torch.manual_seed(5)
    net = build_mlp(4, (16,), 3)
    x = torch.rand(4, 4)
    rate = SNNClassifier(net, time_steps=20, encoding="rate")
    s1 = rate.encode(x, generator=torch.Generator().manual_seed(7))
    s2 = rate.encode(x, generator=torch.Generator().manual_seed(7))
    s3 = rate.encode(x, generator=torch.Generator().manual_seed(8))
    assert torch.equal(s1, s2) and not torch.equal(s1, s3)
    assert set(s1.unique().tolist()) <= {0.0, 1.0}
    lat = SNNClassifier(net, time_steps=20, encoding="latency")
    assert torch.equal(lat.encode(x).sum(0), (x > 0).float())  # one spike per positive feature
    with pytest.raises(ValueError, match="no options"):
        SNNClassifier(net, time_steps=5, encoding="constant", encoding_kwargs={"gain": 2.0})


def test_build_model_from_config() -> None:
    info = SimpleNamespace(name="img", input_shape=(1, 8, 8), num_classes=10)
    mlp = build_model(TrainConfig(hidden=(12,), time_steps=3), info)
    assert isinstance(mlp.network.layers[0], nn.Flatten)  # image -> MLP flattens
    assert mlp(torch.rand(2, 1, 8, 8)).shape == (2, 10)
    conv = build_model(TrainConfig(model="conv", channels=(4,), hidden=(), time_steps=3), info)
    assert conv(torch.rand(2, 1, 8, 8)).shape == (2, 10)
    count = build_model(TrainConfig(decoding="spike_count", time_steps=3), info)
    assert count.network.layers[-1].spiking
    flat = SimpleNamespace(name="flat", input_shape=(4,), num_classes=3)
    with pytest.raises(ValueError, match="model='mlp'"):
        build_model(TrainConfig(model="conv"), flat)


def test_name_lists() -> None:
    assert list_models() == ["mlp", "conv", "delay-mlp", "srm", "spikformer", "sdt", "vit-twin"]
    assert list_encodings() == ["constant", "rate", "latency", "sequence"]
    assert list_decodings() == ["max_membrane", "mean_membrane", "spike_count"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"neuron": "lifx"}, "unknown neuron 'lifx'; valid choices: .*lif"),
        ({"surrogate": "nope"}, "unknown surrogate 'nope'; valid choices: .*atan"),
        ({"neuron": "li"}, "does not spike"),
        ({"readout": "rate"}, "unknown readout"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_builder_bad_names(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_mlp(4, (8,), 3, **kwargs)


def test_builder_bad_widths() -> None:
    with pytest.raises(ValueError, match="positive ints"):
        build_mlp(4, (8, 0), 3)
    with pytest.raises(TypeError, match="sequence"):
        build_mlp(4, 8, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="in_features"):
        build_mlp(0, (8,), 3)


def test_classifier_bad_input() -> None:
    net = build_mlp(4, (8,), 3)
    with pytest.raises(ValueError, match="unknown encoding 'morse'; valid choices: constant, rate, latency"):
        SNNClassifier(net, time_steps=5, encoding="morse")
    with pytest.raises(ValueError, match="unknown decoding"):
        SNNClassifier(net, time_steps=5, decoding="vote")
    with pytest.raises(ValueError, match="time_steps"):
        SNNClassifier(net, time_steps=0)
    with pytest.raises(TypeError, match="SNNSequential"):
        SNNClassifier(nn.Linear(4, 3), time_steps=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no neuron layer"):
        SNNClassifier(SNNSequential(nn.Linear(4, 3)), time_steps=5)
    model = SNNClassifier(net, time_steps=5)
    with pytest.raises(ValueError, match="at least 2 dims"):
        model(torch.rand(4))
    with pytest.raises(TypeError, match="floating"):
        model(torch.ones(2, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="NaN"):
        model(torch.full((2, 4), float("nan")))
    with pytest.raises(ValueError, match=r"\[T=5, B"):
        model(torch.rand(3, 2, 4), encoded=True)


def test_model_and_codec_tables_match_the_validated_names() -> None:
    from spikeforge import models
    from spikeforge.training import choices
    from spikeforge.training.models import MODEL_BUILDERS

    assert tuple(MODEL_BUILDERS) == choices.MODELS == tuple(list_models())
    assert tuple(choices.ENCODERS) == models.ENCODINGS and tuple(choices.DECODERS) == models.DECODINGS


def test_builders_reuse_the_config_validators() -> None:
    """One validator per name: the builder and TrainConfig give the same message."""
    with pytest.raises(ValueError) as from_builder:
        build_mlp(4, (8,), 3, neuron="li")
    with pytest.raises(ValueError) as from_config:
        TrainConfig(neuron="li")
    assert str(from_builder.value) == str(from_config.value)
