"""``delay-mlp`` and ``srm`` (``spikeforge.training.delay_models``): the annealed delayed layer against independent
references, its schedule and saved state, the builders, the option checks, and a checkpoint round trip."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from torch import nn

from spikeforge.data import dataset_info
from spikeforge.data import registry as reg
from spikeforge.data.temporal_registry import COINCIDENCE
from spikeforge.data.temporal_tasks import make_delayed_coincidence
from spikeforge.neurons import LI
from spikeforge.neurons import CubaLIF
from spikeforge.synapses import SRM
from spikeforge.synapses import DelayedLinear
from spikeforge.train import TrainConfig
from spikeforge.train import train
from spikeforge.training.delay_models import AnnealedDelayedLinear
from spikeforge.training.delay_models import delayed_layers
from spikeforge.training.delay_models import train_steps
from spikeforge.training.models import build_model
from spikeforge.training.saved import load_checkpoint

NAME = "delayed_coincidence"
SMALL = {"train": (64, 0), "validation": (32, 1), "test": (32, 2)}


@pytest.fixture
def small_coincidence(monkeypatch: pytest.MonkeyPatch) -> str:
    """``delayed_coincidence`` with 64 / 32 / 32 samples (same T, channels and classes): fast end-to-end runs."""
    info = dataclasses.replace(dataset_info(NAME), splits=tuple((s, n) for s, (n, _) in SMALL.items()))

    def build(split: str, data_dir: Path | None) -> tuple[torch.Tensor, torch.Tensor]:
        n, seed = SMALL[split]
        return make_delayed_coincidence(n, seed=seed, **COINCIDENCE)

    monkeypatch.setattr(reg, "_REGISTRY", {**reg._REGISTRY, NAME: (info, build)})
    return NAME


def layer(per: str = "synapse", **kw: object) -> AnnealedDelayedLinear:
    args: dict = dict(per=per, interpolation="gaussian", sigma_start=2.0, sigma_end=0.5, total_steps=5)
    args.update(kw)
    torch.manual_seed(0)
    return AnnealedDelayedLinear(3, 2, 4, generator=torch.Generator().manual_seed(1), **args)


def reference_shift(x: torch.Tensor, w: torch.Tensor, d: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``y[t, n, o] = b[o] + sum_i w[o, i] x[t - d[o, i], n, i]`` (zero before t = 0), by loops."""
    t_len, n, n_in = x.shape
    y = torch.zeros(t_len, n, w.shape[0], dtype=x.dtype)
    for t in range(t_len):
        for o in range(w.shape[0]):
            y[t, :, o] = b[o]
            for i in range(n_in):
                s = t - int(d[o, i])
                if s >= 0:
                    y[t, :, o] += w[o, i] * x[s, :, i]
    return y


def test_sigma_is_annealed_per_training_forward_and_eval_is_integer() -> None:
    m = layer()
    x = torch.rand(8, 2, 3)
    sigmas = []
    for _ in range(7):
        m(x)
        sigmas.append(m.sigma)
    want = [2.0 + (0.5 - 2.0) * min(1.0, k / 4) for k in range(7)]  # linear over total_steps - 1 = 4 steps
    assert sigmas == pytest.approx(want) and int(m.anneal_step) == 7
    m.eval()
    assert m.integer and int(m.anneal_step) == 7
    d = m.delays.detach().round()
    assert torch.allclose(m(x), reference_shift(x, m.weight.detach(), d, m.bias.detach()), atol=1e-6)
    m.train()
    assert not m.integer


def test_training_forward_equals_the_plain_layer_at_the_same_sigma() -> None:
    m = layer(per="axon")
    plain = DelayedLinear(3, 2, 4, per="axon", sigma=2.0, delays=m.delays.detach().clone())
    plain.load_state_dict({k: v for k, v in m.state_dict().items() if k in ("weight", "bias", "delays")}, strict=False)
    x = torch.rand(9, 2, 3)
    assert torch.allclose(m(x), plain(x))  # first step: sigma_start
    m.eval()
    assert torch.allclose(m(x), plain.rounded()(x))


