"""QCFS activation: reference values, straight-through gradients, module/functional equivalence, the
T = L equivalence theorem of Bu et al. (2022) for one layer, threshold ties and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from spikeforge.conversion import QCFS, convert, floor_ste, qcfs


def _np_qcfs(x: np.ndarray, lam: float, levels: int) -> np.ndarray:
    return lam / levels * np.clip(np.floor(x * levels / lam + 0.5), 0, levels)


@pytest.mark.parametrize("levels", [1, 2, 4, 8])
def test_qcfs_matches_numpy_formula(gen: torch.Generator, levels: int) -> None:
    x = torch.randn(1000, generator=gen, dtype=torch.float64) * 3
    lam = 2.5
    got = qcfs(x, lam, levels)
    np.testing.assert_allclose(got.numpy(), _np_qcfs(x.numpy(), lam, levels), rtol=0, atol=1e-12)
    assert set(np.round(got.numpy() * levels / lam, 9)) <= set(float(k) for k in range(levels + 1))


def test_qcfs_gradients_straight_through(gen: torch.Generator) -> None:
    levels, lam0 = 4, 2.0
    x = (torch.rand(200, generator=gen, dtype=torch.float64) * 3 - 0.5).requires_grad_()
    lam = torch.tensor(lam0, dtype=torch.float64, requires_grad=True)
    y = qcfs(x, lam, levels)
    gx, glam = torch.autograd.grad(y, (x, lam), torch.ones_like(y))
    xd = x.detach()
    inside = (xd > 0) & (xd < lam0)
    np.testing.assert_array_equal(gx.numpy(), inside.double().numpy())
    q = torch.floor(xd * levels / lam0 + 0.5)
    per = torch.where(inside, q / levels - xd / lam0, torch.where(xd >= lam0, 1.0, 0.0).double())
    torch.testing.assert_close(glam, per.sum(), rtol=1e-12, atol=1e-12)


def test_floor_ste_forward_and_identity_gradient(gen: torch.Generator) -> None:
    x = (torch.randn(50, generator=gen, dtype=torch.float64) * 4).requires_grad_()
    y = floor_ste(x)
    torch.testing.assert_close(y, torch.floor(x.detach()))
    (g,) = torch.autograd.grad((y * torch.arange(50.0, dtype=torch.float64)).sum(), x)
    torch.testing.assert_close(g, torch.arange(50.0, dtype=torch.float64))


def test_module_equals_functional_and_threshold_learns(gen: torch.Generator) -> None:
    m = QCFS(levels=4, threshold=1.5)
    x = torch.randn(4, 10, generator=gen)
    torch.testing.assert_close(m(x), qcfs(x, 1.5, 4))
    assert isinstance(m.threshold, nn.Parameter)
    m(x * 5).sum().backward()
    assert m.threshold.grad is not None and float(m.threshold.grad) > 0
    fixed = QCFS(levels=4, threshold=1.5, learn_threshold=False)
    assert "threshold" in dict(fixed.named_buffers()) and not list(fixed.parameters())


def test_qcfs_float64_and_dtype_follow_input() -> None:
    m = QCFS(levels=3, threshold=1.0)
    assert m(torch.zeros(2, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.parametrize(
    "kwargs, exc",
    [({"levels": 0}, ValueError), ({"levels": 2.5}, ValueError), ({"threshold": 0.0}, ValueError),
     ({"threshold": float("nan")}, ValueError), ({"levels": True}, ValueError)],
)
def test_qcfs_bad_arguments(kwargs: dict, exc: type) -> None:
    with pytest.raises(exc):
        QCFS(**kwargs)


def test_qcfs_functional_bad_input() -> None:
    with pytest.raises(TypeError, match="floating"):
        qcfs(torch.ones(3, dtype=torch.int64), 1.0, 4)
    with pytest.raises(ValueError, match="threshold"):
        qcfs(torch.ones(3), -1.0, 4)
    with pytest.raises(ValueError, match="levels"):
        qcfs(torch.ones(3), 1.0, 0)


def _one_layer(levels: int, lam: float, gen: torch.Generator) -> nn.Sequential:
    lin = nn.Linear(6, 40).double()
    with torch.no_grad():
        lin.weight.copy_(torch.randn(40, 6, generator=gen, dtype=torch.float64))
        lin.bias.copy_(torch.randn(40, generator=gen, dtype=torch.float64) * 0.5)
    return nn.Sequential(lin, QCFS(levels=levels, threshold=lam).double())


@pytest.mark.parametrize("levels", [2, 4, 8])
def test_snn_with_t_equal_l_reproduces_qcfs_layer(gen: torch.Generator, levels: int) -> None:
    """Bu et al. (2022): an IF neuron with threshold lambda, v(0) = lambda/2 and reset by subtraction,
    driven by a constant input x for T = L steps, emits lambda/L * clip(floor(xL/lambda + 1/2), 0, L)
    on average, i.e. exactly the QCFS activation (away from threshold ties, see test below)."""
    lam = 1.7
    ann = _one_layer(levels, lam, gen)
    x = torch.randn(64, 6, generator=gen, dtype=torch.float64) * 0.4
    pre = ann[0](x).detach()
    u = pre * levels / lam + 0.5
    frac = u - torch.floor(u)
    keep = (frac > 1e-6) & (frac < 1 - 1e-6)  # no ties
    assert keep.float().mean() > 0.99
    snn = convert(ann, None, method="qcfs")
    with torch.no_grad():
        out = snn.run(snn.encode(x, levels)).output.mean(0)
        expected = ann(x)
    assert bool(((expected > 0) & (expected < lam)).any()) and bool((expected == 0).any())
    torch.testing.assert_close(out[keep], expected[keep], rtol=0, atol=1e-12)
    # the lambda/2 shift is what makes it exact: without it the two differ
    snn0 = convert(ann, None, method="qcfs", v_init=0.0)
    with torch.no_grad():
        out0 = snn0.run(snn0.encode(x, levels)).output.mean(0)
    assert not torch.allclose(out0[keep], expected[keep])


def test_threshold_tie_gives_one_spike_less() -> None:
    """spike iff v > v_th: at x L / lambda + 1/2 = k exactly, the ANN gives k levels, the SNN k - 1."""
    lin = nn.Linear(1, 1, bias=False).double()
    with torch.no_grad():
        lin.weight.fill_(1.0)
    ann = nn.Sequential(lin, QCFS(levels=4, threshold=1.0).double())
    snn = convert(ann, None, method="qcfs")
    x = torch.tensor([[0.375]], dtype=torch.float64)  # 0.375 * 4 + 0.5 = 2 exactly
    with torch.no_grad():
        assert float(ann(x)) == 0.5
        assert float(snn.run(snn.encode(x, 4)).output.mean(0)) == 0.25
