"""Analytic TTFS layers (spikeforge.exact.ttfs): spike times against an independent fine-grid simulation and
hand-solved cases, Mostafa's non-leaky closed form, exact gradients against float64 central differences, edge
cases and bad input."""

from __future__ import annotations

import math

import pytest
import torch

from spikeforge.exact._ttfs_lambertw import BRANCH_POINT
from spikeforge.exact._ttfs_lambertw import lambertw0
from spikeforge.exact.ttfs import TTFSLayer
from spikeforge.exact.ttfs import TTFSNetwork
from spikeforge.exact.ttfs import TTFSParams
from spikeforge.exact.ttfs import ttfs_membrane
from spikeforge.exact.ttfs import ttfs_spike_times

F64 = torch.float64
EQUAL = TTFSParams(tau_syn=1.0, tau_mem=1.0)
DOUBLE = TTFSParams(tau_syn=0.5, tau_mem=1.0, threshold=0.7, c_mem=1.3)
NONLEAKY = TTFSParams(tau_syn=1.0, tau_mem=math.inf)
ALL = [EQUAL, DOUBLE, NONLEAKY, TTFSParams(tau_syn=2.0, tau_mem=2.0, threshold=1.5, c_mem=0.5)]


# ---------------------------------------------------------------- independent references written here


def _psp(s: float, p: TTFSParams) -> float:
    """Textbook PSP of one unit input, s after it (Göltz et al. 2021, Methods)."""
    if s <= 0:
        return 0.0
    ts, tm = p.tau_syn, p.tau_mem
    if tm == math.inf:
        return ts * (1.0 - math.exp(-s / ts)) / p.c_mem
    if tm == ts:
        return s * math.exp(-s / ts) / p.c_mem
    return tm * ts / (tm - ts) * (math.exp(-s / tm) - math.exp(-s / ts)) / p.c_mem


def _u(t: float, times: list[float], weights: list[float], p: TTFSParams) -> float:
    return sum(w * _psp(t - ti, p) for ti, w in zip(times, weights) if math.isfinite(ti))


def _grid_first_spike(times: list[float], weights: list[float], p: TTFSParams, *, t_end: float, dt: float) -> float:
    """Propagate the 2-state ODE (I, u) exactly between grid points, inputs injected at grid points (they lie on
    the grid here), and return the first grid time with u > threshold (inf if none): error <= dt."""
    ts, tm, c = p.tau_syn, p.tau_mem, p.c_mem
    ds = math.exp(-dt / ts)
    if tm == math.inf:
        dm, gain = 1.0, ts * (1.0 - ds) / c
    elif tm == ts:
        dm, gain = ds, dt * ds / c
    else:
        dm = math.exp(-dt / tm)
        gain = tm * ts / (tm - ts) * (dm - ds) / c
    steps = round(t_end / dt)
    arrivals: dict[int, float] = {}
    for ti, w in zip(times, weights):
        if math.isfinite(ti):
            k = round(ti / dt)
            assert abs(k * dt - ti) < 1e-12, "test inputs must lie on the grid"
            arrivals[k] = arrivals.get(k, 0.0) + w
    cur = u = 0.0
    for k in range(steps + 1):
        if u > p.threshold:
            return k * dt
        cur += arrivals.get(k, 0.0)
        u, cur = u * dm + cur * gain, cur * ds
    return math.inf


def _bisect_first_spike(times: list[float], weights: list[float], p: TTFSParams, *, t_end: float) -> float:
    """Scan u(t) on a fine grid for the first upward crossing, then bisect it to round-off (inf if none)."""
    n = 4_000
    h = t_end / n
    prev = _u(0.0, times, weights, p)
    for k in range(1, n + 1):
        t = k * h
        cur = _u(t, times, weights, p)
        if cur > p.threshold and prev <= p.threshold:
            lo, hi = t - h, t
            for _ in range(80):
                mid = 0.5 * (lo + hi)
                lo, hi = (lo, mid) if _u(mid, times, weights, p) > p.threshold else (mid, hi)
            return hi
        prev = cur
    return math.inf


def _random_layer(p: TTFSParams, gen: torch.Generator, b: int = 6, n: int = 5, m: int = 4) -> tuple[torch.Tensor, ...]:
    t_in = torch.rand(b, n, generator=gen, dtype=F64) * 2.0 * p.tau_syn
    t_in[torch.rand(b, n, generator=gen, dtype=F64) < 0.15] = math.inf
    scale = p.c_mem * p.threshold / p.tau_syn
    w = (torch.randn(n, m, generator=gen, dtype=F64) * 1.2 + 0.9) * scale * (0.4 if p.tau_mem == math.inf else 1.5)
    return t_in, w


