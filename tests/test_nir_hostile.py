"""Hostile NIR files (issue 13): every HDF5 feature that makes ``nir.read`` open another local file or
allocate far more than the file holds is built here with h5py, shown to work against plain ``nir.read``
(so the test can fail), and shown to be refused by :func:`spikeforge.nir.read_nir` before any data is read.
A normal export -> import round trip still works, and the command line reports a refusal in one line."""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

nir = pytest.importorskip("nir", reason="NIR tests need the optional 'nir' package (pip install 'spikeforge[nir]')")
h5py = pytest.importorskip("h5py")

from spikeforge import LIF  # noqa: E402
from spikeforge import SNNSequential  # noqa: E402
from spikeforge import cli  # noqa: E402
from spikeforge.cli.import_ import import_file  # noqa: E402
from spikeforge.nir import MAX_NIR_BYTES  # noqa: E402
from spikeforge.nir import NIRFileError  # noqa: E402
from spikeforge.nir import NIRImportError  # noqa: E402
from spikeforge.nir import from_nir  # noqa: E402
from spikeforge.nir import read_nir  # noqa: E402
from spikeforge.nir import to_nir  # noqa: E402

WEIGHT = "node/nodes/affine/weight"
SECRET = np.arange(6, dtype=np.float64).reshape(3, 2) * 1.5 + 0.25  # "private" numbers in another file


def _graph(weight: np.ndarray | None = None) -> Any:
    w = np.ones((3, 2)) if weight is None else weight
    n = w.shape[0]
    lif = nir.LIF(tau=np.full(n, 5.0), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n), v_reset=np.zeros(n))
    return nir.NIRGraph.from_list(nir.Affine(weight=w, bias=np.zeros(w.shape[0])), lif)


def _file(tmp_path: Path, edit: Callable[[Any], None], name: str = "evil.nir") -> Path:
    """A valid NIR file whose HDF5 structure ``edit`` then changes in place."""
    path = tmp_path / name
    nir.write(str(path), _graph())
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def _other_file(tmp_path: Path) -> Path:
    other = tmp_path / "private.h5"
    with h5py.File(other, "w") as f:
        f["w"] = SECRET
    return other


