"""PNG plots of a ``spikeforge train --method eventprop|ttfs`` run: spike times in continuous time.

* :func:`plot_spike_times`: one panel per population (input with its bias spikes, hidden, output) of one
  sample, a tick at ``(t, i)`` for each spike of neuron ``i`` (``raster.png``).
* :func:`plot_output_raster`: the output layer's spike times over many samples, one row per sample, one colour
  per output neuron, the sample's label ringed (``output_raster.png``): with a first-spike code the class is the
  neuron that fires first, so the earliest tick of a row should be ringed.

Written like :mod:`spikeforge.cli.plots` (Agg canvas, no pyplot, atomic writes through ``_core/files``).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from spikeforge.cli.plots import _figure
from spikeforge.cli.plots import _save
from spikeforge.cli.plots import plot_learning_curves

__all__ = ["plot_spike_times", "plot_output_raster", "plot_exact_run", "EXACT_PLOT_FILES"]

#: The files :func:`plot_exact_run` writes.
EXACT_PLOT_FILES = ("learning_curves.png", "raster.png", "output_raster.png")


def _times(name: str, value: Any) -> np.ndarray:
    """Spike times as a float64 array; NaN refused, ``+inf`` = no spike."""
    arr = value.detach().to("cpu", torch.float64).numpy() if isinstance(value, Tensor) else np.asarray(value, float)
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN; mark missing spikes with +inf")
    return arr


def plot_spike_times(
    populations: Mapping[str, Any], path: str | Path, *, title: str = "Spike times", unit: str = "time"
) -> Path:
    """One raster panel per population: ``populations`` maps a name to the spike times of one sample, ``[N, K]``
    (``K`` spikes per neuron, ``+inf`` unused) or ``[N]``."""
    if not isinstance(populations, Mapping) or not populations:
        raise ValueError("populations must be a non-empty mapping from population name to spike times [N, K]")
    arrays = {k: _times(f"populations[{k!r}]", v).reshape(len(v), -1) for k, v in populations.items()}
    finite = [a[np.isfinite(a)] for a in arrays.values()]
    t_last = max([float(f.max()) for f in finite if f.size] + [1.0])
    fig, axes = _figure(len(arrays), row_height=1.6)
    for ax, (name, times) in zip(axes, arrays.items()):
        neuron, _ = np.nonzero(np.isfinite(times))
        ax.scatter(times[np.isfinite(times)], neuron, s=40, marker="|", color="black", linewidths=1.2)
        ax.set_xlim(0.0, 1.05 * t_last)
        ax.set_ylim(-0.5, times.shape[0] - 0.5)
        n_spikes = int(np.isfinite(times).sum())
        ax.set_title(f"{name}: {times.shape[0]} neurons, {n_spikes} spikes", fontsize=9)
        ax.set_ylabel("neuron")
        ax.set_xlabel(unit)
        ax.yaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(title)
    return _save(fig, path)


def plot_output_raster(
    times: Any,
    labels: Any,
    path: str | Path,
    *,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
    unit: str = "spike time",
) -> Path:
    """Spike times of the output layer over samples: ``times [B, C, K]`` (or ``[B, C]``), ``labels [B]``."""
    t = _times("times", times)
    if t.ndim == 2:
        t = t[:, :, None]
    y = np.asarray(labels.cpu() if isinstance(labels, Tensor) else labels, dtype=np.int64).reshape(-1)
    if t.ndim != 3 or t.shape[0] == 0 or t.shape[0] != y.shape[0]:
        raise ValueError(f"times must be [B, C, K] with B = len(labels) >= 1, got {t.shape} and {y.shape[0]} labels")
    names = list(class_names or [f"neuron {c}" for c in range(t.shape[1])])
    fig, (ax,) = _figure(1, width=7.0, row_height=max(2.5, min(8.0, 0.05 * t.shape[0] + 1.5)))
    for c in range(t.shape[1]):
        rows, _ = np.nonzero(np.isfinite(t[:, c]))
        values = t[:, c][np.isfinite(t[:, c])]
        ax.scatter(
            values, rows, s=14, marker="|", color=f"C{c}", linewidths=1.4, label=names[c] if c < len(names) else str(c)
        )
        ringed = np.isfinite(t[np.arange(len(y)), c, 0]) & (y == c)
        ax.scatter(t[ringed, c, 0], np.nonzero(ringed)[0], s=36, facecolors="none", edgecolors=f"C{c}", linewidths=0.8)
    silent = int((~np.isfinite(t).any(axis=(1, 2))).sum())
    ax.set_xlabel(unit)
    ax.set_ylabel("sample")
    ax.set_ylim(-0.5, t.shape[0] - 0.5)
    ax.legend(fontsize=7, loc="upper right", title="output neuron (ring: label)", title_fontsize=7)
    ax.set_title(
        title or f"Output-layer spike times, {t.shape[0]} test samples ({silent} with no output spike)", fontsize=9
    )
    return _save(fig, path)


def plot_exact_run(
    model: Any, x: Tensor, y: Tensor, history: Sequence[Mapping[str, Any]], out_dir: str | Path, *, n_raster: int = 100
) -> list[Path]:
    """Write :data:`EXACT_PLOT_FILES` into ``out_dir``: learning curves (of the epochs that made a gradient step;
    none if no epoch did), the spike times of every population on the first sample of ``x``, and the output
    layer's spike times on the first ``n_raster`` samples (labels ``y``; not for a non-spiking readout)."""
    out_dir = Path(out_dir)
    if x.shape[0] == 0:
        raise ValueError("x is an empty batch; give at least one sample")
    unit = "time (units of tau_syn)" if model.method == "ttfs" else "time (ms)"
    # an epoch in which every batch only bumped weights (TTFS) made no gradient step and has no loss
    stepped = [h for h in history if isinstance(h.get("loss"), (int, float))]
    paths = [plot_learning_curves(stepped, out_dir / EXACT_PLOT_FILES[0])] if stepped else []
    names = {"input": "input (last row: the bias spike)"}
    one = {names.get(name, name): times[0] for name, times in model.spike_times(x[:1])}
    title = "Spike times (one test sample)"
    paths.append(plot_spike_times(one, out_dir / EXACT_PLOT_FILES[1], title=title, unit=unit))
    populations = dict(model.spike_times(x[:n_raster]))
    if "output" in populations:
        path = out_dir / EXACT_PLOT_FILES[2]
        paths.append(plot_output_raster(populations["output"], y[:n_raster], path, unit=unit))
    return paths
