"""Fast checks of ``benchmarks/exact_vs_surrogate.py`` and ``benchmarks/exact_memory.py`` on tiny networks: the
discretised network converges to the exact one (first order), the helpers against independent references, and
the properties the benchmark's conclusions rest on. No timing assertions."""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

_DIR = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, _DIR / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def ev() -> Iterator[ModuleType]:
    sys.path.insert(0, str(_DIR))  # as when run as a script (exact_memory imports exact_vs_surrogate)
    try:
        yield _load("exact_vs_surrogate")
    finally:
        sys.path.remove(str(_DIR))


@pytest.fixture(scope="module")
def problem(ev: ModuleType) -> object:
    return ev.make_problem(6, 24, 0)


def test_bin_inputs_matches_a_loop(ev: ModuleType) -> None:
    times = torch.tensor([[[0.0, 0.26], [math.inf, 29.99]], [[0.74, 0.76], [10.0, math.inf]]], dtype=torch.float64)
    got = ev.bin_inputs(times, 0.5)
    ref = torch.zeros(60, 2, 2, dtype=torch.float64)
    for b in range(2):
        for n in range(2):
            for t in times[b, n].tolist():
                if math.isfinite(t):
                    ref[min(math.floor(t / 0.5 + 0.5), 59), b, n] += 1
    assert torch.equal(got, ref)
    with pytest.raises(ValueError, match="divide"):
        ev.bin_inputs(times, 0.7)


def test_spike_time_errors_match_a_loop(ev: ModuleType) -> None:
    gen = torch.Generator().manual_seed(3)
    z = (torch.rand(40, 3, 4, generator=gen) < 0.1).double()  # [T, B, H]
    dt = 0.25
    exact = torch.full((3, 4, 8), math.inf, dtype=torch.float64)
    for b in range(3):
        for h in range(4):
            steps = torch.nonzero(z[:, b, h]).flatten()
            shift = 0.1 if (b + h) % 3 else 0.0
            times = (steps + 1).double() * dt + shift * torch.arange(len(steps))
            if (b, h) == (1, 2):
                times = times[1:]  # a count mismatch
            exact[b, h, : len(times)] = times
    errors, mismatch = ev.spike_time_errors(exact, z, dt)
    ref = []
    for b in range(3):
        for h in range(4):
            t_disc = [(n + 1) * dt for n in range(40) if z[n, b, h] > 0]
            t_ex = [t for t in exact[b, h].tolist() if math.isfinite(t)]
            if len(t_disc) == len(t_ex):
                ref += [abs(a - c) for a, c in zip(t_disc, t_ex, strict=True)]
    assert mismatch == (1 if bool(z[:, 1, 2].any()) else 0)
    assert np.allclose(np.sort(errors), np.sort(np.array(ref)), atol=1e-12, rtol=0)


def test_compare_against_hand_values(ev: ModuleType) -> None:
    g = [torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]])]
    ref = [torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])]
    out = ev.compare(g, ref)
    assert out["cos_1"] == pytest.approx(1.0) and out["rel_1"] == pytest.approx(0.0)
    assert out["cos_2"] == pytest.approx(1.0) and out["rel_2"] == pytest.approx(1.0) and out["ratio_2"] == 2.0
    assert out["cos_all"] == pytest.approx(3 / (math.sqrt(5) * math.sqrt(2)))
    assert out["rel_all"] == pytest.approx(1 / math.sqrt(2))


def test_exact_gradient_matches_finite_differences(ev: ModuleType, problem: object) -> None:
    _, grads = ev.exact_loss_and_grads(problem)
    assert ev.finite_difference_check(problem, grads) < 1e-5


def test_discretised_network_converges_to_the_exact_one(ev: ModuleType, problem: object) -> None:
    """Median spike-time error shrinks with order one; the discrete loss approaches the exact loss; the
    output layer's gradient (no surrogate in it) approaches EventProp's and does not depend on the surrogate."""
    exact_loss, exact = ev.exact_loss_and_grads(problem)
    hidden = ev.exact_hidden_times(problem)
    medians, loss_errors, rel_2 = [], [], []
    dts = (0.5, 0.1, 0.05)
    for dt in dts:
        x_seq = ev.bin_inputs(problem.input_times, dt)
        loss, grads = ev.surrogate_loss_and_grads(problem, dt, ev.FastSigmoid(), x_seq)
        _, other = ev.surrogate_loss_and_grads(problem, dt, ev.Triangle(width=0.3), x_seq)
        assert torch.equal(grads[1], other[1])  # the readout does not spike: no surrogate in its gradient
        assert not torch.equal(grads[0], other[0])
        with torch.no_grad():
            _, z = ev.discrete_forward(x_seq, problem.weights, dt, ev.FastSigmoid())
        errors, _ = ev.spike_time_errors(hidden, z, dt)
        medians.append(float(np.median(errors)))
        loss_errors.append(abs(loss - exact_loss))
        rel_2.append(ev.compare(grads, exact)["rel_2"])
    orders = [math.log(medians[k] / medians[k + 1]) / math.log(dts[k] / dts[k + 1]) for k in range(2)]
    assert all(0.6 < o < 1.5 for o in orders), (medians, orders)
    assert loss_errors[2] < loss_errors[0] / 2
    assert rel_2[2] < rel_2[0] / 2 and rel_2[2] < 0.05


def test_surrogate_gradient_grows_as_dt_shrinks(ev: ModuleType, problem: object) -> None:
    """A unit-area surrogate summed over ~1/dt steps near threshold: the hidden-layer gradient's norm grows
    like 1/dt, while the exact gradient is fixed (the benchmark's main finding)."""
    _, exact = ev.exact_loss_and_grads(problem)
    ratios = []
    for dt in (0.2, 0.05):
        _, grads = ev.surrogate_loss_and_grads(problem, dt, ev.ATan())
        ratios.append(ev.compare(grads, exact)["ratio_1"])
    assert ratios[1] > 2.5 * ratios[0]


def test_sweep_and_plot_run(ev: ModuleType, problem: object, tmp_path: Path) -> None:
    ref, rows = ev.sweep(problem, [0.5], ev.surrogate_sweep(quick=True))
    assert len(rows) == 5 and {r["surrogate"].split("(")[0] for r in rows} == {
        "fast_sigmoid", "sigmoid", "atan", "triangle", "straight_through",
    }  # fmt: skip
    assert all(-1.0 <= r["cos_1"] <= 1.0 and r["rel_all"] >= 0 for r in rows)
    assert len({r["loss"] for r in rows}) == 1  # one forward for all surrogates
    assert ref["fd_rel_err"] < 1e-5
    ev._plot(rows, tmp_path / "fig.png")
    assert (tmp_path / "fig.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_memory_child_counts_saved_bytes(ev: ModuleType) -> None:
    mem = _load("exact_memory")
    base = {"batch": 4, "hidden": 16, "dt": 0.1, "steps": 1, "seed": 0, "max_spikes": 64, "epoch": []}
    ep = mem._child(argparse.Namespace(path="eventprop", bptt_dtype="float32", **base))
    bp = mem._child(argparse.Namespace(path="bptt", bptt_dtype="float32", **base))
    assert ep["loss"] == pytest.approx(bp["loss"], abs=0.2)  # same network and loss, dt = 0.1 ms
    # BPTT keeps at least its [T, B, H] float32 input current; EventProp its spike times, currents, input, weights
    assert bp["saved_mib"] * 2**20 >= 300 * 4 * 16 * 4
    assert bp["saved_mib"] > 10 * ep["saved_mib"] > 0
    assert bp["count_mismatch"] >= 0 and 0 <= bp["err_median"] < 0.1