def test_eval_clamps_delays_and_rounded_stays_integer() -> None:
    m = layer()
    with torch.no_grad():
        m.delays[0, 0] = 7.0  # pushed out of [0, max_delay=4] by an optimiser step
        m.delays[1, 1] = -2.0
    m.eval()
    assert float(m.delays.detach().max()) <= 4.0 and float(m.delays.detach().min()) >= 0.0
    r = m.rounded()
    r.train()
    assert r.integer and int(r.anneal_step) == 0
    r(torch.rand(6, 1, 3))
    assert int(r.anneal_step) == 0  # a rounded layer has no schedule


def test_gradients_match_finite_differences() -> None:
    torch.manual_seed(0)
    m = AnnealedDelayedLinear(2, 2, 3, per="synapse", interpolation="gaussian", sigma_start=1.0, sigma_end=1.0,
                              total_steps=1).double()  # fmt: skip
    x = torch.rand(6, 2, 2, dtype=torch.float64)
    d0 = torch.tensor([[0.7, 1.6], [2.2, 0.4]], dtype=torch.float64)

    def f(w: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(m, {"weight": w, "delays": d}, (x,))

    w0 = m.weight.detach().clone()
    assert torch.autograd.gradcheck(f, (w0.requires_grad_(), d0.requires_grad_()))


def test_state_dict_round_trip_and_mismatch() -> None:
    m = layer()
    for _ in range(3):
        m(torch.rand(6, 1, 3))
    state = m.state_dict()
    assert all(isinstance(v, torch.Tensor) for v in state.values())  # a checkpoint holds tensors only
    fresh = layer()
    fresh.load_state_dict(state)
    assert int(fresh.anneal_step) == 3 and fresh.sigma == m.sigma
    assert torch.equal(fresh.delays, m.delays)
    with pytest.raises(ValueError, match="saved with per='synapse' but this layer has per='axon'"):
        layer(per="axon").load_state_dict({**state, "delays": torch.zeros(3)})
    with pytest.raises(ValueError, match="unreadable saved settings"):
        fresh.set_extra_state({"per": "synapse"})


def config(model: str = "delay-mlp", **kw: object) -> TrainConfig:
    args: dict = dict(dataset=NAME, model=model, encoding="sequence", time_steps=64, hidden=(8, 6), epochs=2,
                      batch_size=32)  # fmt: skip
    args.update(kw)
    return TrainConfig(**args)


def test_delay_mlp_structure_defaults_and_seeded_delays() -> None:
    c = config(neuron="cuba_lif", model_kwargs={"per": "axon"})
    net = build_model(c, dataset_info(NAME)).network
    delayed = delayed_layers(net)
    assert [n for n, _ in delayed] == ["layers.0", "layers.2"]
    first = delayed[0][1]
    assert isinstance(first, AnnealedDelayedLinear) and first.max_delay == 63 // 3 and first.per == "axon"
    assert first.delays.shape == (4,) and delayed[1][1].delays.shape == (8,)
    assert isinstance(net.layers[1], CubaLIF) and isinstance(net.layers[-1], LI)
    assert train_steps(c) == 2 * 63 and first.total_steps == 63  # 2000 samples, batches of 32; annealed over half
    assert first.sigma == pytest.approx(max(21 / 6, 0.5))
    torch.manual_seed(123)  # the global RNG does not change the initial delays (seeded by config.seed)
    again = delayed_layers(build_model(c, dataset_info(NAME)))[0][1]
    assert torch.equal(again.delays, first.delays)
    other = delayed_layers(build_model(config(seed=1, model_kwargs={"per": "axon"}), dataset_info(NAME)))[0][1]
    assert not torch.equal(other.delays, first.delays)
    spiking = build_model(config(decoding="spike_count"), dataset_info(NAME)).network
    assert spiking.layers[-1].spiking


def test_weight_gain_scales_the_initial_weights() -> None:
    torch.manual_seed(0)
    a = delayed_layers(build_model(config(model_kwargs={"weight_gain": 1.0}), dataset_info(NAME)))[0][1]
    torch.manual_seed(0)
    b = delayed_layers(build_model(config(model_kwargs={"weight_gain": 2.5}), dataset_info(NAME)))[0][1]
    assert torch.allclose(b.weight, 2.5 * a.weight)


def test_srm_structure() -> None:
    net = build_model(config("srm", hidden=(8,)), dataset_info(NAME)).network
    assert isinstance(net.layers[0], nn.Linear) and not delayed_layers(net)
    assert isinstance(net.layers[1], SRM) and isinstance(net.layers[-1], LI)
    net = build_model(config("srm", hidden=(8,), decoding="spike_count", model_kwargs={"delays": True, "tau_s": 2.0}),
                      dataset_info(NAME)).network  # fmt: skip
    assert isinstance(net.layers[0], AnnealedDelayedLinear) and isinstance(net.layers[-1], SRM)
    assert net.layers[1].tau_s == 2.0 and net.layers[-1].tau_s == 2.0
    x = torch.rand(64, 3, 4)
    assert net(x)[0].shape == (64, 3, 4)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(model="mlp", model_kwargs={"per": "axon"}), "model 'mlp' takes no model_kwargs"),
        (dict(model_kwargs={"max_delay": 64}), r"must be an int in \[0, time_steps - 1 = 63\]"),
        (dict(model_kwargs={"per": "dendrite"}), "'per' of model 'delay-mlp' must be one of"),
        (dict(model_kwargs={"sigma_end": 0}), "'sigma_end' of model 'delay-mlp' must be a finite number > 0"),
        (dict(model_kwargs={"anneal_fraction": 1.5}), r"is a share of the run in \(0, 1\]"),
        (dict(model_kwargs={"tau_s": 2.0}), r"no option\(s\) \['tau_s'\]"),
        (dict(model="srm", model_kwargs={"per": "axon"}), r"need delays; add \"delays\": true"),
        (dict(model="srm", model_kwargs={"delays": 1}), "'delays' of model 'srm' must be true or false"),
        (dict(model="srm", neuron="alif"), "--neuron alif does not apply to model 'srm'"),
        (dict(model="srm", surrogate="atan"), "--surrogate atan does not apply to model 'srm'"),
        (dict(hidden=()), "needs at least one hidden layer"),
        (dict(model="srm", model_kwargs={"scale_ref": -1.0}), "'scale_ref' of model 'srm' must be a finite number"),
    ],
)
def test_bad_options_are_refused(kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        config(**kw)
    with pytest.raises(TypeError, match="model_kwargs must be a dict or None"):
        config(model_kwargs=["per"])


def test_delay_mlp_works_on_a_static_dataset_with_a_temporal_code() -> None:
    c = TrainConfig(dataset="yinyang", model="delay-mlp", hidden=(8,), time_steps=12, encoding="latency")
    model = build_model(c, dataset_info("yinyang"))
    assert delayed_layers(model)[0][1].max_delay == 3
    assert model(torch.rand(5, 4)).shape == (5, 3)


def test_checkpoint_round_trip(small_coincidence: str, tmp_path: Path) -> None:
    c = config(hidden=(8,), epochs=2, model_kwargs={"per": "axon"})
    result = train(c, tmp_path / "run")
    model, saved, _ = load_checkpoint(tmp_path / "run" / "best.pt")
    assert saved == c
    x = torch.rand(5, 64, 4).round()
    assert torch.equal(model(x), result.model(x))
    got, want = delayed_layers(model)[0][1], delayed_layers(result.model)[0][1]
    assert got.integer and torch.equal(got.delays, want.delays) and int(got.anneal_step) > 0
    assert float(got.delays.detach().min()) >= 0 and float(got.delays.detach().max()) <= got.max_delay
