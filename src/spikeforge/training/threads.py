"""How many CPU threads torch uses during a training run: the policy, its inputs and the scoped setting.

torch starts with one intra-op thread per core. For the small models of this package that is a loss: a
Yin-Yang step has far too little work to split, and OpenMP threads that wait for each other at every
operation collide with any other busy process on the machine (several times slower on two shared cores).
:func:`choose_threads` picks the count, in this order:

1. an explicit request (``TrainConfig.threads``, ``spikeforge train --threads N``);
2. ``MKL_NUM_THREADS`` or ``OMP_NUM_THREADS`` in the environment (torch's own order: MKL's wins);
3. otherwise the work: one thread per :data:`MACS_PER_THREAD` multiply-accumulates in the forward pass of
   one training step (batch x time steps x the model's MACs per sample and step), at least one, and never
   more than torch has now (its default, or what the caller set with ``torch.set_num_threads``: a caller's
   count is a ceiling the work size never raises).

Every choice is capped at the CPUs this process may run on (affinity mask and a cgroup v2 CPU quota).
:func:`use_threads` applies a count for the duration of a ``with`` block and restores the previous one.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from typing import NamedTuple

import torch
from torch import nn

__all__ = [
    "MACS_PER_THREAD",
    "ThreadChoice",
    "available_cpus",
    "choose_threads",
    "step_macs",
    "threads_for",
    "threads_for_module",
    "use_threads",
]

#: Forward multiply-accumulates per training step that pay for one more intra-op thread (2**27, about 134
#: million). Measured (benchmarks/RESULTS.md, "Training under background load"): one Fashion-MNIST MLP epoch
#: (784-256-10, 65 million per step) trained as fast on 1 thread as on 2 on a quiet 2-core machine and twice
#: as fast under two busy processes, so it gets one thread; the Yin-Yang MLP (0.57 million) gets one; the
#: conv model (16, 32 channels, about 450 million) wants three.
MACS_PER_THREAD = 2**27
#: Environment variables torch reads for its default thread count; the first one set wins (as in torch).
THREAD_ENV = ("MKL_NUM_THREADS", "OMP_NUM_THREADS")


class ThreadChoice(NamedTuple):
    """The thread count of a run: ``threads`` (applied), ``source`` (``"requested"``, ``"MKL_NUM_THREADS"``,
    ``"OMP_NUM_THREADS"`` or ``"work size"``) and ``wanted`` (before the caps)."""

    threads: int
    source: str
    wanted: int

    def describe(self) -> str:
        """E.g. ``"1 (work size)"`` or ``"2 (OMP_NUM_THREADS: 8, capped at 2)"``."""
        capped = f": {self.wanted}, capped at {self.threads}" if self.wanted != self.threads else ""
        return f"{self.threads} ({self.source}{capped})"


def _env_count(env: Mapping[str, str], name: str) -> int | None:
    """A positive thread count from ``env[name]`` (the first entry of an OpenMP list such as ``"4,2"``)."""
    text = env.get(name, "").split(",")[0].strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def choose_threads(
    work: float,
    *,
    cpus: int,
    requested: int | None = None,
    env: Mapping[str, str] | None = None,
    current: int | None = None,
) -> ThreadChoice:
    """The intra-op thread count of a run (pure: every input is an argument).

    Args:
        work: forward multiply-accumulates of one training step (:func:`step_macs`).
        cpus: CPUs the process may use (:func:`available_cpus`); no choice exceeds it.
        requested: an explicit count (``TrainConfig.threads``); wins over everything else.
        env: the environment (``MKL_NUM_THREADS``, ``OMP_NUM_THREADS``); None = empty.
        current: torch's present count (``torch.get_num_threads()``: its default or the caller's
            ``torch.set_num_threads``); the work-size choice never exceeds it. None = no such ceiling.
    """
    for name, value in (("cpus", cpus), ("requested", requested), ("current", current)):
        if (value is not None or name == "cpus") and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if isinstance(work, bool) or not isinstance(work, (int, float)) or not math.isfinite(work) or work < 0:
        raise ValueError(f"work must be a finite number >= 0, got {work!r}")
    env = {} if env is None else env
    if requested is not None:
        return ThreadChoice(min(requested, cpus), "requested", requested)
    for name in THREAD_ENV:
        count = _env_count(env, name)
        if count is not None:
            return ThreadChoice(min(count, cpus), name, count)
    wanted = max(1, int(work // MACS_PER_THREAD))
    return ThreadChoice(min(wanted, cpus, current or cpus), "work size", wanted)


def _cgroup_cpus() -> int | None:
    """CPUs allowed by a cgroup v2 quota (``cpu.max``, e.g. ``docker --cpus 2``), rounded up; None = no quota."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):  # no cgroup v2 file, or "max" (no quota)
        return None


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask (``os.sched_getaffinity``), capped by a cgroup quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    quota = _cgroup_cpus()
    return max(1, min(cpus, quota) if quota else cpus)


