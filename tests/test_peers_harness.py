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

_DIR = Path(__file__).resolve().parents[1] / "benchmarks"
_PATH = _DIR / "peers.py"


@pytest.fixture(scope="module")
def peers() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("peers_bench", _PATH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["peers_bench"] = mod  # dataclasses resolve annotations through sys.modules
    sys.path.insert(0, str(_DIR))  # as when run as a script: its directory holds the _peers package
    try:
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.path.remove(str(_DIR))
        for name in [m for m in sys.modules if m == "peers_bench" or m == "_peers" or m.startswith("_peers.")]:
            sys.modules.pop(name)


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


def test_adapter_table_keeps_the_library_order(peers: ModuleType) -> None:
    assert peers.LIBS == ["spikeforge", "spikeforge_reference", "snntorch", "spikingjelly", "norse", "sinabs"]
    assert list(peers.ADAPTERS) == peers.LIBS


def test_every_adapter_satisfies_the_protocol(peers: ModuleType) -> None:
    from _peers.base import Net, PeerAdapter

    for name, adapter in peers.ADAPTERS.items():
        assert isinstance(adapter, PeerAdapter) and adapter.name == name
        assert isinstance(adapter.module, str) and "." not in adapter.module
        installed = adapter.installed()
        assert isinstance(installed, bool)
        version = adapter.version()
        assert version is None or isinstance(version, str)
        reason = adapter.skip_reason()
        assert (reason is None) == installed, name
        if reason is not None:
            assert adapter.module in reason and "pip install" in reason
        for method in ("network", "build", "infer", "forward", "forward_backward", "spike_train"):
            assert callable(getattr(adapter, method)), (name, method)
    assert peers.ADAPTERS["spikeforge"].installed()
    cfg = peers.get_config("A", True)
    assert isinstance(peers.build("spikeforge", cfg, peers.make_data(cfg)[0]), Net)


# Norse 1.1 calls torch.jit.script at import, deprecated in torch 2.13 (not our code).
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("lib", ["spikeforge", "spikeforge_reference", "snntorch", "spikingjelly", "norse", "sinabs"])
def test_installed_adapters_run_every_phase(peers: ModuleType, lib: str) -> None:
    adapter = peers.ADAPTERS[lib]
    if not adapter.installed():
        pytest.skip(f"{lib} is not installed")
    cfg = dataclasses.replace(peers.get_config("B", True), T=12)
    ws, x_np = peers.make_data(cfg)
    x = torch.from_numpy(x_np)
    net = adapter.build(cfg, ws)
    s = adapter.spike_train(adapter.infer(net, x))
    assert s.shape == (cfg.T, cfg.B, cfg.n) and not s.requires_grad
    assert set(s.unique().tolist()) <= {0.0, 1.0} and s.sum() > 0
    assert adapter.forward(net, x).requires_grad
    adapter.forward_backward(net, x)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.params)
    if lib != "snntorch":  # snnTorch's Leaky resets one step late, by design
        seq, _ = peers.make_seq(cfg, ws)
        with torch.no_grad():
            want = _hand_loop(seq, x)
        assert (s != want).sum().item() <= max(1, want.numel() // 10000), lib


def test_uninstalled_library_is_skipped_not_crashed(
    peers: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from _peers.base import PeerAdapter

    class Missing(PeerAdapter):
        name = "missing"
        module = "spikeforge_no_such_library"

        def network(self, cfg: object, seq: object) -> object:
            raise AssertionError("a library that is not installed must not be built")

    missing = Missing()
    assert not missing.installed() and missing.version() is None
    monkeypatch.setitem(peers.ADAPTERS, "missing", missing)
    row = peers.measure("missing", "A", ["--smoke"], str(tmp_path), memory=True, malloc="default")
    assert row["lib"] == "missing" and "error" not in row
    assert "spikeforge_no_such_library is not installed" in row["skipped"]
    assert list(tmp_path.iterdir()) == []  # no child process ran
    ok = {"lib": "spikeforge", "spikes": 4.0, "spike_sig": 9.0, "infer_ms": 1.0, "fwd_ms": 1.0, "fwd_bwd_ms": 2.0,
          "load1_before": 0.5}
    rows = [ok, row]
    peers._compare_spikes(str(tmp_path), "A", rows)
    fl = {"floor_fwd_bwd_ms": 1.0, "floor_fwd_bwd_torch_gemm_ms": 1.0, "gemm_mkl_gflops": 1.0,
          "gemm_onednn_gflops": 1.0, "copy_gbps": 1.0}
    text = peers.table("A", peers.CONFIGS["A"], fl, rows)
    assert "| missing | skipped: spikeforge_no_such_library is not installed" in text
    assert "| spikeforge | 4 (yes) | 1.00 | 1.00 | 2.00 |" in text
