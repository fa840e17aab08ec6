"""Converted SNNs: hand-loop reference, rates -> ANN activations as T grows, residual and pooling
models, max-pool gating rule, Rueckauer scales, rate input, state threading, observers, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikeforge.conversion import (
    QCFS,
    ConvertedSNN,
    SpikingMaxPool,
    calibrate_scales,
    convert,
    observe_activations,
    percentile,
)
from spikeforge.conversion.spiking import MaxPoolGateState


def _mlp(gen: torch.Generator, dtype: torch.dtype = torch.float64) -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 12), nn.ReLU(), nn.Dropout(0.1), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3))
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * 0.6)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.2)
    return net.to(dtype).eval()


def test_snn_matches_hand_written_if_loop(gen: torch.Generator) -> None:
    """Independent reference: numpy IF neurons (threshold lambda, reset by subtraction, v > v_th)."""
    net = _mlp(gen)
    x = torch.rand(6, 5, generator=gen, dtype=torch.float64)
    snn = convert(net, torch.rand(50, 5, generator=gen, dtype=torch.float64), percentile=99.0)
    lam = list(snn.thresholds().values())
    T = 20
    with torch.no_grad():
        out = snn.run(snn.encode(x, T)).output.numpy()
    w = [m.weight.detach().numpy() for m in net if isinstance(m, nn.Linear)]
    b = [m.bias.detach().numpy() for m in net if isinstance(m, nn.Linear)]
    xn = x.numpy()
    v1, v2 = np.zeros((6, 12)), np.zeros((6, 8))
    for t in range(T):
        v1 += xn @ w[0].T + b[0]
        z1 = (v1 > lam[0]).astype(float)
        v1 -= lam[0] * z1
        v2 += (lam[0] * z1) @ w[1].T + b[1]
        z2 = (v2 > lam[1]).astype(float)
        v2 -= lam[1] * z2
        np.testing.assert_allclose(out[t], (lam[1] * z2) @ w[2].T + b[2], rtol=1e-10, atol=1e-10)


def test_firing_rates_approach_ann_activations_as_t_grows(gen: torch.Generator) -> None:
    net = _mlp(gen)
    x = torch.rand(32, 5, generator=gen, dtype=torch.float64)
    snn = convert(net, x, percentile=100.0)  # max-norm: no activation is clipped
    with torch.no_grad():
        h1 = torch.relu(x @ net[0].weight.T + net[0].bias)  # ANN activations computed here
        h2 = torch.relu(h1 @ net[3].weight.T + net[3].bias)
    names = snn.activation_names
    errs = []
    for T in (8, 64, 512):
        with torch.no_grad():
            r = snn.run(snn.encode(x, T))
        lam = snn.thresholds()
        e1 = (lam[names[0]] * r.spike_counts[names[0]] / T - h1).abs().max()
        e2 = (lam[names[1]] * r.spike_counts[names[1]] / T - h2).abs().max()
        errs.append(float(max(e1, e2)))
        # first layer, constant input: |rate * lambda - a| <= lambda / T exactly (reset by subtraction)
        assert float(e1) <= lam[names[0]] / T + 1e-12
    assert errs[0] > errs[1] > errs[2] and errs[2] < 0.05 * max(float(h1.max()), float(h2.max()))


class _Res(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4 * 3 * 3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu(self.bn1(self.c1(x)))
        h = self.relu(self.c2(h) + h)  # residual add, shared ReLU module
        h = F.avg_pool2d(self.pool(h), 2)
        return self.fc(h.view(h.size(0), -1))


@pytest.mark.parametrize("input_mode", ["analog", "rate"])
def test_residual_and_pooling_model_converges_to_ann(gen: torch.Generator, input_mode: str) -> None:
    torch.manual_seed(1)
    net = _Res().double().eval()
    x = torch.rand(8, 1, 12, 12, generator=gen, dtype=torch.float64)
    snn = convert(net, x, percentile=100.0, input=input_mode)
    assert len(snn.activation_names) == 2
    assert any(isinstance(m, SpikingMaxPool) for m in snn.modules())
    with torch.no_grad():
        ann_out = net(x)
        ref, _ = snn.ann_forward(x)
        torch.testing.assert_close(ref, ann_out, rtol=1e-12, atol=1e-12)
        g = torch.Generator().manual_seed(5)
        err = [float((snn.run(snn.encode(x, T, generator=g)).output.mean(0) - ann_out).abs().mean()) for T in (4, 200)]
    scale = float((ann_out - net.fc.bias.detach()).abs().mean())  # the spike-driven part of the output
    assert err[1] < err[0] / 4 and err[1] < 0.15 * scale


def test_spiking_maxpool_gating_rule_against_hand_loop(gen: torch.Generator) -> None:
    pool = SpikingMaxPool(nn.MaxPool2d(2))
    x = (torch.rand(10, 2, 3, 4, 4, generator=gen) < 0.4).double()
    y, state = pool(x)
    acc = np.zeros((2, 3, 4, 4))
    xn = x.numpy()
    for t in range(10):
        acc += xn[t]
        for b, c, i, j in np.ndindex(2, 3, 2, 2):
            win = acc[b, c, 2 * i:2 * i + 2, 2 * j:2 * j + 2].reshape(-1)
            k = int(np.argmax(win))  # first maximum, like torch
            assert y[t, b, c, i, j] == xn[t, b, c, 2 * i + k // 2, 2 * j + k % 2]
    torch.testing.assert_close(state.acc, x.sum(0))
    # constant analog input: exactly the ANN max-pool
    a = torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64)
    ya, _ = pool(a.expand(5, *a.shape))
    torch.testing.assert_close(ya, F.max_pool2d(a, 2).expand(5, 2, 3, 2, 2))
    with pytest.raises(ValueError, match=r"\[T, B, C, H, W\]"):
        pool(torch.zeros(2, 3, 4, 4))
    with pytest.raises(TypeError):
        SpikingMaxPool(nn.AvgPool2d(2))  # type: ignore[arg-type]
    assert isinstance(pool.init_state(a), MaxPoolGateState)


def test_chunked_run_with_threaded_states_equals_one_run(gen: torch.Generator) -> None:
    torch.manual_seed(2)
    net = _Res().eval()
    x = torch.rand(3, 1, 12, 12, generator=gen)
    snn = convert(net, x)
    with torch.no_grad():
        full, _ = snn(snn.encode(x, 12))
        a, s = snn(snn.encode(x, 5))
        b, _ = snn(snn.encode(x, 7), s)
    torch.testing.assert_close(torch.cat([a, b]), full)


def test_rueckauer_scales_are_percentiles_of_positive_activations(gen: torch.Generator) -> None:
    net = _mlp(gen)
    x = torch.rand(200, 5, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        h1 = torch.relu(net[0](x))
    for p in (100.0, 99.9, 90.0):
        snn = convert(net, x, percentile=p, batch_size=64)
        got = list(snn.thresholds().values())[0]
        np.testing.assert_allclose(got, np.percentile(h1[h1 > 0].numpy(), p), rtol=1e-12)
    assert snn.body.get_submodule(snn.activation_names[0]).v_init == 0.0


def test_percentile_helper_matches_numpy(gen: torch.Generator) -> None:
    v = torch.rand(1001, generator=gen, dtype=torch.float64)
    for p in (0.5, 50.0, 99.9, 100.0):
        np.testing.assert_allclose(percentile(v, p), np.percentile(v.numpy(), p), rtol=1e-12)
    with pytest.raises(ValueError, match="percentile"):
        percentile(v, 0.0)
    with pytest.raises(ValueError, match="empty"):
        percentile(torch.zeros(0), 50.0)


def test_observers_removed_even_on_error(gen: torch.Generator) -> None:
    net = _mlp(gen, torch.float32)
    bad = [torch.rand(4, 5, generator=gen), torch.rand(4, 7, generator=gen)]  # second batch: wrong width
    with pytest.raises(RuntimeError):
        calibrate_scales(net, bad, ["1", "4"])
    assert all(not m._forward_hooks for m in net.modules())
    with pytest.raises(KeyError):
        with observe_activations(net, ["1"]) as store:
            net(torch.rand(2, 5))
            assert len(store["1"]) == 1 and net[1]._forward_hooks
            raise KeyError("boom")
    assert all(not m._forward_hooks for m in net.modules())


def test_calibration_data_forms(gen: torch.Generator) -> None:
    net = _mlp(gen, torch.float32)
    x = torch.rand(40, 5, generator=gen)
    ref = convert(net, x).thresholds()

    class DS:
        pass

    ds = DS()
    ds.x = x  # type: ignore[attr-defined]
    assert convert(net, ds).thresholds() == ref
    assert convert(net, [(x[:20], None), (x[20:], None)]).thresholds() == ref
    with pytest.raises(ValueError, match="empty"):
        convert(net, [])
    with pytest.raises(TypeError, match="calibration data"):
        convert(net, 3.0)
    with pytest.raises(ValueError, match="calibration_data"):
        convert(net, None)


def test_qcfs_method_uses_trained_thresholds_and_half_membrane(gen: torch.Generator) -> None:
    net = nn.Sequential(nn.Linear(4, 6), QCFS(4, 1.3), nn.Linear(6, 2))
    snn = convert(net, None, method="qcfs")
    act = snn.body.get_submodule(snn.activation_names[0])
    assert act.threshold == pytest.approx(1.3) and act.v_init == 0.5
    torch.testing.assert_close(act.init_state(torch.zeros(2, 6)).v, torch.full((2, 6), 0.65))
    with pytest.raises(ValueError, match="QCFS"):
        convert(_mlp(gen, torch.float32), None, method="qcfs")


@pytest.mark.parametrize(
    "kwargs, match",
    [({"method": "bogus"}, "method"), ({"input": "latency"}, "input"), ({"percentile": 0.0}, "percentile"),
     ({"percentile": 100.5}, "percentile"), ({"v_init": 1.0}, "v_init")],
)
def test_convert_bad_arguments(gen: torch.Generator, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        convert(_mlp(gen, torch.float32), torch.rand(4, 5), **kwargs)


def test_run_and_encode_bad_input(gen: torch.Generator) -> None:
    snn = convert(_mlp(gen, torch.float32), torch.rand(10, 5, generator=gen))
    with pytest.raises(ValueError, match="T = 0|T >= 1"):
        snn.run(torch.zeros(0, 2, 5))
    with pytest.raises(ValueError, match="NaN"):
        snn.run(torch.full((2, 2, 5), float("nan")))
    with pytest.raises(TypeError, match="floating"):
        snn.run(torch.zeros(2, 2, 5, dtype=torch.int64))
    with pytest.raises(TypeError, match="states"):
        snn.run(torch.zeros(2, 2, 5), states=[1])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reset_states|state"):
        _, s = snn(torch.zeros(2, 2, 5))
        snn(torch.zeros(2, 3, 5), s)  # batch size changed with a carried state
    rate = convert(_mlp(gen, torch.float32), torch.rand(10, 5), input="rate")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        rate.encode(torch.full((2, 5), 2.0), 4)
    spikes = rate.encode(torch.full((2, 5), 0.5), 100, generator=torch.Generator().manual_seed(0))
    assert set(spikes.unique().tolist()) == {0.0, 1.0}
    with pytest.raises(ValueError, match="input"):
        ConvertedSNN(snn.body, input_mode="bogus")


def test_float64_path_keeps_dtype(gen: torch.Generator) -> None:
    snn = convert(_mlp(gen), torch.rand(10, 5, generator=gen, dtype=torch.float64))
    r = snn.run(snn.encode(torch.rand(2, 5, generator=gen, dtype=torch.float64), 3))
    assert r.output.dtype == torch.float64
    assert all(s.v.dtype == torch.float64 for s in r.states.values())
