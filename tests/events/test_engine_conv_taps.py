"""Conv2d layers of the streaming engine by kernel taps (``conv_taps=True``, the default) against the generic fan-out
lists (``conv_taps=False``: bit-identical currents, so identical membranes, schedules and spikes), the dense
SNNSequential (the oracle: spikes), and the tap scatter against ``F.conv2d`` (an independent reference)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from torch import nn

from spikeforge.events import StreamingEngine
from spikeforge.events._conv_taps import conv_scatter
from spikeforge.events._conv_taps import conv_table
from spikeforge.events._kernel import numba_available
from spikeforge.layers import SNNSequential
from spikeforge.layers import record
from spikeforge.neurons import IF
from spikeforge.neurons import LIF
from spikeforge.neurons import CubaLIF

D = torch.float64
MODES = [False] + ([True] if numba_available() else [])

# (C_in, C_out, kernel, stride, padding, dilation, (H, W))
GEOMETRIES = [
    (2, 3, 3, 1, 1, 1, (8, 8)),
    (2, 4, 3, 2, 1, 1, (9, 8)),
    (3, 5, (3, 2), (1, 2), (2, 0), (2, 1), (9, 7)),
    (1, 4, 5, 3, 4, 1, (6, 6)),  # kernel and padding larger than the input, stride > 1
    (3, 2, 1, 1, 0, 1, (5, 4)),  # 1x1
    (2, 3, 2, 3, 0, 1, (8, 7)),  # stride > kernel: some inputs reach no output
]
NEURONS = {
    "lif": lambda: LIF(5.0),
    "lif_to_value": lambda: LIF(4.0, reset="to_value", v_reset=-0.1),
    "if_none": lambda: IF(reset="none"),
    "cuba": lambda: CubaLIF(5.0, 3.0),
}


def _net(geo: tuple, neuron: str, bias: bool, scale: float, dtype: torch.dtype = D) -> SNNSequential:
    cin, cout, k, s, p, d, hw = geo
    conv = nn.Conv2d(cin, cout, k, stride=s, padding=p, dilation=d, bias=bias)
    n_out = int(np.prod(conv(torch.zeros(1, cin, *hw)).shape))
    net = SNNSequential(conv, NEURONS[neuron](), nn.Flatten(), nn.Linear(n_out, 5, bias=False), LIF(3.0)).to(dtype)
    fan_in = conv.weight[0].numel()
    with torch.no_grad():
        for q in net.parameters():
            q.mul_(scale * max(1.0, 18 / fan_in) ** 0.5)  # a small fan-in gets more weight: every layer fires
    return net


def _states_equal(ra, rb) -> None:  # type: ignore[no-untyped-def]
    """The conv layer's state bit for bit, every layer's spikes and operation counts; the layer after it sums the
    spikes in the order they were emitted (ascending index by taps, first touched by the lists): equal to rounding."""
    n = ra.layer_spikes[0].shape[-1]
    for name in ("v", "i", "last", "due"):
        assert np.array_equal(getattr(ra.state, name)[:n], getattr(rb.state, name)[:n]), name
    np.testing.assert_allclose(ra.state.v[n:], rb.state.v[n:], rtol=1e-6, atol=1e-6)
    assert np.array_equal(ra.state.ops, rb.state.ops)
    for x, y in zip(ra.layer_spikes, rb.layer_spikes):
        assert torch.equal(x, y)


@pytest.mark.parametrize("use_numba", MODES)
@pytest.mark.parametrize("neuron", list(NEURONS))
@pytest.mark.parametrize("geo", GEOMETRIES)
def test_taps_equal_fan_out_lists_and_dense(geo: tuple, neuron: str, use_numba: bool, gen: torch.Generator) -> None:
    torch.manual_seed(7)
    net = _net(geo, neuron, bias=neuron != "cuba", scale=4.0 if neuron != "cuba" else 2.5)
    shape = (geo[0], *geo[6])
    x = (torch.rand(20, 1, *shape, generator=gen, dtype=D) < 0.3).to(D)
    with torch.no_grad():
        (out, _), rec = record(net, x)
    taps = StreamingEngine(net, shape, use_numba=use_numba).run(x, record=True)
    csr = StreamingEngine(net, shape, use_numba=use_numba, conv_taps=False).run(x, record=True)
    _states_equal(taps, csr)
    assert torch.equal(taps.spikes, out.float())
    conv_spikes = next(iter(rec.values()))
    assert torch.equal(taps.layer_spikes[0], conv_spikes.reshape(20, 1, -1).float())
    assert 0 < int(conv_spikes.sum()) < conv_spikes.numel()  # the conv layer fires, but not always
    assert taps.ops.layers[0].synops == csr.ops.layers[0].synops > 0


@pytest.mark.parametrize("geo", GEOMETRIES[:3])
def test_float32_model_taps_equal_lists_and_dense(geo: tuple, gen: torch.Generator) -> None:
    """A float32 model: float32 weight tables, float64 currents; the two conv paths agree bit for bit."""
    torch.manual_seed(3)
    net = _net(geo, "lif", bias=True, scale=4.0, dtype=torch.float32)
    shape = (geo[0], *geo[6])
    x = (torch.rand(15, 1, *shape, generator=gen) < 0.3).float()
    with torch.no_grad():
        out, _ = net(x)
    taps = StreamingEngine(net, shape, use_numba=MODES[-1]).run(x, record=True)
    csr = StreamingEngine(net, shape, use_numba=MODES[-1], conv_taps=False).run(x, record=True)
    _states_equal(taps, csr)
    assert torch.equal(taps.spikes, out.float())
    assert 0 < int(taps.layer_spikes[0].sum()) < taps.layer_spikes[0].numel()


def test_chained_calls_and_idle_steps_equal_one_run(gen: torch.Generator) -> None:
    """Sparse input with silent steps (lazy leak with a bias drive, spontaneous firing), split over two calls."""
    torch.manual_seed(11)
    net = _net(GEOMETRIES[1], "lif", bias=True, scale=4.0)
    with torch.no_grad():
        net.layers[0].bias.copy_(torch.tensor([0.5, -0.2, 0.0, 0.3], dtype=D))  # some channels fire on their own
    x = (torch.rand(30, 1, 2, 9, 8, generator=gen, dtype=D) < 0.05).to(D)
    x[5:12] = 0.0
    with torch.no_grad():
        (out, _), rec = record(net, x)
    eng = StreamingEngine(net, (2, 9, 8), use_numba=MODES[-1])
    one = eng.run(x, record=True)
    first = eng.run(x[:13], record=True)
    second = eng.run(x[13:], first.state, record=True)
    assert torch.equal(torch.cat([first.spikes, second.spikes]), one.spikes)
    assert torch.equal(one.spikes, out.float())
    assert torch.equal(one.layer_spikes[0], next(iter(rec.values())).reshape(30, 1, -1).float())
    ref = StreamingEngine(net, (2, 9, 8), use_numba=MODES[-1], conv_taps=False).run(x, record=True)
    _states_equal(one, ref)
    assert one.ops.layers[0].neuron_updates < 30 * 4 * 5 * 4  # idle neurons were skipped


@pytest.mark.parametrize("fill", [0.0, 1.0])
def test_no_input_and_every_input(fill: float) -> None:
    torch.manual_seed(5)
    net = _net(GEOMETRIES[0], "lif", bias=False, scale=2.0)
    x = torch.full((6, 1, 2, 8, 8), fill, dtype=D)
    with torch.no_grad():
        out, _ = net(x)
    taps = StreamingEngine(net, (2, 8, 8), use_numba=MODES[-1]).run(x, record=True)
    csr = StreamingEngine(net, (2, 8, 8), use_numba=MODES[-1], conv_taps=False).run(x, record=True)
    assert torch.equal(taps.spikes, out.float())
    _states_equal(taps, csr)
    assert (taps.ops.layers[0].synops == 0) == (fill == 0.0)


def _scatter_reference(geo: tuple, x: torch.Tensor, seed: int) -> None:
    """One step's currents by taps (analog input values) against F.conv2d, and the touched positions."""
    cin, cout, k, s, p, d, _ = geo
    torch.manual_seed(seed)
    conv = nn.Conv2d(cin, cout, k, stride=s, padding=p, dilation=d, bias=False).to(D)
    ref = F.conv2d(x[None], conv.weight, None, s, p, d)[0]  # [C_out, OH, OW]
    table, g = conv_table(conv, tuple(x.shape), tuple(ref.shape))
    idx = torch.nonzero(x.reshape(-1)).reshape(-1).numpy()
    vals = x.reshape(-1)[idx].numpy()
    cv = np.zeros(ref.numel())
    pflag = np.zeros(ref.shape[1] * ref.shape[2], dtype=np.uint8)
    ops = conv_scatter(cv, table, 0, g, idx, vals, False, 0, idx.size, pflag)
    got = torch.from_numpy(cv).reshape(ref.shape[1], ref.shape[2], cout).permute(2, 0, 1)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
    # touched: the outputs whose receptive field holds an input; ops: one per (input, valid tap, output channel)
    ind = (x != 0).to(D).sum(0, keepdim=True)[None]
    reach = F.conv2d(ind, torch.ones(1, 1, *conv.kernel_size, dtype=D), None, s, p, d)[0, 0]
    assert np.array_equal(pflag.reshape(reach.shape), (reach > 0).numpy().astype(np.uint8))
    assert ops == int(reach.sum()) * cout


