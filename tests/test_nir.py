"""NIR export/import: the parameter contract against hand formulas and a hand NIR simulator, exact
write/read round trips for every node and for MLP/conv networks, gradients of imported networks,
and bad input (unsupported layers, lossy resets, malformed files, missing package)."""

from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

nir = pytest.importorskip("nir", reason="NIR tests need the optional 'nir' package (pip install 'spikeforge[nir]')")

from spikeforge import IF  # noqa: E402
from spikeforge import LI  # noqa: E402
from spikeforge import LIF  # noqa: E402
from spikeforge import CubaLIF  # noqa: E402
from spikeforge import RecurrentLIF  # noqa: E402
from spikeforge import SNNSequential  # noqa: E402
from spikeforge import record  # noqa: E402
from spikeforge.cli.import_ import import_file  # noqa: E402  (reading a file: the command-line side)
from spikeforge.nir import NIRApproximationWarning  # noqa: E402
from spikeforge.nir import NIRExportError  # noqa: E402
from spikeforge.nir import NIRImportError  # noqa: E402
from spikeforge.nir import Scale  # noqa: E402
from spikeforge.nir import SumPool2d  # noqa: E402
from spikeforge.nir import Threshold  # noqa: E402
from spikeforge.nir import from_nir  # noqa: E402
from spikeforge.nir import read_nir  # noqa: E402
from spikeforge.nir import to_nir  # noqa: E402

DTYPES = [torch.float32, torch.float64]


def _roundtrip(net: nn.Module, tmp_path: Path, *, dt: float = 1.0, dtype: torch.dtype, **kw: Any) -> nn.Module:
    path = tmp_path / "net.nir"
    nir.write(str(path), to_nir(net, dt=dt, **kw))
    return from_nir(read_nir(path), dt=dt, dtype=dtype)  # the checked reader, not nir.read


def _assert_same(net: nn.Module, net2: nn.Module, x: torch.Tensor) -> None:
    (y1, _), rec1 = record(net, x)
    (y2, _), rec2 = record(net2, x)
    assert torch.equal(y1, y2)
    s1 = [v for v in rec1.values()]
    s2 = [v for v in rec2.values()]
    assert len(s1) == len(s2)
    for a, b in zip(s1, s2):
        assert torch.equal(a, b)


def _per_neuron(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)


def _neurons(n: int, gen: torch.Generator) -> dict[str, nn.Module]:
    return {
        "lif_scalar": LIF(6.0, reset="to_value", v_th=0.8, v_reset=-0.1, v_rest=0.05, input_scaling="none", r=1.5),
        "lif_exact_per_neuron": LIF(_per_neuron(n, 3, 20, gen), reset="to_value", v_th=_per_neuron(n, 0.5, 1.5, gen)),
        "lif_none_per_neuron": LIF(_per_neuron(n, 3, 20, gen), reset="to_value", input_scaling="none"),
        "lif_no_reset": LIF(4.0, reset="none", v_th=_per_neuron(n, 0.5, 1.0, gen)),
        "if": IF(reset="to_value", v_th=0.7, c_mem=2.0),
        "if_no_reset": IF(reset="none", v_th=1.3),
        "cuba": CubaLIF(8.0, 3.0, reset="to_value", input_scaling="none"),
        "cuba_per_neuron": CubaLIF(_per_neuron(n, 4, 9, gen), _per_neuron(n, 2, 5, gen), reset="to_value"),
        "cuba_no_reset": CubaLIF(8.0, 3.0, reset="none"),
        "li": LI(5.0, v_rest=0.2, r=0.5),
        "rlif": RecurrentLIF(n, 7.0, reset="to_value", generator=gen),
        "threshold": Threshold(_per_neuron(n, -0.2, 0.2, gen)),
        "scale": Scale(_per_neuron(n, -2, 2, gen)),
    }


