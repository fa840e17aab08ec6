"""The neuron parameter layer (``neurons/_validate.py``): every registered neuron refuses non-finite and
out-of-range parameters at construction with a one-line error naming the parameter, the value and the fix;
the reset rules refuse exactly the configurations that fire on every step; Izhikevich/HH runs refuse a
diverged state; scalar constants travel in the ``state_dict`` and a mismatch refuses to load.

The neurons come from the registry, so a new model is covered without editing this file."""

from __future__ import annotations

import io
import math
from typing import Any

import pytest
import torch

import spikeforge.neurons as N
from spikeforge.neurons import NEURON_REGISTRY
from spikeforge.neurons import list_neurons
from spikeforge.neurons.lif import LIFParams
from spikeforge.neurons.lif import lif_init
from spikeforge.neurons.lif import lif_step

D = torch.float64


def _required(name: str) -> dict[str, Any]:
    """Arguments a registered neuron cannot be built without (the recurrent LIF's ``size``)."""
    return {"size": 3} if name == "rlif" else {}


def build(name: str, **kw: Any) -> N.Neuron:
    return NEURON_REGISTRY[name](**_required(name), **kw)


def _float_constants(name: str) -> list[str]:
    m = build(name)
    return [k for k, v in m._constant_values().items() if not isinstance(v, str)]


FLOAT_CONSTANTS = [(n, c) for n in list_neurons() for c in _float_constants(n)]


def test_every_neuron_has_dt_and_its_parameters_as_constants() -> None:
    """The table is not empty for any neuron: dt and each float parameter are in it (the probes below rely
    on it to reach every scalar parameter)."""
    assert len(list_neurons()) >= 8
    for name in list_neurons():
        consts = _float_constants(name)
        assert "dt" in consts, name
        assert len(consts) >= 3, (name, consts)
    assert {"tau_mem", "v_th", "v_reset", "v_rest", "r"} <= set(_float_constants("lif"))
    assert {"a", "b", "c", "d", "v_peak", "v_init"} <= set(_float_constants("izhikevich"))
    assert {"c_m", "g_na", "g_k", "g_l", "e_na", "e_k", "e_l", "v_th", "v_init"} <= set(_float_constants("hh"))


# ---- valid parameters still work -------------------------------------------------------------------
@pytest.mark.parametrize("name", list_neurons())
def test_defaults_construct_run_and_round_trip_the_state_dict(name: str) -> None:
    torch.manual_seed(0)
    m = build(name)
    x = torch.rand(6, 2, 3, dtype=D) * 2
    out, state = m(x)
    assert out.shape == x.shape and all(bool(torch.isfinite(t).all()) for t in state)
    again = build(name)
    if name == "rlif":  # a fresh random w_rec: load the saved one
        again.w_rec.data.zero_()
    again.load_state_dict(m.state_dict())  # strict, constant table included
    torch.testing.assert_close(again(x)[0], out)
    assert all(isinstance(v, torch.Tensor) for v in m.state_dict().values())


@pytest.mark.parametrize("name", list_neurons())
def test_per_neuron_tensor_parameters_are_checked_too(name: str) -> None:
    """A per-neuron (``size``) model validates the tensors it stores: one NaN entry is named by index."""
    m = build(name)
    checked = 0
    for k in _float_constants(name):
        t = torch.full((3,), float(getattr(m, k)))
        t[1] = float("nan")
        try:
            cls_kw = {**_required(name), k: t}
            if name != "rlif":
                cls_kw["size"] = 3
            NEURON_REGISTRY[name](**cls_kw)
        except TypeError:
            continue  # a constant of one value per layer (e.g. v_reset): covered by the scalar probes
        except ValueError as err:
            assert f"{k}[1]=nan is not finite" in str(err), err
            checked += 1
            continue
        raise AssertionError(f"{name}: {k} with a NaN entry was accepted")
    assert checked >= 1, name  # every model has at least one per-neuron parameter (v_th, tau_mem, a, ...)


# ---- every scalar parameter: finite; time constants and dt > 0 -------------------------------------
@pytest.mark.parametrize(("name", "param"), FLOAT_CONSTANTS)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_scalar_parameters_are_refused(name: str, param: str, bad: float) -> None:
    cls = NEURON_REGISTRY[name]
    with pytest.raises(ValueError) as info:
        build(name, **{param: bad})
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{cls.__name__}: {param}={bad!r} is not finite; give e.g. {param}="), msg
    example = float(msg.rsplit(f"{param}=", 1)[1])
    assert math.isfinite(example)


