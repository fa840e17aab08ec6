"""fit_eventprop: the unit weight, the latency code, the shared losses, learning a toy task with both readouts,
the shared data path and result type, bad settings."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from spikeforge.data.yinyang import make_yinyang
from spikeforge.exact import EventConfig
from spikeforge.exact import simulate
from spikeforge.training.exact_common import HISTORY_KEYS
from spikeforge.training.exact_common import ExactFitResult
from spikeforge.training.exact_common import check_data
from spikeforge.training.exact_common import step_lr
from spikeforge.training.exact_common import yinyang_data
from spikeforge.training.exact_eventprop import EventPropTrainConfig
from spikeforge.training.exact_eventprop import _bump
from spikeforge.training.exact_eventprop import _loss
from spikeforge.training.exact_eventprop import eventprop_encode
from spikeforge.training.exact_eventprop import fit_eventprop
from spikeforge.training.exact_eventprop import predict
from spikeforge.training.exact_eventprop import unit_weight


@pytest.mark.parametrize(("tau_mem", "tau_syn"), [(20.0, 5.0), (10.0, 10.0), (5.0, 8.0)])
def test_unit_weight_peaks_exactly_at_threshold(tau_mem: float, tau_syn: float) -> None:
    w = unit_weight(tau_mem, tau_syn, 1.5)
    cfg = EventConfig(tau_mem=tau_mem, tau_syn=tau_syn, v_th=1.5, max_spikes=2)
    x = torch.tensor([[[1.0]]], dtype=torch.float64)
    fired = [
        bool(torch.isfinite(simulate(x, [torch.tensor([[w * f]], dtype=torch.float64)], cfg)[0]).any())
        for f in (1 - 1e-9, 1 + 1e-9)
    ]
    assert fired == [False, True]


def test_latency_code_layout() -> None:
    feats = torch.tensor([[0.0, 1.0, 0.25], [0.5, 0.5, 1.0]], dtype=torch.float64)
    cfg = EventPropTrainConfig(t_early=2.0, t_late=10.0, bias_time=3.0)
    t = eventprop_encode(feats, cfg)
    assert t.shape == (2, 4, 1)
    assert t[0, :, 0].tolist() == [2.0, 10.0, 4.0, 3.0] and t[1, :, 0].tolist() == [6.0, 6.0, 10.0, 3.0]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        eventprop_encode(feats * 2, cfg)
    with pytest.raises(ValueError, match="B, F"):
        eventprop_encode(feats[0], cfg)


def test_loss_is_the_papers_first_spike_cross_entropy_written_out() -> None:
    """The recipe's loss equals Göltz/W&P's formula computed here by hand, silent outputs counting as t_end."""
    cfg = EventPropTrainConfig(tau0=0.5, tau1=6.4, alpha=3e-3, t_end=40.0)
    t = torch.tensor([[3.0, 5.0, math.inf], [7.0, 2.0, 4.0]], dtype=torch.float64)
    y = torch.tensor([0, 2])
    tt = torch.tensor([[3.0, 5.0, 40.0], [7.0, 2.0, 4.0]], dtype=torch.float64)
    ce = -torch.log(torch.exp(-tt / 0.5) / torch.exp(-tt / 0.5).sum(1, keepdim=True))[[0, 1], [0, 2]]
    expected = (ce + 3e-3 * (torch.exp(tt[[0, 1], [0, 2]] / 6.4) - 1)).mean()
    torch.testing.assert_close(_loss(t[:, :, None], y, cfg), expected, rtol=1e-14, atol=0)
    v = torch.tensor([[0.2, 1.5, -0.3]], dtype=torch.float64)
    vcfg = EventPropTrainConfig(readout="max_membrane")
    torch.testing.assert_close(_loss(v, torch.tensor([1]), vcfg), F.cross_entropy(v, torch.tensor([1])))


@pytest.mark.parametrize(("rule", "bumped_outputs"), [("label", [0]), ("any", [0, 1, 2])])
def test_bumping_raises_exactly_the_silent_neurons(rule: str, bumped_outputs: list[int]) -> None:
    """Hidden: silent on every sample; outputs: silent where they are the label ("label") or anywhere ("any")."""
    kwargs: dict[str, Any] = {"bump_outputs": rule}
    cfg = EventPropTrainConfig(bump=0.25, **kwargs)
    x = eventprop_encode(torch.tensor([[0.2, 0.7], [0.9, 0.1]], dtype=torch.float64), cfg)
    hidden = torch.full((3, 3), 3.0, dtype=torch.float64)
    hidden[1] = -1.0  # never fires
    params = [hidden.clone(), torch.zeros(3, 3, dtype=torch.float64)]
    inf = math.inf
    out = torch.tensor([[inf, 1.0, inf], [2.0, inf, 3.0]], dtype=torch.float64)[:, :, None]
    _bump(params, x, out, torch.tensor([0, 2]), unit_weight(cfg.tau_mem, cfg.tau_syn, cfg.v_th), cfg)
    expected_hidden = hidden.clone()
    expected_hidden[1] += 0.25
    assert torch.equal(params[0], expected_hidden)
    assert params[1].sum(dim=1).nonzero().flatten().tolist() == bumped_outputs
    assert torch.equal(params[1][bumped_outputs], torch.full((len(bumped_outputs), 3), 0.25, dtype=torch.float64))


def test_bump_decay_scales_the_bump_with_the_learning_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    """With bump_decay the bump of every step is bump * lr_now / lr; without it, bump."""
    import spikeforge.training.exact_eventprop as ep

    original = ep._bump
    for decay in (False, True):
        factors: list[float] = []

        def spy(*args: Any, **kwargs: Any) -> None:
            factors.append(args[6] if len(args) > 6 else kwargs.get("factor", 1.0))
            original(*args, **kwargs)

        monkeypatch.setattr(ep, "_bump", spy)
        cfg = EventPropTrainConfig(hidden=4, epochs=3, batch_size=200, lr=0.01, lr_gamma=0.5, bump_decay=decay)
        fit_eventprop(cfg, data=_toy())
        assert factors == ([1.0, 0.5, 0.25] if decay else [1.0, 1.0, 1.0])
    with pytest.raises(TypeError, match="bump_decay must be a bool"):
        EventPropTrainConfig(bump_decay=1)  # type: ignore[arg-type]
    cfg = EventPropTrainConfig(bump=0.25)
    x = eventprop_encode(torch.tensor([[0.2, 0.7]], dtype=torch.float64), cfg)
    params = [torch.full((2, 3), -1.0, dtype=torch.float64), torch.zeros(3, 2, dtype=torch.float64)]
    out = torch.full((1, 3, 1), math.inf, dtype=torch.float64)
    _bump(params, x, out, torch.tensor([0]), unit_weight(cfg.tau_mem, cfg.tau_syn, cfg.v_th), cfg, 0.5)
    assert torch.equal(params[0], torch.full((2, 3), -0.875, dtype=torch.float64))
    assert torch.equal(params[1], torch.full((3, 2), 0.125, dtype=torch.float64))


def _toy(n: int = 240) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, 2, generator=gen, dtype=torch.float64)
    y = (x[:, 0] > x[:, 1]).long()
    return x[:200], y[:200], x[200:], y[200:]


@pytest.mark.parametrize(("readout", "lr"), [("first_spike", 1e-2), ("max_membrane", 2e-2)])
def test_learns_a_toy_task(readout: str, lr: float) -> None:
    data = _toy()
    kwargs: dict[str, Any] = {"readout": readout}
    cfg = EventPropTrainConfig(hidden=20, epochs=6, batch_size=16, lr=lr, lr_gamma=1.0, average_last=0, **kwargs)
    rows: list[dict[str, float]] = []
    result = fit_eventprop(cfg, data=data, on_epoch=rows.append)
    assert isinstance(result, ExactFitResult) and rows == result.history and len(rows) == 6
    assert all(tuple(r) == HISTORY_KEYS for r in rows)
    assert all(math.isfinite(r["loss"]) and r["seconds"] > 0 for r in rows)
    assert max(r["train_acc"] for r in rows[-2:]) >= 0.8 > rows[0]["train_acc"] - 0.1  # training is noisy
    assert rows[-1]["loss"] < rows[0]["loss"]
    acc = float((predict(result.model, data[2], cfg) == data[3]).double().mean())
    assert acc == rows[-1]["test_acc"] == result.test_acc
    assert [tuple(w.shape) for w in result.model] == [(20, 3), (2, 20)]
    assert result.config["readout"] == readout and result.config["hidden"] == 20


def test_learning_rate_follows_the_step_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lr of every epoch's Adam steps is lr * gamma ** (epoch // step), seen from inside the optimiser."""
    seen: list[float] = []
    original = torch.optim.Adam.step

    def spy(self: torch.optim.Adam, *args: object, **kwargs: object) -> object:
        seen.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", spy)
    cfg = EventPropTrainConfig(hidden=4, epochs=5, batch_size=200, lr=0.01, lr_gamma=0.5, lr_step=2)
    result = fit_eventprop(cfg, data=_toy())  # one step per epoch (batch = all 200 samples)
    assert seen == [0.01, 0.01, 0.005, 0.005, 0.0025]
    assert [step_lr(0.01, 0.5, 2, e) for e in range(5)] == seen
    assert [r["lr"] for r in result.history] == seen


