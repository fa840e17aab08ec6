"""Contract tests over every registered neuron model (new models are picked up automatically).

For each model: module forward == functional scan == step-by-step loop; float32 and float64; the
state follows the input's dtype; carried-state mismatches and bad input raise with a useful message; what
``capabilities`` declares (spiking, LIF family, fused kernel, recurrent) holds. Which models are spiking,
fused or recurrent is read from the registry and ``capabilities``, never listed here.
"""

from __future__ import annotations

import copy
import inspect

import pytest
import torch

import spikeforge.neurons as N
from spikeforge._core.scan import scan
from spikeforge.neurons.base import NEURON_REGISTRY, Neuron, Stateful, detach_states, reset_states

ALL = sorted(NEURON_REGISTRY)
FEATURES = 6
# typical input magnitude per model (mV-scale models need larger drive); default 3.0
INPUT_SCALE = {"hh": 15.0, "izhikevich": 30.0}
# constructor overrides so that the short contract input makes every model spike
MAKE_KWARGS = {"hh": {"dt": 0.1}}


def required(name: str) -> dict[str, int]:
    """The arguments a model cannot be built without (a recurrent layer's ``size``)."""
    sig = inspect.signature(NEURON_REGISTRY[name].__init__)
    needs_size = "size" in sig.parameters and sig.parameters["size"].default is inspect.Parameter.empty
    return {"size": FEATURES} if needs_size else {}


def make(name: str, **kwargs: object) -> Neuron:
    return NEURON_REGISTRY[name](**required(name), **{**MAKE_KWARGS.get(name, {}), **kwargs})


def inputs(name: str, dtype=torch.float64, T=40, B=3) -> torch.Tensor:
    g = torch.Generator().manual_seed(7)
    return torch.rand(T, B, FEATURES, generator=g, dtype=dtype) * INPUT_SCALE.get(name, 3.0)


def test_registry_has_builtin_models():
    assert {"lif", "if", "cuba_lif", "alif", "li", "rlif"} <= set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_module_equals_functional_equals_step_loop(name):
    m = make(name).double()
    x = inputs(name)
    out_mod, s_mod = m(x)
    # functional scan with the model's pure step
    p = m.params(x)
    cls = type(m)
    s0 = cls.init_fn(x[0], p)
    out_fun, s_fun = scan(lambda xt, s: cls.step_fn(xt, s, p, dt=m.dt, surrogate=m.surrogate, **m.step_options()), x, s0)
    # streaming step by step
    s = None
    outs = []
    for t in range(x.shape[0]):
        o, s = m.step(x[t], s)
        outs.append(o)
    assert torch.equal(out_mod, out_fun)
    assert torch.equal(out_mod, torch.stack(outs))
    for a, b, c in zip(s_mod, s_fun, s):
        assert torch.equal(a, b) and torch.equal(a, c)
    if m.spiking:
        assert set(out_mod.unique().tolist()) <= {0.0, 1.0}
        assert out_mod.sum() > 0, "contract input should make the model spike"


@pytest.mark.parametrize("name", ALL)
def test_chunked_sequence_equals_whole(name):
    m = make(name).double()
    x = inputs(name)
    whole, _ = m(x)
    a, s = m(x[:17])
    b, _ = m(x[17:], s)
    assert torch.equal(whole, torch.cat([a, b]))


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_follows_input(name, dtype):
    m = make(name).to(dtype)
    out, s = m(inputs(name, dtype))
    assert out.dtype == dtype
    assert all(t.dtype == dtype for t in s)


@pytest.mark.parametrize("name", ALL)
def test_float32_close_to_float64(name):
    m64 = make(name).double()
    m32 = copy.deepcopy(m64).float()
    x = inputs(name, T=15)
    out64, _ = m64(x)
    out32, _ = m32(x.float())
    if m64.spiking:
        # spikes may only differ where float32 rounding crosses threshold: allow at most 2 % of entries
        assert (out32.double() != out64).double().mean() <= 0.02
    else:
        torch.testing.assert_close(out32.double(), out64, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ALL)
def test_gradients_flow_to_input(name):
    m = make(name).double()
    x = inputs(name).requires_grad_()
    out, _ = m(x)
    (g,) = torch.autograd.grad(out.sum(), x)
    assert torch.isfinite(g).all() and g.abs().sum() > 0