@pytest.mark.parametrize(("name", "param"), [(n, c) for n, c in FLOAT_CONSTANTS if c == "dt" or c.startswith("tau")])
@pytest.mark.parametrize("bad", [0.0, -2.0])
def test_time_constants_and_dt_must_be_positive(name: str, param: str, bad: float) -> None:
    with pytest.raises(ValueError, match=rf"{param}={bad!r} must be > 0 .*; give e.g. {param}="):
        build(name, **{param: bad})


def test_learnable_time_constants_and_thresholds_are_checked_at_construction() -> None:
    with pytest.raises(ValueError, match=r"LIF: tau_mem\[2\]=-1.0 must be > 0"):
        N.LIF(torch.tensor([5.0, 6.0, -1.0]), learn_tau=True, size=3)
    with pytest.raises(ValueError, match=r"CubaLIF: tau_syn=0.0 must be > 0"):
        N.CubaLIF(tau_syn=0.0, learn_tau=True)
    with pytest.raises(ValueError, match=r"LIF: v_th=nan is not finite"):
        N.LIF(v_th=float("nan"), learn_threshold=True)
    m = N.LIF(torch.tensor([5.0, 6.0]), learn_tau=True, learn_threshold=True, size=2)
    assert {n for n, _ in m.named_parameters()} == {"log_tau_mem", "v_th"}


@pytest.mark.parametrize(
    ("make", "err", "match"),
    [
        (lambda: N.LIF(r=0.0), ValueError, r"LIF: r=0.0 must be > 0 \(the membrane resistance sets the input gain\)"),
        (lambda: N.LI(r=-1.0), ValueError, r"LI: r=-1.0 must be > 0"),
        (lambda: N.IF(c_mem=-1.0), ValueError, r"IF: c_mem=-1.0 must be > 0"),
        (lambda: N.ALIF(adapt=-0.5), ValueError, r"ALIF: adapt=-0.5 must be >= 0 .*give e.g. adapt=1.8"),
        (lambda: N.HodgkinHuxley(g_l=0.0), ValueError, r"HodgkinHuxley: g_l=0.0 must be > 0"),
        (lambda: N.HodgkinHuxley(c_m=-1.0), ValueError, r"HodgkinHuxley: c_m=-1.0 must be > 0"),
        (lambda: N.HodgkinHuxley(g_na=-1.0), ValueError, r"HodgkinHuxley: g_na=-1.0 must be >= 0 .*0 blocks"),
        (lambda: N.LIF(beta=float("nan")), ValueError, r"beta must lie in \(0, 1\)"),
        (lambda: N.LIF(v_reset="low"), TypeError, r"LIF: v_reset must be a number or a tensor, got str"),
        (lambda: N.LIF(v_rest=True), TypeError, r"LIF: v_rest must be a number or a tensor, got bool"),
        (lambda: N.LIF(v_reset=torch.zeros(2)), TypeError, r"LIF: v_reset takes one value per layer"),
        (lambda: N.LIF(v_th=torch.zeros(0), size=0), ValueError, r"LIF: v_th is an empty tensor"),
    ],
)
def test_out_of_range_parameters_are_refused(make: Any, err: type, match: str) -> None:
    with pytest.raises(err, match=match) as info:
        make()
    assert "\n" not in str(info.value)


def test_issue_probes_are_refused() -> None:
    """The probes of issue 13, each refused with a message naming the parameter, its value and the fix."""
    with pytest.raises(ValueError, match=r"LIF: v_th=0.5 must be > v_reset=1.0 with reset='subtract'.*lower v_reset"):
        N.LIF(v_th=0.5, v_reset=1.0)
    with pytest.raises(ValueError, match=r"LIF: v_reset=inf is not finite; give e.g. v_reset=0.0"):
        N.LIF(v_reset=float("inf"))
    with pytest.raises(ValueError, match=r"LIF: r=nan is not finite; give e.g. r=1.0"):
        N.LIF(r=float("nan"))
    with pytest.raises(ValueError, match=r"LIF: v_rest=nan is not finite; give e.g. v_rest=0.0"):
        N.LIF(v_rest=float("nan"))