def _layer_macs(layer: nn.Module, x: torch.Tensor) -> tuple[int, torch.Tensor]:
    """Run one stateless layer: (MACs of its Linear and Conv modules, output)."""
    counted: list[int] = []

    def hook(module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        weight = module.weight
        assert isinstance(weight, torch.Tensor)
        counted.append(output.numel() * weight[0].numel())  # Linear: in_features; Conv: C_in / groups x kernel

    kinds = (nn.Linear, nn.modules.conv._ConvNd)
    handles = [m.register_forward_hook(hook) for m in layer.modules() if isinstance(m, kinds)]
    try:
        out = layer(x)
    finally:
        for h in handles:
            h.remove()
    return sum(counted), out


def step_macs(config: Any, dataset_info: Any = None) -> int:
    """Forward multiply-accumulates of one training step of ``config`` (``batch_size x time_steps x`` the
    Linear and Conv MACs of one sample and step).

    The model is built with torch's random state saved and restored (the run's draws do not change), put in
    eval mode, and its stateless layers are run on one zero sample; neuron layers keep the shape and are
    skipped. ``dataset_info`` defaults to the config's dataset.
    """
    from spikeforge.data import dataset_info as get_info
    from spikeforge.layers import SequenceLayer
    from spikeforge.neurons import Neuron
    from spikeforge.training.models import build_model

    info = get_info(config.dataset) if dataset_info is None else dataset_info
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        model = build_model(config, info).eval()
        x = torch.zeros((1, *(int(d) for d in info.step_shape)))
        per_sample = 0
        for layer in model.network.layers:
            if isinstance(layer, SequenceLayer):  # needs the whole [T, B, ...]: per step = total / T
                steps = int(config.time_steps)
                macs, y = _layer_macs(layer, x.unsqueeze(0).expand(steps, *x.shape).contiguous())
                per_sample, x = per_sample + macs // steps, y[0]
            elif not isinstance(layer, Neuron):
                macs, x = _layer_macs(layer, x)
                per_sample += macs
    return per_sample * int(config.time_steps) * int(config.batch_size)


def threads_for(config: Any, dataset_info: Any = None) -> ThreadChoice:
    """:func:`choose_threads` with this process's inputs: ``config.threads``, the environment, torch's present
    count, the available CPUs and :func:`step_macs` of ``config``."""
    requested = getattr(config, "threads", None)
    preset = requested is not None or any(_env_count(os.environ, name) for name in THREAD_ENV)
    work = 0 if preset else step_macs(config, dataset_info)
    return choose_threads(
        work, cpus=available_cpus(), requested=requested, env=os.environ, current=torch.get_num_threads()
    )


def threads_for_module(model: nn.Module, input_shape: tuple[int, ...], samples_per_pass: int) -> ThreadChoice:
    """:func:`choose_threads` for work other than a training run (``spikeforge convert``'s ANN, say): the
    Linear and Conv MACs of ``model`` on one sample of ``input_shape`` (run once in eval mode, no gradients)
    times ``samples_per_pass``; the environment, torch's present count and the available CPUs as for training."""
    preset = any(_env_count(os.environ, name) for name in THREAD_ENV)
    work = 0
    if not preset:
        was_training = model.training
        try:
            with torch.random.fork_rng(devices=[]), torch.no_grad():
                macs, _ = _layer_macs(model.eval(), torch.zeros((1, *input_shape)))
        finally:
            model.train(was_training)
        work = macs * int(samples_per_pass)
    return choose_threads(work, cpus=available_cpus(), env=os.environ, current=torch.get_num_threads())


@contextmanager
def use_threads(threads: int) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(threads)``, then restore the previous count.

    The fused Numba kernels are serial, but no Numba worker pool may outnumber torch's threads either: if
    Numba is not imported yet, ``NUMBA_NUM_THREADS`` is lowered to ``threads`` for the block (Numba reads
    it once, at import, so a Numba imported inside the block keeps that cap for the process); if its pool is
    already running, ``numba.set_num_threads`` lowers it for the block.
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive int, got {threads!r}")
    before, numba_env = torch.get_num_threads(), os.environ.get("NUMBA_NUM_THREADS")
    numba_cap = _env_count(os.environ, "NUMBA_NUM_THREADS")
    lower_env = "numba" not in sys.modules and (numba_cap is None or numba_cap > threads)
    numba_before = _numba_pool_threads()
    torch.set_num_threads(threads)
    if lower_env:
        os.environ["NUMBA_NUM_THREADS"] = str(threads)
    if numba_before is not None and numba_before > threads:
        sys.modules["numba"].set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
        if lower_env:
            if numba_env is None:
                os.environ.pop("NUMBA_NUM_THREADS", None)
            else:
                os.environ["NUMBA_NUM_THREADS"] = numba_env
        if numba_before is not None and numba_before > threads:
            sys.modules["numba"].set_num_threads(numba_before)


def _numba_pool_threads() -> int | None:
    """Threads of Numba's running worker pool; None when Numba is not imported or its pool never started
    (asking then would start it)."""
    numba = sys.modules.get("numba")
    parallel = sys.modules.get("numba.np.ufunc.parallel")
    if numba is None or parallel is None or not getattr(parallel, "_is_initialized", False):
        return None
    return int(numba.get_num_threads())