NEURON_KEYS = list(_neurons(3, torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("discretization", ["exact", "euler"])
@pytest.mark.parametrize("key", NEURON_KEYS)
def test_every_node_round_trips_with_identical_outputs(key: str, discretization: str, dtype: torch.dtype, tmp_path: Path, gen: torch.Generator) -> None:
    layer = _neurons(6, gen)[key]
    net = SNNSequential(nn.Linear(4, 6), layer).to(dtype)
    net2 = _roundtrip(net, tmp_path, dt=0.5 if discretization == "exact" else 1.0, dtype=dtype, discretization=discretization)
    x = 4.0 * torch.randn(30, 5, 4, generator=gen, dtype=torch.float64).to(dtype)
    _assert_same(net, net2, x)
    y, _ = net(x)
    if getattr(layer, "spiking", True) and not isinstance(layer, Scale):
        assert 0 < float(y.detach().sum()) < y.numel()  # the test has spikes and silence to compare


def _mlp(gen: torch.Generator) -> SNNSequential:
    return SNNSequential(
        nn.Flatten(), nn.Linear(12, 16), LIF(5.0, reset="to_value", input_scaling="none"), nn.Dropout(0.3),
        nn.Linear(16, 10, bias=False), CubaLIF(6.0, 2.0, reset="to_value"), nn.Linear(10, 3), LI(5.0, input_scaling="none"),
    )  # fmt: skip


def _conv(gen: torch.Generator) -> SNNSequential:
    bn = nn.BatchNorm2d(4)
    with torch.no_grad():  # non-trivial running statistics, as after training
        bn.running_mean.uniform_(-0.5, 0.5, generator=gen)
        bn.running_var.uniform_(0.5, 2.0, generator=gen)
        bn.weight.uniform_(0.5, 1.5, generator=gen)
        bn.bias.uniform_(-0.2, 0.2, generator=gen)
    return SNNSequential(
        nn.Conv2d(2, 4, 3, padding=1, bias=False), bn, LIF(4.0, reset="to_value", input_scaling="none"), nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, stride=1, padding="same"), IF(reset="to_value"), SumPool2d(2), nn.AvgPool2d(1),
        nn.Flatten(), nn.Linear(4 * 2 * 2, 3), LI(5.0),
    ).eval()  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
def test_mlp_round_trip(dtype: torch.dtype, tmp_path: Path, gen: torch.Generator) -> None:
    net = _mlp(gen).to(dtype).eval()
    net2 = _roundtrip(net, tmp_path, dtype=dtype, input_shape=(3, 4))
    _assert_same(net, net2, torch.randn(25, 4, 3, 4, generator=gen, dtype=torch.float64).to(dtype) * 2)
    assert not any(isinstance(m, nn.Dropout) for m in net2.layers)


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv_round_trip_folds_batchnorm_and_maps_maxpool_on_spikes(dtype: torch.dtype, tmp_path: Path, gen: torch.Generator) -> None:
    net = _conv(gen).to(dtype)
    graph = to_nir(net, dt=1.0, input_shape=(2, 8, 8))
    kinds = [type(n).__name__ for n in graph.nodes.values()]
    assert "SumPool2d" in kinds and "Threshold" in kinds and "AvgPool2d" in kinds and kinds.count("Conv2d") == 2
    net2 = _roundtrip(net, tmp_path, dtype=dtype, input_shape=(2, 8, 8))
    x = torch.randn(12, 3, 2, 8, 8, generator=gen, dtype=torch.float64).to(dtype) * 2
    y1, _ = net(x)
    y2, _ = net2(x)
    # BatchNorm folding re-rounds the conv weights: equal to rounding in the readout membrane ...
    torch.testing.assert_close(y2, y1, rtol=1e-4 if dtype == torch.float32 else 1e-10, atol=1e-5 if dtype == torch.float32 else 1e-12)
    # ... and the spikes of the first neuron layer agree except where the membrane sits within rounding of threshold.
    rec1, rec2 = record(net, x)[1], record(net2, x)[1]
    z1, z2 = rec1["layers.2"], rec2["layers.1"]
    assert float((z1 != z2).float().mean()) < 1e-3


def test_conv1d_round_trip(tmp_path: Path, gen: torch.Generator) -> None:
    net = SNNSequential(nn.Conv1d(2, 3, 3, stride=2, padding=1, dilation=1), LIF(3.0, reset="to_value"), nn.Flatten(), nn.Linear(3 * 5, 2), LI())
    net2 = _roundtrip(net.double(), tmp_path, dtype=torch.float64, input_shape=(2, 10))
    _assert_same(net, net2, torch.randn(10, 2, 2, 10, generator=gen, dtype=torch.float64) * 3)


def test_nir_fields_match_the_written_contract() -> None:
    """Independent reference: hand formulas for tau, r, w_in under both discretizations."""
    beta = math.exp(-0.5 / 6.0)
    g = to_nir(SNNSequential(nn.Linear(2, 3), LIF(6.0, dt=0.5, reset="to_value", input_scaling="none", r=1.5, v_rest=0.1, v_th=0.9, v_reset=-0.2)), dt=0.25)
    lif = g.nodes["1_lif"]
    np.testing.assert_allclose(lif.tau, np.full(3, 6.0 * 0.25 / 0.5), rtol=1e-15)  # exact: tau scales with dt / dt_model
    np.testing.assert_allclose(lif.r, np.full(3, 1.5 / (1 - beta)), rtol=1e-15)
    assert lif.v_leak.shape == lif.v_threshold.shape == lif.v_reset.shape == (3,)  # scalars written per neuron
    np.testing.assert_array_equal(lif.v_leak, 0.1)
    np.testing.assert_array_equal(lif.v_threshold, 0.9)
    np.testing.assert_array_equal(lif.v_reset, -0.2)
    ge = to_nir(SNNSequential(nn.Linear(2, 3), CubaLIF(6.0, 2.0, reset="to_value")), dt=1.0, discretization="euler").nodes["1_cubalif"]
    a, b = math.exp(-1 / 2.0), math.exp(-1 / 6.0)
    np.testing.assert_allclose(ge.tau_syn, 1 / (1 - a), rtol=1e-14)  # euler: 1 - dt/tau = decay
    np.testing.assert_allclose(ge.tau_mem, 1 / (1 - b), rtol=1e-14)
    np.testing.assert_allclose(ge.w_in, 1 / (1 - a), rtol=1e-14)
    np.testing.assert_allclose(ge.r, 1.0, rtol=1e-15)  # input_scaling="exact": r = R
    gi = to_nir(SNNSequential(nn.Linear(2, 3), IF(reset="to_value", c_mem=4.0, dt=2.0)), dt=0.5).nodes["1_if"]
    np.testing.assert_allclose(gi.r, (2.0 / 4.0) / 0.5)


def _simulate_nir_lif(graph: Any, x: np.ndarray, dt: float, disc: str) -> np.ndarray:
    """Hand simulator of Input -> Affine -> LIF -> Output from the NIR fields (numpy, float64)."""
    aff, lif = graph.nodes["0_affine"], graph.nodes["1_lif"]
    d = np.exp(-dt / lif.tau) if disc == "exact" else 1 - dt / lif.tau
    v = lif.v_leak.copy()
    out = []
    for x_t in x:
        cur = x_t @ aff.weight.T + aff.bias
        v = d * v + (1 - d) * (lif.v_leak + lif.r * cur)
        z = (v > lif.v_threshold).astype(np.float64)
        v = np.where(z > 0, lif.v_reset, v)
        out.append(z)
    return np.stack(out)


@pytest.mark.parametrize("disc", ["exact", "euler"])
def test_imported_graph_matches_hand_simulation_of_nir_semantics(disc: str, gen: torch.Generator) -> None:
    w = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([3])),
            "0_affine": nir.Affine(weight=w.numpy(), bias=np.linspace(-0.2, 0.2, 5)),
            "1_lif": nir.LIF(tau=np.linspace(2, 9, 5), r=np.linspace(0.5, 2, 5), v_leak=np.full(5, 0.1),
                             v_threshold=np.linspace(0.3, 0.9, 5), v_reset=np.zeros(5)),
            "output": nir.Output(np.array([5])),
        },
        edges=[("input", "0_affine"), ("0_affine", "1_lif"), ("1_lif", "output")],
    )  # fmt: skip
    x = torch.randn(40, 4, 3, generator=gen, dtype=torch.float64) * 2
    ref = _simulate_nir_lif(graph, x.numpy(), 0.7, disc)
    net = from_nir(graph, dt=0.7, discretization=disc, dtype=torch.float64)
    y = net(x)[0].detach()
    np.testing.assert_array_equal(y.numpy(), ref)
    assert 0 < ref.sum() < ref.size
    assert isinstance(net.layers[1], Scale)  # a per-neuron r (non-uniform gain) becomes a Scale in front of the LIF