# ---- reset rules: refused iff the neuron would fire on every step -----------------------------------
def _fires_every_step_after_a_spike(tau: float, v_rest: float, v_th: float, v_reset: float, reset: str) -> bool:
    """Reference: the pure step with the given parameters (no module, so no validation), one strong input step
    then no input; True if every later step spikes, or if the reset did not lower the membrane."""
    p = LIFParams(tau_mem=tau, v_rest=v_rest, v_th=v_th, v_reset=v_reset, reset=reset)
    x = torch.zeros(30, 1, 1, dtype=D)
    x[0] = 100.0
    s = lif_init(x[0], p)
    zs, lowered = [], True
    for t in range(30):
        before = s.v + 0.0
        z, s = lif_step(x[t], s, p, dt=1.0, surrogate=None)
        v_pre = p.v_rest + math.exp(-1.0 / tau) * (float(before) - p.v_rest) + (1 - math.exp(-1.0 / tau)) * float(x[t])
        if float(z) == 1.0 and float(s.v) >= v_pre:
            lowered = False
        zs.append(float(z))
    return all(z == 1.0 for z in zs) or not lowered


@pytest.mark.parametrize("reset", ["subtract", "to_value"])
@pytest.mark.parametrize("tau", [0.5, 2.0, 20.0])
@pytest.mark.parametrize("v_reset", [-0.5, 0.0, 0.9, 1.0, 1.3, 3.0])
def test_reset_rule_matches_the_dynamics(reset: str, tau: float, v_reset: float) -> None:
    """The constructor refuses exactly the LIF configurations whose reset is meaningless in the simulated
    dynamics (fires on every step, or a reset that does not lower the membrane)."""
    meaningless = _fires_every_step_after_a_spike(tau, 0.0, 1.0, v_reset, reset)
    try:
        N.LIF(tau, v_th=1.0, v_reset=v_reset, reset=reset)
    except ValueError as err:
        assert meaningless, f"refused a working config: {err}"
        assert f"v_reset={v_reset!r}" in str(err) and "v_th=1.0" in str(err)
        return
    assert not meaningless, f"accepted tau={tau}, v_reset={v_reset}, reset={reset}"


def test_reset_rule_edges() -> None:
    N.LIF(v_th=1.0, v_reset=5.0, reset="none")  # v_reset unused
    N.IF(v_th=1.0, v_reset=1.0, reset="to_value")  # lands on v_th: strict threshold, no spike without input
    with pytest.raises(
        ValueError, match=r"IF: v_reset=1.5 with reset='to_value' leaves the membrane at 1.5 > v_th=1.0"
    ):
        N.IF(v_th=1.0, v_reset=1.5, reset="to_value")
    with pytest.raises(ValueError, match=r"IF: v_th=1.0 must be > v_reset=1.0 with reset='subtract'"):
        N.IF(v_th=1.0, v_reset=1.0)
    with pytest.raises(ValueError, match=r"v_th=0.2 must be > v_reset=0.5"):  # one per-neuron threshold too low
        N.LIF(v_th=torch.tensor([1.0, 0.2, 2.0]), v_reset=0.5, size=3)
    with pytest.raises(ValueError, match=r"ALIF: v_th=-1.0 must be > v_reset=0.0"):
        N.ALIF(v_th=-1.0)
    N.LIF(20.0, v_rest=1.3, v_reset=0.0, reset="to_value")  # a pacemaker: fires periodically, not every step
    with pytest.raises(ValueError, match=r"Izhikevich: c=30.0 must be < v_peak=30.0 \(the after-spike reset"):
        N.Izhikevich(c=30.0)
    with pytest.raises(ValueError, match=r"Izhikevich: c=40.0 must be < v_peak=30.0"):
        N.Izhikevich(c=torch.tensor([-65.0, 40.0]), size=2)
    N.Izhikevich(a=-0.02, b=-1.0, c=-60.0, d=-2.0)  # signs of Izhikevich (2004)'s inhibition-induced classes


# ---- runtime divergence of the explicit schemes -------------------------------------------------------
def test_izhikevich_divergence_raises_naming_dt() -> None:
    x = torch.full((400, 1, 1), 10.0)
    m = N.Izhikevich("FS", dt=5.0)
    pattern = r"Izhikevich: the state became NaN/inf during the run \(the time step diverged with dt=5.0, a=0.1.*\); use a smaller dt \(e.g. dt=0.5\)"
    with pytest.raises(ValueError, match=pattern):
        m(x)
    with pytest.raises(ValueError, match=pattern):
        m.trace(x)
    with pytest.raises(ValueError, match=pattern):  # streaming: raised on the step the state diverges
        state = None
        for x_t in x:
            _, state = m.step(x_t, state)
    z, state = N.Izhikevich("FS")(torch.full((400, 1, 1), 10.0))  # the default dt stays finite
    assert z.sum() > 0 and all(bool(torch.isfinite(t).all()) for t in state)