def test_average_last_returns_the_mean_of_the_last_epochs_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``average_last = k`` the returned network is the mean of the weights at the end of the last k epochs
    (seen from the per-epoch predictions), and its accuracy is the result's test accuracy."""
    import spikeforge.training.exact_eventprop as ep

    seen: list[list[torch.Tensor]] = []
    original = ep.predict

    def spy(weights: list[torch.Tensor], features: torch.Tensor, cfg: EventPropTrainConfig) -> torch.Tensor:
        seen.append([w.clone() for w in weights])
        return original(weights, features, cfg)

    monkeypatch.setattr(ep, "predict", spy)
    cfg = EventPropTrainConfig(hidden=6, epochs=4, batch_size=50, lr=1e-2, average_last=3)
    result = fit_eventprop(cfg, data=_toy())
    assert len(seen) == 5  # one per epoch, then the averaged network
    for i, got in enumerate(result.model):
        want = (seen[1][i] + seen[2][i] + seen[3][i]) / 3
        torch.testing.assert_close(got, want, rtol=0, atol=1e-15)
        assert not torch.equal(got, seen[3][i])  # not the last epoch's weights
    acc = float((original(result.model, _toy()[2], cfg) == _toy()[3]).double().mean())
    assert result.test_acc == acc
    plain = fit_eventprop(replace(cfg, average_last=0), data=_toy())
    longer = fit_eventprop(replace(cfg, average_last=10), data=_toy())  # more than the epochs: all of them
    for i, got in enumerate(longer.model):
        torch.testing.assert_close(got, sum(seen[e][i] for e in range(4)) / 4, rtol=0, atol=1e-15)
    assert plain.test_acc == plain.history[-1]["test_acc"]
    for a, b in zip(plain.model, seen[3], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # same run without averaging ends at those weights


def test_default_data_is_the_published_yinyang_split() -> None:
    train_x, train_y, test_x, test_y = yinyang_data(7, 5)
    ref_x, ref_y = make_yinyang(7, 42)
    assert torch.equal(train_x, torch.from_numpy(ref_x)) and torch.equal(train_y, torch.from_numpy(ref_y))
    assert torch.equal(test_x, torch.from_numpy(make_yinyang(5, 40)[0])) and test_y.shape == (5,)
    cfg = EventPropTrainConfig(hidden=3, epochs=1, train_size=7, test_size=5)
    result = fit_eventprop(cfg)
    assert [tuple(w.shape) for w in result.model] == [(3, 5), (3, 3)]  # 4 features + bias, 3 classes


def test_bad_data_raises() -> None:
    x, y = torch.rand(4, 2, dtype=torch.float64), torch.zeros(4, dtype=torch.int64)
    with pytest.raises(TypeError, match="four tensors"):
        check_data((x, y, x))
    with pytest.raises(ValueError, match="long"):
        check_data((x, y.float(), x, y))
    with pytest.raises(ValueError, match="make them equal"):
        check_data((x, y, x[:, :1], y))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fit_eventprop(EventPropTrainConfig(epochs=1), data=(x * 3, y, x, y))
    assert check_data((x.float(), y, x, y))[0][0].dtype == torch.float64


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hidden": 0}, "hidden"),
        ({"epochs": -1}, "epochs"),
        ({"lr": 0.0}, "lr"),
        ({"t_end": math.inf}, "t_end"),
        ({"readout": "rate"}, "readout"),
        ({"init": ((0.1, 0.1),)}, "init"),
        ({"tau_syn": -1.0}, "tau_syn"),
        ({"lr_gamma": 0.0}, "lr_gamma"),
        ({"t_early": 5.0, "t_late": 1.0}, "t_early"),
        ({"alpha": -1.0}, "alpha"),
        ({"bump_outputs": "all"}, "bump_outputs"),
        ({"average_last": -1}, "average_last"),
    ],
)
def test_bad_settings_raise(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        EventPropTrainConfig(**kwargs)  # type: ignore[arg-type]
