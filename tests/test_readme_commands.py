"""Every ``spikeforge ...`` command of README.md runs as written and gives a sensible result.

The commands are read from README.md itself (code blocks and code spans, the command table included), so the
README cannot drift from the program. They run in a fresh folder, chained as a reader would run them:
``train`` first, then ``evaluate``/``energy``/``export`` on its ``RUN/best.pt``, ``import`` of the exported file,
``convert``, ``info`` and every ``--help``. Allowed changes, all named in README.md: ``train`` gets the short
settings the README gives for a quick try (:data:`QUICK`, unless the command sets them) and an ``--out`` folder
if it has none; ``RUN`` is that quick run; the table's ``[--dataset a|b|c]`` runs its first choice (every choice
is checked to be a valid name); ``...`` is dropped; ``spikeforge <command> --help`` runs for every command.
A ``train`` whose settings equal an earlier one's is parsed, not run again. Commands run in-process through
:func:`spikeforge.cli.main` on one thread (fast on a busy 2-core machine), except ``torchrun`` (a subprocess).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from spikeforge import cli
from spikeforge.cli.train import train_config
from spikeforge.training.choices import valid_names

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
#: The short training settings README.md gives for a quick try (``spikeforge train --epochs 1 ...``).
QUICK = {"--epochs": "1", "--hidden": "32", "--time-steps": "4"}
#: ``RUN`` in the README's commands: the quick run.
RUN = "runs/quick"
NAMES = {c.name for c in cli.COMMANDS}
ORDER = [c.name for c in cli.COMMANDS]  # train first: the others use its run
#: Configurations already trained by a README command (the same run is not repeated).
TRAINED: list[object] = []


def readme_commands() -> list[str]:
    """Every ``spikeforge <command> ...`` (or ``spikeforge --option``) in README.md's code blocks and spans."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", README, flags=re.S)
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", README, flags=re.S))
    found: list[str] = []
    for text in blocks + spans:
        for line in text.splitlines():
            for m in re.finditer(r"(?:^|[\s/])spikeforge\s+((?:<command>|[a-z-]+)[^&;#]*)", line):
                words = m.group(1).replace("\\|", "|").split()
                if words[0] in NAMES or words[0] in ("<command>", "--help"):
                    launcher = line[line.index("torchrun") : m.start(1)].split() if "torchrun" in line else []
                    found.append(" ".join([*launcher[:-1], "spikeforge", *words]))
    return list(dict.fromkeys(found))


def _expand(words: list[str]) -> list[str]:
    """``[--opt a|b|c]`` -> ``--opt a`` (each choice checked against the valid names); ``...`` dropped."""
    out: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w == "...":
            i += 1
            continue
        if w.startswith("[--"):
            option, choices = w[1:], words[i + 1].rstrip("]").split("|")
            valid = valid_names()[option[2:].replace("-", "_")]
            assert set(choices) <= set(valid), f"README lists {option} choices {choices}; valid: {valid}"
            out += [option, choices[0]]
            i += 2
            continue
        out.append(RUN if w == "RUN" else w.replace("RUN/", RUN + "/"))
        i += 1
    return out


def _train_argv(argv: list[str], n: int) -> list[str]:
    exact = "--method" in argv and argv[argv.index("--method") + 1] != "surrogate"
    for option, value in QUICK.items():
        if option == "--time-steps" and exact:  # an exact method has no time grid (refused)
            continue
        if option not in argv:
            argv += [option, value]
    if "--out" not in argv:
        argv += ["--out", f"runs/readme-{n}"]
    return argv


def _key(command: str) -> tuple[int, bool, bool]:
    """Run order: the quick ``train`` (its run is ``RUN``) first, other trains, then ``ORDER``, ``--help`` last."""
    words = command.split()
    name = words[words.index("spikeforge") + 1]
    rank = ORDER.index(name) if name in ORDER else len(ORDER)
    return rank, "torchrun" in command, RUN not in command


