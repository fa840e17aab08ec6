"""Weight tables on 2 MiB pages: the copy holds the same values in the same layout, starts on a 2 MiB boundary where
the platform can advise huge pages, and the engine built on such tables gives the dense model's spikes."""

from __future__ import annotations

import mmap

import numpy as np
import pytest
import torch
from torch import nn

from spikeforge.events import StreamingEngine
from spikeforge.events._pages import HUGE_PAGE
from spikeforge.events._pages import on_huge_pages
from spikeforge.layers import SNNSequential
from spikeforge.neurons import LIF

ADVISES = hasattr(mmap, "MADV_HUGEPAGE") and hasattr(mmap.mmap, "madvise")


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_copy_has_the_values_and_starts_on_a_huge_page(dtype: type) -> None:
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((700, 1031)) * 100).astype(dtype)  # > 2 MiB in every dtype, not a page multiple
    b = on_huge_pages(a)
    assert b is not a and b.dtype == a.dtype and b.shape == a.shape
    np.testing.assert_array_equal(b, a)
    assert b.flags.c_contiguous and b.flags.writeable and b.flags.aligned
    if ADVISES:
        assert b.ctypes.data % HUGE_PAGE == 0
    a[0, 0] += 1  # a copy: the source can change without touching it
    assert b[0, 0] != a[0, 0]


def test_small_tables_are_returned_unchanged() -> None:
    a = np.arange(1000, dtype=np.float32)
    assert on_huge_pages(a) is a
    assert on_huge_pages(a, min_bytes=a.nbytes + 1) is a
    if ADVISES:
        assert on_huge_pages(a, min_bytes=1) is not a


def test_mapping_outlives_its_creator() -> None:
    b = on_huge_pages(np.full(HUGE_PAGE // 8 + 3, 7.0))  # the function's locals are gone: the array holds the mapping
    np.testing.assert_array_equal(b[-3:], 7.0)
    assert b.sum() == 7.0 * b.size


@pytest.mark.parametrize("use_numba", [False, True])
def test_engine_on_huge_page_weights_matches_dense(use_numba: bool) -> None:
    if use_numba:
        pytest.importorskip("numba")
    g = torch.Generator().manual_seed(3)
    net = SNNSequential(nn.Linear(1024, 600, bias=False), LIF(beta=0.9, input_scaling="none", reset="subtract"))
    with torch.no_grad():
        net.layers[0].weight.copy_(torch.randn(600, 1024, generator=g) * (2.5 / 32))
    net.eval()
    eng = StreamingEngine(net, (1024,), use_numba=use_numba)
    if ADVISES:  # 1024 x 600 float32 = 2.3 MiB: the table moved to huge pages
        assert eng._wts.wt.ctypes.data % HUGE_PAGE == 0
    x = (torch.rand(12, 1, 1024, generator=g) < 0.02).float()
    with torch.no_grad():
        ref, _ = net(x)
    res = eng.run(x)
    assert ref.sum() > 0
    torch.testing.assert_close(res.spikes, ref, rtol=0, atol=0)