def test_imported_network_gradients(gen: torch.Generator) -> None:
    net = SNNSequential(nn.Linear(3, 4), LI(4.0), nn.Linear(4, 2), LI(3.0)).double()
    net2 = from_nir(to_nir(net, dt=1.0), dt=1.0, dtype=torch.float64)
    x = torch.randn(6, 2, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: net2(t)[0], (x,))
    g1 = torch.autograd.grad(net(x)[0].sum(), x)[0]
    g2 = torch.autograd.grad(net2(x)[0].sum(), x)[0]
    torch.testing.assert_close(g1, g2, rtol=0, atol=0)
    for layer in (Scale(torch.tensor([0.5, -2.0], dtype=torch.float64).reshape(2, 1, 1)), SumPool2d(2)):
        t = torch.randn(3, 2, 4, 4, generator=gen, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(layer, (t,))
    th = Threshold(0.1, surrogate="fast_sigmoid")
    v = torch.randn(50, dtype=torch.float64, requires_grad=True)
    (gv,) = torch.autograd.grad(th(v).sum(), v)
    torch.testing.assert_close(gv, th.surrogate.grad(v.detach() - 0.1))
    assert torch.equal(th(v.detach()), (v.detach() > 0.1).double())


def test_paths_agree_memory_file_classifier_and_step(tmp_path: Path, gen: torch.Generator) -> None:
    from spikeforge.models import SNNClassifier

    net = _mlp(gen).double().eval()
    clf = SNNClassifier(net, time_steps=5)
    g_net, g_clf = to_nir(net, dt=1.0, input_shape=(3, 4)), to_nir(clf, dt=1.0, input_shape=(3, 4))
    assert list(g_net.nodes) == list(g_clf.nodes)
    a = from_nir(g_net, dt=1.0, dtype=torch.float64)
    b = _roundtrip(net, tmp_path, dtype=torch.float64, input_shape=(3, 4))
    x = torch.randn(8, 2, 3, 4, generator=gen, dtype=torch.float64)
    _assert_same(a, b, x)
    states, ys = None, []
    for x_t in x:
        y_t, states = b.step(x_t, states)
        ys.append(y_t)
    assert torch.equal(torch.stack(ys), b(x)[0])


def test_import_file_reports_and_discretization_recorded(tmp_path: Path) -> None:
    net = SNNSequential(nn.Linear(2, 3), LIF(5.0, reset="to_value"))
    nir.write(str(tmp_path / "a.nir"), to_nir(net, dt=1.0, discretization="euler"))
    net2, text = import_file(tmp_path / "a.nir", dt=1.0)
    assert "LIF" in text and "Linear" in text
    x = torch.randn(10, 2, 2)
    assert torch.equal(net(x)[0], net2(x)[0])  # euler recorded in the file is used by default


# ---- bad input --------------------------------------------------------------------------------------------------------
def test_subtract_reset_raises_unless_approximation_opted_in() -> None:
    net = SNNSequential(nn.Linear(2, 3), LIF(5.0, reset="subtract"))
    with pytest.raises(NIRExportError, match=r"layer 1 \(LIF\).*subtract_as_reset"):
        to_nir(net, dt=1.0)
    with pytest.warns(NIRApproximationWarning, match="reset by subtraction"):
        g = to_nir(net, dt=1.0, approximate=("subtract_as_reset",))
    np.testing.assert_array_equal(g.nodes["1_lif"].v_reset, 0.0)
    with pytest.raises(ValueError, match="unknown approximation"):
        to_nir(net, dt=1.0, approximate=("nope",))
    with pytest.raises(TypeError, match="tuple of names"):
        to_nir(net, dt=1.0, approximate="subtract_as_reset")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("net", "kw", "match"),
    [
        (SNNSequential(nn.Linear(2, 3), nn.ReLU()), {}, r"layer 1 \(ReLU\) has no NIR equivalent; supported:"),
        (SNNSequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2)), {"input_shape": (1, 6, 6)}, "only when its input is spikes"),
        (SNNSequential(nn.Linear(2, 3), LIF(reset="to_value")), {"input_shape": (4, 2)}, "1-D samples"),
        (SNNSequential(nn.ReLU(), nn.BatchNorm1d(3)), {"input_shape": (3,)}, "folded into a Conv/Linear"),
        (SNNSequential(nn.Conv2d(1, 2, 3)), {}, "pass input_shape"),
        (SNNSequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular")), {"input_shape": (1, 5, 5)}, "pad with zeros"),
    ],
)
def test_export_errors_name_the_layer_and_the_fix(net: nn.Module, kw: dict[str, Any], match: str) -> None:
    with pytest.raises((NIRExportError, ValueError), match=match):
        to_nir(net, dt=1.0, **kw)