@pytest.mark.parametrize("geo", GEOMETRIES)
def test_tap_scatter_equals_conv2d(geo: tuple, gen: torch.Generator) -> None:
    x = torch.rand(geo[0], *geo[6], generator=gen, dtype=D) * 3
    x = x * (torch.rand(x.shape, generator=gen) < 0.4)
    _scatter_reference(geo, x, 0)


@settings(max_examples=40, deadline=None)
@given(
    cin=st.integers(1, 3), cout=st.integers(1, 4), kh=st.integers(1, 4), kw=st.integers(1, 4), s=st.integers(1, 3),
    p=st.integers(0, 3), d=st.integers(1, 2), h=st.integers(1, 9), w=st.integers(1, 9),
    density=st.floats(0.0, 1.0), seed=st.integers(0, 2**16),
)  # fmt: skip
def test_tap_scatter_property(cin: int, cout: int, kh: int, kw: int, s: int, p: int, d: int, h: int, w: int,
                              density: float, seed: int) -> None:  # fmt: skip
    g = torch.Generator().manual_seed(seed)
    if h + 2 * p < d * (kh - 1) + 1 or w + 2 * p < d * (kw - 1) + 1:
        return  # no output position (nn.Conv2d refuses it)
    x = torch.rand(cin, h, w, generator=g, dtype=D) * (torch.rand(cin, h, w, generator=g) < density)
    _scatter_reference((cin, cout, (kh, kw), s, p, d, (h, w)), x, seed)
