"""Weight tables on 2 MiB pages (Linux transparent huge pages), for the event engine's scattered row reads.

The engine reads the weight rows of the inputs that spiked: a few kilobytes each, scattered over tables of several
MiB. With 4 KiB pages nearly every row read needs its own address translation, and once the tables outgrow what the
second-level TLB covers (commonly 1536-2048 entries of 4 KiB, 6-8 MiB) the translations miss too. Copied into a
2 MiB-aligned anonymous mapping advised ``MADV_HUGEPAGE``, a table needs one translation per 2 MiB. Measured on the
issue-17 network (1024-1024-768-512, 8.5 MiB of float32 weights): the row sums take 6-8 % less time
(``benchmarks/RESULTS.md``).

Where the platform has no ``madvise`` (not Linux) or the kernel's transparent huge pages are off, the copy is on
ordinary pages and behaves exactly as before: the advice changes where the bytes live, never their values.
"""

from __future__ import annotations

import mmap

import numpy as np

__all__ = ["HUGE_PAGE", "on_huge_pages"]

HUGE_PAGE = 2 << 20  # bytes: the x86-64 / arm64 transparent huge page


def on_huge_pages(a: np.ndarray, min_bytes: int = HUGE_PAGE) -> np.ndarray:
    """A C-contiguous copy of ``a`` that starts on a 2 MiB boundary of its own anonymous mapping, advised
    ``MADV_HUGEPAGE``; ``a`` itself when it is smaller than ``min_bytes`` (the advice cannot help) or the
    platform lacks ``madvise``. The returned array keeps its mapping alive (its ``base`` chain holds it)."""
    advice = getattr(mmap, "MADV_HUGEPAGE", None)
    if a.nbytes < min_bytes or advice is None or not hasattr(mmap.mmap, "madvise"):
        return a
    size = -(-a.nbytes // HUGE_PAGE) * HUGE_PAGE + HUGE_PAGE  # room to align the start
    region = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    raw = np.frombuffer(region, dtype=np.uint8)
    start = -raw.ctypes.data % HUGE_PAGE
    try:
        region.madvise(advice, start, size - start)
    except OSError:  # transparent huge pages compiled out: ordinary pages, same bytes
        pass
    out = raw[start : start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out