# ---------------------------------------------------------------- Lambert W


def test_lambertw0_inverts_w_exp_w_and_known_values() -> None:
    x = torch.cat([torch.linspace(BRANCH_POINT, 0.0, 20001, dtype=F64), -torch.logspace(-300, -0.44, 500, dtype=F64)])
    w = lambertw0(x)
    assert float(((w * torch.exp(w) - x).abs() / x.abs().clamp(min=1e-300)).max()) < 1e-14
    assert float(w.min()) >= -1.0 and float(w.max()) <= 0.0
    known = lambertw0(torch.tensor([BRANCH_POINT, 0.0, -math.log(2.0) / 2.0], dtype=F64))
    torch.testing.assert_close(known, torch.tensor([-1.0, 0.0, -math.log(2.0)], dtype=F64), rtol=0, atol=1e-15)


def test_lambertw0_gradient_and_range() -> None:
    x = torch.tensor([-0.36, -0.2, -1e-3, -1e-9], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambertw0, (x,), eps=1e-9, atol=1e-6, rtol=1e-6)
    with pytest.raises(ValueError, match=r"\[-1/e, 0\]"):
        lambertw0(torch.tensor([0.1], dtype=F64))
    with pytest.raises(ValueError, match=r"\[-1/e, 0\]"):
        lambertw0(torch.tensor([-0.5], dtype=F64))
    # -1/e rounded to float32 lies just below -1/e: still accepted, W = -1 within float32 rounding
    w32 = lambertw0(torch.tensor([-math.exp(-1.0)], dtype=torch.float32))
    assert w32.dtype == torch.float32 and abs(float(w32) + 1.0) < 1e-3


# ---------------------------------------------------------------- spike times vs references


@pytest.mark.parametrize("p", ALL, ids=lambda p: f"{p.kernel}-ts{p.tau_syn}")
def test_spike_times_match_bisection_of_the_textbook_membrane(p: TTFSParams, gen: torch.Generator) -> None:
    t_in, w = _random_layer(p, gen)
    out = ttfs_spike_times(t_in, w, p)
    fired = 0
    for b in range(t_in.shape[0]):
        for j in range(w.shape[1]):
            ref = _bisect_first_spike(t_in[b].tolist(), w[:, j].tolist(), p, t_end=20.0 * p.tau_syn)
            got = float(out[b, j])
            assert math.isinf(ref) == math.isinf(got), (b, j, ref, got)
            if math.isfinite(ref):
                fired += 1
                assert abs(got - ref) < 1e-9 * max(1.0, abs(ref)), (b, j, ref, got)
    assert 0 < fired < out.numel()  # both cases are exercised


@pytest.mark.parametrize("p", [EQUAL, DOUBLE, NONLEAKY], ids=lambda p: p.kernel)
def test_fine_grid_simulation_converges_to_the_closed_form(p: TTFSParams, gen: torch.Generator) -> None:
    """The ODE on a grid with step dt finds the first spike within dt of the closed form; errors shrink with dt."""
    t_in = torch.randint(0, 64, (3, 4), generator=gen).to(F64) / 32.0  # on every grid below
    w = torch.tensor([[1.6, 0.9], [0.8, -0.4], [1.1, 1.2], [-0.3, 0.7]], dtype=F64) * (
        0.5 if p.tau_mem == math.inf else 1.5
    )
    w = w * p.c_mem * p.threshold / p.tau_syn
    exact = ttfs_spike_times(t_in, w, p)
    assert bool(torch.isfinite(exact).any())
    worst = []
    for dt in (2.0**-7, 2.0**-10):
        err = 0.0
        for b in range(3):
            for j in range(2):
                g = _grid_first_spike(t_in[b].tolist(), w[:, j].tolist(), p, t_end=30.0 * p.tau_syn, dt=dt)
                e = float(exact[b, j])
                assert math.isinf(g) == math.isinf(e)
                if math.isfinite(e):
                    assert -1e-12 <= g - e <= dt + 1e-12
                    err = max(err, g - e)
        worst.append(err)
    assert worst[1] < worst[0] / 4


def test_membrane_readout_agrees_with_the_textbook_psp(gen: torch.Generator) -> None:
    for p in ALL:
        t_in, w = _random_layer(p, gen, b=2, n=3, m=2)
        grid = torch.linspace(-0.5, 6.0, 27, dtype=F64)
        u = ttfs_membrane(grid, t_in, w, p)
        for k, t in enumerate(grid.tolist()):
            for b in range(2):
                for j in range(2):
                    assert abs(float(u[k, b, j]) - _u(t, t_in[b].tolist(), w[:, j].tolist(), p)) < 1e-12


