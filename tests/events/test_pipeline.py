"""StreamingPipeline (engine segments + event-domain max pooling + LI readout) against the dense SNNSequential and
SNNClassifier (the oracle), BatchNorm folding and spike pooling against independent references, and refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from torch import nn

from spikeforge._core.bn_fold import fold_bn
from spikeforge.events._pool import dense_to_csr
from spikeforge.events._pool import pool_csr
from spikeforge.events._pool import pool_spikes
from spikeforge.events._pool import readout_current
from spikeforge.events._pool import spikes_to_csr
from spikeforge.events.pipeline import StreamingPipeline
from spikeforge.layers import SNNSequential
from spikeforge.layers import record
from spikeforge.neurons import ALIF
from spikeforge.neurons import LI
from spikeforge.neurons import LIF
from spikeforge.training.models import SNNClassifier
from spikeforge.training.models import build_conv

D = torch.float64


def _randomise_bn(net: nn.Module, gen: torch.Generator) -> None:
    """Non-trivial running statistics and affine parameters in every BatchNorm (as after training)."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                c = m.num_features
                m.running_mean.copy_(torch.rand(c, generator=gen, dtype=D) - 0.5)
                m.running_var.copy_(0.3 + 2 * torch.rand(c, generator=gen, dtype=D))
                m.weight.copy_(0.5 + torch.rand(c, generator=gen, dtype=D))
                m.bias.copy_(0.4 * torch.rand(c, generator=gen, dtype=D) - 0.1)


def _conv_net(seed: int, readout: str, *, shape: tuple[int, int, int] = (2, 12, 10)) -> SNNSequential:
    torch.manual_seed(seed)
    net = build_conv(shape, (4, 6), (12,), 5, readout=readout, dropout=0.2).to(D)
    _randomise_bn(net, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.mul_(3.0)  # enough drive that every layer fires, but not always
    return net.eval()


# ---- BatchNorm folding ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("bias", [False, True])
def test_folded_conv_equals_conv_then_batchnorm(bias: bool) -> None:
    gen = torch.Generator().manual_seed(3)
    conv = nn.Conv2d(3, 5, 3, padding=1, bias=bias).to(D)
    bn = nn.BatchNorm2d(5).to(D).eval()
    _randomise_bn(bn, gen)
    x = torch.rand(4, 3, 7, 6, generator=gen, dtype=D)
    # independent reference: the BatchNorm formula written out on conv2d's output
    y = F.conv2d(x, conv.weight, conv.bias, padding=1)
    ref = (y - bn.running_mean[:, None, None]) / torch.sqrt(bn.running_var[:, None, None] + bn.eps)
    ref = ref * bn.weight[:, None, None] + bn.bias[:, None, None]
    with torch.no_grad():
        got = fold_bn(conv, bn)(x)
    assert torch.allclose(got, ref, rtol=0, atol=1e-12)
    assert (got - y).abs().max() > 0.1  # the BatchNorm is not the identity


# ---- max pooling of spikes -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kernel", "hw"), [((2, 2), (8, 8)), ((3, 3), (10, 7)), ((2, 3), (5, 9)), ((1, 1), (4, 3))])
@pytest.mark.parametrize("density", [0.0, 0.1, 0.6])
def test_pooling_equals_max_pool2d(kernel: tuple[int, int], hw: tuple[int, int], density: float) -> None:
    gen = torch.Generator().manual_seed(hash((kernel, hw, density)) % 1000)
    t, c = 6, 3
    x = (torch.rand(t, c, *hw, generator=gen) < density).to(D)
    ref = F.max_pool2d(x, kernel)  # [T, C, H', W']
    got = pool_csr(dense_to_csr(x), (c, *hw), kernel)
    dense = torch.zeros(t, ref[0].numel(), dtype=D)
    for k in range(t):
        row = got.idx[got.ptr[k] : got.ptr[k + 1]]
        assert len(np.unique(row)) == len(row)  # one event per pooled unit and step
        dense[k, torch.from_numpy(row)] = 1.0
    assert torch.equal(dense.reshape(ref.shape), ref)
    assert np.all(got.val == 1)


def test_pooling_refuses_non_binary_input() -> None:
    x = torch.zeros(3, 1, 4, 4, dtype=D)
    x[1, 0, 2, 2] = 2.0  # an event count of 2: max pooling would give 2, an OR gives 1
    with pytest.raises(ValueError, match="binary"):
        pool_csr(dense_to_csr(x), (1, 4, 4), (2, 2))
    with pytest.raises(ValueError, match="binary"):
        pool_spikes(x.reshape(3, 16).numpy(), (1, 4, 4), (2, 2))


def test_readout_current_equals_linear() -> None:
    gen = torch.Generator().manual_seed(5)
    w, b = torch.randn(4, 9, generator=gen, dtype=D), torch.randn(4, generator=gen, dtype=D)
    x = (torch.rand(7, 9, generator=gen) < 0.4).to(D) * torch.randint(1, 3, (7, 9), generator=gen)
    cur, synops = readout_current(dense_to_csr(x), w.t().contiguous().numpy(), b.numpy())
    assert torch.allclose(torch.from_numpy(cur), F.linear(x, w, b), rtol=0, atol=1e-12)
    assert synops == int((x != 0).sum()) * 4


# ---- the whole pipeline against the dense model -------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize(("readout", "decoding"), [("li", "max_membrane"), ("li", "mean_membrane"),
                                                   ("spiking", "spike_count")])  # fmt: skip
