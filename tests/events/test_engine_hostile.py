"""StreamingEngine.run_csr and carried states with hostile input (issue 13): every bad index pointer, index,
value or state raises a clear error before the compiled loop runs, never a segfault or an out-of-bounds read.

Each case runs in the Numba loop when numba is installed (where an unchecked index would crash the process)
and in the pure-Python twin."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from spikeforge.events import StreamingEngine
from spikeforge.events._kernel import numba_available
from spikeforge.layers import SNNSequential
from spikeforge.neurons import LIF
from spikeforge.neurons import RecurrentLIF

MODES = [False] + ([True] if numba_available() else [])


def _engine(use_numba: bool) -> StreamingEngine:
    g = torch.Generator().manual_seed(0)
    net = SNNSequential(nn.Linear(6, 5), RecurrentLIF(5, 4.0, generator=g), nn.Linear(5, 3), LIF(3.0)).double()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(4.0)
    return StreamingEngine(net, (6,), use_numba=use_numba)


GOOD = (np.array([0, 2, 2, 5]), np.array([0, 5, 1, 2, 3]), np.array([1.0, 0.5, 2.0, 1.0, 1.0]))

BAD_CSR = {
    "decreasing ptr": ((np.array([0, 3, 2, 5]), GOOD[1], GOOD[2]), ValueError, "non-decreasing"),
    "ptr past the end": ((np.array([0, 2, 2, 10**12]), GOOD[1], GOOD[2]), ValueError, "in_ptr\\[-1\\] <= len"),
    "negative ptr": ((np.array([-4, 2, 2, 5]), GOOD[1], GOOD[2]), ValueError, "0 <= in_ptr\\[0\\]"),
    "huge unsigned ptr": ((np.array([0, 2, 2, 2**64 - 1], dtype=np.uint64), GOOD[1], GOOD[2]), ValueError, "in_ptr"),
    "float ptr": ((np.array([0.0, 2.5, 2.0, 5.0]), GOOD[1], GOOD[2]), TypeError, "in_ptr must hold integer"),
    "empty ptr": ((np.zeros(0, np.int64), GOOD[1], GOOD[2]), ValueError, "at least one entry"),
    "2-D ptr": ((GOOD[0].reshape(2, 2), GOOD[1], GOOD[2]), ValueError, "1-D"),
    "index out of range": ((GOOD[0], np.array([0, 6, 1, 2, 3]), GOOD[2]), ValueError, "\\[0, 6\\)"),
    "negative index": ((GOOD[0], np.array([0, -1, 1, 2, 3]), GOOD[2]), ValueError, "\\[0, 6\\)"),
    "float index": ((GOOD[0], GOOD[1].astype(float), GOOD[2]), TypeError, "in_idx must hold integer"),
    "nan value": ((GOOD[0], GOOD[1], np.array([1.0, np.nan, 2.0, 1.0, 1.0])), ValueError, "NaN or inf"),
    "inf value": ((GOOD[0], GOOD[1], np.array([1.0, 1.0, np.inf, 1.0, 1.0])), ValueError, "NaN or inf"),
    "values shorter than indices": ((GOOD[0], GOOD[1], GOOD[2][:3]), ValueError, "one value per index"),
    "string values": ((GOOD[0], GOOD[1], np.array(["a"] * 5)), TypeError, "in_val must hold real"),
}


@pytest.mark.parametrize("use_numba", MODES)
@pytest.mark.parametrize("case", list(BAD_CSR))
def test_bad_csr_raises_before_the_loop(use_numba: bool, case: str) -> None:
    eng = _engine(use_numba)
    args, err, match = BAD_CSR[case]
    with pytest.raises(err, match=match):
        eng.run_csr(*args)


@pytest.mark.parametrize("use_numba", MODES)
def test_good_csr_equals_dense_run(use_numba: bool) -> None:
    # the checks accept what they should (empty steps, int32 indices, a list of values): same spikes as the
    # dense run of the same input
    eng = _engine(use_numba)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(12, 1, 6, generator=g, dtype=torch.float64) * 3
    x[x < 1.5] = 0.0
    x[4] = 0.0  # an empty step: a repeated offset in the pointer
    flat = x.reshape(12, 6).numpy()
    ptr = np.concatenate([[0], np.cumsum((flat != 0).sum(axis=1))])
    _, idx = np.nonzero(flat)
    ref = eng.run(x, record=True)
    got = eng.run_csr(ptr, idx.astype(np.int32), list(flat[flat != 0]), record=True)
    assert ptr[4] == ptr[5] and sum(float(t.sum()) for t in ref.layer_spikes) > 0
    assert torch.equal(got.spikes, ref.spikes)
    for a, b in zip(got.layer_spikes, ref.layer_spikes):
        assert torch.equal(a, b)


STATE_EDITS = {
    "prev_cnt too large": lambda s: s.prev_cnt.__setitem__(0, 10**9),
    "negative prev_cnt": lambda s: s.prev_cnt.__setitem__(0, -1),
    "prev_sp out of range": lambda s: (s.prev_cnt.__setitem__(0, 2), s.prev_sp.__setitem__(slice(0, 2), 10**6)),
    "last in the future": lambda s: s.last.__setitem__(0, 10**6),
    "nan membrane": lambda s: s.v.__setitem__(0, np.nan),
}


@pytest.mark.parametrize("use_numba", MODES)
@pytest.mark.parametrize("edit", list(STATE_EDITS))
def test_tampered_state_raises(use_numba: bool, edit: str) -> None:
    eng = _engine(use_numba)
    state = eng.run(torch.rand(4, 1, 6, dtype=torch.float64) * 3).state
    STATE_EDITS[edit](state)
    with pytest.raises(ValueError, match="state"):
        eng.run_csr(*GOOD, state=state)


@pytest.mark.parametrize("use_numba", MODES)
def test_state_of_another_engine_raises(use_numba: bool) -> None:
    eng = _engine(use_numba)
    other = StreamingEngine(SNNSequential(nn.Linear(6, 9), LIF(3.0)).double(), (6,), use_numba=use_numba)
    with pytest.raises(ValueError, match=r"state\.v must be a contiguous float64 array of shape"):
        eng.run_csr(*GOOD, state=other.init_state())
    state = eng.init_state()
    with pytest.raises(ValueError, match=r"state\.due"):
        eng.run_csr(*GOOD, state=dataclasses.replace(state, due=state.due.astype(np.int32)))
    with pytest.raises(ValueError, match=r"state\.t "):
        eng.run_csr(*GOOD, state=dataclasses.replace(state, t=-3))


@pytest.mark.parametrize("use_numba", MODES)
def test_step_checks_what_the_loop_indexes_with(use_numba: bool) -> None:
    # step() (the per-step path) skips only the value checks; an out-of-range index in the state still raises
    eng = _engine(use_numba)
    x = torch.rand(1, 6, dtype=torch.float64) * 3
    _, state = eng.step(x)
    state.prev_cnt[0] = 10**9
    with pytest.raises(ValueError, match=r"state\.prev_cnt\[0\]"):
        eng.step(x, state)
    state = eng.init_state()
    state.prev_cnt[0], state.prev_sp[0] = 1, -5
    with pytest.raises(ValueError, match=r"state\.prev_sp of layer 0"):
        eng.step(x, state)


@pytest.mark.parametrize("per", ["axon", "synapse"])
def test_delayed_linear_runs_only_rounded(per: str) -> None:
    from spikeforge.synapses import DelayedLinear

    layer = DelayedLinear(4, 3, 2, per=per, delays=torch.zeros(4) if per == "axon" else torch.zeros(3, 4))
    with pytest.raises(TypeError, match=r"layer 0: the streaming engine runs DelayedLinear with integer delays"):
        StreamingEngine(SNNSequential(layer, LIF()), (4,))
    StreamingEngine(SNNSequential(layer.rounded(), LIF()), (4,))  # integer delays: a delay line (test_engine_delays)


def test_srm_refused_as_not_lif_family() -> None:
    from spikeforge.synapses import SRM

    with pytest.raises(TypeError, match="layer 1: SRM is not a spiking LIF-family layer"):
        StreamingEngine(SNNSequential(nn.Linear(4, 3), SRM()), (4,))
