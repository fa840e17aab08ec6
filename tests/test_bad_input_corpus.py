"""A corpus of bad inputs walked through every subcommand (issue 13: hostile files and bad input).

For each case: the exit code is 1 or 2, the error is ONE line on stderr (and, with ``--json``, one failure
envelope on stdout), no "Traceback" appears, and every file that existed before is unchanged (names and SHA-256
of the whole temporary tree; no file appears either). Cases run in-process through ``spikeforge.cli.main``;
two run through ``python -m spikeforge`` to show that no traceback reaches a terminal. Tiny settings throughout.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from spikeforge import cli
from spikeforge.cli._common import MAX_EPOCHS
from spikeforge.cli._common import MAX_TIME_STEPS

TINY = ["--epochs", "1", "--hidden", "8", "--time-steps", "2", "--batch-size", "256", "--seed", "1", "--quiet"]
COMMANDS = {"train", "evaluate", "info", "energy", "export", "import", "convert", "report", "generate"}


class Payload:
    """Would create the folder ``marker`` if it were ever unpickled unsafely."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.mkdir, (str(self.marker),)


def snapshot(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 (files), ``link:target`` (symlinks) or ``dir`` of everything under ``root``."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            out[key] = "link:" + os.readlink(path)
        elif path.is_dir():
            out[key] = "dir"
        else:
            out[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny trained run, an ANN checkpoint, and every bad file of the corpus (all read-only to the tests)."""
    root = tmp_path_factory.mktemp("corpus")
    run = root / "run"
    assert cli.main(["train", *TINY, "--out", str(run), "--no-plots"]) == 0
    assert cli.main(["convert", "--dataset", "yinyang", "--epochs", "1", "--steps", "1", "--test-size", "20",
                     "--calib-size", "20", "--no-errors", "--save", str(root / "ann.pt")]) == 0  # fmt: skip
    good = torch.load(run / "best.pt", weights_only=True)
    bad = root / "bad"
    bad.mkdir()
    data = (run / "best.pt").read_bytes()
    (bad / "empty.pt").write_bytes(b"")
    (bad / "truncated.pt").write_bytes(data[: len(data) // 2])
    (bad / "garbage.pt").write_bytes(bytes(range(256)) * 8)
    (bad / "adir.pt").mkdir()
    torch.save({"model": Payload(root / "pwned")}, bad / "evil_zip.pt")
    (bad / "evil_raw.pt").write_bytes(pickle.dumps(Payload(root / "pwned"), protocol=2))
    variants: dict[str, Callable[[dict[str, Any]], None]] = {
        "config_list": lambda c: c.update(config=[1, 2]),
        "config_str": lambda c: c.update(config="yinyang"),
        "model_str": lambda c: c.update(model="weights"),
        "model_list": lambda c: c.update(model=[torch.zeros(2)]),
        "epoch_str": lambda c: c.update(epoch="one"),
        "huge_hidden": lambda c: c["config"].update(hidden=[20000, 20000]),
        "bad_kwargs": lambda c: c["config"].update(neuron_kwargs={"bogus": 1}),
        "unknown_field": lambda c: c["config"].update(colour="red"),
        "unknown_dataset": lambda c: c["config"].update(dataset="no_such_data"),
        "huge_steps": lambda c: c["config"].update(time_steps=10**9),
        "nan_weights": lambda c: c["model"].update(
            {k: torch.full_like(v, float("nan")) for k, v in c["model"].items() if v.is_floating_point()}
        ),
        "other_dataset": lambda c: c["config"].update(dataset="digits"),
    }
    for name, change in variants.items():
        ckpt = {**good, "config": dict(good["config"]), "model": dict(good["model"])}
        change(ckpt)
        torch.save(ckpt, bad / f"{name}.pt")
    return root


#: Bad checkpoint files, by name under ``bad/`` (``missing.pt`` does not exist).
BAD_FILES = [
    "missing.pt", "adir.pt", "empty.pt", "truncated.pt", "garbage.pt", "evil_zip.pt", "evil_raw.pt", "config_list.pt",
    "config_str.pt", "model_str.pt", "model_list.pt", "epoch_str.pt", "huge_hidden.pt", "bad_kwargs.pt",
    "unknown_field.pt", "unknown_dataset.pt", "huge_steps.pt", "nan_weights.pt", "other_dataset.pt",
]  # fmt: skip


def check_fails(
    root: Path, argv: list[str], capsys: pytest.CaptureFixture[str], *, codes: tuple[int, ...] = (1, 2)
) -> str:
    """Run ``argv`` twice (text, then --json); assert the corpus rules; return the error line."""
    before = snapshot(root)
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert code in codes, (argv, code, err)
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1 and "error:" in lines[0], (argv, err)
    assert "Traceback" not in err and "weights_only=False" not in err and "[Errno" not in err
    assert snapshot(root) == before, argv
    assert cli.main([*argv, "--json"]) == code
    out, err = capsys.readouterr()
    envelope = json.loads(out)
    assert envelope["ok"] is False and envelope["exit_code"] == code and "\n" not in envelope["error"]
    assert envelope["command"] == argv[0] and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert snapshot(root) == before, argv
    assert not (root / "pwned").exists()
    return lines[0]


def checkpoint_argv(command: str, path: Path, root: Path) -> list[str]:
    """``command`` reading the checkpoint ``path`` (``report`` reads a run directory holding it as best.pt)."""
    if command == "export":
        return ["export", str(path), "--nir", str(root / "out" / "x.nir")]
    if command == "report":
        return ["report", str(path), "--samples", "8"]
    if command == "energy":
        return ["energy", str(path), "--samples", "8"]
    return [command, str(path)]


@pytest.mark.parametrize("name", BAD_FILES)
@pytest.mark.parametrize("command", ["evaluate", "energy", "export", "report", "convert", "import", "train", "generate"])
def test_bad_checkpoint_files(command: str, name: str, corpus: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    root = tmp_path
    (root / "out").mkdir()
    src = corpus / "bad" / name
    if command in ("report", "train"):  # a copy of the run directory with the bad file as best.pt / checkpoint.pt
        run = root / "run"
        run.mkdir()
        for f in (corpus / "run").iterdir():
            (run / f.name).write_bytes(f.read_bytes())
        target = run / ("best.pt" if command == "report" else "checkpoint.pt")
        target.unlink()
        if src.is_dir():
            target.mkdir()
        elif src.exists():
            target.write_bytes(src.read_bytes())
        argv = (["train", "--resume", "--out", str(run), "--quiet"] if command == "train"
                else checkpoint_argv("report", run, root))  # fmt: skip
    elif command == "convert":
        argv = ["convert", "--dataset", "yinyang", "--load", str(src), "--steps", "1", "--test-size", "8"]
    elif command == "import":
        argv = ["import", str(src)]
    else:
        argv = checkpoint_argv(command, src, root)
    line = check_fails(root, argv, capsys)
    if command == "train" and name not in ("adir.pt",):
        assert "--overwrite" in line or "different configuration" in line, line  # advice that can be followed
    if name == "huge_hidden.pt" and command not in ("convert", "import", "train", "generate"):
        assert "declares a larger model" in line


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--epochs", "-1"], ["train", "--epochs", "0"], ["train", "--epochs", "nan"],
        ["train", "--epochs", "1e9"], ["train", "--epochs", str(MAX_EPOCHS + 1)],
        ["train", "--time-steps", "0"], ["train", "--time-steps", "-3"], ["train", "--time-steps", "1e8"],
        ["train", "--time-steps", str(MAX_TIME_STEPS + 1)], ["train", "--time-steps", "100000", "--batch-size", "100000"],
        ["train", "--lr", "nan"], ["train", "--lr", "-1"], ["train", "--lr", "inf"], ["train", "--lr", "0"],
        ["train", "--batch-size", "0"], ["train", "--batch-size", "-5"], ["train", "--batch-size", "nan"],
        ["train", "--batch-size", "10000000000000"], ["train", "--hidden", "20000", "20000"], ["train", "--hidden", "0"],
        ["train", "--neuron-kwargs", '{"bogus": 1}'], ["train", "--neuron-kwargs", "[1]"],
        ["train", "--neuron", "no_such"], ["train", "--dataset", "no_such"], ["train", "--surrogate", "no_such"],
        ["train", "--dataset", "mnist", "--data-dir", "{tmp}/nowhere"], ["train", "--resume"],
        ["train", "--resume", "--out", "{tmp}/typo"], ["train", "--out", "{tmp}/afile"],
        ["train", "--out", "{tmp}/occupied"], ["train", "--no-such-option"],
        ["evaluate"], ["evaluate", "{tmp}/afile", "--split", "no_such"], ["evaluate", "{tmp}/afile", "--bogus"],
        ["info", "--bogus"], ["info", "extra"],
        ["energy", "{tmp}/afile", "--samples", "0"], ["energy", "{tmp}/afile", "--samples", "nan"],
        ["energy", "{tmp}/afile", "--hardware", "no_such"], ["energy", "{tmp}/afile", "--samples", "-1"],
        ["export", "{tmp}/afile"], ["export", "{tmp}/afile", "--nir", "{tmp}/x.nir", "--dt", "nan"],
        ["export", "{tmp}/afile", "--nir", "{tmp}/x.nir", "--discretization", "no_such"],
        ["import", "{tmp}/afile", "--dt", "-1"], ["import", "{tmp}/afile", "--dt", "nan"], ["import", "{tmp}/afile", "--dt", "0"],
        ["import", "{tmp}/occupied"], ["import", "{tmp}/nope.nir"],
        ["convert", "--epochs", "0"], ["convert", "--epochs", "-1"], ["convert", "--epochs", str(MAX_EPOCHS + 1)],
        ["convert", "--steps", "0"], ["convert", "--steps", str(MAX_TIME_STEPS + 1)], ["convert", "--lr", "nan"],
        ["convert", "--batch-size", "0"], ["convert", "--method", "no_such"], ["convert", "--dataset", "no_such"],
        ["convert", "--load", "{tmp}/nope.pt"], ["convert", "--save", "{tmp}/occupied"],
        ["convert", "--plot", "{tmp}/nowhere/x.png"], ["convert", "--save", "{tmp}/afile/x.pt"],
        ["report", "{tmp}/nope"], ["report", "{tmp}/afile"], ["report", "{tmp}/occupied"],
        ["report", "{tmp}/occupied", "--samples", "0"], ["report", "{tmp}/occupied", "--hardware", "no_such"],
        ["generate", "{tmp}/nope.pt"], ["generate", "{tmp}/afile"], ["generate", "{tmp}/afile", "--tokens", "0"],
        ["generate", "{tmp}/afile", "--temperature", "nan"], ["generate", "{tmp}/afile", "--top-k", "0"],
        ["train", "--dataset", "austen"], ["train", "--model", "spikegpt"],
    ],
)  # fmt: skip
def test_bad_arguments(argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                       capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)  # a train that started would write runs/ here: the snapshot would show it
    (tmp_path / "afile").write_text("not a checkpoint")
    (tmp_path / "occupied").mkdir()
    (tmp_path / "occupied" / "notes.txt").write_text("mine")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if argv[0] == "train":
        argv += ["--quiet"]
    check_fails(tmp_path, argv, capsys)


def test_every_subcommand_is_in_the_corpus() -> None:
    assert {c.name for c in cli.COMMANDS} == COMMANDS


def test_export_without_approximate_is_a_usage_error(corpus: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    pytest.importorskip("nir")
    line = check_fails(tmp_path, ["export", str(corpus / "run" / "best.pt"), "--nir", str(tmp_path / "x.nir")], capsys,
                       codes=(2,))  # fmt: skip
    assert "--approximate subtract_as_reset" in line and "approximate=(" not in line


def test_a_second_training_of_a_locked_run_directory_is_refused(corpus: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from spikeforge.training.rundir import RunLock

    run = tmp_path / "run"
    run.mkdir()
    for f in (corpus / "run").iterdir():
        (run / f.name).write_bytes(f.read_bytes())
    with RunLock(run):  # as a first training holds it
        for extra in (["--overwrite"], ["--resume"]):
            line = check_fails(tmp_path, ["train", *TINY, "--out", str(run), *extra], capsys, codes=(1,))
            assert "another training is running" in line and str(run) in line


def test_symlinks_planted_in_the_run_directory_are_replaced_not_followed(corpus: Path, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.json", "metrics.json", "checkpoint.pt", "best.pt", "raster.png"):
        (run / name).symlink_to(victim)
    assert cli.main(["train", *TINY, "--out", str(run), "--overwrite"]) == 0
    capsys.readouterr()
    assert victim.read_bytes() == b"precious"
    assert not any(p.is_symlink() for p in run.iterdir())
    (run / "checkpoint.pt").unlink()
    (run / "checkpoint.pt").symlink_to(victim)  # a planted "checkpoint" to resume from: refused, victim untouched
    line = check_fails(tmp_path, ["train", *TINY, "--out", str(run), "--resume"], capsys, codes=(1,))
    assert "--overwrite" in line and victim.read_bytes() == b"precious"


@pytest.mark.parametrize(
    "argv",
    [["evaluate", "{bad}/evil_raw.pt"], ["train", "--time-steps", "100000000", "--out", "{tmp}/r"]],
)
def test_no_traceback_reaches_the_terminal(argv: list[str], corpus: Path, tmp_path: Path) -> None:
    argv = [a.format(bad=corpus / "bad", tmp=tmp_path) for a in argv]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "spikeforge", *argv], capture_output=True, text=True, env=env,
                          timeout=300, check=False)  # fmt: skip
    assert proc.returncode in (1, 2) and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert not (corpus / "pwned").exists() and not (tmp_path / "r").exists()


def test_outputs_named_by_a_planted_symlink_replace_the_link(corpus: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    outputs = {"ann.pt": ["convert", "--dataset", "yinyang", "--load", str(corpus / "ann.pt"), "--steps", "1",
                          "--test-size", "8", "--calib-size", "8", "--no-errors", "--save"]}  # fmt: skip
    try:
        import nir  # noqa: F401

        outputs["net.nir"] = ["export", str(corpus / "run" / "best.pt"), "--approximate", "subtract_as_reset", "--nir"]
    except ImportError:  # the nir extra is optional; the convert case still runs
        pass
    for name, argv in outputs.items():
        link = tmp_path / name
        link.symlink_to(victim)
        code = cli.main([*argv, str(link)])
        _, err = capsys.readouterr()
        assert code == 0, err
        assert victim.read_bytes() == b"precious" and not link.is_symlink() and link.stat().st_size > 100


_JSON_BAD = [b"", b"\xff\xfe garbage", b"[" * 100_000 + b"]" * 100_000, b"[1, 2]", b" " * 5000 + b"{}"]
#: (file, command, content): the run's JSON files as train --resume and report read them (report shows any
#: config object as it is, so a wrong-typed field there is a train case only).
_JSON_CASES = [(n, c, x) for n, c in (("config.json", "train"), ("metrics.json", "report"), ("config.json", "report"))
               for x in _JSON_BAD] + [("config.json", "train", b'{"hidden": "wide"}')]  # fmt: skip


@pytest.mark.parametrize("name, command, content", _JSON_CASES)
def test_bad_run_json(content: bytes, name: str, command: str, corpus: Path, tmp_path: Path,
                      monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from spikeforge.cli import _common

    monkeypatch.setattr(_common, "MAX_JSON_BYTES", 2000)  # the run's own files are under it, the last content over
    run = tmp_path / "run"
    run.mkdir()
    for f in (corpus / "run").iterdir():
        (run / f.name).write_bytes(f.read_bytes())
    (run / name).write_bytes(content)
    argv = ["train", "--resume", "--out", str(run), "--quiet"] if command == "train" else ["report", str(run)]
    line = check_fails(tmp_path, argv, capsys)
    assert name in line or "hidden" in line, line
