"""TrainConfig refuses configs that make no sense (issue 13): a model with no spiking layer, device strings
the trainer cannot use (named after ``--device``, with the valid choices), bad neuron parameters (named when
the config is made); checkpoints keep loading with the neuron constant table in their state dict."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from spikeforge.data import dataset_info
from spikeforge.models import build_model
from spikeforge.training import choices as C
from spikeforge.training import distributed as D
from spikeforge.training.checkpoint import FORMAT
from spikeforge.training.checkpoint import atomic_save
from spikeforge.training.config import TrainConfig
from spikeforge.training.saved import load_checkpoint


def test_no_spiking_layer_is_refused() -> None:
    with pytest.raises(ValueError, match=r"TrainConfig.hidden is empty, but hidden layers must spike.*hidden=\(128,\)"):
        TrainConfig(hidden=())
    with pytest.raises(ValueError, match="does not spike, but hidden layers must spike"):
        TrainConfig(neuron="li")
    c = TrainConfig(model="conv", hidden=(), channels=(4,), dataset="digits")  # the conv blocks spike
    model = build_model(c, dataset_info("digits"))
    assert sum(getattr(m, "spiking", False) for m in model.modules()) >= 1


@pytest.mark.parametrize(
    ("device", "match"),
    [
        (
            "cuda:x",
            r"TrainConfig.device='cuda:x' is not a torch device the trainer knows \(--device\); use 'cpu', 'cuda', 'cuda:N'",
        ),
        ("gpu", r"TrainConfig.device='gpu' is not a torch device the trainer knows \(--device\); use 'cpu'"),
        ("meta", r"TrainConfig.device='meta' \(--device\): the trainer does not run on 'meta' devices; use 'cpu'"),
        (3, r"TrainConfig.device \(--device\) must be a device string, got 3; use 'cpu'"),
    ],
)
def test_bad_device_strings_name_the_option_and_the_choices(device: object, match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        TrainConfig(device=device)  # type: ignore[arg-type]
    assert "\n" not in str(info.value) and len(str(info.value)) < 200  # not torch's list of every backend


def test_device_availability_is_checked_when_a_run_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A config names a device by spelling only (a GPU run's checkpoint still loads on a CPU machine); the
    trainer's setup refuses a device this machine lacks, naming ``--device`` and the devices it has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert TrainConfig(device="cuda").device == "cuda"
    assert C.available_devices() == ["cpu"]
    for dev in ("cuda", "cuda:1"):
        with pytest.raises(
            ValueError,
            match=rf"device \(--device\) is '{dev}', but on this machine CUDA is not available; use one of: cpu",
        ):
            D.setup(dev)
    with pytest.raises(ValueError, match=r"'mps', but on this machine Apple MPS is not available; use one of: cpu"):
        C.check_device_available("device", "mps")
    assert D.setup("cpu").device == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert C.available_devices() == ["cpu", "cuda", "cuda:0", "cuda:1"]
    assert C.check_device_available("device", "cuda:1") == "cuda:1"
    with pytest.raises(
        ValueError, match=r"'cuda:2', but on this machine GPU 2 does not exist; use one of: cpu, cuda, cuda:0, cuda:1"
    ):
        C.check_device_available("device", "cuda:2")


def test_bad_neuron_kwargs_fail_when_the_config_is_made() -> None:
    with pytest.raises(ValueError, match=r"TrainConfig.neuron_kwargs for neuron 'lif': LIF: tau_mem=-1.0 must be > 0"):
        TrainConfig(neuron_kwargs={"tau_mem": -1.0})
    with pytest.raises(ValueError, match=r"neuron 'lif': LIF: v_th=0.5 must be > v_reset=1.0"):
        TrainConfig(neuron_kwargs={"v_th": 0.5, "v_reset": 1.0})
    with pytest.raises(TypeError, match=r"neuron 'if': IF got unexpected keyword argument\(s\) \['tau_mem'\]"):
        TrainConfig(neuron="if", neuron_kwargs={"tau_mem": 3.0})
    before = torch.get_rng_state()
    TrainConfig(neuron="rlif", neuron_kwargs={"tau_mem": 3.0})  # built once with size 1, RNG untouched
    assert torch.equal(before, torch.get_rng_state())


def _checkpoint(path: Path, config: TrainConfig, state: dict) -> None:
    atomic_save({"format": FORMAT, "config": config.to_dict(), "model": state, "epoch": 1}, path)


def test_checkpoints_with_and_without_the_constant_table(tmp_path: Path) -> None:
    config = TrainConfig(hidden=(6,), time_steps=3)
    model = build_model(config, dataset_info("yinyang"))
    state = model.state_dict()
    assert any(k.endswith("_extra_state") for k in state)
    _checkpoint(tmp_path / "new.pt", config, state)
    loaded, _, _ = load_checkpoint(tmp_path / "new.pt")
    x = torch.rand(5, 4)
    torch.testing.assert_close(loaded(x), model.eval()(x))
    old = {k: v for k, v in state.items() if not k.endswith("_extra_state")}  # written before the table existed
    _checkpoint(tmp_path / "old.pt", config, old)
    loaded_old, _, _ = load_checkpoint(tmp_path / "old.pt")
    torch.testing.assert_close(loaded_old(x), model(x))
    # weights saved from a model whose neurons differ from the config's (tau_mem 7 vs the default 5): refused
    other = build_model(TrainConfig(hidden=(6,), time_steps=3, neuron_kwargs={"tau_mem": 7.0}), dataset_info("yinyang"))
    _checkpoint(tmp_path / "mismatch.pt", config, other.state_dict())
    with pytest.raises(
        ValueError,
        match=r"(?s)does not match its own config.*network.layers.1: LIF constants .*tau_mem=7.0 \(saved\) vs tau_mem=5.0 \(this module\)",
    ):
        load_checkpoint(tmp_path / "mismatch.pt")