def test_pipeline_equals_dense_classifier(seed: int, readout: str, decoding: str) -> None:
    net = _conv_net(seed, readout)
    clf = SNNClassifier(net, time_steps=12, encoding="sequence", decoding=decoding).eval()
    gen = torch.Generator().manual_seed(100 + seed)
    x_seq = (torch.rand(12, 1, 2, 12, 10, generator=gen) < 0.3).to(D)
    with torch.no_grad():
        (out, _), rec = record(net, x_seq)
        logits = clf(x_seq, encoded=True)
    pipe = StreamingPipeline(net, (2, 12, 10))
    assert pipe.kinds == ("engine", "pool", "engine", "pool", "engine") + (("readout",) if readout == "li" else ())
    res = pipe.run(x_seq)
    assert res.out.shape == out.shape
    if readout == "li":
        assert torch.allclose(res.out.to(D), out, rtol=0, atol=1e-10)
        assert (out[1:] != out[:-1]).any()  # the membrane moves
    else:
        assert torch.equal(res.out.to(D), out)
    assert torch.allclose(clf.decode(res.out.to(D)), logits, rtol=0, atol=1e-10)
    assert torch.equal(clf.decode(res.out.to(D)).argmax(1), logits.argmax(1))
    spiking = [k for k, m in net.named_modules() if isinstance(m, LIF)]
    counts = [int(rec[k].sum()) for k in spiking]
    assert all(0 < n < rec[k].numel() for n, k in zip(counts, spiking))  # every layer fires, not always
    assert res.total("spikes") == sum(counts)
    assert res.total("synops") > 0 and res.total("neuron_updates") > 0


def test_pipeline_float32_model_matches_dense_predictions() -> None:
    net = _conv_net(7, "li").float()
    x_seq = (torch.rand(10, 1, 2, 12, 10, generator=torch.Generator().manual_seed(7)) < 0.3).float()
    with torch.no_grad():
        out, _ = net(x_seq)
    got = StreamingPipeline(net, (2, 12, 10)).run(x_seq).out
    assert got.dtype == torch.float32
    assert torch.allclose(got, out, rtol=0, atol=1e-4)
    assert torch.equal(got.max(0).values.argmax(1), out.max(0).values.argmax(1))


def test_empty_input_gives_the_dense_output() -> None:
    """No input event: the first layer does no SynOp; the folded BatchNorm shifts still drive neurons (a constant
    current), exactly as in the dense model; with the shifts zeroed nothing spikes at all."""
    net = _conv_net(1, "li")
    x_seq = torch.zeros(5, 1, 2, 12, 10, dtype=D)
    with torch.no_grad():
        (out, _), rec = record(net, x_seq)
    res = StreamingPipeline(net, (2, 12, 10)).run(x_seq)
    assert torch.allclose(res.out.to(D), out, rtol=0, atol=1e-12)
    assert res.stages[0].synops == 0
    assert res.total("spikes") == sum(int(rec[k].sum()) for k, m in net.named_modules() if isinstance(m, LIF)) > 0
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.Linear)):
                m.bias.zero_()
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.zero_()
        out, _ = net(x_seq)
    res = StreamingPipeline(net, (2, 12, 10)).run(x_seq)
    assert torch.equal(res.out.to(D), out) and not out.any()
    assert res.total("spikes") == 0 and res.total("synops") == 0 and all(s.events == 0 for s in res.stages)


