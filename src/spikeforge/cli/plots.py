"""PNG plots of a training run: learning curves, spike rasters, membrane traces, firing rates.

The ``plot_*`` functions take plain data (sequences of dicts, mappings of arrays or tensors) and a
file path, so they can be tested without training. :func:`collect_activity` gathers that data from a
trained classifier and :func:`plot_run` writes all four figures into a run directory. Every figure has a
title, every panel a title and axis labels; mean firing rates come from :mod:`spikeforge.cli._stats`, the
definition the training summary uses too.

matplotlib is an optional dependency (``pip install 'spikeforge[plot]'``), imported lazily. Figures
are built with :class:`matplotlib.figure.Figure` and the Agg canvas directly, never through
``pyplot``, so no global figure state is created or leaked.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch import nn

from spikeforge._core.files import save_figure
from spikeforge.cli._activity import Activity
from spikeforge.cli._activity import collect_activity
from spikeforge.cli._stats import FiringRates
from spikeforge.cli._stats import firing_rates
from spikeforge.cli._stats import mean_rate
from spikeforge.cli._stats import neuron_rates

__all__ = [
    "plot_learning_curves", "plot_raster", "plot_membrane", "plot_firing_rates", "Activity", "collect_activity",
    "plot_run", "PLOT_FILES",
]  # fmt: skip

PLOT_FILES = ("learning_curves.png", "raster.png", "membrane.png", "firing_rates.png")
_ACC_KEYS = (("train_acc", "train (running, during the epoch)"), ("val_acc", "validation"), ("test_acc", "test"))


def _figure(n_rows: int, *, width: float = 7.0, row_height: float = 2.2) -> tuple[Any, list[Any]]:
    """A new Agg-backed Figure (no pyplot) with ``n_rows`` stacked axes."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError("plotting needs matplotlib: pip install 'spikeforge[plot]'") from e
    fig = Figure(figsize=(width, max(2.5, row_height * n_rows + 0.8)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(n_rows, 1, i + 1) for i in range(n_rows)]
    return fig, axes


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"plots are written as PNG; give a path ending in .png, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        save_figure(fig, path, format="png", dpi=110)  # atomic, never through a planted link
    finally:
        fig.clear()
    return path


def _as_array(name: str, value: Any) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.detach().to("cpu", torch.float64).numpy()
    arr = np.asarray(value, dtype=np.float64)
    if arr.size and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf; pass finite values")
    return arr


def _check_mapping(name: str, data: Mapping[str, Any]) -> None:
    if not isinstance(data, Mapping):
        raise TypeError(f"{name} must be a mapping from layer name to array, got {type(data).__name__}")
    if not data:
        raise ValueError(f"{name} is empty; give at least one layer")


def _time_by_neuron(name: str, value: Any) -> np.ndarray:
    """``[T, ...]`` -> ``[T, N]`` (trailing feature dims flattened)."""
    arr = _as_array(name, value)
    if arr.ndim < 2:
        raise ValueError(f"{name} must be [T, N] (time steps x neurons), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); give at least one step and one neuron")
    arr = arr.reshape(arr.shape[0], -1)
    if arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); give at least one step and one neuron")
    return arr