@pytest.mark.parametrize("dt", [0.0, -1.0, float("nan"), True, "1"])
def test_bad_dt(dt: Any) -> None:
    net = SNNSequential(nn.Linear(2, 3), LI())
    with pytest.raises(ValueError, match="dt must be"):
        to_nir(net, dt=dt)
    with pytest.raises(ValueError, match="dt must be"):
        from_nir(to_nir(net, dt=1.0), dt=dt)
    with pytest.raises(ValueError, match="unknown discretization"):
        to_nir(net, dt=1.0, discretization="rk4")


def _lif_node(**over: Any) -> Any:
    f = dict(tau=np.full(3, 5.0), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3), v_reset=np.zeros(3))
    f.update(over)
    return nir.LIF(**f)


def test_import_errors_name_the_node_and_build_nothing() -> None:
    aff = nir.Affine(weight=np.ones((3, 2)), bias=np.zeros(3))
    cases = [
        (nir.NIRGraph.from_list(aff, nir.Delay(delay=np.ones(3))), r"'delay'.*Delay must be followed directly by an Affine"),
        (nir.NIRGraph.from_list(aff, _lif_node(v_leak=np.array([0.0, 0.1, 0.0]))), r"'lif'.*v_leak differs across neurons"),
        (nir.NIRGraph.from_list(aff, nir.I(r=np.ones(3))), r"'i'.*I without a following Threshold"),
        (nir.NIRGraph.from_list(aff, _lif_node(tau=np.array([5.0, -1.0, 5.0]))), r"'lif'.*finite and > 0"),
    ]
    for graph, match in cases:
        with pytest.raises(NIRImportError, match=match):
            from_nir(graph, dt=1.0)
    branch = nir.NIRGraph(
        nodes={"input": nir.Input(np.array([2])), "a": aff, "b": _lif_node(), "c": _lif_node(), "output": nir.Output(np.array([3]))},
        edges=[("input", "a"), ("a", "b"), ("a", "c"), ("b", "output")],
        type_check=False,
    )
    with pytest.raises(NIRImportError, match=r"'a'.*2 outputs; only chains"):
        from_nir(branch, dt=1.0)
    with pytest.raises(TypeError, match=r"nir\.NIRGraph"):
        from_nir("net.nir", dt=1.0)  # type: ignore[arg-type]
    with pytest.raises(NIRImportError, match="euler needs tau > dt"):
        from_nir(nir.NIRGraph.from_list(aff, _lif_node(tau=np.full(3, 0.5))), dt=1.0, discretization="euler")