COMMANDS = sorted(readme_commands(), key=_key)


def test_readme_documents_every_subcommand() -> None:
    used = {c.split()[c.split().index("spikeforge") + 1] for c in COMMANDS}
    assert NAMES <= used, f"README.md has no command for {sorted(NAMES - used)}"
    assert any(RUN in c and "train" in c for c in COMMANDS), "README.md must give the quick-try train command"
    assert all(f"{k} {v}" in README for k, v in QUICK.items())


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh folder as the working directory and one thread (restored afterwards)."""
    folder, cwd, threads = tmp_path_factory.mktemp("readme"), Path.cwd(), torch.get_num_threads()
    os.chdir(folder)
    torch.set_num_threads(1)
    try:
        yield folder
    finally:
        os.chdir(cwd)
        torch.set_num_threads(threads)


def _check(name: str, argv: list[str], out: str) -> None:
    """The key output of each subcommand."""
    if name == "train":
        assert "Training summary" in out and ("test accuracy" in out or "test bits/char" in out)
    elif name == "evaluate":
        assert "Evaluation" in out and "accuracy" in out
    elif name == "info":
        assert "datasets:" in out and "neurons:" in out
    elif name == "energy":
        chips = argv[argv.index("--hardware") + 1].split(",")
        assert all(chip in out for chip in chips)
    elif name == "export":
        assert out.startswith(f"wrote {argv[argv.index('--nir') + 1]}:")
    elif name == "import":
        assert out.startswith("imported ") and "LIF" in out
    elif name == "report":
        assert out.startswith("Run report") and Path(RUN, "report.html").is_file() and "energy table" in out
    elif name == "convert":
        ann = float(re.search(r"\(ANN ([\d.]+) %\)", out).group(1))  # type: ignore[union-attr]
        assert ann > 90.0 and "warning" not in out, out


def _prerequisite(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Run the README command that makes what ``argv`` reads, if it has not run (a test picked alone with -k)."""
    if argv[0] == "import" and not Path(argv[1]).is_file():
        make = next(c for c in COMMANDS if f"--nir {argv[1]}" in c)
    elif argv[0] != "train" and any(a == RUN or a.startswith(RUN + "/") for a in argv) and not Path(RUN, "best.pt").is_file():
        make = next(c for c in COMMANDS if RUN in c and " train " in c)
    else:
        return
    words = _expand(shlex.split(make))
    _prerequisite(words[1:], capsys)
    assert cli.main(words[1:]) == 0, make
    capsys.readouterr()


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_runs(command: str, workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    words = _expand(shlex.split(command))
    start = words.index("spikeforge") + 1
    name, argv = words[start], words[start:]
    if name in ("export", "import"):
        pytest.importorskip("nir")
    if name == "convert":
        pytest.importorskip("sklearn")
    if name == "train" and "--help" not in argv:
        argv = _train_argv(argv, COMMANDS.index(command))
        config = train_config(cli.build_parser().parse_args(argv))  # parses; an identical run is not repeated
        if config in TRAINED and words[0] != "torchrun":
            return
        TRAINED.append(config)
    if words[0] == "torchrun":
        env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_PORT")}
        env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT / "src"), GLOO_SOCKET_IFNAME="lo")
        proc = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", *words[1:start - 2], "-m", "spikeforge", *argv],
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-4000:]
        _check(name, argv, proc.stdout)
        return
    _prerequisite(argv, capsys)
    if name == "<command>":
        for sub in ORDER:
            assert cli.main([sub, "--help"]) == 0
            assert "example:" in capsys.readouterr().out
        return
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert code == 0, f"{command}: {err}"
    if name == "export":  # the lossy mapping the flag allows is reported, as documented
        assert err.startswith("spikeforge export: warning:") and "reset to v_reset" in err
    if "--help" not in argv:
        _check(name, argv, out)