def test_flatten_only_between_pool_and_readout_and_analog_input() -> None:
    """No hidden layer (pool -> Flatten -> Linear -> LI) and analog input values into the first convolution."""
    torch.manual_seed(4)
    net = build_conv((1, 8, 8), (5,), (), 3).to(D)
    _randomise_bn(net, torch.Generator().manual_seed(4))
    net.eval()
    with torch.no_grad():
        net.layers[0].weight.mul_(4.0)
    x_seq = torch.rand(6, 1, 1, 8, 8, generator=torch.Generator().manual_seed(4), dtype=D)
    with torch.no_grad():
        out, _ = net(x_seq)
    pipe = StreamingPipeline(net, (1, 8, 8))
    assert pipe.kinds == ("engine", "pool", "readout")
    res = pipe.run(x_seq)
    assert torch.allclose(res.out.to(D), out, rtol=0, atol=1e-10)
    assert res.total("spikes") > 0


# ---- refusals ---------------------------------------------------------------------------------------------------
def _lif() -> LIF:
    return LIF()


@pytest.mark.parametrize(
    ("layers", "error", "match"),
    [
        (lambda: [nn.Conv2d(1, 2, 3), _lif(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(8, 3), LI()], TypeError,
         "AvgPool2d is not supported"),
        (lambda: [nn.Conv2d(1, 2, 3), _lif(), nn.MaxPool2d(2, stride=1), nn.Flatten(), nn.Linear(18, 3), LI()],
         ValueError, "stride = kernel_size"),
        (lambda: [nn.BatchNorm2d(1), nn.Conv2d(1, 2, 3), _lif(), nn.Flatten(), nn.Linear(72, 3), LI()], ValueError,
         "BatchNorm folds only"),
        (lambda: [nn.Flatten(), nn.Linear(64, 5), LI(), nn.Linear(5, 3), _lif()], ValueError, "only as the readout"),
        (lambda: [nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), _lif()], ValueError, "followed by a spiking neuron"),
        (lambda: [nn.Conv2d(1, 2, 3), _lif(), nn.MaxPool2d(2)], ValueError, "must end with"),
        (lambda: [nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), _lif(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(18, 5),
                  nn.Dropout(0.1), ALIF(), nn.Linear(5, 3), LI()], TypeError, "^layer 7: ALIF has an adaptive"),
    ],
)  # fmt: skip
def test_unsupported_models_are_refused_with_a_clear_error(layers, error: type, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=match):
        StreamingPipeline(SNNSequential(*layers()), (1, 8, 8))


def test_pool_on_the_input_refuses_counts() -> None:
    net = SNNSequential(nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16, 3), LI()).to(D)
    pipe = StreamingPipeline(net, (1, 8, 8))
    ok = (torch.rand(4, 1, 1, 8, 8, generator=torch.Generator().manual_seed(0)) < 0.5).to(D)
    with torch.no_grad():
        assert torch.allclose(pipe.run(ok).out.to(D), net(ok)[0], rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="binary"):
        pipe.run(ok * 2)


def test_bad_sample_shape_is_refused() -> None:
    pipe = StreamingPipeline(_conv_net(0, "li"), (2, 12, 10))
    with pytest.raises(ValueError, match="batch 1"):
        pipe.run(torch.zeros(4, 2, 2, 12, 10, dtype=D))
    with pytest.raises(ValueError, match="no time steps"):
        pipe.run(torch.zeros(0, 1, 2, 12, 10, dtype=D))
    with pytest.raises(TypeError, match="floating-point"):
        pipe.run(torch.zeros(4, 1, 2, 12, 10, dtype=torch.int64))