def test_malformed_files(tmp_path: Path) -> None:
    import h5py

    path = tmp_path / "unknown.nir"
    nir.write(str(path), nir.NIRGraph.from_list(nir.Affine(weight=np.ones((3, 2)), bias=np.zeros(3)), _lif_node()))
    with h5py.File(path, "r+") as f:  # rename a node's type to one NIR does not know
        del f["node/nodes/lif/type"]
        f["node/nodes/lif"].create_dataset("type", data="Izhikevich", dtype=h5py.string_dtype())
    with pytest.raises(NIRImportError, match=r"node 'lif' has unknown type 'Izhikevich'.*supported nodes"):
        import_file(path, dt=1.0)
    garbage = tmp_path / "garbage.nir"
    garbage.write_bytes(b"not hdf5")
    with pytest.raises(NIRImportError, match="not a readable NIR graph"):
        import_file(garbage, dt=1.0)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        import_file(tmp_path / "missing.nir", dt=1.0)


def test_missing_nir_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nir", None)  # makes `import nir` raise ImportError
    with pytest.raises(ImportError, match=r"pip install 'spikeforge\[nir\]'"):
        to_nir(SNNSequential(nn.Linear(2, 3), LI()), dt=1.0)
    with pytest.raises(ImportError, match=r"spikeforge\[nir\]"):
        import_file("x.nir", dt=1.0)


