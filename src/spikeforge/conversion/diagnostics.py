r"""Diagnostics of a converted SNN: accuracy and spikes against ``T``, and per-layer conversion error.

* :func:`accuracy_over_time` runs each test batch once for ``max(steps)`` steps (fed in time chunks
  that carry the explicit state, so memory stays bounded) and reads, at every ``T`` in ``steps``,
  the prediction ``argmax_k (1/T) sum_{t<T} out_t[k]`` and the hidden-layer spikes so far.
* :func:`layer_errors` compares, per activation layer, the ANN activation ``a`` with the SNN's
  firing rate times threshold, ``r = lambda * n / T`` (``n`` spikes in ``T`` steps).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from spikeforge._core.files import save_figure
from spikeforge.conversion.snn import ConvertedSNN

__all__ = ["AccuracyCurve", "LayerError", "accuracy_over_time", "layer_errors", "DEFAULT_STEPS"]

DEFAULT_STEPS: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)


@dataclass
class AccuracyCurve:
    """Accuracy and mean hidden-layer spikes per inference at each number of time steps ``T``."""

    steps: list[int]
    accuracy: list[float]
    spikes_per_inference: list[float]
    num_samples: int
    ann_accuracy: float | None = None
    label: str = "SNN"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def table(self) -> str:
        """Plain-text table: T, accuracy (%), gap to the ANN (pp), spikes per inference."""
        head = f"{self.label} on {self.num_samples} samples"
        if self.ann_accuracy is not None:
            head += f" (ANN {100 * self.ann_accuracy:.2f} %)"
        lines = [head, f"{'T':>5} {'acc %':>8} {'ANN-SNN pp':>11} {'spikes/inf':>12}"]
        for t, a, s in zip(self.steps, self.accuracy, self.spikes_per_inference):
            gap = f"{100 * (self.ann_accuracy - a):11.2f}" if self.ann_accuracy is not None else f"{'-':>11}"
            lines.append(f"{t:5d} {100 * a:8.2f} {gap} {s:12.0f}")
        return "\n".join(lines)

    def plot(self, path: str | Path) -> Path:
        """Save accuracy against ``T`` (log2 axis) as a PNG. Needs matplotlib (``spikeforge[plot]``)."""
        try:
            import matplotlib

            matplotlib.use("Agg", force=False)
            import matplotlib.pyplot as plt
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError("plotting needs matplotlib: pip install 'spikeforge[plot]'") from err
        path = Path(path)
        fig, ax = plt.subplots(figsize=(5, 3.5))
        try:
            ax.plot(self.steps, [100 * a for a in self.accuracy], marker="o", label=self.label)
            if self.ann_accuracy is not None:
                ax.axhline(100 * self.ann_accuracy, color="k", linestyle="--", label="ANN")
            ax.set_xscale("log", base=2)
            ax.set_title(f"{self.label}: accuracy against T ({self.num_samples} samples)", fontsize=10)
            ax.set_xlabel("time steps T")
            ax.set_ylabel("accuracy (%)")
            ax.grid(True, alpha=0.3)
            ax.legend(loc="lower right")
            fig.tight_layout()
            save_figure(fig, path, format="png", dpi=100)  # atomic, never through a planted link
        finally:
            plt.close(fig)
        return path


def _check_steps(steps: Sequence[int]) -> list[int]:
    out = sorted({int(t) for t in steps})
    if not out or out[0] < 1 or any(isinstance(t, bool) or int(t) != t for t in steps):
        raise ValueError(f"steps must be positive integers, e.g. (1, 2, 4, 8), got {steps!r}")
    return out


@torch.no_grad()
def accuracy_over_time(
    snn: ConvertedSNN,
    x: Tensor,
    y: Tensor,
    steps: Sequence[int] = DEFAULT_STEPS,
    *,
    batch_size: int = 256,
    chunk: int = 32,
    ann_accuracy: float | None = None,
    label: str = "SNN",
    generator: torch.Generator | None = None,
) -> AccuracyCurve:
    """Accuracy of ``snn`` at every ``T`` in ``steps`` from one run of ``max(steps)`` steps per batch.

    Args:
        snn: a converted network.
        x: inputs ``[N, ...]``; y: integer labels ``[N]``.
        steps: the ``T`` values to report.
        batch_size: samples per batch.
        chunk: at most this many time steps are simulated at once (the state is carried across chunks).
        ann_accuracy: optional ANN accuracy (fraction) shown in the table and plot.
        generator: RNG for rate-coded input.
    """
    ts = _check_steps(steps)
    if not isinstance(x, Tensor) or not isinstance(y, Tensor) or x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError("x [N, ...] and y [N] must be non-empty tensors with the same N")
    if chunk < 1 or batch_size < 1:
        raise ValueError("chunk and batch_size must be >= 1")
    correct = torch.zeros(len(ts), dtype=torch.float64)
    spikes = torch.zeros(len(ts), dtype=torch.float64)
    for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
        states: dict[str, Any] | None = None
        acc_out: Tensor | None = None
        done, total_spikes = 0, 0.0
        for i, t_target in enumerate(ts):
            while done < t_target:
                n = min(chunk, t_target - done)
                r = snn.run(snn.encode(xb, n, generator=generator), states)
                states = r.states
                s = r.output.sum(0)
                acc_out = s if acc_out is None else acc_out + s
                total_spikes += float(sum(v.sum() for v in r.spikes_per_step.values()))
                done += n
            if acc_out is None:  # cannot happen: steps start at >= 1
                raise RuntimeError("internal error: no output accumulated")
            correct[i] += float((acc_out.argmax(-1) == yb).sum())
            spikes[i] += total_spikes
    n_total = x.shape[0]
    return AccuracyCurve(ts, (correct / n_total).tolist(), (spikes / n_total).tolist(), n_total, ann_accuracy, label)


@dataclass
class LayerError:
    """Conversion error of one activation layer (ANN units).

    ``mae = mean|a - r|``, ``max_abs = max|a - r|``, ``rel_l1 = sum|a - r| / sum|a|`` with ``a`` the
    ANN activation and ``r = lambda * spikes / T`` the SNN's rate times threshold.
    """

    name: str
    threshold: float
    mae: float
    max_abs: float
    rel_l1: float
    ann_mean: float
    snn_mean: float
    extra: dict[str, Any] = field(default_factory=dict)


@torch.no_grad()
def layer_errors(
    snn: ConvertedSNN, x: Tensor, num_steps: int, *, generator: torch.Generator | None = None
) -> list[LayerError]:
    """Per-layer conversion error after ``num_steps`` steps on inputs ``x`` ``[B, ...]``."""
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps must be an int >= 1, got {num_steps!r}")
    _, ann_act = snn.ann_forward(x)
    run = snn.run(snn.encode(x, num_steps, generator=generator))
    out = []
    for name, lam in snn.thresholds().items():
        a = ann_act[name]
        r = lam * run.spike_counts[name] / num_steps
        d = (a - r).abs()
        denom = float(a.abs().sum())
        out.append(
            LayerError(
                name,
                lam,
                float(d.mean()),
                float(d.max()),
                float(d.sum()) / denom if denom > 0 else math.nan,
                float(a.mean()),
                float(r.mean()),
            )
        )
    return out
