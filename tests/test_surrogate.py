"""Contract tests over every registered surrogate, plus the registry itself."""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass, FrozenInstanceError

import pytest
import torch

from spikeforge import surrogate as S
from spikeforge._core.spike import spike

ALL = S.list_surrogates()
SMOOTH = {"atan", "sigmoid", "fast_sigmoid"}


def _points(dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2000, generator=g, dtype=dtype) * 0.6
    return x[x.abs() > 1e-3]  # keep off the kink at 0 for the piecewise ones


def test_builtin_set_is_registered():
    assert {"fast_sigmoid", "triangle", "atan", "sigmoid", "straight_through"} <= set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_forward_is_heaviside(name):
    sg = S.get_surrogate(name)
    x = torch.tensor([-1.0, -1e-7, 0.0, 1e-7, 3.0], requires_grad=True)
    z = sg(x)
    assert z.dtype == x.dtype
    assert z.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]


@pytest.mark.parametrize("name", ALL)
def test_grad_is_derivative_of_primitive(name):
    sg = S.get_surrogate(name)
    x = _points()
    eps = 1e-6
    fd = (sg.primitive(x + eps) - sg.primitive(x - eps)) / (2 * eps)
    # straight-through: skip points within eps of the window edge (derivative undefined there)
    if name == "straight_through":
        keep = (x.abs() - sg.width).abs() > 1e-4
        x, fd = x[keep], fd[keep]
    if name == "triangle":
        keep = (x.abs() - sg.width).abs() > 1e-4
        x, fd = x[keep], fd[keep]
    torch.testing.assert_close(sg.grad(x), fd, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", ALL)
def test_backward_through_spike_equals_grad(name):
    sg = S.get_surrogate(name)
    x = _points().requires_grad_()
    (g,) = torch.autograd.grad(spike(x, sg).sum(), x)
    torch.testing.assert_close(g, sg.grad(x.detach()))


@pytest.mark.parametrize("name", sorted(SMOOTH))
def test_gradcheck_primitive(name):
    sg = S.get_surrogate(name)
    x = (torch.randn(12, dtype=torch.float64) * 0.5).requires_grad_()
    assert torch.autograd.gradcheck(sg.primitive, (x,))


@pytest.mark.parametrize("name", ALL)
def test_primitive_is_monotone_step_like(name):
    sg = S.get_surrogate(name)
    x = torch.linspace(-5, 5, 1001, dtype=torch.float64)
    p = sg.primitive(x)
    assert bool((p.diff() >= -1e-15).all())
    assert bool((sg.grad(x) >= 0).all())


def test_independent_closed_forms():
    x = torch.tensor([-0.3, 0.1, 0.7], dtype=torch.float64)
    torch.testing.assert_close(S.FastSigmoid(slope=10).grad(x), 1 / (1 + 10 * x.abs()) ** 2)
    torch.testing.assert_close(S.Triangle(width=0.5).grad(x), torch.tensor([0.8, 1.6, 0.0], dtype=torch.float64))
    torch.testing.assert_close(S.StraightThrough(width=0.5).grad(x), torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64))
    s = 1 / (1 + torch.exp(-4 * x))
    torch.testing.assert_close(S.Sigmoid(slope=4).grad(x), 4 * s * (1 - s))
    torch.testing.assert_close(S.ATan(alpha=2).grad(x), 1 / (1 + (math.pi * x) ** 2))


def test_unit_area_where_documented():
    x = torch.linspace(-60, 60, 600001, dtype=torch.float64)
    for sg in (S.Triangle(), S.ATan(), S.Sigmoid(), S.StraightThrough()):
        area = torch.trapezoid(sg.grad(x), x).item()
        assert area == pytest.approx(1.0, abs=2e-2), sg


def test_registry_rejects_duplicates_and_unknown_names():
    with pytest.raises(ValueError, match="already registered"):
        S.register_surrogate("atan")(S.ATan)
    with pytest.raises(ValueError, match="registered: .*atan"):
        S.get_surrogate("no_such_surrogate")
    with pytest.raises(TypeError, match="Surrogate subclass"):
        S.register_surrogate("not_a_class_xyz")(int)  # type: ignore[arg-type]


