"""Fast checks of the cross-library benchmark harness ``benchmarks/peers.py`` (no peers needed)."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from torch import nn

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "peers.py"


@pytest.fixture(scope="module")
def peers() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("peers_bench", _PATH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["peers_bench"] = mod  # dataclasses resolve annotations through sys.modules
    try:
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.modules.pop("peers_bench", None)


def _hand_loop(seq: list[nn.Module | None], x: torch.Tensor) -> torch.Tensor:
    """Independent reference: the whole net per time step, v <- 0.9 v + I; z = H(v - 1); v <- v - z."""
    vs: dict[int, torch.Tensor] = {}
    outs = []
    for x_t in x:
        h = x_t
        for i, m in enumerate(seq):
            if m is not None:
                h = m(h)
                continue
            v = 0.9 * vs.get(i, torch.zeros_like(h)) + h
            z = (v > 1.0).to(h.dtype)
            vs[i] = v - z
            h = z
        outs.append(h)
    return torch.stack(outs)


@pytest.mark.parametrize("name", ["conv", "B"])
def test_spikeforge_builders_match_hand_loop(peers: ModuleType, name: str) -> None:
    cfg = peers.get_config(name, True)
    ws, x_np = peers.make_data(cfg)
    x = torch.from_numpy(x_np)
    seq, _ = peers.make_seq(cfg, ws)
    with torch.no_grad():
        want = _hand_loop(seq, x)
        for lib in ("spikeforge_reference", "spikeforge"):
            got = peers.build(lib, cfg, ws)[0](x)
            assert got.shape == want.shape
            # GEMM rounding (oneDNN vs MKL) may flip a rare threshold crossing; demand near-identity
            assert (got != want).sum().item() <= max(1, want.numel() // 10000), lib
    assert 0.02 < want.mean().item() < 0.5  # the conv net is neither silent nor saturated


def test_conv_floor_terms_match_module_shapes(peers: ModuleType) -> None:
    cfg = peers.CONFIGS["conv"]
    ws, _ = peers.make_data(dataclasses.replace(cfg, T=1, B=1))
    seq, _ = peers.make_seq(cfg, ws)
    flops, neurons = [], 0
    h = torch.zeros(1, 1, 28, 28)
    for m in seq:
        if m is None:
            neurons += h[0].numel()
            continue
        y = m(h)
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            flops.append(2.0 * y[0].numel() * fan_in)
        h = y
    tb = cfg.T * cfg.B
    want_gemm = tb * (2 * sum(flops) + sum(flops[1:]))
    got_gemm, got_bytes = peers.floor_terms(cfg)
    assert got_gemm == pytest.approx(want_gemm)
    assert got_bytes == pytest.approx(24.0 * tb * neurons)
    assert peers.floor_terms(peers.CONFIGS["A_lif"])[0] == 0.0


def test_compare_spikes_counts_differing_entries(peers: ModuleType, tmp_path: Path) -> None:
    a = np.zeros((5, 3, 7), dtype=bool)
    b = a.copy()
    b[0, 0, 0] = b[4, 2, 6] = b[2, 1, 3] = True
    for lib, arr in (("spikeforge_reference", a), ("norse", b), ("sinabs", a)):
        np.save(os.path.join(tmp_path, f"cfg_{lib}.npy"), np.packbits(arr))
    rows = [{"lib": "spikeforge_reference"}, {"lib": "norse"}, {"lib": "sinabs"}, {"lib": "snntorch", "error": "x"}]
    peers._compare_spikes(str(tmp_path), "cfg", rows)
    assert [r.get("spikes_differ") for r in rows] == [0, 3, 0, None]


def test_smoke_config_and_cli_validation(peers: ModuleType) -> None:
    big = peers.CONFIGS["ON_cpu"]
    assert big.repeats >= 5 and big.warmup >= 1
    small = peers.get_config("ON_cpu", True)
    assert (small.T, small.B, small.n) == (25, 2, 256) and small.repeats >= 5
    assert peers.get_config("A", False) is peers.CONFIGS["A"]
    with pytest.raises(SystemExit):
        peers.main(["--repeats", "4", "--configs", "A"])
    with pytest.raises(SystemExit):
        peers.main(["--warmup", "0", "--configs", "A"])
    with pytest.raises(ValueError, match="unknown library"):
        peers.build("nope", peers.get_config("A", True), peers.make_data(peers.get_config("A", True))[0])
