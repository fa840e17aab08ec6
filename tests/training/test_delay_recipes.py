"""The Python recipes for the temporal tasks that are not classification tasks
(``spikeforge.training.delay_recipes``): planted delays recovered, a spike pattern learnt, bad inputs refused."""

from __future__ import annotations

import pytest
import torch

from spikeforge.data.temporal_tasks import make_planted_delays
from spikeforge.data.temporal_tasks import make_spike_pattern
from spikeforge.data.temporal_tasks import match_spike_times
from spikeforge.synapses import van_rossum_distance
from spikeforge.training.delay_recipes import fit_planted_delays
from spikeforge.training.delay_recipes import fit_spike_pattern


def test_planted_delays_are_recovered() -> None:
    data = make_planted_delays(64, seed=3, in_channels=4, out_channels=3, max_delay=5, time_steps=30)
    fit = fit_planted_delays(data, max_delay=5, epochs=60, sigma_start=2.0)
    err = (fit.student.delay_values() - data.delays.float()).abs()  # compared here, not trusted from the recipe
    assert float((err <= 0.5).float().mean()) == fit.within_half_step >= 0.95
    assert fit.max_abs_error == pytest.approx(float(err.max()))
    rounded = fit.student.rounded()
    assert torch.equal(rounded.delays, data.delays.float())  # every planted delay found exactly
    with torch.no_grad():
        mse = float(((rounded(data.x.transpose(0, 1)) - data.y.transpose(0, 1)) ** 2).mean())
    assert mse == pytest.approx(fit.rounded_mse) and mse < 0.05 * float(data.y.var())


def test_planted_delays_bad_input() -> None:
    data = make_planted_delays(8, max_delay=6, time_steps=20)
    with pytest.raises(ValueError, match="give max_delay >= that"):
        fit_planted_delays(data, max_delay=int(data.delays.max()) - 1, epochs=1)
    with pytest.raises(TypeError, match="make_planted_delays"):
        fit_planted_delays((data.x, data.y), max_delay=6)  # type: ignore[arg-type]


def test_spike_pattern_is_learnt() -> None:
    x, target = make_spike_pattern(seed=1, time_steps=40, in_channels=20, out_channels=2, spikes_per_output=2,
                                   min_interval=8)  # fmt: skip
    fit = fit_spike_pattern(x, target, hidden=24, epochs=150)
    assert fit.losses[-1] < 0.5 * fit.losses[0]
    with torch.no_grad():
        out, _ = fit.network(x.transpose(0, 1))
    matched, total, extra = match_spike_times(out.transpose(0, 1), target, tolerance=1)
    assert (matched, total, extra) == (fit.matched, fit.targets, fit.extra) and total == 4
    assert matched >= 3


def test_spike_pattern_bad_input() -> None:
    x, target = make_spike_pattern(time_steps=40, in_channels=5, out_channels=2, spikes_per_output=1)
    with pytest.raises(ValueError, match=r"must be \[N, T, C\]"):
        fit_spike_pattern(x[0], target)
    with pytest.raises(ValueError, match="same N and T"):
        fit_spike_pattern(x[:, :30], target)


def test_spike_pattern_on_epoch_sees_each_epochs_output() -> None:
    x, target = make_spike_pattern(seed=2, time_steps=30, in_channels=6, out_channels=2, spikes_per_output=2,
                                   min_interval=6)  # fmt: skip
    outs: list[torch.Tensor] = []
    fit = fit_spike_pattern(x, target, hidden=8, epochs=3, on_epoch=outs.append)
    assert len(outs) == 3 and all(o.shape == target.shape and not o.requires_grad for o in outs)
    for out, loss in zip(outs, fit.losses):  # the output the epoch's loss was computed on (sample-major)
        assert float(van_rossum_distance(out.transpose(0, 1), target.transpose(0, 1), tau=2.0)) == pytest.approx(loss)