def _u_grid(t: torch.Tensor, t_in: torch.Tensor, w: torch.Tensor, p: TTFSParams) -> torch.Tensor:
    """Textbook membrane [T, B, M] on a grid t [T] (vectorised _u)."""
    s = t[:, None, None] - t_in[None]  # [T, B, N]
    pos = s > 0
    s = torch.where(pos, s, torch.zeros_like(s))
    ts, tm = p.tau_syn, p.tau_mem
    if tm == math.inf:
        k = ts * (1.0 - torch.exp(-s / ts))
    elif tm == ts:
        k = s * torch.exp(-s / ts)
    else:
        k = tm * ts / (tm - ts) * (torch.exp(-s / tm) - torch.exp(-s / ts))
    return torch.einsum("tbn,nm->tbm", torch.where(pos, k, torch.zeros_like(k)) / p.c_mem, w)


@pytest.mark.parametrize("p", [EQUAL, DOUBLE, NONLEAKY], ids=lambda p: p.kernel)
def test_random_mixed_sign_cases_fire_at_threshold_and_never_earlier(p: TTFSParams) -> None:
    """Many small random cases with strongly mixed-sign weights: at the reported time the membrane is at threshold
    and it stayed at or below threshold on a grid before; a silent neuron stays at or below it throughout."""
    g = torch.Generator().manual_seed(11)
    t_in = torch.rand(60, 3, generator=g, dtype=F64) * 3.0
    w = torch.randn(3, 40, generator=g, dtype=F64) * 2.0 * p.c_mem * p.threshold / p.tau_syn
    out = ttfs_spike_times(t_in, w, p)
    fired = torch.isfinite(out)
    assert 0.1 < float(fired.double().mean()) < 0.9
    rows, cols = torch.nonzero(fired, as_tuple=True)
    for b, j in zip(rows.tolist(), cols.tolist()):
        u = _u_grid(out[b, j].reshape(1), t_in[b : b + 1], w[:, j : j + 1], p)
        assert abs(float(u) - p.threshold) < 1e-9 * p.threshold, (b, j)
    grid = torch.linspace(0.0, 20.0 * p.tau_syn, 4001, dtype=F64)
    u = _u_grid(grid, t_in, w, p)  # [T, B, M]
    before = grid[:, None, None] < torch.where(fired, out, torch.full_like(out, math.inf))[None] - 1e-9
    assert float(torch.where(before, u, torch.zeros_like(u)).max()) <= p.threshold


@pytest.mark.parametrize("p", [EQUAL, DOUBLE, NONLEAKY], ids=lambda p: p.kernel)
def test_max_membrane_matches_a_dense_grid_and_its_gradient_is_exact(p: TTFSParams) -> None:
    from spikeforge.exact.losses import max_voltage_cross_entropy
    from spikeforge.exact.ttfs import ttfs_max_membrane

    g = torch.Generator().manual_seed(5)
    t_in = torch.rand(8, 4, generator=g, dtype=F64) * 3.0
    t_in[0, 1] = math.inf
    t_in[1] = math.inf  # no input at all: max is 0 (the membrane rests at 0)
    w = torch.randn(4, 5, generator=g, dtype=F64) * 1.5
    exact = ttfs_max_membrane(t_in, w, p)
    grid = torch.cat([torch.linspace(0, 40, 20001, dtype=F64), t_in[torch.isfinite(t_in)]]).sort().values
    dense = _u_grid(grid, t_in, w, p).amax(0).clamp(min=0.0)  # includes the kinks at the input times
    assert float((exact - dense).min()) >= -1e-12  # the grid never exceeds the exact maximum
    assert float((exact - dense).max()) <= 2e-6  # smooth maxima: grid error ~ curvature * dt^2
    assert bool((exact[1] == 0).all()) and bool((exact > 0).any())
    assert bool((ttfs_max_membrane(t_in, -w.abs(), p) == 0).all())
    t_in = t_in[2:].clone().requires_grad_()
    w.requires_grad_()
    y = torch.tensor([0, 1, 2, 3, 4, 0])

    def loss() -> torch.Tensor:
        return max_voltage_cross_entropy(ttfs_max_membrane(t_in, w, p), y)

    loss().backward()
    for x in (w, t_in):
        assert x.grad is not None
        with torch.no_grad():
            fd = _central_differences(loss, x, 1e-6)
        assert float((x.grad - fd).norm() / fd.norm()) <= 1e-6