# ---- properties --------------------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(
    t=st.integers(0, 4), c=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9), kh=st.integers(1, 4),
    kw=st.integers(1, 4), density=st.floats(0.0, 1.0), seed=st.integers(0, 2**16),
)  # fmt: skip
def test_pooling_property(t: int, c: int, h: int, w: int, kh: int, kw: int, density: float, seed: int) -> None:
    x = (torch.rand(t, c, h, w, generator=torch.Generator().manual_seed(seed)) < density).to(D)
    got = pool_csr(dense_to_csr(x), (c, h, w), (kh, kw))
    oh, ow = h // kh, w // kw
    ref = F.max_pool2d(x, (kh, kw)) if t and oh and ow else torch.zeros(t, c, oh, ow, dtype=D)
    dense = torch.zeros(t, c * oh * ow, dtype=D)
    steps = torch.from_numpy(np.repeat(np.arange(t), np.diff(got.ptr)))
    dense[steps, torch.from_numpy(got.idx)] = 1.0
    assert torch.equal(dense.reshape(ref.shape), ref) and got.idx.size == int(ref.sum())
    # the compiled path on dense spikes (an engine's output) gives the same events, in the same order
    flat = x.reshape(t, c * h * w).float().numpy()
    fast = pool_spikes(flat, (c, h, w), (kh, kw))
    assert all(np.array_equal(a, b) for a, b in zip(fast, got))
    assert all(np.array_equal(a, b) for a, b in zip(spikes_to_csr(flat), dense_to_csr(x)))


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), readout=st.sampled_from(["li", "spiking"]), density=st.floats(0.05, 0.6))
def test_pipeline_property(seed: int, readout: str, density: float) -> None:
    net = _conv_net(seed, readout, shape=(2, 9, 8))
    x_seq = (torch.rand(8, 1, 2, 9, 8, generator=torch.Generator().manual_seed(seed)) < density).to(D)
    with torch.no_grad():
        out, _ = net(x_seq)
    got = StreamingPipeline(net, (2, 9, 8)).run(x_seq).out.to(D)
    assert torch.allclose(got, out, rtol=0, atol=1e-10)


# ---- the readout shortcut and the engines' whole-layer steps ---------------------------------------------------
@pytest.mark.parametrize("make", [lambda: LI(4.0), lambda: LI(6.0, learn_tau=True, size=5), lambda: LI(3.0, r=2.0)])
@pytest.mark.parametrize("dtype", [torch.float32, D])
def test_readout_trace_equals_the_module(make, dtype: torch.dtype) -> None:  # type: ignore[no-untyped-def]
    """A plain LI readout skips the module's per-call checks: the same operations, so the same values bit for bit."""
    from spikeforge.events.pipeline import _readout_trace

    neuron = make().to(dtype)
    drive = torch.randn(9, 1, 5, generator=torch.Generator().manual_seed(2), dtype=D).to(dtype)
    with torch.no_grad():
        want, _ = neuron(drive)
    assert torch.equal(_readout_trace(neuron, drive), want)


def test_readout_trace_runs_other_neurons_as_modules() -> None:
    from spikeforge.events.pipeline import _readout_trace

    class Doubled(LI):  # not a plain LI: the shortcut must not apply
        def forward(self, x_seq, state=None):  # type: ignore[no-untyped-def]
            out, s = super().forward(x_seq, state)
            return 2 * out, s

    drive = torch.rand(4, 1, 3, generator=torch.Generator().manual_seed(1), dtype=D)
    neuron = Doubled(4.0).to(D)
    with torch.no_grad():
        assert torch.equal(_readout_trace(neuron, drive), 2 * LI(4.0).to(D)(drive)[0])


@pytest.mark.parametrize("conv_whole", [None, 0.01, 1.0])
def test_pipeline_conv_whole_keeps_the_dense_spikes(conv_whole: float | None) -> None:
    net = _conv_net(5, "li")
    x_seq = (torch.rand(12, 1, 2, 12, 10, generator=torch.Generator().manual_seed(9)) < 0.4).to(D)
    with torch.no_grad():
        (out, _), rec = record(net, x_seq)
    res = StreamingPipeline(net, (2, 12, 10), conv_whole=conv_whole).run(x_seq)
    spiking = [k for k, m in net.named_modules() if isinstance(m, LIF)]
    assert res.total("spikes") == sum(int(rec[k].sum()) for k in spiking)
    assert torch.allclose(res.out.to(D), out, rtol=0, atol=1e-10)
    first = res.stages[0]  # 4 channels x 12 x 10 conv neurons, 12 steps: every step dense at 0.01, none at None
    if conv_whole == 0.01:
        assert first.neuron_updates == 12 * 4 * 12 * 10
    elif conv_whole is None:
        assert first.neuron_updates < 12 * 4 * 12 * 10