@pytest.mark.parametrize("name", ALL)
def test_mismatched_state_raises_naming_reset_states(name):
    m = make(name)
    x = inputs(name, torch.float32)
    _, s = m(x)
    with pytest.raises(ValueError, match="reset_states"):
        m(x[:, :2], s)  # smaller last batch
    with pytest.raises(ValueError, match="reset_states"):
        m.double()(x.double(), s)  # dtype changed
    with pytest.raises(TypeError, match="state=None"):
        m(x, (1, 2))


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(
    "bad, err, match",
    [
        (torch.full((4, 2, FEATURES), float("nan")), ValueError, "NaN"),
        (torch.full((4, 2, FEATURES), float("inf")), ValueError, "NaN or inf"),
        (torch.zeros(0, 2, FEATURES), ValueError, "T = 0"),
        (torch.zeros(FEATURES), ValueError, "at least 2 dims"),
        (torch.zeros(4, 2, FEATURES, dtype=torch.int64), TypeError, "floating-point"),
    ],
)
def test_bad_input(name, bad, err, match):
    with pytest.raises(err, match=match):
        make(name)(bad)


@pytest.mark.parametrize("name", ALL)
def test_bad_dt(name):
    with pytest.raises(ValueError, match="dt"):
        NEURON_REGISTRY[name](dt=0.0, **required(name))


@pytest.mark.parametrize("name", ALL)
def test_capabilities_hold(name):
    caps = NEURON_REGISTRY[name].capabilities
    m = make(name).double()
    assert m.spiking == caps.spiking
    assert not caps.fused or caps.lif_family, "a fused kernel runs only LIF-family membranes"
    # membrane_spec describes exactly the LIF family (with scalar parameters, as built here)
    assert (m.membrane_spec() is not None) == caps.lif_family
    assert (m.fused_spec() is not None) == caps.fused
    assert isinstance(getattr(m, "w_rec", None), torch.nn.Parameter) == caps.recurrent
    if caps.recurrent:
        assert m.w_rec.shape == (FEATURES, FEATURES)
    if caps.fused:  # a fused kernel gives the reference loop's spikes
        x = inputs(name)
        z_ref, s_ref = make(name, backend="reference").double()(x)
        z_fused, s_fused = make(name, backend="torch").double()(x)
        assert torch.equal(z_ref, z_fused) and all(torch.equal(a, b) for a, b in zip(s_ref, s_fused))
    else:  # only models a fused kernel can run take backend=
        with pytest.raises(TypeError, match="backend"):
            make(name, backend="torch")


@pytest.mark.parametrize("name", [n for n in ALL if NEURON_REGISTRY[n].capabilities.lif_family])
def test_lif_family_options_are_checked(name):
    # the shared options appear in the signature (help(), inspect-based builders) with their defaults
    cls = NEURON_REGISTRY[name]
    params = inspect.signature(cls.__init__).parameters
    assert params["v_th"].default == 1.0 and params["reset"].default == "subtract" and "dt" in params
    assert ("backend" in params) == cls.capabilities.fused
    with pytest.raises(TypeError, match="unexpected keyword argument.*tau_typo"):
        make(name, tau_typo=1.0)
    with pytest.raises(ValueError, match="reset mode"):
        make(name, reset="zero")


@pytest.mark.parametrize("name", ALL)
def test_stateful_wrapper_truncated_bptt(name):
    m = make(name)
    sm = Stateful(m)
    net = torch.nn.Sequential(sm)
    x = inputs(name, torch.float32)
    y1 = net(x[:20])
    y2 = net(x[20:])
    whole, _ = m(x)
    assert torch.equal(torch.cat([y1, y2]), whole)
    detach_states(net)
    assert all(not t.requires_grad for t in sm.state)
    with pytest.raises(ValueError, match="reset_states"):
        net(x[:, :1])
    reset_states(net)
    assert sm.state is None
    torch.testing.assert_close(net(x[:, :1]), whole[:, :1])


def test_stateful_state_not_in_state_dict():
    sm = Stateful(N.LIF())
    sm(torch.rand(5, 2, 3))
    assert sm.state is not None
    # only the neuron's own entries (its constant table): the carried membrane is not saved
    assert list(sm.state_dict()) == [f"neuron.{k}" for k in sm.neuron.state_dict()] == ["neuron._extra_state"]


def test_get_neuron_and_errors():
    assert isinstance(N.get_neuron("lif", tau_mem=3.0), N.LIF)
    with pytest.raises(ValueError, match="registered: .*lif"):
        N.get_neuron("nope")
    with pytest.raises(ValueError, match="already registered"):
        N.register_neuron("lif")(N.LIF)
    with pytest.raises(TypeError, match="Neuron"):
        Stateful(torch.nn.Linear(2, 2))  # type: ignore[arg-type]
