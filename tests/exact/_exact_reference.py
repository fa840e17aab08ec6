"""Independent references for the exact simulator: an RK4 fine-grid integrator of the ODEs and the project's
discrete-time CubaLIF step, both with linear interpolation of the threshold crossing."""

from __future__ import annotations

import math

import numpy as np
import torch

from spikeforge.neurons.cuba import CubaLIFParams
from spikeforge.neurons.cuba import cuba_lif_init
from spikeforge.neurons.cuba import cuba_lif_step
from spikeforge.surrogate import FastSigmoid


def rk4_layer(
    pre: np.ndarray, w: np.ndarray, tau_mem: float, tau_syn: float, v_th: float, dt: float, t_end: float
) -> list[list[list[float]]]:
    """Spike times ``[B][N][*]`` of one layer by RK4 on ``(V, I)``; input times must lie on the grid ``k dt``.
    A crossing inside a step is placed by linear interpolation, the state is advanced to it, reset, and
    integrated to the end of the step."""

    def deriv(v: np.ndarray, i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (-v + i) / tau_mem, -i / tau_syn

    def rk4(v: np.ndarray, i: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
        k1 = deriv(v, i)
        k2 = deriv(v + h / 2 * k1[0], i + h / 2 * k1[1])
        k3 = deriv(v + h / 2 * k2[0], i + h / 2 * k2[1])
        k4 = deriv(v + h * k3[0], i + h * k3[1])
        return v + h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0]), i + h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])

    bsz, n_post = pre.shape[0], w.shape[0]
    n_steps = round(t_end / dt)
    result: list[list[list[float]]] = []
    for b in range(bsz):
        drive = np.zeros((n_steps + 1, n_post))
        for j, k in zip(*np.nonzero(np.isfinite(pre[b])), strict=True):
            step = round(pre[b, j, k] / dt)
            if abs(step * dt - pre[b, j, k]) > 1e-9:
                raise AssertionError("reference needs input times on the grid")
            drive[step] += w[:, j] / tau_syn
        v, i = np.zeros(n_post), np.zeros(n_post)
        spikes: list[list[float]] = [[] for _ in range(n_post)]
        for n in range(n_steps):
            i = i + drive[n]
            v_new, i_new = rk4(v, i, dt)
            for q in np.nonzero(v_new > v_th)[0]:
                frac = (v_th - v[q]) / (v_new[q] - v[q])
                spikes[q].append((n + frac) * dt)
                _, i_c = rk4(np.array([v[q]]), np.array([i[q]]), frac * dt)
                v_r, i_r = rk4(np.zeros(1), i_c, (1 - frac) * dt)
                v_new[q], i_new[q] = v_r[0], i_r[0]
            v, i = v_new, i_new
        result.append(spikes)
    return result


def cuba_first_spikes(
    pre: np.ndarray, w: np.ndarray, tau_mem: float, tau_syn: float, v_th: float, dt: float, t_end: float
) -> np.ndarray:
    """First spike time ``[B, N]`` (inf: none) of the project's discrete ``cuba_lif_step`` (no reset, exact
    input scaling). An input at ``t = k dt`` enters at step ``k``; the state after step ``n`` stands for time
    ``(n + 1) dt``; the crossing is interpolated linearly between steps."""
    p = CubaLIFParams(tau_mem=tau_mem, tau_syn=tau_syn, v_th=v_th, reset="none")
    n_steps = round(t_end / dt)
    bsz, n_post = pre.shape[0], w.shape[0]
    x = torch.zeros(n_steps, bsz, n_post, dtype=torch.float64)
    for b in range(bsz):
        for j, k in zip(*np.nonzero(np.isfinite(pre[b])), strict=True):
            x[round(pre[b, j, k] / dt), b] += torch.from_numpy(w[:, j] / tau_syn)
    state = cuba_lif_init(x[0], p)
    v_prev = state.v.clone()
    first = torch.full((bsz, n_post), math.inf, dtype=torch.float64)
    for n in range(n_steps):
        _, state = cuba_lif_step(x[n], state, p, dt=dt, surrogate=FastSigmoid())
        new = (state.v > v_th) & torch.isinf(first)
        frac = (v_th - v_prev) / (state.v - v_prev)
        first = torch.where(new, (n + frac) * dt, first)
        v_prev = state.v.clone()
    return first.numpy()
