"""NIR interop with snnTorch and SpikingJelly: spikeforge graphs simulated there, and theirs simulated here.

Both peers discretise NIR with forward Euler at a fixed ``dt`` (default 1e-4), so these tests export
with ``discretization="euler", dt=1e-4``. snnTorch modules keep hidden state; the nirtorch graph
module they build is stepped in a loop, passing its returned state back in. Known peer bugs are
pinned with strict expected failures.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any, Callable

import pytest
import torch
from torch import nn

pytest.importorskip("nir", reason="interop tests need the 'interop' extra (pip install 'spikeforge[interop]')")

from spikeforge import IF, LIF, CubaLIF, RecurrentLIF, SNNSequential  # noqa: E402
from spikeforge.nir import from_nir, to_nir  # noqa: E402

DT = 1e-4
T = 40
# snnTorch's exporter calls a deprecated nirtorch entry point; that warning is theirs, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:nirtorch.extract_nir_graph is being deprecated:DeprecationWarning")


def _quiet(fn: Callable[[], Any]) -> Any:
    with contextlib.redirect_stdout(io.StringIO()):  # snnTorch prints "[warning]" lines instead of warning
        return fn()


def _step_graph_module(gm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Simulate a nirtorch graph module step by step, threading its explicit state."""
    state, out = None, []
    for x_t in x:
        y, state = gm(x_t, state)
        out.append(y)
    return torch.stack(out)


def _input(gen: torch.Generator, n_in: int = 4) -> torch.Tensor:
    return 3.0 * torch.randn(T, 3, n_in, generator=gen)


def _spiking_nets() -> dict[str, SNNSequential]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # deterministic weights, without touching the caller's RNG
        return _build_spiking_nets()


def _build_spiking_nets() -> dict[str, SNNSequential]:
    return {
        "lif_raw_input": SNNSequential(nn.Linear(4, 6), LIF(5.0, reset="to_value", input_scaling="none", v_th=0.8)),
        "lif_exact_input": SNNSequential(nn.Linear(4, 6), LIF(5.0, reset="to_value", input_scaling="exact", v_th=0.3)),
        "cuba_lif": SNNSequential(nn.Linear(4, 6), CubaLIF(6.0, 3.0, reset="to_value", input_scaling="none", v_th=1.5)),
        "if": SNNSequential(nn.Linear(4, 6), IF(reset="to_value", v_th=1.2)),  # dt=1: gain 1, NIR r = 1/dt
        "mlp": SNNSequential(nn.Linear(4, 8), LIF(4.0, reset="to_value", input_scaling="none", v_th=0.5), nn.Linear(8, 3), CubaLIF(5.0, 2.0, reset="to_value", input_scaling="none", v_th=0.5)),
    }  # fmt: skip


# ---- snnTorch -------------------------------------------------------------------------------------------------------
SNNTORCH_IF_BUG = (
    "snnTorch 1.0.0 imports nir.IF as snn.Leaky(beta=0.9) (a leak where NIR has none) and only accepts r == 1 "
    "(NIR's dv/dt = r I needs r = 1/dt for a unit per-step gain); snntorch#416, fixed on main by PR#452, unreleased"
)


@pytest.mark.parametrize(
    "key",
    ["lif_raw_input", "lif_exact_input", "cuba_lif", "mlp", pytest.param("if", marks=pytest.mark.xfail(strict=True, reason=SNNTORCH_IF_BUG))],
)
def test_spikeforge_graph_runs_identically_in_snntorch(key: str, gen: torch.Generator) -> None:
    snntorch_import = pytest.importorskip("snntorch.import_nir", reason="needs snntorch (the 'interop' extra)")
    net = _spiking_nets()[key]
    gm = _quiet(lambda: snntorch_import.import_from_nir(to_nir(net, dt=DT, discretization="euler")))
    x = _input(gen)
    with torch.no_grad():
        ours, _ = net(x)
        theirs = _step_graph_module(gm, x)
    assert 0 < float(ours.sum()) < ours.numel()
    assert torch.equal(theirs, ours)


def _snn_leaky(n: int, **kw: Any) -> nn.Module:
    import snntorch as snn

    return snn.Leaky(beta=torch.full((n,), 0.8), threshold=torch.ones(n), init_hidden=True, **kw)


def _snn_synaptic(n: int, **kw: Any) -> nn.Module:
    import snntorch as snn

    return snn.Synaptic(alpha=torch.full((n,), 0.6), beta=torch.full((n,), 0.7), threshold=torch.ones(n), init_hidden=True, **kw)


SNNTORCH_SUBTRACT = (
    "snnTorch's exporter writes Leaky(reset_mechanism='subtract') as a NIR LIF that resets to v_reset=0 "
    "(NIR has no subtractive reset and snnTorch neither refuses nor warns); cf. snntorch#384"
)
SNNTORCH_SYN_DELAY = (
    "snnTorch's Synaptic with reset_delay=True (the default) and reset 'zero' discards the whole membrane update of "
    "the step after a spike (mem -= (beta mem + syn) * reset), which NIR's CubaLIF cannot express; export is silent"
)


