"""DelayedLinear: integer shifts vs a hand-built loop, interpolations vs formulas written here, zero delays ==
nn.Linear, gradients vs float64 finite differences, use inside SNNSequential, and the refusals."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from spikeforge.layers import SNNSequential
from spikeforge.neurons import LIF
from spikeforge.neurons import CubaLIF
from spikeforge.synapses import DelayedLinear
from spikeforge.synapses import check_delays
from spikeforge.synapses import sigma_schedule

T, B, NI, NO, D = 12, 3, 4, 5, 6


def spikes(gen: torch.Generator, t: int = T) -> torch.Tensor:
    return (torch.rand(t, B, NI, generator=gen, dtype=torch.float64) < 0.4).double()


def loop_reference(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, kernel_of) -> torch.Tensor:
    """y[t, n, o] = b[o] + sum_i w[o, i] sum_j kernel_of(o, i)[j] x[t - j, n, i], written as plain loops."""
    t_len, n_b, n_in = x.shape
    y = torch.zeros(t_len, n_b, w.shape[0], dtype=torch.float64)
    for t in range(t_len):
        for o in range(w.shape[0]):
            acc = b[o].item() + torch.zeros(n_b, dtype=torch.float64)
            for i in range(n_in):
                k = kernel_of(o, i)
                for j, kj in enumerate(k):
                    if t - j >= 0 and kj != 0.0:
                        acc = acc + w[o, i].item() * kj * x[t - j, :, i]
            y[t, :, o] = acc
    return y


def one_hot(d: float) -> list[float]:
    return [1.0 if j == int(d) else 0.0 for j in range(D + 1)]


def layer(per: str, interpolation: str = "gaussian", delays=None, **kw) -> DelayedLinear:
    torch.manual_seed(0)
    return DelayedLinear(NI, NO, D, per=per, interpolation=interpolation, delays=delays, **kw).double()


@pytest.mark.parametrize("per", ["axon", "synapse"])
def test_rounded_runs_exact_integer_shifts(per, gen):
    m = layer(per)
    r = m.rounded()
    d = r.delays
    assert torch.equal(d, d.round()) and torch.equal(d, m.delays.detach().clamp(0, D).round())
    x = spikes(gen)
    w, b = r.weight.detach(), r.bias.detach()
    ref = loop_reference(x, w, b, lambda o, i: one_hot(d[i] if per == "axon" else d[o, i]))
    torch.testing.assert_close(r(x), ref, rtol=0, atol=1e-12)
    # an integer shift moves a single spike exactly d steps later
    x1 = torch.zeros(T, 1, NI, dtype=torch.float64)
    x1[2, 0, 1] = 1.0
    y1 = r(x1) - r.bias.detach()
    dd = d[1] if per == "axon" else d[:, 1]
    for o in range(NO):
        t_arr = 2 + int(dd if per == "axon" else dd[o])
        expect = torch.zeros(T, dtype=torch.float64)
        expect[t_arr] = w[o, 1]
        torch.testing.assert_close(y1[:, 0, o], expect, rtol=0, atol=1e-15)


@pytest.mark.parametrize("per", ["axon", "synapse"])
def test_linear_interpolation_matches_formula(per, gen):
    m = layer(per, "linear")
    x = spikes(gen)
    d = m.delays.detach()

    def kern(o: int, i: int) -> list[float]:
        di = float(d[i] if per == "axon" else d[o, i])
        lo, f = math.floor(di), di - math.floor(di)
        return [(1 - f) if j == lo else f if j == lo + 1 else 0.0 for j in range(D + 1)]

    ref = loop_reference(x, m.weight.detach(), m.bias.detach(), kern)
    torch.testing.assert_close(m(x), ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("per", ["axon", "synapse"])
def test_gaussian_interpolation_matches_formula(per, gen):
    m = layer(per, sigma=1.3)
    x = spikes(gen)
    d = m.delays.detach()

    def kern(o: int, i: int) -> list[float]:
        di = float(d[i] if per == "axon" else d[o, i])
        g = [math.exp(-((j - di) ** 2) / (2 * 1.3**2)) for j in range(D + 1)]
        return [v / sum(g) for v in g]

    ref = loop_reference(x, m.weight.detach(), m.bias.detach(), kern)
    torch.testing.assert_close(m(x), ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("per", ["axon", "synapse"])
def test_narrow_gaussian_tends_to_the_rounded_layer(per, gen):
    m = layer(per, sigma=0.05)
    with torch.no_grad():
        m.delays.copy_(m.delays.round() + 0.2)  # 0.2 off an integer: the neighbour tap weighs exp(-120) ~ 1e-52
    x = spikes(gen)
    torch.testing.assert_close(m(x), m.rounded()(x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("per", ["axon", "synapse"])
@pytest.mark.parametrize("mode", ["rounded", "linear"])
def test_zero_delays_equal_plain_linear(per, mode, gen):
    shape = (NI,) if per == "axon" else (NO, NI)
    m = layer(per, "linear", delays=torch.zeros(shape))
    if mode == "rounded":
        m = m.rounded()
    lin = nn.Linear(NI, NO).double()
    with torch.no_grad():
        lin.weight.copy_(m.weight)
        lin.bias.copy_(m.bias)
    x = torch.randn(T, B, NI, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(m(x), lin(x), rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("per", ["axon", "synapse"])
@pytest.mark.parametrize("interpolation", ["gaussian", "linear"])
def test_gradients_match_finite_differences(per, interpolation, gen):
    m = layer(per, interpolation, sigma=0.9)
    with torch.no_grad():  # keep linear-interpolation delays off the integers (kinks of |j - d|)
        m.delays.copy_(m.delays.floor().clamp(max=D - 1) + 0.3)
    x = torch.randn(8, 2, NI, generator=gen, dtype=torch.float64, requires_grad=True)

    def f(x, w, b, d):
        return torch.func.functional_call(m, {"weight": w, "bias": b, "delays": d}, (x,))

    w, b, d = (p.detach().clone().requires_grad_() for p in (m.weight, m.bias, m.delays))
    assert torch.autograd.gradcheck(f, (x, w, b, d), eps=1e-6, atol=1e-7)


def test_delay_gradient_has_the_sign_that_moves_a_spike_towards_its_target():
    """One synapse, one input spike at t=2, target output at t=6: the loss falls as d grows from 2 towards 4."""
    m = DelayedLinear(1, 1, 8, per="synapse", delays=torch.tensor([[2.0]]), bias=False, sigma=1.0).double()
    with torch.no_grad():
        m.weight.fill_(1.0)
    x = torch.zeros(12, 1, 1, dtype=torch.float64)
    x[2] = 1.0
    target = torch.zeros(12, 1, 1, dtype=torch.float64)
    target[6] = 1.0
    loss = ((m(x) - target) ** 2).sum()
    loss.backward()
    assert m.delays.grad is not None and float(m.delays.grad) < 0


@pytest.mark.parametrize("neuron", [LIF, CubaLIF])
@pytest.mark.parametrize("per", ["axon", "synapse"])
def test_inside_snnsequential_with_lif_family(neuron, per, gen):
    m = layer(per)
    lif = neuron().double()
    net = SNNSequential(m, lif)
    x = spikes(gen, 20)
    out, states = net(x)
    ref, _ = lif(m(x))
    assert torch.equal(out, ref) and len(states) == 1
    # time is not folded into the batch: a spike at t arrives max(d) steps later at most
    out.sum().backward()
    assert m.delays.grad is not None and torch.isfinite(m.delays.grad).all()
    fast = SNNSequential(m.rounded(), lif)
    assert fast(x)[0].shape == out.shape


def test_refusals():
    with pytest.raises(ValueError, match="NaN"):
        DelayedLinear(2, 2, 4, delays=torch.tensor([[1.0, float("nan")], [0.0, 0.0]]))
    with pytest.raises(ValueError, match=">= 0"):
        DelayedLinear(2, 2, 4, delays=torch.tensor([[1.0, -1.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="max_delay >= 7"):
        DelayedLinear(2, 2, 4, delays=torch.tensor([[1.0, 6.5], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="shape"):
        DelayedLinear(2, 2, 4, per="axon", delays=torch.zeros(2, 2))
    with pytest.raises(ValueError, match="per must be"):
        DelayedLinear(2, 2, 4, per="dendrite")
    with pytest.raises(ValueError, match="interpolation"):
        DelayedLinear(2, 2, 4, interpolation="cubic")
    with pytest.raises(ValueError, match="sigma must be > 0"):
        DelayedLinear(2, 2, 4, sigma=0.0)
    m = DelayedLinear(2, 3, 4)
    with pytest.raises(ValueError, match="needs T > 4"):
        m(torch.zeros(4, 1, 2))  # delays larger than the sequence
    with pytest.raises(ValueError, match="needs T > 4"):
        m.rounded()(torch.zeros(3, 1, 2))
    with pytest.raises(ValueError, match="in_features=2"):
        m(torch.zeros(8, 1, 3))
    with pytest.raises(ValueError, match="NaN"):
        m(torch.full((8, 1, 2), float("nan")))
    with torch.no_grad():
        m.delays[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        m(torch.zeros(8, 1, 2))
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        check_delays([1.0], 3)  # type: ignore[arg-type]


def test_clamp_and_sigma_schedule():
    m = DelayedLinear(2, 2, 4, delays=torch.tensor([[0.5, 1.0], [2.0, 3.0]]))
    with torch.no_grad():
        m.delays.copy_(torch.tensor([[-0.7, 1.0], [5.5, 3.0]]))
    assert torch.equal(m.delay_values(), torch.tensor([[0.0, 1.0], [4.0, 3.0]]))
    m.clamp_delays_()
    assert torch.equal(m.delays.detach(), torch.tensor([[0.0, 1.0], [4.0, 3.0]]))
    assert sigma_schedule(0, 5, 4.0, 0.5) == 4.0
    assert sigma_schedule(4, 5, 4.0, 0.5) == 0.5
    assert sigma_schedule(2, 5, 4.0, 0.5) == pytest.approx(2.25)
    with pytest.raises(ValueError):
        sigma_schedule(5, 5, 4.0)
    r = m.rounded()
    assert not isinstance(r.delays, nn.Parameter) and isinstance(m.delays, nn.Parameter)
    with torch.no_grad():
        r.weight.zero_()
    assert m.weight.abs().sum() > 0  # the copy is independent


@pytest.mark.parametrize("per", ["axon", "synapse"])
@pytest.mark.parametrize("mode", ["gaussian", "linear", "rounded"])
def test_streaming_steps_equal_the_sequence(per, mode, gen):
    m = layer(per, "linear" if mode == "linear" else "gaussian", sigma=1.1)
    if mode == "rounded":
        m = m.rounded()
    x = spikes(gen)
    line, ys = None, []
    for x_t in x:
        y_t, line = m.step(x_t, line)
        ys.append(y_t)
    torch.testing.assert_close(torch.stack(ys), m(x), rtol=0, atol=1e-12)
    a, line = m.step(x[0])  # a stream may be shorter than max_delay: the line starts silent
    assert a.shape == (B, NO) and line.history.shape == (D + 1, B, NI)
    with pytest.raises(ValueError, match="line=None"):
        m.step(x[0, :2], line)  # a different batch size
    with pytest.raises(ValueError, match="x_t"):
        m.step(x)


def test_state_dict_round_trip_keeps_the_mode(gen):
    m = layer("synapse", sigma=0.7)
    r = m.rounded()
    fresh = layer("synapse")
    fresh.load_state_dict(r.state_dict())
    x = spikes(gen)
    assert fresh.integer and torch.equal(fresh(x), r(x))  # runs exact shifts, as the saved layer did
    again = layer("synapse")
    again.load_state_dict(m.state_dict())
    assert not again.integer and again.sigma == 0.7 and torch.equal(again(x), m(x))
    with pytest.raises(ValueError, match="per='synapse'"):
        layer("axon").load_state_dict(m.state_dict(), strict=False)
