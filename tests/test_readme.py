"""The README's example runs, and CI runs exactly the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _blocks(lang: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one():
    bash = [b.strip() for b in _blocks("bash")]
    assert len(bash) == 2, bash
    main_job, tests = bash
    assert main_job.endswith("spikeforge train")
    ci = (ROOT / ".ci" / "run").read_text()
    assert tests in ci.splitlines()


def test_readme_python_example_runs():
    (code,) = _blocks("python")
    assert len([ln for ln in code.strip().splitlines() if ln.strip()]) <= 10
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["v_out"].shape == (25, 32, 3)
    assert set(namespace["spikes"]) == {"layers.1", "layers.3"}