@pytest.mark.parametrize(
    ("make", "kw"),
    [
        (_snn_leaky, {"reset_mechanism": "zero", "reset_delay": True}),
        (_snn_leaky, {"reset_mechanism": "zero", "reset_delay": False}),
        (_snn_synaptic, {"reset_mechanism": "zero", "reset_delay": False}),
        pytest.param(_snn_leaky, {"reset_mechanism": "subtract"}, marks=pytest.mark.xfail(strict=True, reason=SNNTORCH_SUBTRACT)),
        pytest.param(_snn_synaptic, {"reset_mechanism": "zero"}, marks=pytest.mark.xfail(strict=True, reason=SNNTORCH_SYN_DELAY)),
    ],
)
def test_snntorch_graph_runs_identically_in_spikeforge(make: Callable[..., nn.Module], kw: dict[str, Any], gen: torch.Generator) -> None:
    snntorch_export = pytest.importorskip("snntorch.export_nir", reason="needs snntorch (the 'interop' extra)")
    import snntorch.utils as su

    torch.manual_seed(0)  # snnTorch layers draw their init from the global RNG
    model = nn.Sequential(nn.Linear(4, 6), make(6, **kw))
    graph = _quiet(lambda: snntorch_export.export_to_nir(model, torch.zeros(4)))  # sample without batch: snnTorch#410
    x = _input(gen)
    with torch.no_grad():
        su.reset(model)
        theirs = torch.stack([model(x_t) for x_t in x])
        ours, _ = from_nir(graph, dt=DT, discretization="euler")(x)
    assert 0 < float(theirs.sum()) < theirs.numel()
    assert torch.equal(ours, theirs)


def test_snntorch_recurrent_leaky_imports_as_recurrent_lif(gen: torch.Generator) -> None:
    snntorch_export = pytest.importorskip("snntorch.export_nir", reason="needs snntorch (the 'interop' extra)")
    import snntorch as snn
    import snntorch.utils as su

    torch.manual_seed(0)
    n = 6
    rl = snn.RLeaky(beta=torch.full((n,), 0.8), threshold=torch.ones(n), linear_features=n, reset_mechanism="zero", init_hidden=True, reset_delay=False)
    with torch.no_grad():
        rl.recurrent.bias.zero_()  # spikeforge's RecurrentLIF has no recurrent bias (a non-zero one is refused on import)
    model = nn.Sequential(nn.Linear(4, n), rl)
    graph = _quiet(lambda: snntorch_export.export_to_nir(model, torch.zeros(4)))
    net = from_nir(graph, dt=DT, discretization="euler")
    assert any(isinstance(m, RecurrentLIF) for m in net.layers)
    x = _input(gen)
    with torch.no_grad():
        su.reset(model)
        theirs = torch.stack([model(x_t) for x_t in x])
        ours, _ = net(x)
    assert 0 < float(theirs.sum()) < theirs.numel()
    assert torch.equal(ours, theirs)


# ---- SpikingJelly ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["lif_raw_input", "lif_exact_input", "cuba_lif", "if", "mlp"])
def test_spikeforge_graph_runs_identically_in_spikingjelly(key: str, gen: torch.Generator) -> None:
    sj = pytest.importorskip("spikingjelly.activation_based.nir_exchange", reason="needs spikingjelly and nirtorch (the 'interop' extra)")
    net = _spiking_nets()[key]
    gm = sj.import_from_nir(to_nir(net, dt=DT, discretization="euler"), dt=DT, dtype=torch.float32)
    x = _input(gen)
    with torch.no_grad():
        ours, _ = net(x)
        theirs = _step_graph_module(gm, x)
    assert 0 < float(ours.sum()) < ours.numel()
    assert torch.equal(theirs, ours)


def _sj_models() -> dict[str, Callable[[], nn.Module]]:
    from spikingjelly.activation_based import layer, neuron

    return {
        "lif_decay_input": lambda: nn.Sequential(layer.Linear(4, 6), neuron.LIFNode(tau=4.0, decay_input=True, v_reset=0.0, v_threshold=0.4)),
        "lif_raw_input": lambda: nn.Sequential(layer.Linear(4, 6), neuron.LIFNode(tau=4.0, decay_input=False, v_reset=0.0)),
        "if": lambda: nn.Sequential(layer.Linear(4, 6), neuron.IFNode(v_reset=0.0, v_threshold=1.5)),
        "cuba_lif": lambda: nn.Sequential(layer.Linear(4, 6), neuron.CUBALIFNode(c_decay=0.5, v_decay=0.75, v_threshold=1.0, v_reset=0.0)),
    }  # fmt: skip


@pytest.mark.parametrize("key", ["lif_decay_input", "lif_raw_input", "if", "cuba_lif"])
def test_spikingjelly_graph_runs_identically_in_spikeforge(key: str, gen: torch.Generator) -> None:
    sj = pytest.importorskip("spikingjelly.activation_based.nir_exchange", reason="needs spikingjelly and nirtorch (the 'interop' extra)")
    from spikingjelly.activation_based import functional

    torch.manual_seed(0)
    model = _sj_models()[key]()
    graph = sj.export_to_nir(model, torch.zeros(3, 4), dt=DT)
    x = _input(gen)
    with torch.no_grad():
        functional.reset_net(model)
        theirs = torch.stack([model(x_t) for x_t in x])
        ours, _ = from_nir(graph, dt=DT, discretization="euler")(x)
    assert 0 < float(theirs.sum()) < theirs.numel()
    assert torch.equal(ours, theirs)
