"""The layout rules of ARCHITECTURE.md, checked: the import-linter layering holds (and fails on a wrong import),
no import cycle between modules, no source file over 400 lines."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
MAX_LINES = 400

grimp = pytest.importorskip("grimp", reason="import-linter is in the test extra: pip install -e '.[test]'")


def _lint_imports(src: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("lint-imports")
    assert exe.exists(), f"{exe} missing: pip install -e '.[test]' installs import-linter"
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [str(exe), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )


def test_layering_contracts_pass(tmp_path: Path) -> None:
    result = _lint_imports(SRC, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "bad_import"),
    [
        ("_core/scan.py", "import spikeforge.neurons"),  # the core reaching up into the neuron layer
        ("neurons/base.py", "import spikeforge.backends"),  # the generic Neuron base knows nothing of backends
        ("energy/report.py", "import spikeforge.nir"),  # integrations are independent of each other
        ("training/config.py", "import spikeforge.train"),  # the public re-export module is for users only
    ],
)
def test_layering_contracts_fail_on_a_wrong_import(tmp_path: Path, module: str, bad_import: str) -> None:
    """A deliberately wrong import in a copy of the package breaks a contract (the check is not vacuous)."""
    copy = tmp_path / "src"
    shutil.copytree(SRC / "spikeforge", copy / "spikeforge", ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / "spikeforge" / module
    assert target.exists(), f"{module} moved: update this test"
    target.write_text(target.read_text() + f"\n{bad_import}  # deliberately wrong\n")
    result = _lint_imports(copy, tmp_path)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout


def _cycles(graph: object) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    modules = sorted(graph.modules)  # type: ignore[attr-defined]
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in modules:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]  # type: ignore[attr-defined]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.find_modules_directly_imported_by(w)))))  # type: ignore[attr-defined]
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_no_import_cycle() -> None:
    sys.path.insert(0, str(SRC))
    try:
        graph = grimp.build_graph("spikeforge", cache_dir=None)
    finally:
        sys.path.remove(str(SRC))
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_cycle() -> None:
    class Graph:
        modules = {"a", "b", "c", "d"}
        edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}

        def find_modules_directly_imported_by(self, m: str) -> set[str]:
            return self.edges[m]

    assert _cycles(Graph()) == [["a", "b", "c"]]


def test_no_source_file_over_the_line_limit() -> None:
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"split these files (limit {MAX_LINES} lines): {long}"