# ---------------------------------------------------------------- hand-solved cases


def test_single_input_hand_solved() -> None:
    t0 = 0.3
    # tau_m = tau_s = C = theta = 1: u = w s e^-s; w = 2 e^0.5 crosses at s = 0.5 (rising: s < 1)
    t = ttfs_spike_times(torch.tensor([[t0]], dtype=F64), torch.tensor([[2.0 * math.exp(0.5)]], dtype=F64))
    assert abs(float(t) - (t0 + 0.5)) < 1e-14
    # tau_s = 1, tau_m = 2: u = 2 w (y - y^2), y = e^{-s/2}; w = 3.125 crosses at y = 0.8
    p2 = TTFSParams(tau_syn=1.0, tau_mem=2.0)
    t = ttfs_spike_times(torch.tensor([[t0]], dtype=F64), torch.tensor([[3.125]], dtype=F64), p2)
    assert abs(float(t) - (t0 - 2.0 * math.log(0.8))) < 1e-14
    # non-leaky: u = w (1 - e^-s); w = 2 crosses at s = ln 2
    t = ttfs_spike_times(torch.tensor([[t0]], dtype=F64), torch.tensor([[2.0]], dtype=F64), NONLEAKY)
    assert abs(float(t) - (t0 + math.log(2.0))) < 1e-14


def test_two_inputs_hand_solved_causal_set() -> None:
    # non-leaky, first input alone stays below threshold (w1 = 0.6 < 1), the second makes it fire:
    # e^{t} = (w1 e^{t1} + w2 e^{t2}) / (w1 + w2 - 1)  (Mostafa 2017)
    t1, t2, w1, w2 = 0.2, 0.5, 0.6, 0.9
    t = ttfs_spike_times(torch.tensor([[t2, t1]], dtype=F64), torch.tensor([[w2], [w1]], dtype=F64), NONLEAKY)
    assert abs(float(t) - math.log((w1 * math.exp(t1) + w2 * math.exp(t2)) / (w1 + w2 - 1.0))) < 1e-14
    # first input alone fires at t1 + ln(w1/(w1-1)) = 0.2 + ln 3 < t2 = 1.5: the second is not causal
    t1, t2, w1 = 0.2, 1.5, 1.5
    w = torch.tensor([[w1], [-5.0]], dtype=F64, requires_grad=True)
    t = ttfs_spike_times(torch.tensor([[t1, t2]], dtype=F64), w, NONLEAKY)
    assert abs(float(t.detach()) - (t1 + math.log(3.0))) < 1e-14
    t.sum().backward()
    assert w.grad is not None and float(w.grad[1, 0]) == 0.0 and float(w.grad[0, 0]) != 0.0


@pytest.mark.parametrize("seed", range(4))
def test_mostafa_nonleaky_network_matches_his_closed_form(seed: int) -> None:
    """Mostafa 2017 (tau_s = theta = C = 1, no leak): z_out = sum_C w_i z_i / (sum_C w_i - 1) in z = e^t, with C the
    smallest time-ordered prefix whose solution lies after its last input and before the next one."""
    g = torch.Generator().manual_seed(seed)
    t_in = torch.rand(5, 7, generator=g, dtype=F64) * 3.0
    w = torch.randn(7, 6, generator=g, dtype=F64) * 0.6 + 0.25
    out = ttfs_spike_times(t_in, w, NONLEAKY)
    for b in range(5):
        order = sorted(range(7), key=lambda i: float(t_in[b, i]))
        ts = [float(t_in[b, i]) for i in order]
        for j in range(6):
            ws = [float(w[i, j]) for i in order]
            expected = math.inf
            for k in range(1, 8):
                wsum = sum(ws[:k])
                if wsum <= 1.0:
                    continue
                num = sum(wi * math.exp(ti) for wi, ti in zip(ws[:k], ts[:k]))
                if num <= 0:
                    continue
                cand = math.log(num / (wsum - 1.0))
                nxt = ts[k] if k < 7 else math.inf
                if ts[k - 1] <= cand <= nxt:
                    expected = cand
                    break
            got = float(out[b, j])
            assert (math.isinf(expected) and math.isinf(got)) or abs(got - expected) < 1e-12


# ---------------------------------------------------------------- exact gradients


def _central_differences(f, x: torch.Tensor, eps: float) -> torch.Tensor:  # type: ignore[no-untyped-def]
    g = torch.zeros_like(x)
    flat, gf = x.data.view(-1), g.view(-1)
    for i in range(flat.numel()):
        old = float(flat[i])
        flat[i] = old + eps
        hi = float(f())
        flat[i] = old - eps
        lo = float(f())
        flat[i] = old
        gf[i] = (hi - lo) / (2 * eps)
    return g