def plot_learning_curves(history: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Loss (top) and train/validation/test accuracy (bottom) per epoch.

    Args:
        history: one dict per epoch with ``"loss"`` and any of ``"train_acc"``, ``"val_acc"``,
            ``"test_acc"`` (fractions in [0, 1]); ``"epoch"`` is used for the x axis when present.
        path: output ``.png`` file.
    Returns:
        The path written.
    """
    if isinstance(history, Mapping) or not isinstance(history, Sequence):
        raise TypeError(f"history must be a list of per-epoch dicts, got {type(history).__name__}")
    if len(history) == 0:
        raise ValueError("history is empty; train for at least one epoch before plotting")
    for i, h in enumerate(history):
        if not isinstance(h, Mapping) or "loss" not in h:
            raise ValueError(f"history[{i}] must be a dict with a 'loss' entry, got {h!r}")
    epochs = _as_array("epoch", [h.get("epoch", i + 1) for i, h in enumerate(history)])
    loss = _as_array("loss", [h["loss"] for h in history])
    fig, (ax_loss, ax_acc) = _figure(2, row_height=2.6)
    fig.suptitle(f"Learning curves ({len(history)} epochs)")
    ax_loss.plot(epochs, loss, marker="o", ms=3, color="tab:red")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("training loss (mean cross-entropy over the epoch)", fontsize=9)
    ax_loss.grid(alpha=0.3)
    n_curves = 0
    for key, label in _ACC_KEYS:
        values = [h.get(key) for h in history]
        if all(v is not None for v in values):
            ax_acc.plot(epochs, 100.0 * _as_array(key, values), marker="o", ms=3, label=label)
            n_curves += 1
    ax_acc.set_title("accuracy after each epoch", fontsize=9)
    ax_acc.set_ylabel("accuracy (%)")
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("epoch")
    ax_acc.grid(alpha=0.3)
    if n_curves:
        ax_acc.legend(loc="lower right")
    for ax in (ax_loss, ax_acc):
        ax.xaxis.get_major_locator().set_params(integer=True)
    return _save(fig, path)


def plot_raster(spikes: Mapping[str, Any], path: str | Path, *, title: str = "Spike raster") -> Path:
    """One raster panel per layer: a dot at (t, i) when neuron ``i`` spiked at step ``t``.

    Args:
        spikes: layer name -> spikes of one sample, ``[T, N]`` (or ``[T, C, H, W]``, flattened);
            non-zero entries count as spikes.
        path: output ``.png`` file.
    """
    _check_mapping("spikes", spikes)
    arrays = {k: _time_by_neuron(f"spikes[{k!r}]", v) for k, v in spikes.items()}
    fig, axes = _figure(len(arrays))
    for ax, (name, s) in zip(axes, arrays.items()):
        t_idx, n_idx = np.nonzero(s)
        size = float(np.clip(2000.0 / s.shape[1], 6.0, 60.0))  # fewer neurons -> taller ticks
        ax.scatter(t_idx, n_idx, s=size, marker="|", color="black", linewidths=1.2)
        ax.set_xlim(-0.5, s.shape[0] - 0.5)
        ax.set_ylim(-0.5, s.shape[1] - 0.5)
        rate = mean_rate(neuron_rates(torch.from_numpy(s)[:, None]))  # [T, 1 sample, N]
        n_spikes = int(np.count_nonzero(s))
        ax.set_title(f"{name}: {s.shape[1]} neurons, {n_spikes} spikes (mean rate {rate:.3f})", fontsize=9)
        ax.set_ylabel("neuron")
        ax.set_xlabel("time step")
        for axis in (ax.xaxis, ax.yaxis):
            axis.get_major_locator().set_params(integer=True)
    fig.suptitle(title)
    return _save(fig, path)


def _sawtooth(pre: np.ndarray, post: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x, y of a trace that shows each step's membrane before its reset (``pre``) and then after it (``post``)
    at the same time step: a spike's reset is a vertical drop, the integration a slope to the next step."""
    steps = np.repeat(np.arange(pre.shape[0]), 2)
    return steps, np.stack([pre, post], axis=1).reshape(-1)


def plot_membrane(
    traces: Mapping[str, Any],
    path: str | Path,
    *,
    thresholds: Mapping[str, float | None] | None = None,
    spikes: Mapping[str, Any] | None = None,
    pre_reset: Mapping[str, Any] | None = None,
    neuron_ids: Mapping[str, Sequence[int]] | None = None,
    n_neurons: Mapping[str, int] | None = None,
    title: str = "Membrane potential",
) -> Path:
    """Membrane traces, one panel per layer, one line per neuron; dashed line at the threshold.

    Args:
        traces: layer name -> membrane potential ``v`` of a few neurons after each step (after its reset),
            ``[T, K]``.
        thresholds: layer name -> firing threshold ``v_th`` (drawn dashed), or None.
        spikes: layer name -> spikes ``[T, K]`` of the same neurons, optional; drawn as dots where the
            membrane crossed the threshold (at ``pre_reset`` when given, else on the trace).
        pre_reset: layer name -> the membrane of each step before its reset ``V'`` ``[T, K]``, optional: the
            trace then goes up to ``V'`` and drops to ``v`` at every step, so thresholds crossings and resets show.
        neuron_ids: layer name -> the ``K`` neuron indices, for the legend (default ``0 .. K-1``).
        n_neurons: layer name -> the number of neurons in the layer, for the panel title (default ``K``).
        path: output ``.png`` file.
    """
    _check_mapping("traces", traces)
    arrays = {k: _time_by_neuron(f"traces[{k!r}]", v) for k, v in traces.items()}
    thresholds = dict(thresholds or {})
    ids = {k: [int(i) for i in v] for k, v in (neuron_ids or {}).items()}
    for k, idx in ids.items():
        if k not in arrays or len(idx) != arrays[k].shape[1]:
            raise ValueError(f"neuron_ids[{k!r}] must give one index per column of traces[{k!r}]")
    extra = {}
    for what, data in (("spikes", spikes), ("pre_reset", pre_reset)):
        extra[what] = {k: _time_by_neuron(f"{what}[{k!r}]", v) for k, v in (data or {}).items()}
        for k, a in extra[what].items():
            if k not in arrays or a.shape != arrays[k].shape:
                raise ValueError(f"{what}[{k!r}] must match traces[{k!r}] in shape [T, K]")
    spike_arrays, pre_arrays = extra["spikes"], extra["pre_reset"]
    fig, axes = _figure(len(arrays), width=8.0)
    fig.suptitle(title)
    for ax, (name, v) in zip(axes, arrays.items()):
        v_th = thresholds.get(name)
        pre = pre_arrays.get(name)
        for j in range(v.shape[1]):
            label = f"neuron {ids[name][j] if name in ids else j}"
            x, y = _sawtooth(pre[:, j], v[:, j]) if pre is not None else (np.arange(v.shape[0]), v[:, j])
            (line,) = ax.plot(x, y, lw=1.0, label=label)
            if name in spike_arrays:
                t_sp = np.nonzero(spike_arrays[name][:, j])[0]
                ax.plot(t_sp, (pre if pre is not None else v)[t_sp, j], "o", ms=3.5, color=line.get_color())
        if v_th is not None:
            label = f"threshold {float(v_th):.3g}"
            if pre is not None and name in spike_arrays and ((pre > v_th) != (spike_arrays[name] != 0)).any():
                label = f"base threshold {float(v_th):.3g} (it adapts)"  # e.g. ALIF: v_th + b a[t]
            ax.axhline(float(v_th), ls="--", color="gray", lw=1.0, label=label)
        k, n = v.shape[1], (n_neurons or {}).get(name, v.shape[1])
        what = f"all {n} neurons" if k == n else f"{k} of {n} neurons"
        if name in spike_arrays:
            how = "dots: spikes; vertical drops: resets" if pre is not None else "dots: spikes; after the reset"
            ax.set_title(f"{name}: {what} ({how})", fontsize=9)
        else:
            ax.set_title(f"{name}: {what} (readout, no spikes)", fontsize=9)
        ax.set_ylabel("membrane v")
        ax.set_xlabel("time step")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        if v.shape[1] <= 12:
            ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _save(fig, path)


def plot_firing_rates(
    rates: Mapping[str, Any], path: str | Path, *, bins: int = 20, title: str = "Firing rates"
) -> Path:
    """Histogram of per-neuron firing rates (spikes per neuron per step), one panel per layer.

    Args:
        rates: layer name -> firing rate of every neuron, ``[N]`` (trailing dims flattened), in [0, 1].
        bins: number of histogram bins over [0, 1].
        title: the figure's title (say which samples the rates come from).
        path: output ``.png`` file.
    """
    _check_mapping("rates", rates)
    if not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be a positive int, got {bins!r}")
    arrays = {}
    for k, v in rates.items():
        arr = _as_array(f"rates[{k!r}]", v).reshape(-1)
        if arr.size == 0:
            raise ValueError(f"rates[{k!r}] is empty; give one rate per neuron")
        if arr.min() < 0 or arr.max() > 1:
            raise ValueError(
                f"rates[{k!r}] must be spikes per neuron per step in [0, 1], got range [{arr.min()}, {arr.max()}]"
            )
        arrays[k] = arr
    fig, axes = _figure(len(arrays))
    fig.suptitle(title)
    for ax, (name, r) in zip(axes, arrays.items()):
        ax.hist(r, bins=bins, range=(0.0, 1.0), color="tab:blue", edgecolor="white")
        mean = mean_rate(r)
        ax.axvline(mean, color="tab:red", lw=1.0, ls="--")
        silent = float((r == 0).mean())
        ax.set_title(f"{name}: {r.size} neurons, mean {mean:.4f} (dashed), silent {100 * silent:.0f}%", fontsize=9)
        ax.set_ylabel("neurons")
        ax.set_xlabel("firing rate (spikes per neuron per step)")
        ax.yaxis.get_major_locator().set_params(integer=True)
    return _save(fig, path)


def _pick_neurons(spikes: Tensor | None, n_total: int, k: int) -> Tensor:
    """``k`` neuron indices whose traces are worth showing, ascending.

    Neurons that spike on some but not all steps come first (spread evenly over their range of
    spike counts); saturated neurons (a spike every step) and then silent ones fill up the rest.
    Without spikes (readouts) the first ``k`` neurons are taken.
    """
    k = min(k, n_total)
    if spikes is None:
        return torch.arange(k)
    t = spikes.shape[0]
    counts = spikes.reshape(t, -1).sum(0)  # [N]
    order = torch.argsort(counts, stable=True)  # fewest spikes first
    partial = order[(counts[order] > 0) & (counts[order] < t)]
    if len(partial) >= k:
        pos = torch.linspace(0, len(partial) - 1, k).round().long().unique()
        chosen = partial[pos].tolist()
    else:
        chosen = partial.tolist()
    saturated = order[counts[order] >= t].tolist()
    silent = order[counts[order] == 0].tolist()
    for i in saturated + silent + partial.tolist():
        if len(chosen) >= k:
            break
        if i not in chosen:
            chosen.append(i)
    return torch.tensor(sorted(chosen), dtype=torch.long)


def plot_run(
    model: nn.Module,
    x: Tensor,
    history: Sequence[Mapping[str, Any]],
    out_dir: str | Path,
    *,
    n_traces: int = 4,
    rates: FiringRates | None = None,
) -> list[Path]:
    """Write :data:`PLOT_FILES` into ``out_dir`` for ``model`` on the test batch ``x [B, ...]``.

    The raster and membrane plots show the first sample of ``x``; the firing-rate histogram shows ``rates``
    (what the training summary reports: :func:`spikeforge.cli._stats.firing_rates` on the whole test split),
    or, when None, the rates measured on all of ``x``. ``n_traces`` neurons per spiking layer get membrane
    traces, chosen among those that spike on some but not all steps; the readout shows every class (up to 10).
    Random encoders draw from a generator seeded 0 (never the global RNG).
    """
    out_dir = Path(out_dir)
    if not isinstance(n_traces, int) or n_traces < 1:
        raise ValueError(f"n_traces must be a positive int, got {n_traces!r}")
    if x.shape[0] == 0:
        raise ValueError("x is an empty batch; give at least one sample")
    paths = [plot_learning_curves(history, out_dir / PLOT_FILES[0])]
    act = collect_activity(model, x, generator=torch.Generator().manual_seed(0))
    if not act.spikes:
        raise ValueError("the model has no spiking layers to plot")
    one = {k: s[:, 0].reshape(s.shape[0], -1) for k, s in act.spikes.items()}  # [T, N], sample 0
    paths.append(plot_raster(one, out_dir / PLOT_FILES[1], title="Spike raster (one test sample)"))
    traces, trace_spikes, pre, ids, sizes = {}, {}, {}, {}, {}
    for name, v in act.membrane.items():
        v0 = v[:, 0].reshape(v.shape[0], -1)  # [T, N]
        k = n_traces if name in one else max(n_traces, 10)  # readouts: every class (up to 10)
        idx = _pick_neurons(one.get(name), v0.shape[1], k)
        traces[name], ids[name], sizes[name] = v0[:, idx], idx.tolist(), v0.shape[1]
        if name in one:
            trace_spikes[name] = one[name][:, idx]
        if name in act.pre_reset:
            pre[name] = act.pre_reset[name][:, 0].reshape(v.shape[0], -1)[:, idx]
    paths.append(
        plot_membrane(
            traces,
            out_dir / PLOT_FILES[2],
            thresholds=act.thresholds,
            spikes=trace_spikes,
            pre_reset=pre,
            neuron_ids=ids,
            n_neurons=sizes,
            title="Membrane potential, one test sample",
        )
    )
    if rates is None:
        rates = firing_rates(model, x, generator=torch.Generator().manual_seed(0))
    title = f"Firing rates over {rates.n_samples} test samples"
    paths.append(plot_firing_rates(rates.per_neuron, out_dir / PLOT_FILES[3], title=title))
    return paths
