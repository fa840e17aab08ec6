"""PNG of the learned synaptic delays of a run: one histogram per :class:`~spikeforge.synapses.DelayedLinear`.

Each panel counts the layer's delays (clamped into ``[0, max_delay]``, binned per integer step) after training
and, when the initial delays are known, before training (a run's model rebuilt from its config has them: the
delayed models of :mod:`spikeforge.training.delay_models` draw them from a generator seeded with the config's
seed). ``spikeforge train`` writes it as ``delays.png`` for a model with delays (:func:`plot_run_delays`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch import nn

from spikeforge.cli.plots import _figure
from spikeforge.cli.plots import _save
from spikeforge.synapses import DelayedLinear

__all__ = ["DELAY_PLOT", "delay_values", "plot_delays", "plot_run_delays"]

DELAY_PLOT = "delays.png"


def delay_values(model: nn.Module) -> dict[str, Tensor]:
    """Qualified name -> the delays the forward uses (``[in]`` per axon, ``[out, in]`` per synapse) of every
    :class:`~spikeforge.synapses.DelayedLinear` in ``model``, in order."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return {name: m.delay_values().cpu() for name, m in model.named_modules() if isinstance(m, DelayedLinear)}


def plot_delays(model: nn.Module, path: str | Path, *, initial: Mapping[str, Tensor] | None = None) -> Path:
    """One histogram of delays per :class:`~spikeforge.synapses.DelayedLinear` of ``model`` (after training), with
    the ``initial`` delays of the same layers (name -> tensor, as :func:`delay_values` gives) drawn as an outline
    when given. Writes ``path`` (``.png``) and returns it.

    Raises:
        ValueError: ``model`` has no DelayedLinear; ``initial`` names a layer the model lacks or has another shape.
    """
    layers = {n: m for n, m in model.named_modules() if isinstance(m, DelayedLinear)}
    if not layers:
        raise ValueError("the model has no DelayedLinear layer, so there are no delays to plot; use a delayed model")
    after = delay_values(model)
    before = dict(initial or {})
    for name, d in before.items():
        if name not in after or tuple(d.shape) != tuple(after[name].shape):
            have = tuple(after[name].shape) if name in after else "no such layer"
            raise ValueError(
                f"initial delays of {name!r} have shape {tuple(d.shape)} but the model has {have}; pass the "
                "delays of the same model before training"
            )
    fig, axes = _figure(len(layers), row_height=2.4)
    fig.suptitle("Synaptic delays " + ("before and after training" if before else "after training"))
    for ax, (name, layer) in zip(axes, layers.items()):
        bins = np.arange(layer.max_delay + 2) - 0.5  # one bin per integer step 0 .. max_delay
        values = after[name].to(torch.float64).numpy().ravel()
        if not np.isfinite(values).all():
            raise ValueError(f"the delays of {name!r} hold NaN or inf; the run diverged (lower --lr)")
        ax.hist(values, bins=bins, color="tab:blue", alpha=0.7, label="after training")
        if name in before:
            init = before[name].to(torch.float64).numpy().ravel()
            ax.hist(init, bins=bins, histtype="step", color="black", lw=1.2, label="before training")
        ax.legend(fontsize=8, loc="upper right")
        kind = "one per synapse" if layer.per == "synapse" else "one per input channel"
        ax.set_title(f"{name}: {values.size} delays ({kind}), mean {values.mean():.2f} steps", fontsize=9)
        ax.set_xlabel("delay (time steps)")
        ax.set_ylabel("count")
        ax.set_xlim(-0.5, layer.max_delay + 0.5)
    return _save(fig, path)


def plot_run_delays(result: Any, out_dir: str | Path) -> list[Path]:
    """``[out_dir / "delays.png"]`` for a trained run (``result.model``, ``result.config``) whose model has
    delays, with the initial delays of its model rebuilt from the config; ``[]`` when it has none."""
    model = result.model
    if not any(isinstance(m, DelayedLinear) for m in model.modules()):
        return []
    from spikeforge.data import dataset_info
    from spikeforge.training.models import build_model

    with torch.random.fork_rng(devices=[]):  # initialising the rebuilt weights must not move the caller's RNG
        start = build_model(result.config, dataset_info(result.config.dataset))
    return [plot_delays(model, Path(out_dir) / DELAY_PLOT, initial=delay_values(start))]