@pytest.mark.parametrize("p", [EQUAL, DOUBLE, NONLEAKY], ids=lambda p: p.kernel)
@pytest.mark.parametrize("depth", [2, 3])
def test_network_gradients_match_central_differences(p: TTFSParams, depth: int) -> None:
    g = torch.Generator().manual_seed(7 + depth)
    sizes = (4, 7, 3) if depth == 2 else (4, 6, 5, 3)
    nonleaky = p.tau_mem == math.inf
    net = TTFSNetwork(
        sizes, params=p, bias_times=(0.4,), weight_mean=0.35 if nonleaky else 1.6, weight_std=0.3 if nonleaky else 0.8,
        generator=g,
    )  # fmt: skip
    t_in = (torch.rand(5, 4, generator=g, dtype=F64) * 1.5).requires_grad_()
    coef = torch.randn(5, 3, generator=g, dtype=F64)

    def loss() -> torch.Tensor:
        t = net(t_in)
        return (torch.where(torch.isfinite(t), t, torch.zeros_like(t)) * coef).sum()

    pattern = [torch.isfinite(t) for t in net.forward_all(t_in)]
    assert all(bool(m.any()) for m in pattern) and bool(pattern[-1].float().mean() > 0.5)
    loss().backward()
    eps = 1e-6
    for x in [*net.parameters(), t_in]:
        assert x.grad is not None and bool(torch.isfinite(x.grad).all())
        with torch.no_grad():
            fd = _central_differences(loss, x, eps)
            # the spike pattern (who fires) is the same at +-eps for every coordinate used here
            for sign in (1.0, -1.0):
                x.data.add_(sign * eps)
                assert all(torch.equal(torch.isfinite(t), m) for t, m in zip(net.forward_all(t_in), pattern))
                x.data.sub_(sign * eps)
        rel = float((x.grad - fd).norm() / fd.norm().clamp(min=1e-12))
        assert rel <= 1e-6, rel
        assert float(fd.abs().max()) > 0  # the check is not vacuous


def test_gradcheck_single_layer_every_kernel(gen: torch.Generator) -> None:
    for p in ALL:
        t_in, w = _random_layer(p, gen, b=3, n=4, m=3)
        t_in.requires_grad_()
        w.requires_grad_()

        def f(a: torch.Tensor, b: torch.Tensor, p: TTFSParams = p) -> torch.Tensor:
            t = ttfs_spike_times(a, b, p)
            return torch.where(torch.isfinite(t), t, torch.zeros_like(t))

        assert torch.autograd.gradcheck(f, (t_in, w), eps=1e-7, atol=1e-6, rtol=1e-6)