def test_user_surrogate_is_one_small_class():
    @dataclass(frozen=True)
    class Gauss(S.Surrogate):
        sigma: float = 0.5

        def grad(self, x):
            return torch.exp(-0.5 * (x / self.sigma) ** 2) / (self.sigma * math.sqrt(2 * math.pi))

        def primitive(self, x):
            return 0.5 * (1 + torch.erf(x / (self.sigma * math.sqrt(2))))

    x = torch.randn(10, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(Gauss()(x).sum(), x)
    torch.testing.assert_close(g, Gauss().grad(x.detach()))


@pytest.mark.parametrize("name", ALL)
def test_frozen_picklable_comparable(name):
    sg = S.get_surrogate(name)
    assert pickle.loads(pickle.dumps(sg)) == sg
    assert hash(sg) == hash(S.get_surrogate(name))
    field = next(iter(sg.__dataclass_fields__))
    with pytest.raises(FrozenInstanceError):
        setattr(sg, field, 3.0)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_bad_slope_rejected(bad):
    with pytest.raises(ValueError, match="positive finite"):
        S.ATan(alpha=bad)


def test_resolve():
    assert S.resolve_surrogate(None) == S.FastSigmoid()
    assert S.resolve_surrogate("triangle") == S.Triangle()
    with pytest.raises(TypeError, match="Surrogate"):
        S.resolve_surrogate(3)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ALL)
def test_kernel_code_names_a_core_code(name):
    # every built-in surrogate is evaluated inside the compiled kernels: its code comes from spikeforge._core.codes
    from spikeforge._core import codes

    sg = S.get_surrogate(name)
    code, a, b = sg.kernel_code()
    kernel_codes = {v for k, v in vars(codes).items() if k.startswith("SG_")}
    assert code in kernel_codes and code != codes.SG_CUSTOM
    assert math.isfinite(a) and math.isfinite(b)


def test_kernel_code_constants_match_grad():
    # the (a, b) constants reproduce grad() with the formulas documented in spikeforge._core.codes
    from spikeforge._core import codes

    h = torch.linspace(-2, 2, 81, dtype=torch.float64)
    formulas = {
        codes.SG_FAST_SIGMOID: lambda a, b: 1 / (1 + a * h.abs()) ** 2,
        codes.SG_TRIANGLE: lambda a, b: torch.clamp(1 - h.abs() / a, min=0) / a,
        codes.SG_ATAN: lambda a, b: b / (1 + (a * h) ** 2),
        codes.SG_SIGMOID: lambda a, b: a * torch.sigmoid(a * h) * (1 - torch.sigmoid(a * h)),
        codes.SG_STRAIGHT_THROUGH: lambda a, b: b * (h.abs() < a).to(h.dtype),
    }
    for name in ALL:
        sg = S.get_surrogate(name)
        code, a, b = sg.kernel_code()
        torch.testing.assert_close(formulas[code](a, b), sg.grad(h), rtol=1e-12, atol=1e-12)


def test_kernel_code_custom_for_subclasses_and_user_surrogates():
    from spikeforge._core.codes import SG_CUSTOM
    from spikeforge.backends import surrogate_kernel_code

    @dataclass(frozen=True)
    class Wider(S.FastSigmoid):  # may override grad: the kernels must call it
        def grad(self, x):
            return super().grad(x / 2)

    class DuckTyped:  # only grad(): still usable with every backend
        def grad(self, x):
            return torch.ones_like(x)

    assert Wider().kernel_code() == (SG_CUSTOM, 0.0, 0.0)
    assert surrogate_kernel_code(DuckTyped()) == (SG_CUSTOM, 0.0, 0.0)
    assert surrogate_kernel_code(S.ATan(3.0)) == S.ATan(3.0).kernel_code()