def _no_dataset_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any high-level data read fail the test: refusals must come before reading."""

    def boom(*args: Any, **kw: Any) -> Any:
        raise AssertionError("a dataset was read before the file was refused")

    monkeypatch.setattr(h5py.Dataset, "__getitem__", boom)
    monkeypatch.setattr(h5py.Dataset, "read_direct", boom)


# ---- other local files ------------------------------------------------------------------------------------------------
def test_external_storage_reads_any_local_file_and_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "id_rsa"
    secret.write_bytes(SECRET.astype("<f8").tobytes())

    def edit(f: Any) -> None:
        del f[WEIGHT]
        f.create_dataset(WEIGHT, shape=(3, 2), dtype="<f8", external=[(str(secret), 0, 48)])

    path = _file(tmp_path, edit)
    np.testing.assert_array_equal(nir.read(str(path)).nodes["affine"].weight, SECRET)  # the attack works on nir.read
    _no_dataset_reads(monkeypatch)
    with pytest.raises(
        NIRFileError, match=r"evil\.nir: refused NIR file at '/node/nodes/affine/weight': external stor"
    ):
        read_nir(path)


def test_external_link_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = _other_file(tmp_path)

    def edit(f: Any) -> None:
        del f[WEIGHT]
        f[WEIGHT] = h5py.ExternalLink(str(other), "/w")

    path = _file(tmp_path, edit)
    np.testing.assert_array_equal(nir.read(str(path)).nodes["affine"].weight, SECRET)
    _no_dataset_reads(monkeypatch)
    with pytest.raises(NIRFileError, match=r"'/node/nodes/affine/weight': external link"):
        read_nir(path)


def test_virtual_dataset_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = _other_file(tmp_path)

    def edit(f: Any) -> None:
        del f[WEIGHT]
        layout = h5py.VirtualLayout(shape=(3, 2), dtype="f8")
        layout[:] = h5py.VirtualSource(str(other), "w", shape=(3, 2))
        f.create_virtual_dataset(WEIGHT, layout)

    path = _file(tmp_path, edit)
    np.testing.assert_array_equal(nir.read(str(path)).nodes["affine"].weight, SECRET)
    _no_dataset_reads(monkeypatch)
    with pytest.raises(NIRFileError, match=r"'/node/nodes/affine/weight': virtual dataset"):
        read_nir(path)


def test_soft_link_is_refused(tmp_path: Path) -> None:
    def edit(f: Any) -> None:
        f["elsewhere"] = SECRET
        del f[WEIGHT]
        f[WEIGHT] = h5py.SoftLink("/elsewhere")

    path = _file(tmp_path, edit)
    np.testing.assert_array_equal(nir.read(str(path)).nodes["affine"].weight, SECRET)
    with pytest.raises(NIRFileError, match=r"'/node/nodes/affine/weight': soft link"):
        read_nir(path)


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda f: f.__setitem__("node/nodes/affine/loop", f["node/nodes/affine"]), "two paths"),  # a cycle
        (lambda f: f.__setitem__("node/nodes/affine/up", f["/"]), r"'/node/nodes/affine/up': an object reached by two"),
        (lambda f: f.__setitem__("node/nodes/lif/tau2", f["node/nodes/lif/tau"]), "two paths"),  # an alias
        (lambda f: f.__setitem__("node/nodes/affine/t", np.dtype("f4")), "committed datatype"),
        (lambda f: f.create_dataset("node/nodes/affine/ref", (1,), dtype=h5py.ref_dtype), "not a number or a string"),
        (lambda f: f.create_dataset("node/x", data=np.zeros(3, dtype=[("a", "f4"), ("b", "i4")])), "not a number"),
        (lambda f: f.create_dataset("node/x", data=np.ones(64), compression="lzf"), r"filter lzf \(32000\)"),
    ],
)
def test_other_unusual_objects_are_refused(tmp_path: Path, edit: Callable[[Any], None], match: str) -> None:
    with pytest.raises(NIRFileError, match=match):
        read_nir(_file(tmp_path, edit))


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    def edit(f: Any) -> None:
        f.create_group("node/" + "/".join(["g"] * 70))

    with pytest.raises(NIRFileError, match="deeper than 64"):
        read_nir(_file(tmp_path, edit))


def test_object_count_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from spikeforge.nir import _read

    path = tmp_path / "ok.nir"
    nir.write(str(path), _graph())
    with h5py.File(path, "r") as f:
        names: list[str] = []
        f.visit(names.append)
    monkeypatch.setattr(_read, "MAX_NIR_OBJECTS", len(names))
    read_nir(path)  # edge: exactly the cap
    monkeypatch.setattr(_read, "MAX_NIR_OBJECTS", len(names) - 1)
    with pytest.raises(NIRFileError, match=f"more than {len(names) - 1} HDF5 objects"):
        read_nir(path)


# ---- memory bombs -----------------------------------------------------------------------------------------------------
def test_fill_value_bomb_is_refused_without_allocating(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def edit(f: Any) -> None:  # 1.6 GB declared, nothing stored: a read materialises the fill value
        del f[WEIGHT]
        f.create_dataset(
            WEIGHT, shape=(20000, 20000), dtype="f4", chunks=(1000, 1000), compression="gzip", fillvalue=1.0
        )

    path = _file(tmp_path, edit)
    assert path.stat().st_size < 100_000  # tiny on disk
    _no_dataset_reads(monkeypatch)
    tracemalloc.start()
    try:
        with pytest.raises(NIRFileError, match=r"declares 1600000000 bytes .*max_bytes=268435456.*--max-bytes"):
            read_nir(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, peak


def test_total_declared_size_is_capped_not_only_each_dataset(tmp_path: Path) -> None:
    path = tmp_path / "net.nir"
    nir.write(str(path), _graph(np.zeros((200, 100))))
    sizes: list[int] = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda _n, o: sizes.append(o.size * o.dtype.itemsize) if isinstance(o, h5py.Dataset) else None)
    cap = max(max(sizes), path.stat().st_size)
    assert cap < sum(sizes)  # each dataset and the file fit, the sum does not
    with pytest.raises(NIRFileError, match=r"datasets declare \d+ bytes so far"):
        read_nir(path, max_bytes=cap)
    read_nir(path, max_bytes=sum(sizes))  # edge: exactly the declared total is allowed
    with pytest.raises(NIRFileError, match=r"max_bytes=100\b.*bytes on disk|bytes on disk.*max_bytes=100\b"):
        read_nir(path, max_bytes=100)


def _make_inflate_bomb(path: Path, inflated: int) -> None:
    """A (3, 2) float64 dataset whose one gzip chunk inflates to ``inflated`` bytes instead of 48."""
    nir.write(str(path), _graph())
    with h5py.File(path, "r+") as f:
        del f[WEIGHT]
        d = f.create_dataset(WEIGHT, shape=(3, 2), dtype="f8", chunks=(3, 2), compression="gzip")
        d.id.write_direct_chunk((0, 0), zlib.compress(bytes(inflated), 9))


def _rss_growth_kib(setup: str, action: str, path: Path) -> int:
    """Peak RSS growth (KiB, /proc VmHWM) of a fresh interpreter running ``action`` on ``sys.argv[1]`` after
    ``setup``. (Not ``ru_maxrss``: a child starts with its parent's peak, which would hide the growth.)"""
    hwm = "int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1])"
    script = f"import sys\n{setup}\nr0 = {hwm}\n{action}\nprint({hwm} - r0)\n"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    out = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, env=env, check=True)
    return int(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak memory is read from /proc (Linux)")
def test_deflate_chunk_bomb_is_refused_before_hdf5_inflates_it(tmp_path: Path) -> None:
    path = tmp_path / "inflate.nir"
    _make_inflate_bomb(path, 256 * 2**20)
    assert path.stat().st_size < 2**20
    with pytest.raises(NIRFileError, match=r"deflate chunk at \(0, 0\) inflates past its declared 48 bytes"):
        read_nir(path)
    # control: HDF5 itself inflates the whole chunk (so the bomb is real) ...
    plain = _rss_growth_kib("import h5py", f"h5py.File(sys.argv[1], 'r')[{WEIGHT!r}][()]", path)
    assert plain > 200 * 1024, plain
    # ... and read_nir refuses it without doing so
    setup = "import h5py, nir\nfrom spikeforge.nir import read_nir, NIRFileError"
    guarded = "try:\n    read_nir(sys.argv[1])\nexcept NIRFileError:\n    pass"
    assert _rss_growth_kib(setup, guarded, path) < 32 * 1024


# ---- what still works -------------------------------------------------------------------------------------------------
def test_export_import_round_trip_still_works(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(5)
    net = SNNSequential(nn.Linear(4, 6), LIF(5.0, reset="to_value"), nn.Linear(6, 3), LIF(3.0, reset="to_value"))
    path = tmp_path / "ok.nir"
    nir.write(str(path), to_nir(net, dt=1.0))
    net2 = from_nir(read_nir(path), dt=1.0)
    net3, _ = import_file(path, dt=1.0)
    x = torch.rand(12, 2, 4, generator=gen)
    assert torch.equal(net(x)[0], net2(x)[0]) and torch.equal(net(x)[0], net3(x)[0])
    assert MAX_NIR_BYTES == 256 * 2**20
    _assert_same_tree(read_nir(path).to_dict(), nir.read(str(path)).to_dict())  # the same graph as nir.read


def _assert_same_tree(a: Any, b: Any) -> None:
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same_tree(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same_tree(x, y)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    else:
        assert a == b


@pytest.mark.parametrize("opts", [{}, {"shuffle": True}, {"fletcher32": True}, {"shuffle": True, "fletcher32": True}])
def test_legit_filter_pipelines_pass_the_chunk_check(tmp_path: Path, opts: dict[str, bool]) -> None:
    def edit(f: Any) -> None:
        del f[WEIGHT]
        f.create_dataset(WEIGHT, data=SECRET, chunks=(1, 2), compression="gzip", **opts)

    np.testing.assert_array_equal(read_nir(_file(tmp_path, edit)).nodes["affine"].weight, SECRET)


def test_bad_arguments_and_paths(tmp_path: Path) -> None:
    path = tmp_path / "ok.nir"
    nir.write(str(path), _graph())
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="max_bytes must be a positive int"):
            read_nir(path, max_bytes=bad)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_nir(tmp_path / "missing.nir")
    with pytest.raises(NIRFileError, match="not a regular file"):
        read_nir(tmp_path)
    fifo = tmp_path / "fifo.nir"
    os.mkfifo(fifo)
    with pytest.raises(NIRFileError, match="not a regular file"):  # returns at once: never blocks on the pipe
        read_nir(fifo)
    (tmp_path / "garbage.nir").write_bytes(b"not hdf5")
    with pytest.raises(NIRImportError, match="not an HDF5 file"):
        read_nir(tmp_path / "garbage.nir")


# ---- command line -----------------------------------------------------------------------------------------------------
def test_cli_import_refuses_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = _other_file(tmp_path)

    def edit(f: Any) -> None:
        del f[WEIGHT]
        f[WEIGHT] = h5py.ExternalLink(str(other), "/w")

    path = _file(tmp_path, edit)
    code = cli.main(["import", str(path)])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("spikeforge import: error: ") and "external link" in err
    ok = tmp_path / "ok.nir"
    nir.write(str(ok), _graph())
    assert cli.main(["import", str(ok), "--max-bytes", "100"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--max-bytes" in err and "Traceback" not in err
    assert cli.main(["import", str(ok)]) == 0
    assert "imported" in capsys.readouterr().out