def test_max_dw_norm_drops_exactly_the_large_per_sample_weight_gradients() -> None:
    g = torch.Generator().manual_seed(3)
    t_in = torch.rand(6, 4, generator=g, dtype=F64) * 2.0
    w = torch.randn(4, 3, generator=g, dtype=F64) * 0.8 + 1.5
    coef = torch.randn(6, 3, generator=g, dtype=F64)
    per_sample = torch.zeros(6, 4, 3, dtype=F64)  # d(coef_bj t_bj)/dw[:, j], one backward per (b, j)
    for b in range(6):
        for j in range(3):
            wj = w.clone().requires_grad_()
            t = ttfs_spike_times(t_in[b : b + 1], wj)[0, j]
            if bool(torch.isfinite(t)):
                (coef[b, j] * t).backward()
                assert wj.grad is not None
                per_sample[b, :, j] = wj.grad[:, j]
    largest = per_sample.abs().amax(dim=1)  # [6, 3]
    limit = float(largest[largest > 0].median())
    expected = torch.where((largest > limit)[:, None, :], 0.0, per_sample).sum(0)
    assert 0 < int((largest > limit).sum()) < int((largest > 0).sum())  # some pairs clipped, some kept

    def grads(clip: float | None) -> tuple[torch.Tensor, torch.Tensor]:
        wc, tc = w.clone().requires_grad_(), t_in.clone().requires_grad_()
        t = ttfs_spike_times(tc, wc, max_dw_norm=clip)
        (torch.where(torch.isfinite(t), t, torch.zeros_like(t)) * coef).sum().backward()
        assert wc.grad is not None and tc.grad is not None
        return wc.grad, tc.grad

    w_clipped, t_clipped = grads(limit)
    w_exact, t_exact = grads(None)
    torch.testing.assert_close(w_clipped, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(w_exact, per_sample.sum(0), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(t_clipped, t_exact, rtol=0, atol=0)  # input-time gradients are never clipped
    with pytest.raises(ValueError, match="max_dw_norm"):
        ttfs_spike_times(t_in, w, max_dw_norm=0.0)


# ---------------------------------------------------------------- edge cases


def test_membrane_touching_threshold_does_not_fire_and_slightly_above_does() -> None:
    t0 = torch.tensor([[0.0]], dtype=F64)
    # equal: peak of w s e^-s is w/e at s = 1: w = e touches threshold (W argument exactly -1/e)
    w_touch = 1.0 / math.exp(-1.0)
    assert -math.log(w_touch) == -1.0  # the float precondition of "exactly at threshold"
    assert math.isinf(float(ttfs_spike_times(t0, torch.tensor([[w_touch]], dtype=F64))))
    t_up = float(ttfs_spike_times(t0, torch.tensor([[w_touch * (1 + 1e-10)]], dtype=F64)))
    assert 0.999 < t_up < 1.0
    # tau_m = 2 tau_s = 2: peak 2 w (y - y^2) = w / 2 at y = 1/2: w = 2 touches (discriminant exactly 0)
    p2 = TTFSParams(tau_syn=1.0, tau_mem=2.0)
    assert math.isinf(float(ttfs_spike_times(t0, torch.tensor([[2.0]], dtype=F64), p2)))
    assert (
        2 * math.log(2) - 1e-3
        < float(ttfs_spike_times(t0, torch.tensor([[2.0 + 1e-9]], dtype=F64), p2))
        < 2 * math.log(2)
    )
    # non-leaky: u -> w from below; w = 1 never exceeds threshold
    assert math.isinf(float(ttfs_spike_times(t0, torch.tensor([[1.0]], dtype=F64), NONLEAKY)))


def test_spike_exactly_when_the_next_input_arrives() -> None:
    w1 = torch.tensor([[2.0 * math.exp(0.5)]], dtype=F64)
    t_star = float(ttfs_spike_times(torch.tensor([[0.0]], dtype=F64), w1))
    w = torch.tensor([[float(w1)], [-50.0]], dtype=F64, requires_grad=True)
    t = ttfs_spike_times(torch.tensor([[0.0, t_star]], dtype=F64), w)
    assert float(t.detach()) == t_star  # the crossing belongs to the first prefix; the second input is not causal
    t.sum().backward()
    assert w.grad is not None and float(w.grad[1, 0]) == 0.0


@pytest.mark.parametrize("p", ALL, ids=lambda p: f"{p.kernel}-ts{p.tau_syn}")
def test_simultaneous_inputs_act_as_one_with_the_summed_weight(p: TTFSParams, gen: torch.Generator) -> None:
    t_in, w = _random_layer(p, gen, b=4, n=3, m=3)
    t_in[:, 2] = t_in[:, 1]  # inputs 1 and 2 coincide
    merged_w = torch.stack([w[0], w[1] + w[2]])
    a = ttfs_spike_times(t_in, w, p)
    b = ttfs_spike_times(t_in[:, :2], merged_w, p)
    assert torch.equal(torch.isfinite(a), torch.isfinite(b)) and bool(torch.isfinite(a).any())
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_never_firing_and_empty_inputs_are_inf_with_zero_finite_gradients() -> None:
    t_in = torch.tensor([[0.1, 0.5, math.inf], [math.inf, math.inf, math.inf]], dtype=F64, requires_grad=True)
    w = torch.tensor([[-1.0, 3.0], [-2.0, 0.5], [4.0, 4.0]], dtype=F64, requires_grad=True)
    t = ttfs_spike_times(t_in, w)
    assert math.isinf(float(t[0, 0].detach())) and math.isfinite(float(t[0, 1].detach()))
    assert bool(torch.isinf(t[1]).all())  # no input spike at all
    loss = torch.where(torch.isfinite(t), t, torch.zeros_like(t)).sum() + 0.0 * torch.nan_to_num(t, posinf=0.0).sum()
    loss.backward()
    assert t_in.grad is not None and w.grad is not None
    assert bool(torch.isfinite(t_in.grad).all()) and bool(torch.isfinite(w.grad).all())
    assert float(w.grad[:, 0].abs().sum()) == 0.0 and float(t_in.grad[1].abs().sum()) == 0.0
    assert float(w.grad[2, 1]) == 0.0  # the input at +inf is never causal
    empty = ttfs_spike_times(torch.zeros(3, 0, dtype=F64), torch.zeros(0, 2, dtype=F64))
    assert empty.shape == (3, 2) and bool(torch.isinf(empty).all())


def test_paths_agree_permutation_batch_dtype_and_layer(gen: torch.Generator) -> None:
    t_in, w = _random_layer(EQUAL, gen, b=5, n=6, m=4)
    ref = ttfs_spike_times(t_in, w)
    perm = torch.randperm(6, generator=gen)
    torch.testing.assert_close(ttfs_spike_times(t_in[:, perm], w[perm]), ref, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(ttfs_spike_times(t_in[2:3], w), ref[2:3], rtol=0, atol=0)
    f32 = ttfs_spike_times(t_in.float(), w.float()).double()
    fin = torch.isfinite(ref)
    assert torch.equal(torch.isfinite(f32), fin)
    torch.testing.assert_close(f32[fin], ref[fin], rtol=1e-4, atol=1e-4)
    layer = TTFSLayer(6, 4, bias_times=(0.9, 0.2))
    with torch.no_grad():
        full = torch.cat([t_in, torch.tensor([[0.9, 0.2]], dtype=F64).expand(5, 2)], dim=1)
        torch.testing.assert_close(layer(t_in), ttfs_spike_times(full, layer.weight), rtol=0, atol=0)


def test_network_shapes_and_forward_all(gen: torch.Generator) -> None:
    net = TTFSNetwork((4, 120, 3), generator=gen)
    assert [tuple(layer.weight.shape) for layer in net.layers] == [(5, 120), (121, 3)]
    hidden, out = net.forward_all(torch.rand(8, 4, generator=gen, dtype=F64) * 2)
    assert hidden.shape == (8, 120) and out.shape == (8, 3)
    torch.testing.assert_close(net.layers[1](hidden), out, rtol=0, atol=0)


# ---------------------------------------------------------------- bad input


def test_bad_input_raises_clear_errors() -> None:
    t, w = torch.zeros(2, 3, dtype=F64), torch.ones(3, 2, dtype=F64)
    with pytest.raises(ValueError, match="NaN"):
        ttfs_spike_times(torch.tensor([[0.0, math.nan, 1.0]], dtype=F64), w)
    with pytest.raises(ValueError, match="-inf"):
        ttfs_spike_times(torch.tensor([[0.0, -math.inf, 1.0]], dtype=F64), w)
    with pytest.raises(ValueError, match="unsqueeze"):
        ttfs_spike_times(torch.zeros(3, dtype=F64), w)
    with pytest.raises(ValueError, match="N_in = 3"):
        ttfs_spike_times(t, torch.ones(4, 2, dtype=F64))
    with pytest.raises(TypeError, match="one dtype"):
        ttfs_spike_times(t, w.float())
    with pytest.raises(TypeError, match="floating point"):
        ttfs_spike_times(t.long(), w)
    with pytest.raises(ValueError, match="weight contains NaN"):
        ttfs_spike_times(t, torch.full((3, 2), math.nan, dtype=F64))
    with pytest.raises(ValueError, match="overflow"):
        ttfs_spike_times(torch.tensor([[0.0, 1000.0, 1.0]], dtype=F64), w)
    with pytest.raises(ValueError, match="closed-form"):
        TTFSParams(tau_syn=1.0, tau_mem=3.0)
    with pytest.raises(ValueError, match="tau_syn"):
        TTFSParams(tau_syn=-1.0)
    with pytest.raises(ValueError, match="threshold"):
        TTFSParams(threshold=0.0)
    with pytest.raises(ValueError, match=r"\[B, 4\]"):
        TTFSLayer(4, 2)(torch.zeros(2, 3, dtype=F64))
    with pytest.raises(ValueError, match="one per layer"):
        TTFSNetwork((4, 5, 3), weight_mean=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="at least"):
        TTFSNetwork((4,))


# ---------------------------------------------------------------- training (fit_ttfs)


def test_ttfs_predict_first_output_and_silent_rows() -> None:
    from spikeforge.training.exact_ttfs import ttfs_predict

    t = torch.tensor([[0.5, 0.2, math.inf], [math.inf, math.inf, math.inf], [1.0, 3.0, 0.9]], dtype=F64)
    assert ttfs_predict(t).tolist() == [1, -1, 2]


def test_fit_ttfs_learns_a_separable_toy_task_and_records_history() -> None:
    """Two classes told apart by which input spikes first: a few epochs must beat chance clearly."""
    from spikeforge.training.exact_common import ExactFitResult
    from spikeforge.training.exact_ttfs import TTFSTrainConfig
    from spikeforge.training.exact_ttfs import fit_ttfs
    from spikeforge.training.exact_ttfs import ttfs_accuracy
    from spikeforge.training.exact_ttfs import ttfs_encode

    g = torch.Generator().manual_seed(0)
    x = torch.rand(240, 4, generator=g, dtype=F64)
    y = (x[:, 0] < x[:, 1]).long()
    cfg = TTFSTrainConfig(hidden=16, epochs=6, batch_size=20, lr=0.05, seed=1)
    rows: list[dict[str, float]] = []
    result = fit_ttfs(cfg, data=(x[:200], y[:200], x[200:], y[200:]), on_epoch=rows.append)
    assert isinstance(result, ExactFitResult) and rows == result.history
    assert len(result.history) == 6 and result.model.sizes == (4, 16, 2)
    assert set(result.history[0]) == {"epoch", "loss", "train_acc", "test_acc", "lr", "seconds", "bumps", "skipped"}
    assert result.test_acc == result.history[-1]["test_acc"] >= 0.9
    assert result.test_acc == ttfs_accuracy(result.model, ttfs_encode(x[200:], cfg), y[200:])
    assert all(math.isfinite(h["loss"]) for h in result.history)
    torch.testing.assert_close(ttfs_encode(x, cfg), 0.15 + 1.85 * x, rtol=1e-15, atol=1e-15)  # Göltz's code


def test_fit_ttfs_input_noise_changes_training_only() -> None:
    """Training noise (Göltz's ``training_noise``) changes the trajectory; seeds reproduce it exactly."""
    from spikeforge.training.exact_ttfs import TTFSTrainConfig
    from spikeforge.training.exact_ttfs import fit_ttfs

    x = torch.rand(60, 4, generator=torch.Generator().manual_seed(3), dtype=F64)
    y = (x[:, 0] < x[:, 1]).long()
    cfgs = [
        TTFSTrainConfig(hidden=16, epochs=2, batch_size=20, max_missing=(1.0, 1.0), input_noise=n) for n in (0, 0.2)
    ]
    runs = [fit_ttfs(cfg, data=(x, y, x, y)) for cfg in (cfgs[0], cfgs[1], cfgs[1])]
    assert all(r.history[-1]["bumps"] == 0 and math.isfinite(r.history[-1]["loss"]) for r in runs)  # steps made
    w = [list(r.model.parameters())[-1] for r in runs]  # output-layer weights
    assert not torch.equal(w[0], w[1]) and torch.equal(w[1], w[2])


def test_fit_ttfs_bumps_weights_of_a_silent_network() -> None:
    from spikeforge.training.exact_ttfs import TTFSTrainConfig
    from spikeforge.training.exact_ttfs import fit_ttfs

    x = torch.rand(30, 4, generator=torch.Generator().manual_seed(2), dtype=F64)
    y = torch.zeros(30, dtype=torch.int64)
    y[::2] = 1
    cfg = TTFSTrainConfig(hidden=5, epochs=1, batch_size=10, weight_mean=(-3.0, -3.0), weight_std=(0.0, 0.0))
    result = fit_ttfs(cfg, data=(x, y, x, y))
    assert result.history[0]["bumps"] == 3.0  # every batch silent: bumped, no gradient step
    assert math.isnan(result.history[0]["loss"])  # no batch made a step
    w = result.model.layers[0].weight
    # bumped three times in a row on layer 0: 0.0005 * (1 + 2 + 4)
    torch.testing.assert_close(w, torch.full_like(w, -3.0 + 0.0005 * 7), rtol=0, atol=1e-15)


def test_fit_ttfs_rejects_bad_configs() -> None:
    from spikeforge.training.exact_ttfs import TTFSTrainConfig

    with pytest.raises(ValueError, match="hidden"):
        TTFSTrainConfig(hidden=0)
    with pytest.raises(ValueError, match="lr"):
        TTFSTrainConfig(lr=-1.0)
    with pytest.raises(ValueError, match="max_missing"):
        TTFSTrainConfig(max_missing=(0.3, 1.5))
    with pytest.raises(ValueError, match="input_noise"):
        TTFSTrainConfig(input_noise=-0.1)


def test_fit_ttfs_rejects_bad_data() -> None:
    from spikeforge.training.exact_ttfs import fit_ttfs

    x, y = torch.rand(4, 4, dtype=F64), torch.zeros(4, dtype=torch.int64)
    with pytest.raises(TypeError, match="four tensors"):
        fit_ttfs(data=(x, y, x))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="long"):
        fit_ttfs(data=(x, y.float(), x, y))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="make them equal"):
        fit_ttfs(data=(x, y, x[:, :3], y))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fit_ttfs(data=(x + 1.5, y, x, y))  # spike times instead of features
