"""Temporal tasks: determinism, the structure each task promises (checked against independent computations),
the spike-time matcher, and refusals."""

from __future__ import annotations

import itertools

import pytest
import torch

from spikeforge.data.temporal_tasks import coincidence_patterns
from spikeforge.data.temporal_tasks import make_delayed_coincidence
from spikeforge.data.temporal_tasks import make_planted_delays
from spikeforge.data.temporal_tasks import make_spike_pattern
from spikeforge.data.temporal_tasks import match_spike_times
from spikeforge.synapses import DelayedLinear


def test_delayed_coincidence_structure_and_determinism():
    x, y = make_delayed_coincidence(203, seed=3, num_classes=4, channels=4, gap=6, time_steps=64)
    x2, y2 = make_delayed_coincidence(203, seed=3, num_classes=4, channels=4, gap=6, time_steps=64)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(make_delayed_coincidence(203, seed=4)[0], x)
    assert x.shape == (203, 64, 4) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(x.sum(1), torch.ones(203, 4))  # one spike per channel
    assert torch.bincount(y, minlength=4).tolist() == [51, 51, 51, 50]  # balanced
    offsets = coincidence_patterns(4, 4, 6)
    for k in range(4):  # every class is a permutation of the same offsets
        assert sorted(offsets[k].tolist()) == [0, 6, 12, 18]
    assert len({tuple(o.tolist()) for o in offsets}) == 4
    times = x.argmax(1)  # [n, channels]
    rel = times - times.min(1, keepdim=True).values
    assert torch.equal(rel, offsets[y])  # only the relative timing depends on the class
    assert int(times.max()) <= 64 - 1 - 18  # room for a delay of up to span = 18 after the last spike
    # the class-invariant statistics: sorted spike times relative to the first are identical for all samples
    assert torch.equal(rel.sort(1).values, torch.tensor([0, 6, 12, 18]).expand(203, 4))


def test_delayed_coincidence_is_solved_by_the_aligning_delays():
    """With d_i = span - offset[k, i], all class-k spikes coincide: a hand-built coincidence detector is exact."""
    x, y = make_delayed_coincidence(64, seed=0)
    offsets = coincidence_patterns(4, 4, 6)
    layer = DelayedLinear(4, 4, 18, delays=(18 - offsets).float(), bias=False).rounded()
    with torch.no_grad():
        layer.weight.fill_(1.0)
    counts = layer(x.transpose(0, 1))  # [T, n, 4]: how many spikes arrive together at each detector
    pred = (counts > 3.5).any(0).float().argmax(1)
    assert torch.equal(pred, y)


def test_spike_pattern_task():
    x, target = make_spike_pattern(seed=1, time_steps=100, in_channels=20, out_channels=3, spikes_per_output=4)
    assert torch.equal(make_spike_pattern(seed=1, time_steps=100, in_channels=20, out_channels=3,
                                          spikes_per_output=4)[1], target)  # fmt: skip
    assert x.shape == (1, 100, 20) and target.shape == (1, 100, 3)
    assert torch.equal(target.sum(1), torch.full((1, 3), 4.0))
    for c in range(3):
        t = target[0, :, c].nonzero().flatten()
        assert int(t.min()) >= 20 and bool((t.diff() >= 10).all())
    assert x[0, :20].sum() >= 1
    with pytest.raises(ValueError, match="do not fit"):
        make_spike_pattern(time_steps=20, spikes_per_output=5, min_interval=10)


def test_planted_delays_match_a_loop_teacher():
    d = make_planted_delays(5, seed=2, in_channels=3, out_channels=2, max_delay=4, time_steps=12)
    assert d.delays.dtype == torch.int64 and int(d.delays.max()) <= 4 and int(d.delays.min()) >= 0
    assert bool((d.weight.abs() >= 0.5).all()) and bool((d.weight.abs() <= 1.5).all())
    ref = torch.zeros_like(d.y)
    for n, t, o, i in itertools.product(range(5), range(12), range(2), range(3)):
        s = t - int(d.delays[o, i])
        if s >= 0:
            ref[n, t, o] += d.weight[o, i] * d.x[n, s, i]
    torch.testing.assert_close(d.y, ref)
    teacher = DelayedLinear(3, 2, 4, delays=d.delays.float(), bias=False).rounded()
    with torch.no_grad():
        teacher.weight.copy_(d.weight)
    torch.testing.assert_close(teacher(d.x.transpose(0, 1)).transpose(0, 1), d.y)


def test_match_spike_times():
    target = torch.zeros(10, 2)
    out = torch.zeros(10, 2)
    target[[2, 6], 0] = 1.0
    out[[3, 9], 0] = 1.0  # 3 matches 2 (1 step); 9 is 3 steps from 6: extra
    target[5, 1] = 1.0
    out[[4, 6], 1] = 1.0  # both within 1 step, only one may match
    assert match_spike_times(out, target, tolerance=1) == (2, 3, 2)
    assert match_spike_times(out, target, tolerance=3) == (3, 3, 1)
    assert match_spike_times(target, target, tolerance=0) == (3, 3, 0)
    with pytest.raises(ValueError, match="must match"):
        match_spike_times(out, target[:5])


def test_refusals():
    with pytest.raises(ValueError, match="num_classes <= 2"):
        make_delayed_coincidence(10, channels=2, num_classes=3)
    with pytest.raises(ValueError, match="time_steps"):
        make_delayed_coincidence(10, time_steps=20)
    with pytest.raises(ValueError, match="seed"):
        make_delayed_coincidence(10, seed=-1)
    with pytest.raises(TypeError, match="seed"):
        make_planted_delays(10, seed=1.5)  # type: ignore[arg-type]
