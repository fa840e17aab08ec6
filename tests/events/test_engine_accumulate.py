"""The engine's row sums and its resolved entry points: the step's weight rows summed in the weights' precision in
input order (against a plain numpy reference), and the fast call path fed with inputs it was not resolved for."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from torch import nn

from spikeforge.events import StreamingEngine
from spikeforge.events._accumulate import accumulate_rows as _accumulate
from spikeforge.events._kernel import numba_available
from spikeforge.layers import SNNSequential
from spikeforge.neurons import LIF

MODES = [False] + ([True] if numba_available() else [])


@functools.cache
def _compiled_accumulate():  # type: ignore[no-untyped-def]
    import numba

    @numba.njit
    def run(cv, acc, wt, base, n_l, js, vals, unit, e, stop, keep):  # type: ignore[no-untyped-def]
        if unit:
            _accumulate(cv, acc, wt, base, n_l, js, vals, True, e, stop, keep)
        else:
            _accumulate(cv, acc, wt, base, n_l, js, vals, False, e, stop, keep)

    return run


@pytest.mark.parametrize("keep", [False, True])
@pytest.mark.parametrize("compiled", MODES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_sums_equal_sequential_reference(compiled: bool, dtype: type, keep: bool) -> None:
    # every count of rows 1..19 (passes of eight while more than eight remain, then of four, and a last pass of 1-4), spike values and analog values;
    # keep: the sum is left in the accumulator (for the whole-layer update) and the current is not touched
    fn = _compiled_accumulate() if compiled else _accumulate
    rng = np.random.default_rng(0)
    n_l, n_in, base = 37, 20, 5
    wt = rng.standard_normal(base + n_in * n_l).astype(dtype)
    for count in range(1, 20):
        js = rng.integers(0, n_in, count + 3).astype(np.int64)
        for unit, vals in ((True, np.ones(count + 3)), (False, np.ones(count + 3)), (False, rng.random(count + 3))):
            cv0 = rng.standard_normal(n_l)
            cv, acc = cv0.copy(), np.zeros(n_l, dtype=dtype)
            fn(cv, acc, wt, base, n_l, js, vals, unit, 2, 2 + count, keep)
            if keep:
                np.testing.assert_array_equal(cv, cv0)
                cv, acc = cv + acc.astype(np.float64), np.zeros_like(acc)
            rows = wt[base:].reshape(n_in, n_l)
            if np.all(vals[2 : 2 + count] == 1.0):  # spike values: a sum in the weights' dtype, in input order
                ref = np.zeros(n_l, dtype=dtype)
                for q in range(2, 2 + count):
                    ref = (ref + rows[js[q]]).astype(dtype)
                np.testing.assert_array_equal(cv, cv0 + ref.astype(np.float64))
            else:  # analog values: products in float64, rounded to the accumulator per pass
                ref64 = sum(vals[q] * rows[js[q]].astype(np.float64) for q in range(2, 2 + count))
                tol = 1e-6 if dtype == np.float32 else 1e-12
                np.testing.assert_allclose(cv, cv0 + ref64, rtol=tol, atol=tol)
            assert not acc.any()  # left zero for the next step


@pytest.mark.parametrize("use_numba", MODES)
def test_readonly_and_unaligned_inputs_and_readonly_state(use_numba: bool) -> None:
    torch.manual_seed(0)
    net = SNNSequential(nn.Linear(6, 9), LIF(3.0), nn.Linear(9, 4), LIF(3.0))
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(4.0)
    eng = StreamingEngine(net, (6,), use_numba=use_numba)
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(20, 1, 6, generator=g) < 0.4).float()
    ref = eng.run(x, record=True)
    flat = x.reshape(20, 6).numpy()
    ptr = np.concatenate([[0], np.cumsum((flat != 0).sum(axis=1))]).astype(np.int64)
    idx = np.nonzero(flat)[1].astype(np.int64)
    raw = np.zeros(idx.size * 8 + 1, dtype=np.uint8)[1:]  # int64 values at an odd address: unaligned
    unaligned = raw.view(np.int64)
    unaligned[:] = idx
    assert not unaligned.flags.aligned
    ptr.flags.writeable = False
    got = eng.run_csr(ptr, unaligned, np.ones(idx.size), record=True)
    assert torch.equal(got.spikes, ref.spikes) and sum(int(s.sum()) for s in ref.layer_spikes) > 0
    state = eng.init_state()
    state.v.flags.writeable = False
    with pytest.raises(ValueError, match=r"state\.v must be a contiguous float64 array .*read-only or unaligned"):
        eng.run(x, state)


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(0, 40), min_size=1, max_size=4),
    n_l=st.integers(1, 70),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**31 - 1),
)
def test_spike_row_sums_any_count_and_width(counts: list[int], n_l: int, dtype: type, seed: int) -> None:
    # steps of 0-40 spike rows (passes of eight, of four and the last 1-4 in every mix), widths that are not a multiple
    # of the vector length, weights with large and small magnitudes (where a different order rounds differently):
    # the compiled sum equals numpy adding the rows one after another in the weights' dtype, bit for bit
    rng = np.random.default_rng(seed)
    n_in, base = 45, 3
    wt = (rng.standard_normal(base + n_in * n_l) * 10.0 ** rng.integers(-3, 4, base + n_in * n_l)).astype(dtype)
    rows = wt[base:].reshape(n_in, n_l)
    fn = _compiled_accumulate() if numba_available() else _accumulate
    cv, acc = np.zeros(n_l), np.zeros(n_l, dtype=dtype)
    expect = np.zeros(n_l)
    for count in counts:
        js = rng.integers(0, n_in, count).astype(np.int64)
        fn(cv, acc, wt, base, n_l, js, np.ones(count), True, 0, count, False)
        ref = np.zeros(n_l, dtype=dtype)
        for j in js:
            ref = (ref + rows[j]).astype(dtype)
        expect = expect + ref.astype(np.float64)
        np.testing.assert_array_equal(cv, expect)
        assert not acc.any()
