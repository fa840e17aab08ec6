"""``benchmarks/seeds.py`` (the main job over seeds 0-9) with the training replaced by a fake child process, and the
default recipe as RESULTS.md states it. The fake writes what ``spikeforge train --json`` and ``metrics.json`` hold;
the summary is checked against numbers computed here. No training, no timing assertions."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from spikeforge.train import TrainConfig

ROOT = Path(__file__).resolve().parents[2]

# seed -> (val, test, train accuracy as fractions, best epoch)
FAKE = {3: (0.985, 0.981, 0.99, 40), 5: (0.979, 0.975, 0.98, 12), 8: (0.991, 0.9875, 0.995, 55)}


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("seeds_benchmark", ROOT / "benchmarks" / "seeds.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def seeds() -> ModuleType:
    return _load()


def _fake_run(calls: list[dict[str, Any]], fail_seed: int | None = None) -> Any:
    def run(cmd: list[str], env: dict[str, str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        seed = int(cmd[cmd.index("--seed") + 1])
        calls.append({"cmd": cmd, "env": env})
        if seed == fail_seed:
            return subprocess.CompletedProcess(cmd, 1, "", "ValueError: training diverged")
        val, test, train_acc, best = FAKE[seed]
        out = Path(cmd[cmd.index("--out") + 1])
        out.mkdir(parents=True)
        history = [{"val_acc": val - 0.01 * (e != best), "test_acc": test - 0.01 * (e != best)} for e in (1, best)]
        (out / "metrics.json").write_text(json.dumps({"history": history}))
        result = {
            "val_acc": val, "test_acc": test, "train_acc": train_acc, "best_epoch": best, "epochs_run": 60,
            "threads": int(env["OMP_NUM_THREADS"]), "wall_time_s": 12.345,
        }  # fmt: skip
        return subprocess.CompletedProcess(cmd, 0, json.dumps({"result": result}), "")

    return run


def test_runs_the_command_line_per_seed_and_summarizes_against_a_reference(
    seeds: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(seeds.subprocess, "run", _fake_run(calls))
    out = tmp_path / "seeds.json"
    seeds.main(["--seeds", "3", "5", "8", "--threads", "2", "--out", str(out), "--", "--epochs", "60"])

    for call, seed in zip(calls, (3, 5, 8)):
        cmd = call["cmd"]
        assert cmd[:4] == [sys.executable, "-m", "spikeforge", "train"]
        assert cmd[cmd.index("--seed") + 1] == str(seed) and cmd[-2:] == ["--epochs", "60"]
        assert call["env"]["OMP_NUM_THREADS"] == "2"
        assert call["env"]["PYTHONPATH"].split(":")[0] == str(ROOT / "src")  # this checkout's code
    data = json.loads(out.read_text())
    assert data["options"] == ["--epochs", "60"] and data["threads"] == 2
    tests = [100 * FAKE[s][1] for s in (3, 5, 8)]
    vals = [100 * FAKE[s][0] for s in (3, 5, 8)]
    assert [r["test_acc"] for r in data["runs"]] == pytest.approx(tests)
    assert [r["best_epoch"] for r in data["runs"]] == [40, 12, 55]
    assert data["runs"][2]["test_curve"] == pytest.approx([0.9775, 0.9875])
    summary = data["summary"]
    assert summary["min_test_acc"] == pytest.approx(97.5) and summary["min_val_acc"] == pytest.approx(97.9)
    assert summary["mean_test_acc"] == pytest.approx(sum(tests) / 3, abs=1e-3)
    assert summary["mean_val_acc"] == pytest.approx(sum(vals) / 3, abs=1e-3)
    assert summary["met"] is False  # seed 5 is below 98.0 %
    table = capsys.readouterr().out
    assert "| 5 | 97.90 % | 97.50 % | 12 |" in table and "not met" in table


def test_target_met_only_when_every_seed_reaches_it(seeds: ModuleType) -> None:
    rows = [{"seed": s, "val_acc": 99.0, "test_acc": t, "wall_s": 1.0, "cpu_s": 2.0} for s, t in ((0, 98.0), (1, 98.4))]
    assert seeds.summarize(rows, [], 1, 98.0)["met"] is True  # 98.0 itself reaches the target
    rows[1]["test_acc"] = 97.99
    assert seeds.summarize(rows, [], 1, 98.0)["met"] is False
    with pytest.raises(ValueError, match="at least one seed"):
        seeds.summarize([], [], 1, 98.0)


def test_merge_joins_parallel_streams_by_seed_and_refuses_mixed_recipes(
    seeds: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(seeds.subprocess, "run", _fake_run([]))
    seeds.main(["--seeds", "8", "3", "--out", str(tmp_path / "a.json")])
    seeds.main(["--seeds", "5", "--out", str(tmp_path / "b.json")])
    seeds.main(["--merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--out", str(tmp_path / "all.json")])
    merged = json.loads((tmp_path / "all.json").read_text())
    assert [r["seed"] for r in merged["runs"]] == [3, 5, 8]
    assert merged["summary"]["min_test_acc"] == pytest.approx(97.5)
    with pytest.raises(SystemExit, match="seed 5 is in two"):
        seeds.main(["--merge", str(tmp_path / "b.json"), str(tmp_path / "b.json")])
    seeds.main(["--seeds", "3", "--out", str(tmp_path / "c.json"), "--", "--epochs", "9"])
    with pytest.raises(SystemExit, match="different options"):
        seeds.main(["--merge", str(tmp_path / "b.json"), str(tmp_path / "c.json")])


def test_a_failed_run_names_its_seed_and_bad_options_are_refused(
    seeds: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(seeds.subprocess, "run", _fake_run([], fail_seed=5))
    with pytest.raises(SystemExit, match=r"seed 5: spikeforge train failed \(exit 1\)"):
        seeds.main(["--seeds", "3", "5"])
    for bad in (["--threads", "0"], ["--seeds", "-1"]):
        with pytest.raises(SystemExit) as info:
            seeds.main(bad)
        assert info.value.code == 2
    assert "must be" in capsys.readouterr().err


def test_results_md_states_the_default_recipe_of_trainconfig() -> None:
    text = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    (para,) = re.findall(r"The defaults: (.*?)\n\n", text, flags=re.S)
    cfg = TrainConfig()
    (width,) = cfg.hidden
    assert f"4-{width}-3 MLP" in para
    assert re.search(rf"\bT = {cfg.time_steps}\b", para)
    assert re.search(rf"\bbatch {cfg.batch_size}\b", para)
    assert re.search(rf"\b{cfg.epochs} epochs\b", para)
    assert f"lr {cfg.lr:.0e}".replace("e-0", "e-") in para
    assert f"weight decay {cfg.weight_decay:.0e}".replace("e-0", "e-") in para