def test_layer_validation() -> None:
    with pytest.raises(ValueError, match="finite"):
        Threshold(float("nan"))
    with pytest.raises(ValueError, match="kernel_size"):
        SumPool2d(0)
    with pytest.raises(ValueError, match="padding"):
        SumPool2d(2, padding=(1, -1))


def test_export_checkpoint_round_trip(tmp_path: Path) -> None:
    train = pytest.importorskip("spikeforge.train", reason="spikeforge.train (checkpoints) is not available")
    from spikeforge.cli.export import export_checkpoint
    from spikeforge.data import dataset_info
    from spikeforge.models import build_model
    from spikeforge.training.checkpoint import FORMAT
    from spikeforge.training.checkpoint import atomic_save

    config = train.TrainConfig(dataset="yinyang", hidden=(8,), neuron_kwargs={"tau_mem": 5.0, "reset": "to_value"})
    model = build_model(config, dataset_info(config.dataset))
    atomic_save({"format": FORMAT, "config": config.to_dict(), "model": model.state_dict(), "epoch": 1}, tmp_path / "best.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        text = export_checkpoint(tmp_path / "best.pt", tmp_path / "out.nir")
    assert "out.nir" in text and "LIF" in text
    net2, _ = import_file(tmp_path / "out.nir", dt=1.0)
    x = torch.rand(10, 4, *dataset_info(config.dataset).input_shape)
    _assert_same(model.network.eval(), net2, x)


def test_adaptive_neuron_is_refused_by_asking_its_membrane_spec() -> None:
    from spikeforge.neurons import ALIF

    with pytest.raises(NIRExportError, match=r"layer 1 \(ALIF\): NIR has no node for this neuron.*without adaptation"):
        to_nir(SNNSequential(nn.Linear(2, 3), ALIF()), dt=1.0)


def test_nir_and_energy_do_not_import_training() -> None:
    import subprocess
    import sys

    code = (
        "import sys, spikeforge.nir._export, spikeforge.energy.counts; "
        "bad = [m for m in sys.modules if m.startswith(('spikeforge.train', 'spikeforge.models'))]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- delays (issue 16): per-axon integer delays as NIR Delay -> Affine; the rest refused ------------------------
def _delay_net(gen: torch.Generator, bias: bool, d: list[float]) -> SNNSequential:
    from spikeforge.synapses import DelayedLinear

    dl = DelayedLinear(4, 5, 3, per="axon", delays=torch.tensor(d), bias=bias, generator=gen)
    with torch.no_grad():
        dl.weight.uniform_(0.2, 1.0, generator=gen)
    return SNNSequential(dl.rounded(), LIF(4.0, reset="to_value", v_th=0.8), nn.Linear(5, 2), LI(5.0)).eval()


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dt", [1.0, 0.25])
def test_per_axon_delays_round_trip_as_delay_then_affine(
    bias: bool, dt: float, tmp_path: Path, gen: torch.Generator
) -> None:
    from spikeforge.synapses import DelayedLinear

    net = _delay_net(gen, bias, [0.0, 2.6, 1.2, 3.0]).double()
    graph = to_nir(net, dt=dt, input_shape=(4,))
    delay = graph.nodes["0_delay"]
    assert type(delay).__name__ == "Delay" and ("0_delay", "0_affine" if bias else "0_linear") in graph.edges
    np.testing.assert_array_equal(delay.delay, np.array([0.0, 3.0, 1.0, 3.0]) * dt)  # rounded, in NIR time units
    net2 = _roundtrip(net, tmp_path, dt=dt, dtype=torch.float64, input_shape=(4,))
    dl2 = net2.layers[0]
    assert isinstance(dl2, DelayedLinear) and dl2.integer and dl2.per == "axon"
    assert torch.equal(dl2.delays, torch.tensor([0.0, 3.0, 1.0, 3.0], dtype=torch.float64))
    x = (torch.rand(20, 3, 4, generator=gen, dtype=torch.float64) < 0.5).double()
    _assert_same(net, net2, x)
    (_, _), rec = record(net, x)
    assert 0 < float(rec["layers.1"].sum()) < rec["layers.1"].numel()


def test_delay_export_refusals(gen: torch.Generator) -> None:
    from spikeforge.synapses import SRM
    from spikeforge.synapses import DelayedLinear

    syn = DelayedLinear(4, 5, 3, per="synapse", delays=torch.zeros(5, 4)).rounded()
    with pytest.raises(NIRExportError, match=r"per-synapse delays \(one per weight\) have no NIR form"):
        to_nir(SNNSequential(syn, LIF()), dt=1.0, input_shape=(4,))
    with pytest.raises(NIRExportError, match=r"interpolated \(training\) delays .* layer.rounded\(\)"):
        to_nir(SNNSequential(DelayedLinear(4, 5, 3, per="axon"), LIF()), dt=1.0, input_shape=(4,))
    with pytest.raises(NIRExportError, match="NIR has no spike-response-model node"):
        to_nir(SNNSequential(nn.Linear(4, 5), SRM()), dt=1.0)


def test_delay_import_refusals(gen: torch.Generator) -> None:
    w, b = np.ones((2, 3)), np.zeros(2)

    def graph(delay: np.ndarray, after: Any, n_out: int = 2) -> Any:
        nodes = {
            "input": nir.Input(np.array([3])),
            "d": nir.Delay(delay),
            "a": after,
            "output": nir.Output(np.array([n_out])),
        }
        return nir.NIRGraph(nodes=nodes, edges=[("input", "d"), ("d", "a"), ("a", "output")])

    with pytest.raises(NIRImportError, match=r"whole multiples of dt=1\.0"):
        from_nir(graph(np.array([0.0, 1.5, 2.0]), nir.Affine(w, b)), dt=1.0)
    with pytest.raises(NIRImportError, match="finite values >= 0"):
        from_nir(graph(np.array([0.0, -1.0, 2.0]), nir.Affine(w, b)), dt=1.0)
    with pytest.raises(NIRImportError, match="a Delay must be followed directly by an Affine/Linear"):
        from_nir(graph(np.array([0.0, 1.0, 2.0]), nir.Threshold(np.zeros(3)), 3), dt=1.0)
    net = from_nir(graph(np.array([0.0, 1.5, 2.0]), nir.Linear(w)), dt=0.5)  # 0, 3, 4 steps
    assert net.layers[0].delays.tolist() == [0.0, 3.0, 4.0] and net.layers[0].max_delay == 4
