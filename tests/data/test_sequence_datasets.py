"""Sequence datasets (``DatasetInfo.sequence``): samples that already are spike trains / frames over time.

The trainer feeds them time-major with the ``"sequence"`` encoding and ``time_steps = T``; the model sees the
per-step features (``step_shape``). Checked here with a toy task only a temporal model can solve: the class is
which of two channels fires *first* (both fire once, so spike counts carry no information).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from spikeforge import cli
from spikeforge.data import DatasetInfo
from spikeforge.data import dataset_info
from spikeforge.data import register_dataset
from spikeforge.data import registry as reg
from spikeforge.train import TrainConfig
from spikeforge.train import train
from spikeforge.training.choices import ENCODERS
from spikeforge.training.choices import sequence_defaults
from spikeforge.training.models import build_model

T = 12
N = {"train": 256, "validation": 64, "test": 64}


def _order_task(split: str, data_dir: Path | None) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed({"train": 0, "validation": 1, "test": 2}[split])
    n = N[split]
    y = torch.randint(0, 2, (n,), generator=g)
    t_first = torch.randint(0, T // 2, (n,), generator=g)
    t_second = t_first + torch.randint(2, T // 2, (n,), generator=g)
    x = torch.zeros(n, T, 2)
    rows = torch.arange(n)
    x[rows, t_first, y] = 1.0  # class k: channel k fires first
    x[rows, t_second, 1 - y] = 1.0
    return x, y


INFO = DatasetInfo(
    name="order_toy", input_shape=(T, 2), num_classes=2, splits=tuple(N.items()), description="which channel first",
    source="test", sequence=True,
)  # fmt: skip


@pytest.fixture
def order_toy(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(reg, "_REGISTRY", dict(reg._REGISTRY))
    register_dataset(INFO)(_order_task)
    return INFO.name


def test_info_step_shape_and_validation() -> None:
    assert INFO.step_shape == (2,)
    assert dataset_info("yinyang").step_shape == (4,)
    with pytest.raises(ValueError, match=r"\(T, \*features\)"):
        DatasetInfo(name="bad", input_shape=(5,), num_classes=2, splits=(("train", 1),), description="d",
                    source="s", sequence=True)  # fmt: skip
    with pytest.raises(TypeError, match="sequence must be a bool"):
        DatasetInfo(name="bad", input_shape=(5, 1), num_classes=2, splits=(("train", 1),), description="d",
                    source="s", sequence=1)  # type: ignore[arg-type]  # fmt: skip


def test_sequence_encoder_is_a_transpose() -> None:
    x = torch.randn(3, T, 2, 4)
    out = ENCODERS["sequence"](x, T, None, {})
    assert out.shape == (T, 3, 2, 4)
    for b in range(3):
        for t in range(T):
            assert torch.equal(out[t, b], x[b, t])
    with pytest.raises(ValueError, match=r"set time_steps to the dataset's T"):
        ENCODERS["sequence"](x, T + 1, None, {})
    with pytest.raises(ValueError, match=r"\[B, T=12, \.\.\.\]"):
        ENCODERS["sequence"](torch.zeros(3, T), T, None, {})


def test_config_requires_sequence_encoding_and_t(order_toy: str) -> None:
    TrainConfig(dataset=order_toy, encoding="sequence", time_steps=T)
    with pytest.raises(ValueError, match=f"needs encoding 'sequence' and time_steps={T}"):
        TrainConfig(dataset=order_toy, encoding="constant", time_steps=T)
    with pytest.raises(ValueError, match=f"--time-steps {T}"):
        TrainConfig(dataset=order_toy, encoding="sequence", time_steps=T + 1)
    with pytest.raises(ValueError, match="has static samples"):
        TrainConfig(dataset="yinyang", encoding="sequence")
    with pytest.raises(ValueError, match="sequence encoding takes no options"):
        TrainConfig(dataset=order_toy, encoding="sequence", time_steps=T, encoding_kwargs={"gain": 1.0})
    assert sequence_defaults(order_toy) == {"encoding": "sequence", "time_steps": T}
    assert sequence_defaults("yinyang") == {} and sequence_defaults("nope") == {}


def test_model_sees_step_features(order_toy: str) -> None:
    model = build_model(TrainConfig(dataset=order_toy, encoding="sequence", time_steps=T, hidden=(8,)), INFO)
    assert model.network.layers[0].in_features == 2
    x, _ = _order_task("test", None)
    assert model(x[:5]).shape == (5, 2)
    assert torch.equal(model(x[:5]), model(x[:5].transpose(0, 1), encoded=True))


def test_a_temporal_task_is_learned_end_to_end(order_toy: str, tmp_path: Path) -> None:
    # Spike counts are equal in both classes, so a model fed the time-averaged input stays at chance: what it learns
    # it learns from the order of the spikes, through the recurrence of the hidden membrane over the sequence.
    config = TrainConfig(
        dataset=order_toy, encoding="sequence", time_steps=T, hidden=(32,), epochs=8, lr=1e-2, batch_size=16,
        neuron_kwargs={"tau_mem": 4.0, "input_scaling": "none"}, decoding="mean_membrane",
    )  # fmt: skip
    result = train(config, tmp_path / "run")
    assert result.test_acc >= 0.9


def test_cli_fills_encoding_and_time_steps(order_toy: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    code = cli.main(["train", "--dataset", order_toy, "--epochs", "1", "--hidden", "8", "--out", str(out), "--json",
                     "--quiet", "--no-plots"])  # fmt: skip
    assert code == 0, capsys.readouterr()
    saved = json.loads((out / "config.json").read_text())
    assert saved["encoding"] == "sequence" and saved["time_steps"] == T
    code = cli.main(["train", "--dataset", order_toy, "--encoding", "rate", "--out", str(tmp_path / "x"), "--quiet"])
    assert code == 2 and "needs encoding 'sequence'" in capsys.readouterr().err