def test_hh_refuses_a_non_finite_state() -> None:
    """HH's exponential Euler is stable, but a non-finite carried state (or float overflow) is refused."""
    m = N.HodgkinHuxley()
    x = torch.zeros(3, 1, 2, dtype=D)
    s = N.hh_init(x[0], m.params(x[0]))
    bad = s._replace(v=torch.tensor([[-65.0, float("nan")]], dtype=D))
    with pytest.raises(ValueError, match=r"HodgkinHuxley: the state became NaN/inf.*dt=0.01"):
        m(x, bad)
    _, s2 = m(x, s)
    assert all(bool(torch.isfinite(t).all()) for t in s2)
    assert not N.LIF.checks_divergence  # exact LIF updates cannot diverge: no per-call check


# ---- scalar constants in the state_dict ---------------------------------------------------------------
def test_lif_tau_mismatch_refuses_to_load_naming_both_values() -> None:
    with pytest.raises(
        RuntimeError,
        match=r"tau_mem=50.0 \(saved\) vs tau_mem=5.0 \(this module\); build the module with the saved values \(tau_mem=50.0\)",
    ):
        N.LIF(tau_mem=5.0).load_state_dict(N.LIF(tau_mem=50.0).state_dict())
    m = N.LIF(tau_mem=50.0)
    m.load_state_dict(N.LIF(tau_mem=50.0).state_dict())
    assert m.tau_mem == 50.0


@pytest.mark.parametrize("name", list_neurons())
def test_every_neuron_refuses_a_state_dict_with_another_dt(name: str) -> None:
    saved = build(name, dt=0.05).state_dict()
    with pytest.raises(RuntimeError, match=r"dt=0.05 \(saved\) vs dt=.* \(this module\)"):
        build(name, dt=0.025).load_state_dict(saved)


def test_string_constants_and_several_differences_are_named() -> None:
    saved = N.LIF(2.0, reset="to_value", input_scaling="none").state_dict()
    with pytest.raises(RuntimeError) as info:
        N.LIF(3.0).load_state_dict(saved)
    msg = str(info.value)
    for part in ("tau_mem=2.0 (saved) vs tau_mem=3.0", "reset='to_value' (saved) vs reset='subtract'",
                 "input_scaling='none' (saved) vs input_scaling='exact'"):  # fmt: skip
        assert part in msg, msg


def test_other_neuron_types_and_foreign_tables_are_refused() -> None:
    with pytest.raises(RuntimeError, match="saved from another neuron type or spikeforge version"):
        N.IF().load_state_dict(N.LIF().state_dict())
    with pytest.raises(RuntimeError, match="are not a spikeforge constant table"):
        N.LIF().load_state_dict({"_extra_state": torch.zeros(3)})
    table = N.LIF().state_dict()["_extra_state"]
    extra = torch.cat([table, torch.tensor([[123.0, 4.0]], dtype=D)])
    with pytest.raises(RuntimeError, match="hold 1 constant\\(s\\) this LIF does not have"):
        N.LIF().load_state_dict({"_extra_state": extra})


def test_older_state_dicts_load_with_the_constructor_constants() -> None:
    """A state_dict without the table (written before it existed), or a table lacking a constant, loads
    strictly: this module's constants apply."""
    src = N.LIF(torch.tensor([4.0, 6.0]), size=2, v_th=0.7)
    sd = src.state_dict()
    del sd["_extra_state"]
    dst = N.LIF(torch.tensor([1.0, 1.0]), size=2, v_th=0.7)
    dst.load_state_dict(sd)
    torch.testing.assert_close(dst.tau_mem, torch.tensor([4.0, 6.0]))
    table = N.LIF(v_th=0.7).state_dict()["_extra_state"]
    N.LIF(v_th=0.7).load_state_dict({"_extra_state": table[:3]})  # format row + two constants


def test_state_dicts_save_with_weights_only_and_nested_prefixes() -> None:
    net = N.Stateful(N.CubaLIF(7.0, 2.0))
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)
    N.Stateful(N.CubaLIF(7.0, 2.0)).load_state_dict(loaded)
    with pytest.raises(RuntimeError, match=r"neuron: CubaLIF constants .*tau_syn=2.0 \(saved\) vs tau_syn=3.0"):
        N.Stateful(N.CubaLIF(7.0, 3.0)).load_state_dict(loaded)
    copies = {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}  # what the trainer does
    assert set(copies) == {"neuron._extra_state"}
