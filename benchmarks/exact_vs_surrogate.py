r"""Surrogate vs exact gradients, measured (issue 15, deliverable 6).

One network, one batch, one loss, two gradients:

* **exact**: the continuous-time current-based LIF network (:mod:`spikeforge.exact`), gradient by EventProp
  (Wunderlich & Pehle 2021), float64, exact to round-off;
* **surrogate BPTT**: the ``dt``-discretisation of the *same* model with the project's discrete neurons
  (:class:`spikeforge.neurons.CubaLIF`, default fused backend), gradient by backpropagation through time with
  each built-in surrogate at three sharpnesses (default, 4x flatter, 4x sharper) with the reset kept out of the
  gradient (the project's default ``detach_reset=True``), and at the default sharpness with the reset in the
  gradient (``detach_reset=False``), float64,

as ``dt`` shrinks from 1 ms to 0.01 ms over a 30 ms window. Reported: cosine similarity, relative error
``|g_sg - g_exact| / |g_exact|`` and the norm ratio ``|g_sg| / |g_exact|``, per layer and overall.

**Network and data.** Yin-Yang (Kriener et al. 2022; :func:`spikeforge.data.yinyang.make_yinyang`), latency-coded
as in :mod:`spikeforge.training.exact_eventprop`: each feature ``x`` spikes once at ``x * 10`` ms plus one bias
spike at 0 ms (``[B, 5, 1]`` input times). ``5 - hidden - 3`` with ``tau_mem = 20`` ms, ``tau_syn = 5`` ms,
``v_th = 1``, reset to 0, fixed random weights (hidden: mean 0.4, std 0.4; output: mean 0.1, std 0.5, in units of
the weight whose single spike lifts a resting neuron exactly to threshold), at which the hidden layer fires a
few spikes per neuron.

**Loss (the same function in both paths).** Spike-time losses need a differentiable spike time, which a
discrete network does not have; so the output layer is a non-spiking current-based leaky integrator and the loss
is the max-membrane cross-entropy :func:`spikeforge.exact.losses.max_voltage_cross_entropy` of
``V_max = max(0, max_t V_out(t))`` over ``[0, 30]`` ms: well defined in both paths (EventProp: the ``"max_membrane"``
readout; discrete: the maximum over the grid of the readout's membrane trace, the leading 0 being ``V(0)``).

**Discretisation (the dt -> 0 limit of the exact model).** ``I`` jumps by ``w / tau_syn`` per input spike, as in
:mod:`spikeforge.exact.simulate`: the discrete input current of a layer is ``x[n] = W s[n] / tau_syn`` with
``s[n]`` the spikes of the layer below in step ``n``. Input spike ``t`` goes to step ``round(t / dt)``; the state
after step ``n`` stands for time ``(n + 1) dt`` (the convention of ``tests/exact/_exact_reference.py``), so a
discrete spike in step ``n`` is reported at ``(n + 1) dt``. Hidden: ``CubaLIF(reset="to_value", v_reset=0)``
(``detach_reset`` default ``True``); readout: ``cuba_lif_step`` with ``reset="none"`` (its spikes are unused, so
no surrogate enters the readout). ``CubaLIF`` holds the current over a step, so spike times converge with order
one; the script prints ``max |t_discrete - t_exact|`` of every hidden spike per ``dt``.

**Sanity checks printed.** (1) EventProp vs central finite differences of the exact loss on a few weights.
(2) The "exact discretised gradient" limit: the readout does not spike, so the output layer's BPTT gradient
contains no surrogate at all; it is the exact gradient of the discretised model and must converge to the
EventProp gradient as ``dt -> 0`` for every surrogate (its cosine -> 1), as must the discrete loss. Only the
hidden layer's gradient measures the surrogate.

Run (about 2-4 minutes on one core)::

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/exact_vs_surrogate.py

(``--batch``, ``--hidden``, ``--dts``, ``--seed``, ``--quick``; writes ``benchmarks/exact_vs_surrogate.png``).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from spikeforge.data.yinyang import make_yinyang
from spikeforge.exact.encode import append_bias_spikes
from spikeforge.exact.encode import latency_times
from spikeforge.exact.eventprop import eventprop
from spikeforge.exact.losses import max_voltage_cross_entropy
from spikeforge.exact.simulate import EventConfig
from spikeforge.exact.simulate import simulate
from spikeforge.neurons.cuba import CubaLIF
from spikeforge.neurons.cuba import CubaLIFParams
from spikeforge.neurons.cuba import cuba_lif_init
from spikeforge.neurons.cuba import cuba_lif_step
from spikeforge.surrogate import ATan
from spikeforge.surrogate import FastSigmoid
from spikeforge.surrogate import Sigmoid
from spikeforge.surrogate import StraightThrough
from spikeforge.surrogate import Surrogate
from spikeforge.surrogate import Triangle
from spikeforge.training.exact_eventprop import unit_weight

HERE = Path(__file__).resolve().parent
TAU_MEM, TAU_SYN, V_TH = 20.0, 5.0, 1.0
T_WINDOW = 30.0  # ms
T_LATEST = 10.0  # latest input spike (feature value 1), ms
DTS = (1.0, 0.5, 0.25, 0.1, 0.05, 0.01)
INIT = ((0.4, 0.4), (0.02, 0.1))  # (mean, std) per layer, in units of unit_weight()


@dataclass(frozen=True)
class Problem:
    """One batch: input times ``[B, 5, 1]`` (float64), labels ``[B]``, weights ``[H, 5]``, ``[3, H]``."""

    input_times: Tensor
    labels: Tensor
    weights: tuple[Tensor, Tensor]


def event_config(max_spikes: int = 64) -> EventConfig:
    return EventConfig(
        tau_mem=TAU_MEM, tau_syn=TAU_SYN, v_th=V_TH, max_spikes=max_spikes, t_end=T_WINDOW, readout="max_membrane"
    )


def make_problem(batch: int, hidden: int = 120, seed: int = 0) -> Problem:
    """A Yin-Yang batch (generator seed ``seed``) and fixed random weights (seed ``seed``)."""
    feats, labels = make_yinyang(batch, seed=seed + 1)
    x = append_bias_spikes(latency_times(torch.from_numpy(feats).double(), t_early=0.0, t_late=T_LATEST), (0.0,))
    x = x.unsqueeze(-1)  # [B, 5, 1]: x, y, 1-x, 1-y, bias
    gen = torch.Generator().manual_seed(seed)
    scale = unit_weight(TAU_MEM, TAU_SYN, V_TH)
    sizes = (x.shape[1], hidden, 3)
    ws = tuple(
        (torch.randn(n_out, n_in, generator=gen, dtype=torch.float64) * std + mean) * scale
        for n_in, n_out, (mean, std) in zip(sizes[:-1], sizes[1:], INIT, strict=True)
    )
    return Problem(x, torch.from_numpy(labels).long(), (ws[0], ws[1]))


# ---- exact path ---------------------------------------------------------------------------------
def exact_loss_and_grads(p: Problem) -> tuple[float, list[Tensor]]:
    """Max-membrane cross-entropy and its EventProp gradient w.r.t. both weight matrices."""
    ws = [w.clone().requires_grad_() for w in p.weights]
    loss = max_voltage_cross_entropy(eventprop(p.input_times, ws, event_config()), p.labels)
    loss.backward()
    return float(loss.detach()), [w.grad for w in ws if w.grad is not None]


def exact_loss(p: Problem, weights: Sequence[Tensor]) -> float:
    with torch.no_grad():
        return float(max_voltage_cross_entropy(eventprop(p.input_times, list(weights), event_config()), p.labels))


def exact_hidden_times(p: Problem, max_spikes: int = 64) -> Tensor:
    """Hidden spike times ``[B, H, K]`` (+inf padded) of the continuous model, over ``[0, T_WINDOW]``."""
    cfg = EventConfig(tau_mem=TAU_MEM, tau_syn=TAU_SYN, v_th=V_TH, max_spikes=max_spikes, t_end=T_WINDOW)
    return simulate(p.input_times, [p.weights[0]], cfg)[0]


def finite_difference_check(p: Problem, grads: Sequence[Tensor], n: int = 3, eps: float = 1e-6) -> float:
    """Largest relative error of EventProp against central differences on ``n`` entries per layer (the
    largest-gradient ones: no spike appears or disappears under an ``eps`` perturbation there in practice)."""
    worst = 0.0
    for layer, g in enumerate(grads):
        for flat in torch.topk(g.abs().flatten(), n).indices.tolist():
            idx = np.unravel_index(flat, g.shape)
            plus = [w.clone() for w in p.weights]
            minus = [w.clone() for w in p.weights]
            plus[layer][idx] += eps
            minus[layer][idx] -= eps
            fd = (exact_loss(p, plus) - exact_loss(p, minus)) / (2 * eps)
            worst = max(worst, abs(fd - float(g[idx])) / max(abs(fd), 1e-12))
    return worst


# ---- discrete path ------------------------------------------------------------------------------
def n_steps(dt: float) -> int:
    steps = round(T_WINDOW / dt)
    if abs(steps * dt - T_WINDOW) > 1e-9 * T_WINDOW:
        raise ValueError(f"dt={dt} must divide the {T_WINDOW} ms window")
    return steps


def bin_inputs(times: Tensor, dt: float, dtype: torch.dtype = torch.float64) -> Tensor:
    """Input times ``[B, N, K]`` -> spike counts ``[T, B, N]`` on the grid (spike ``t`` in step ``round(t/dt)``)."""
    steps = n_steps(dt)
    b, nrn, k = torch.nonzero(torch.isfinite(times) & (times < T_WINDOW), as_tuple=True)
    step = torch.round(times[b, nrn, k] / dt).long().clamp(max=steps - 1)
    out = torch.zeros(steps, times.shape[0], times.shape[1], dtype=dtype)
    out.index_put_((step, b, nrn), torch.ones_like(step, dtype=dtype), accumulate=True)
    return out


def hidden_layer(dt: float, surrogate: Surrogate, backend: str = "auto", detach_reset: bool = True) -> CubaLIF:
    return CubaLIF(
        TAU_MEM,
        TAU_SYN,
        dt=dt,
        v_th=V_TH,
        reset="to_value",
        v_reset=0.0,
        surrogate=surrogate,
        backend=backend,
        detach_reset=detach_reset,
    )


def discrete_forward(
    x_seq: Tensor,
    weights: Sequence[Tensor],
    dt: float,
    surrogate: Surrogate,
    backend: str = "auto",
    detach_reset: bool = True,
) -> tuple[Tensor, Tensor]:
    """``(V_max [B, 3], hidden spikes [T, B, H])`` of the discretised network on binned inputs ``[T, B, N]``."""
    w1, w2 = weights
    z, _ = hidden_layer(dt, surrogate, backend, detach_reset)(x_seq @ (w1.T / TAU_SYN))
    drive = z @ (w2.T / TAU_SYN)  # [T, B, 3]
    p = CubaLIFParams(tau_mem=TAU_MEM, tau_syn=TAU_SYN, v_th=V_TH, reset="none")
    state = cuba_lif_init(drive[0], p)
    v_max = torch.zeros_like(drive[0])  # V(0) = 0
    for d_t in drive.unbind(0):
        _, state = cuba_lif_step(d_t, state, p, dt=dt, surrogate=surrogate)
        v_max = torch.maximum(v_max, state.v)
    return v_max, z


def surrogate_loss_and_grads(
    p: Problem, dt: float, surrogate: Surrogate, x_seq: Tensor | None = None, detach_reset: bool = True
) -> tuple[float, list[Tensor]]:
    ws = [w.clone().requires_grad_() for w in p.weights]
    x_seq = bin_inputs(p.input_times, dt) if x_seq is None else x_seq
    v_max, _ = discrete_forward(x_seq, ws, dt, surrogate, detach_reset=detach_reset)
    loss = max_voltage_cross_entropy(v_max, p.labels)
    loss.backward()
    return float(loss.detach()), [w.grad for w in ws if w.grad is not None]


def spike_time_errors(exact: Tensor, z: Tensor, dt: float) -> tuple[np.ndarray, int]:
    """``(|t_discrete - t_exact| of every matched spike, neurons whose spike counts differ)``: exact times
    ``[B, H, K]``, discrete spikes ``[T, B, H]``; a discrete spike in step ``n`` is at ``(n + 1) dt``; spikes are
    matched in order per neuron, over the neurons with equal counts."""
    counts_exact = torch.isfinite(exact).sum(-1)  # [B, H]
    zz = z.detach().permute(1, 2, 0) > 0  # [B, H, T]
    counts = zz.sum(-1)
    same = counts == counts_exact
    keep = same & (counts > 0)
    b, h, n = torch.nonzero(zz & keep[:, :, None], as_tuple=True)  # ordered by (b, h, n): spikes in order
    t_disc = (n + 1).double() * dt
    rank = torch.cumsum(torch.ones_like(n), 0) - 1
    first = torch.cumsum(counts[keep].flatten(), 0) - counts[keep].flatten()  # index of each neuron's 1st spike
    rank = rank - torch.repeat_interleave(first, counts[keep].flatten())
    errors = (t_disc - exact[b, h, rank].double()).abs()
    return errors.numpy(), int((~same).sum())


# ---- comparison ---------------------------------------------------------------------------------
def compare(g: Sequence[Tensor], ref: Sequence[Tensor]) -> dict[str, float]:
    """Cosine, relative error and norm ratio per layer (``_1``: hidden, ``_2``: output) and overall."""

    def stats(a: Tensor, b: Tensor) -> tuple[float, float, float]:
        na, nb = float(a.norm()), float(b.norm())
        cos = float(a @ b) / (na * nb) if na > 0 and nb > 0 else 0.0
        return cos, float((a - b).norm()) / nb, na / nb

    out: dict[str, float] = {}
    for key, (a, b) in {
        "1": (g[0].flatten(), ref[0].flatten()),
        "2": (g[1].flatten(), ref[1].flatten()),
        "all": (torch.cat([x.flatten() for x in g]), torch.cat([x.flatten() for x in ref])),
    }.items():
        out[f"cos_{key}"], out[f"rel_{key}"], out[f"ratio_{key}"] = stats(a, b)
    return out


def surrogate_sweep(quick: bool = False) -> list[tuple[str, Surrogate, bool]]:
    """``(label, surrogate, detach_reset)``: every built-in surrogate at its default sharpness, 4x flatter and 4x
    sharper, with the reset kept out of the gradient (the project's default), and at the default sharpness with the
    reset in the gradient (``detach_reset=False``). ``quick``: the default sharpness, reset detached, only."""
    factors = (1.0,) if quick else (0.25, 1.0, 4.0)
    out: list[tuple[str, Surrogate, bool]] = []
    for f in factors:
        out += [
            (f"fast_sigmoid(slope={25 * f:g})", FastSigmoid(slope=25 * f), True),
            (f"sigmoid(slope={5 * f:g})", Sigmoid(slope=5 * f), True),
            (f"atan(alpha={2 * f:g})", ATan(alpha=2 * f), True),
            (f"triangle(width={1 / f:g})", Triangle(width=1 / f), True),
            (f"straight_through(width={0.5 / f:g})", StraightThrough(width=0.5 / f), True),
        ]
    if not quick:
        out += [(f"{name}, reset in grad", sg, False) for name, sg, _ in out[5:10]]
    return sorted(out, key=lambda item: (item[0].split("(")[0], not item[2]))


# ---- the sweep ----------------------------------------------------------------------------------
def sweep(
    p: Problem, dts: Sequence[float], surrogates: Sequence[tuple[str, Surrogate, bool]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The exact reference and one row per ``(surrogate, dt)``: loss, spike-time error and :func:`compare`."""
    exact_loss_value, exact = exact_loss_and_grads(p)
    hidden = exact_hidden_times(p)
    ref = {"loss": exact_loss_value, "grads": exact, "fd_rel_err": finite_difference_check(p, exact)}
    rows: list[dict[str, Any]] = []
    for dt in dts:
        x_seq = bin_inputs(p.input_times, dt)
        with torch.no_grad():
            _, z = discrete_forward(x_seq, p.weights, dt, FastSigmoid())
        errors, mismatch = spike_time_errors(hidden, z, dt)
        spike = {
            "err_median": float(np.median(errors)) if errors.size else math.nan,
            "err_max": float(errors.max()) if errors.size else math.nan,
            "mismatch": mismatch,
        }
        for name, sg, detach in surrogates:
            loss, grads = surrogate_loss_and_grads(p, dt, sg, x_seq, detach)
            rows.append({"surrogate": name, "dt": dt, "loss": loss, **spike, **compare(grads, exact)})
    return ref, rows


def _plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from spikeforge._core.files import save_figure

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    names = list(dict.fromkeys(r["surrogate"] for r in rows))  # sweep order: flatter, default, sharper, reset
    families = sorted({n.split("(")[0] for n in names})
    colours = {f: plt.get_cmap("tab10")(k) for k, f in enumerate(families)}
    for name in names:
        rs = sorted((r for r in rows if r["surrogate"] == name), key=lambda r: r["dt"])
        family = name.split("(")[0]
        members = [n for n in names if n.startswith(family + "(") and "reset in grad" not in n]
        if "reset in grad" in name:
            style = "-."
        else:
            style = ("--", "-", ":")[members.index(name) % 3] if len(members) == 3 else "-"
        kw = {"color": colours[family], "linestyle": style, "marker": "o", "markersize": 3, "label": name}
        dts = [r["dt"] for r in rs]
        axes[0].plot(dts, [r["cos_1"] for r in rs], **kw)
        axes[1].plot(dts, [r["ratio_1"] for r in rs], **kw)
        axes[2].plot(dts, [r["rel_2"] for r in rs], **kw)
    titles = (
        "hidden layer: cosine(surrogate, exact)",
        "hidden layer: |g_surrogate| / |g_exact|",
        "output layer (no surrogate in it): relative error",
    )
    for ax, title in zip(axes, titles, strict=True):
        ax.set_xscale("log")
        ax.invert_xaxis()
        ax.set_xlabel("dt (ms)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[1].set_yscale("log")
    axes[2].set_yscale("log")
    axes[1].axhline(1.0, color="k", lw=0.8)
    axes[0].legend(fontsize=6, ncol=2)
    fig.suptitle(
        "BPTT surrogate gradient vs exact EventProp gradient (same network, data, loss; 30 ms window)\n"
        "dashed: 4x flatter, solid: default, dotted: 4x sharper surrogate; dash-dot: default with the reset in the "
        "gradient",
        fontsize=10,
    )
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)


def _pivot(rows: list[dict[str, Any]], key: str, fmt: str) -> None:
    dts = sorted({r["dt"] for r in rows}, reverse=True)
    print("| surrogate | " + " | ".join(f"dt {dt:g}" for dt in dts) + " |")
    print("|---|" + "---:|" * len(dts))
    for name in dict.fromkeys(r["surrogate"] for r in rows):
        cells = {r["dt"]: r[key] for r in rows if r["surrogate"] == name}
        print(f"| {name} | " + " | ".join(format(cells[dt], fmt) for dt in dts) + " |")


def _print_tables(ref: dict[str, Any], rows: list[dict[str, Any]], args: argparse.Namespace, seconds: float) -> None:
    load = os.getloadavg()
    print("## Surrogate vs exact gradient (issue 15)\n")
    print(
        f"Yin-Yang batch {args.batch} (seed {args.seed}), 5-{args.hidden}-3 CuBa-LIF (tau_mem {TAU_MEM}, tau_syn "
        f"{TAU_SYN} ms), max-membrane cross-entropy over {T_WINDOW} ms; float64; {seconds:.0f} s; load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs\n"
    )
    print(
        f"Exact loss {ref['loss']:.6f}; EventProp vs central differences (3 largest entries per layer): max rel. "
        f"error {ref['fd_rel_err']:.1e}\n"
    )
    print("Discretisation: the discrete network -> the exact one (hidden spike times; output layer gradient, which")
    print("holds no surrogate and is the same for every surrogate):\n")
    print(
        "| dt (ms) | T | loss (discrete) | median abs t err (ms) | max abs t err (ms) | neurons w/ other count |",
        end="",
    )
    print(" output layer: cos | output layer: rel. err |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    first = {r["dt"]: r for r in rows}
    for dt, r in first.items():
        print(
            f"| {dt:g} | {n_steps(dt)} | {r['loss']:.5f} | {r['err_median']:.4f} | {r['err_max']:.3f} | "
            f"{r['mismatch']} | {r['cos_2']:.6f} | {r['rel_2']:.2e} |"
        )
    print("\nHidden layer (where the surrogate acts): cosine similarity with the exact gradient\n")
    _pivot(rows, "cos_1", ".3f")
    print("\nHidden layer: relative error |g - g_exact| / |g_exact|\n")
    _pivot(rows, "rel_1", ".3g")
    print("\nHidden layer: norm ratio |g| / |g_exact|\n")
    _pivot(rows, "ratio_1", ".3g")
    print("\nBoth layers together: cosine similarity\n")
    _pivot(rows, "cos_all", ".3f")
    print("\nBoth layers together: relative error\n")
    _pivot(rows, "rel_all", ".3g")
    if args.full_table:
        print("\n| surrogate | dt | cos_1 | rel_1 | ratio_1 | cos_2 | rel_2 | cos_all | rel_all |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(
                f"| {r['surrogate']} | {r['dt']:g} | {r['cos_1']:.3f} | {r['rel_1']:.3g} | {r['ratio_1']:.3g} | "
                f"{r['cos_2']:.5f} | {r['rel_2']:.2e} | {r['cos_all']:.3f} | {r['rel_all']:.3g} |"
            )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Surrogate BPTT vs exact EventProp gradients as dt shrinks")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=120)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dts", type=float, nargs="+", default=list(DTS))
    ap.add_argument("--quick", action="store_true", help="one sharpness per surrogate")
    ap.add_argument("--full-table", action="store_true", help="also print one row per (surrogate, dt)")
    ap.add_argument("--png", type=Path, default=HERE / "exact_vs_surrogate.png")
    args = ap.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    start = time.perf_counter()
    ref, rows = sweep(make_problem(args.batch, args.hidden, args.seed), args.dts, surrogate_sweep(args.quick))
    _print_tables(ref, rows, args, time.perf_counter() - start)
    _plot(rows, args.png)
    print(f"\nwrote {args.png}", file=sys.stderr)


if __name__ == "__main__":
    main()
