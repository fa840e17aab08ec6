"""Post-conversion offset correction (Li et al. 2021 style): numpy hand-loop reference for both modes,
equivalence with a shifted ANN bias, T = L exactness of the first QCFS layer, offset shapes per
granularity, error reduction on a small CNN, the caller's SNN left untouched, and bad input.

No gradient test: the correction is a data-driven, non-differentiable post-processing step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from spikeforge.conversion import (
    QCFS,
    ConvertedSNN,
    SpikingActivation,
    convert,
    correct_offsets,
    layer_errors,
)


def _qcfs_mlp(gen: torch.Generator, levels: int = 4) -> nn.Sequential:
    net = nn.Sequential(nn.Linear(5, 12), QCFS(levels, 1.3), nn.Linear(12, 9), QCFS(levels, 1.1), nn.Linear(9, 3))
    net = net.double()
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen, dtype=torch.float64) * 0.7)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen, dtype=torch.float64) * 0.3)
    return net.eval()


def _np_if(currents: list[np.ndarray], lam: float, v0: np.ndarray) -> list[np.ndarray]:
    """Hand IF loop: threshold lam, reset by subtraction, spike iff v > lam. Returns spikes per step."""
    v, out = v0.copy(), []
    for i in currents:
        v = v + i
        z = (v > lam).astype(float)
        v = v - lam * z
        out.append(z)
    return out


@pytest.mark.parametrize("mode", ["bias", "membrane"])
def test_offsets_match_numpy_hand_loop(gen: torch.Generator, mode: str) -> None:
    net = _qcfs_mlp(gen)
    x = torch.rand(40, 5, generator=gen, dtype=torch.float64) * 2 - 0.5
    T = 3
    snn = correct_offsets(convert(net, None, method="qcfs"), x, T, mode=mode)
    w = [m.weight.detach().numpy() for m in net if isinstance(m, nn.Linear)]
    b = [m.bias.detach().numpy() for m in net if isinstance(m, nn.Linear)]
    lam = [float(m.threshold.detach()) for m in net if isinstance(m, QCFS)]
    with torch.no_grad():
        a1 = net[1](net[0](x)).numpy()
        a2 = net[3](net[2](net[1](net[0](x)))).numpy()
    xn = x.numpy()

    cur1 = xn @ w[0].T + b[0]
    v01 = np.full(cur1.shape, lam[0] / 2)
    z1 = _np_if([cur1] * T, lam[0], v01)
    mu1 = (a1 - lam[0] * sum(z1) / T).mean(0)
    z1 = _np_if([cur1 + mu1] * T, lam[0], v01) if mode == "bias" else _np_if([cur1] * T, lam[0], v01 + T * mu1)
    cur2 = [lam[0] * z @ w[1].T + b[1] for z in z1]
    z2 = _np_if(cur2, lam[1], np.full((x.shape[0], 9), lam[1] / 2))
    mu2 = (a2 - lam[1] * sum(z2) / T).mean(0)
    if mode == "bias":
        z2 = _np_if([c + mu2 for c in cur2], lam[1], np.full((x.shape[0], 9), lam[1] / 2))
    else:
        z2 = _np_if(cur2, lam[1], np.full((x.shape[0], 9), lam[1] / 2) + T * mu2)
    names = snn.activation_names
    got = [getattr(snn.body.get_submodule(n), "current_shift" if mode == "bias" else "membrane_shift") for n in names]
    scale = 1.0 if mode == "bias" else T
    assert float(np.abs(mu1).max()) > 1e-3 and float(np.abs(mu2).max()) > 1e-3  # non-trivial offsets
    np.testing.assert_allclose(got[0].numpy(), scale * mu1, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got[1].numpy(), scale * mu2, rtol=1e-10, atol=1e-12)
    with torch.no_grad():
        out = snn.run(snn.encode(x, T)).output.numpy()
    expected = np.stack([lam[1] * z @ w[2].T + b[2] for z in z2])
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)


def test_current_shift_equals_shifted_ann_bias(gen: torch.Generator) -> None:
    """Path equivalence: a current offset mu on layer l == converting an ANN whose Linear l has bias + mu."""
    net = _qcfs_mlp(gen)
    x = torch.rand(30, 5, generator=gen, dtype=torch.float64)
    snn = convert(net, x, method="qcfs", correction="bias", correction_steps=5)
    shifts = [snn.body.get_submodule(n).current_shift for n in snn.activation_names]
    moved = _qcfs_mlp(torch.Generator().manual_seed(0))
    moved.load_state_dict(net.state_dict())
    with torch.no_grad():
        moved[0].bias += shifts[0]
        moved[2].bias += shifts[1]
    plain = convert(moved, None, method="qcfs")
    with torch.no_grad():
        torch.testing.assert_close(snn.run(snn.encode(x, 7)).output, plain.run(plain.encode(x, 7)).output,
                                   rtol=1e-9, atol=1e-9)
        # the ANN view is not touched by the correction
        torch.testing.assert_close(snn.ann_forward(x)[0], net(x), rtol=1e-12, atol=1e-12)


def _conv_net(gen: torch.Generator, levels: int = 4) -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), QCFS(levels, 1.0), nn.Conv2d(4, 6, 3, padding=1),
                        QCFS(levels, 1.0), nn.AvgPool2d(2), nn.Conv2d(6, 6, 3, padding=1), QCFS(levels, 1.0),
                        nn.Flatten(), nn.Linear(6 * 4 * 4, 10), QCFS(levels, 1.0), nn.Linear(10, 3))
    with torch.no_grad():
        for m in net:
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * 2.0 / fan_in ** 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.2)
    return net.eval()


@pytest.mark.parametrize("granularity, shapes", [
    ("channel", [(4, 1, 1), (6, 1, 1), (6, 1, 1), (10,)]),
    ("layer", [(), (), (), ()]),
    ("neuron", [(4, 8, 8), (6, 8, 8), (6, 4, 4), (10,)]),
])
def test_granularity_shapes_and_first_layer_exact_at_t_equal_l(gen: torch.Generator, granularity: str,
                                                                shapes: list[tuple[int, ...]]) -> None:
    """With analog input and T = L the first QCFS layer is exact (Bu et al. 2022), so its offset is 0."""
    net = _conv_net(gen)
    x = torch.rand(24, 1, 8, 8, generator=gen)
    snn = convert(net, x, method="qcfs", correction="bias", correction_steps=4, correction_granularity=granularity)
    got = [snn.body.get_submodule(n).current_shift for n in snn.activation_names]
    assert [tuple(g.shape) for g in got] == shapes
    torch.testing.assert_close(got[0], torch.zeros_like(got[0]), rtol=0, atol=1e-6)
    assert all(float(g.abs().max()) > 1e-4 for g in got[1:])


@pytest.mark.parametrize("mode", ["bias", "membrane"])
def test_correction_reduces_mean_layer_error_on_cnn(gen: torch.Generator, mode: str) -> None:
    net = _conv_net(gen)
    x = torch.rand(64, 1, 8, 8, generator=gen)
    plain = convert(net, None, method="qcfs")
    fixed = convert(net, x, method="qcfs", correction=mode, correction_steps=4)

    def channel_bias(s: ConvertedSNN) -> list[float]:
        """Mean |per-channel mean of (ANN activation - SNN rate * lambda)| per layer at T = 4."""
        _, ann = s.ann_forward(x)
        run = s.run(s.encode(x, 4))
        out = []
        for name, lam in s.thresholds().items():
            d = ann[name] - lam * run.spike_counts[name] / 4
            out.append(float(d.mean([0, *range(2, d.dim())]).abs().mean()))
        return out

    before, after = channel_bias(plain), channel_bias(fixed)
    assert sum(before[1:]) > 0.01  # the uncorrected deeper layers have a real mean error
    assert sum(after[1:]) < 0.7 * sum(before[1:])  # a wrong sign or scale would increase it
    # the per-layer summary of layer_errors agrees with the ANN/SNN means used above
    errs = layer_errors(fixed, x, 4)
    assert len(errs) == 4 and errs[0].mae < 1e-6


def test_input_snn_untouched_and_rate_input_reproducible(gen: torch.Generator) -> None:
    net = _qcfs_mlp(gen)
    x = torch.rand(20, 5, generator=gen, dtype=torch.float64)
    snn = convert(net, None, method="qcfs", input="rate")
    a = correct_offsets(snn, x, 4, generator=torch.Generator().manual_seed(3))
    b = correct_offsets(snn, x, 4, generator=torch.Generator().manual_seed(3))
    assert all(snn.body.get_submodule(n).current_shift is None for n in snn.activation_names)
    for n in a.activation_names:
        torch.testing.assert_close(a.body.get_submodule(n).current_shift, b.body.get_submodule(n).current_shift)
    # two passes add to the first pass' offsets (second pass offsets are not identical to the first)
    two = correct_offsets(convert(net, None, method="qcfs"), x, 3, iterations=2)
    one = correct_offsets(convert(net, None, method="qcfs"), x, 3, iterations=1)
    name = one.activation_names[1]
    assert not torch.equal(two.body.get_submodule(name).current_shift, one.body.get_submodule(name).current_shift)


@pytest.mark.parametrize("kwargs, match", [
    ({"correction": "bias", "correction_steps": 4}, "calibration_data"),
    ({"correction": "bias", "calib": True}, "correction_steps"),
    ({"correction": "bias", "calib": True, "correction_steps": True}, "correction_steps"),
    ({"correction": "shift", "calib": True, "correction_steps": 4}, "correction must be one of"),
    ({"correction": "bias", "calib": True, "correction_steps": 4, "correction_granularity": "pixel"}, "granularity"),
    ({"correction": "bias", "calib": True, "correction_steps": 4, "correction_iterations": 0}, "iterations"),
])
def test_convert_correction_bad_arguments(gen: torch.Generator, kwargs: dict, match: str) -> None:
    net = _qcfs_mlp(gen)
    data = torch.rand(8, 5, generator=gen, dtype=torch.float64) if kwargs.pop("calib", False) else None
    with pytest.raises(ValueError, match=match):
        convert(net, data, method="qcfs", **kwargs)


def test_correct_offsets_and_spiking_activation_bad_input(gen: torch.Generator) -> None:
    net = _qcfs_mlp(gen)
    snn = convert(net, None, method="qcfs")
    x = torch.rand(8, 5, generator=gen, dtype=torch.float64)
    with pytest.raises(TypeError, match="ConvertedSNN"):
        correct_offsets(net, x, 4)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="num_steps"):
        correct_offsets(snn, x, 0)
    with pytest.raises(ValueError, match="mode"):
        correct_offsets(snn, x, 4, mode="weights")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        correct_offsets(snn, [], 4)
    with pytest.raises(ValueError, match="current_shift"):
        SpikingActivation(nn.ReLU(), 1.0, current_shift=torch.tensor([float("nan")]))
    with pytest.raises(ValueError, match="membrane_shift"):
        SpikingActivation(nn.ReLU(), 1.0, membrane_shift=torch.tensor([1], dtype=torch.int64))


def test_convert_command_with_correction_defaults_steps_to_levels() -> None:
    pytest.importorskip("sklearn")
    from spikeforge.cli.convert import convert_command

    rep = convert_command(dataset="digits", arch="mlp", method="qcfs", levels=4, steps=(2, 4), epochs=1,
                          test_size=100, calib_size=64, correction="membrane", errors=False)
    d = rep.to_dict()
    assert d["correction"] == "membrane" and d["correction_steps"] == 4
    assert "membrane correction at T=4" in rep.table()
    plain = convert_command(dataset="digits", arch="mlp", method="qcfs", levels=4, steps=(2, 4), epochs=1,
                            test_size=100, errors=False)
    assert plain.correction == "none" and plain.correction_steps is None
    assert plain.ann_accuracy == rep.ann_accuracy  # same seed, same ANN: only the SNN differs
