"""Tests of the ``spikeforge`` command line (spikeforge.cli); the progress output: tests/test_progress.py.

Subcommands are run in-process through ``main([...])`` with capsys; one smoke test runs
``python -m spikeforge info`` in a subprocess. Training uses a tiny Yin-Yang configuration.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import re
import shlex
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from spikeforge import cli
from spikeforge.cli import _main
from spikeforge.cli._config_options import add_config_options
from spikeforge.cli.train import default_out, summary_text, train_config
from spikeforge.data import dataset_info, list_datasets
from spikeforge.models import DECODINGS, ENCODINGS, list_models
from spikeforge.neurons import list_neurons
from spikeforge.surrogate import list_surrogates
from spikeforge.train import TrainConfig
from spikeforge.training.image_recipes import image_defaults

# 1 epoch, tiny network, few steps: a few seconds on one core.
TINY = ["--epochs", "1", "--hidden", "32", "--time-steps", "4", "--batch-size", "64", "--seed", "3"]
PNGS = ("learning_curves.png", "raster.png", "membrane.png", "firing_rates.png")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def result_of(stdout: str, command: str) -> Any:
    """The ``result`` of the one success envelope on ``stdout`` (the --json schema of every subcommand)."""
    envelope = json.loads(stdout)
    assert envelope == {"command": command, "ok": True, "result": envelope["result"]}
    return envelope["result"]


# ---- parser --------------------------------------------------------------------------------------


def test_train_defaults_are_trainconfig_defaults() -> None:
    args = cli.build_parser().parse_args(["train"])
    assert train_config(args) == TrainConfig()


@pytest.mark.parametrize("model", ["sdt", "spikformer", "vit-twin"])
def test_transformer_models_get_their_recipe_for_options_not_given(model: str) -> None:
    cfg = train_config(cli.build_parser().parse_args(["train", "--dataset", "fashion_mnist", "--model", model]))
    assert (cfg.time_steps, cfg.batch_size, cfg.lr, cfg.epochs, cfg.surrogate) == (4, 64, 3e-3, 5, "sigmoid")
    given = train_config(cli.build_parser().parse_args(
        ["train", "--dataset", "fashion_mnist", "--model", model, "--lr", "1e-3", "--surrogate", "atan",
         "--time-steps", "2", "--epochs", "1"]
    ))  # fmt: skip
    assert (given.lr, given.surrogate, given.time_steps, given.epochs, given.batch_size) == (1e-3, "atan", 2, 1, 64)
    conv = train_config(cli.build_parser().parse_args(["train", "--dataset", "digits", "--model", "conv"]))
    assert (conv.surrogate, conv.lr) == (TrainConfig().surrogate, TrainConfig().lr)  # other models keep theirs


def test_fashion_mnist_gets_its_recipe_for_options_not_given() -> None:
    def cfg(*argv: str) -> TrainConfig:
        return train_config(cli.build_parser().parse_args(["train", *argv]))

    conv = cfg("--dataset", "fashion_mnist", "--model", "conv")
    assert (conv.channels, conv.hidden, conv.time_steps, conv.epochs, conv.batch_size, conv.lr, conv.surrogate) == (
        (16, 32), (128,), 4, 20, 128, 2e-3, "sigmoid")  # fmt: skip
    assert (conv.decoding, conv.dropout) == (TrainConfig().decoding, TrainConfig().dropout)
    mlp = cfg("--dataset", "fashion_mnist")  # the default model, mlp
    assert (mlp.model, mlp.hidden, mlp.time_steps, mlp.epochs, mlp.decoding, mlp.dropout, mlp.surrogate) == (
        "mlp", (1024,), 8, 80, "mean_membrane", 0.2, "sigmoid")  # fmt: skip
    given = cfg("--dataset", "fashion_mnist", "--surrogate", "atan", "--hidden", "64", "--epochs", "1", "--dropout", "0")
    assert (given.surrogate, given.hidden, given.epochs, given.dropout, given.time_steps) == ("atan", (64,), 1, 0.0, 8)
    for other in (cfg(), cfg("--dataset", "digits"), cfg("--dataset", "digits", "--model", "conv")):
        assert (other.surrogate, other.lr, other.hidden) == (TrainConfig().surrogate, TrainConfig().lr, TrainConfig().hidden)
    assert image_defaults("fashion_mnist", "mlp", "eventprop") == {} and image_defaults("fashion_mnist", "sdt") == {}
    assert cfg() == TrainConfig()


def test_train_options_map_to_config_fields() -> None:
    args = cli.build_parser().parse_args(
        ["train", "--epochs", "3", "--hidden", "8", "16", "--lr", "0.01", "--seed", "5", "--neuron", "alif",
         "--surrogate", "atan", "--time-steps", "7", "--data-dir", "/some/where"]
    )
    cfg = train_config(args)
    assert (cfg.epochs, cfg.hidden, cfg.lr, cfg.seed, cfg.neuron, cfg.surrogate, cfg.time_steps) == (
        3, (8, 16), 0.01, 5, "alif", "atan", 7)
    assert cfg.data_dir == "/some/where"
    assert args.out is None and not args.resume and not args.overwrite


def test_every_trainconfig_field_has_an_option() -> None:
    text = cli.build_parser()._subparsers._group_actions[0].choices["train"].format_help()  # type: ignore[union-attr]
    for f in dataclasses.fields(TrainConfig):
        assert "--" + f.name.replace("_", "-") in text, f.name


@pytest.mark.parametrize("command", ["train", "evaluate", "info"])
def test_help_has_a_runnable_example(capsys: pytest.CaptureFixture[str], command: str) -> None:
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    assert "example:" in out
    examples = [line.strip() for line in out.split("example:")[1].splitlines() if line.strip().startswith("spikeforge ")]
    assert examples
    parser = cli.build_parser()
    for line in examples:
        argv = shlex.split(line.split(">")[0])[1:]
        args = parser.parse_args(argv)  # parses; SystemExit would fail the test
        assert args.command == command
        if command == "train":
            train_config(args)  # and names a valid configuration


def test_default_out_dir_names_dataset_model_and_time() -> None:
    out = default_out(TrainConfig())
    assert re.fullmatch(r"runs/yinyang-mlp-\d{8}-\d{6}", out.as_posix())


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys)
    assert code == 2 and out == "" and "train" in err


def test_unknown_option_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "train", "--no-such-option")
    assert code == 2 and out == "" and "--no-such-option" in err


@pytest.mark.parametrize(
    "option, valid",
    [
        ("--dataset", list_datasets()),
        ("--model", list_models()),
        ("--neuron", [n for n in list_neurons() if n != "li"]),
        ("--surrogate", list_surrogates()),
        ("--encoding", list(ENCODINGS)),
        ("--decoding", list(DECODINGS)),
    ],
)
def test_unknown_name_exits_2_listing_choices(capsys: pytest.CaptureFixture[str], option: str, valid: list[str]) -> None:
    code, out, err = run(capsys, "train", option, "no_such_thing")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert "no_such_thing" in err
    for name in valid:
        assert name in err


def test_non_spiking_neuron_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "train", "--neuron", "li")
    assert code == 2 and "'li'" in err and "lif" in err


def test_invalid_value_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "train", "--epochs", "0")
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_resume_needs_out(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "train", "--resume")
    assert code == 2 and "--out" in err


def test_option_help_comes_from_field_metadata() -> None:
    @dataclasses.dataclass
    class Config:
        rate: float = dataclasses.field(default=0.5, metadata={"help": "share of 100% kept"})
        name: str | None = None

    parser = argparse.ArgumentParser()
    add_config_options(parser, Config)
    text = " ".join(parser.format_help().split())
    assert "--rate FLOAT share of 100% kept; default: 0.5" in text
    assert "--name STR Config.name ('none' for None); default: none" in text
    assert parser.parse_args(["--rate", "0.25", "--name", "none"]) == argparse.Namespace(rate=0.25, name=None)


# ---- the --json envelope and the process options ---------------------------------------------------


def test_top_level_help_documents_the_json_schema_and_malloc(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert '"ok": true, "result"' in out and '"exit_code"' in out and "--malloc" in out


#: One failing command line per subcommand ({tmp}: a fresh empty folder) and its exit code.
FAILING = {
    "train": (["train", "--epochs", "0"], 2),
    "evaluate": (["evaluate", "{tmp}/nope.pt"], 1),
    "info": (["info", "--no-such-option"], 2),
    "energy": (["energy", "{tmp}/nope.pt"], 1),
    "report": (["report", "{tmp}/nope"], 1),
    "export": (["export", "{tmp}/nope.pt", "--nir", "{tmp}/out.nir"], 1),
    "import": (["import", "{tmp}/nope.nir"], 1),
    "convert": (["convert", "--correction", "sideways"], 2),
    "generate": (["generate", "{tmp}/nope.pt"], 1),
}


def test_failure_table_covers_every_subcommand() -> None:
    assert set(FAILING) == {command.name for command in cli.COMMANDS}


@pytest.mark.parametrize("command", sorted(FAILING))
def test_failure_json_envelope(command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv, exit_code = FAILING[command]
    argv = [a.format(tmp=tmp_path) for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == exit_code and out == ""  # without --json: nothing on stdout, one error line on stderr
    code, out, err = run(capsys, *argv, "--json")
    envelope = json.loads(out)
    assert envelope == {"command": command, "ok": False, "error": envelope["error"], "exit_code": exit_code}
    assert code == exit_code and "\n" not in envelope["error"] and envelope["error"] in err.splitlines()[-1]


def test_malloc_changes_the_process_only_when_asked(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[str] = []
    monkeypatch.setitem(_main.MALLOC, "steady", lambda: calls.append("steady") or True)
    assert run(capsys, "info")[0] == 0  # called from Python: default "system"
    monkeypatch.setattr(sys, "argv", ["spikeforge", "info"])
    assert cli.main() == 0  # from Python without argv: the same default
    capsys.readouterr()
    assert calls == []
    for argv in (["--malloc", "steady", "info"], ["info", "--malloc", "steady"]):
        assert run(capsys, *argv)[0] == 0
    assert calls == ["steady", "steady"]
    code, _, err = run(capsys, "--malloc", "jemalloc", "info")
    assert code == 2 and "steady" in err and calls == ["steady", "steady"]


def test_the_program_defaults_to_steady_malloc_and_can_opt_out(monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[str] = []
    monkeypatch.setitem(_main.MALLOC, "steady", lambda: calls.append("steady") or True)
    for argv, expected in ((["spikeforge", "info"], ["steady"]), (["spikeforge", "--malloc", "system", "info"], [])):
        calls.clear()
        monkeypatch.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit) as exit_info:
            cli.console()
        assert exit_info.value.code == 0 and calls == expected
    capsys.readouterr()
    with pytest.raises(ValueError, match="malloc must be one of"):
        cli.main(["info"], malloc="jemalloc")


def test_console_is_the_installed_program() -> None:
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert 'spikeforge = "spikeforge.cli:console"' in text
    main_module = (Path(__file__).resolve().parents[1] / "src" / "spikeforge" / "__main__.py").read_text()
    assert "console()" in main_module


# ---- info ----------------------------------------------------------------------------------------


def test_info_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "info")
    assert code == 0 and err == ""
    for word in ("yinyang", "lif", "fast_sigmoid", "mlp", "torch", torch.__version__, "cuda", "matplotlib"):
        assert word in out


def test_info_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "info", "--json")
    assert code == 0
    info = result_of(out, "info")
    assert info["neurons"] == list_neurons() and info["surrogates"] == list_surrogates()
    assert info["spiking_neurons"] == [n for n in list_neurons() if n != "li"]
    assert info["models"] == list_models()
    by_name = {d["name"]: d for d in info["datasets"]}
    assert sorted(by_name) == list_datasets()
    yy = dataset_info("yinyang")
    assert by_name["yinyang"]["splits"] == dict(yy.splits)
    assert by_name["yinyang"]["num_classes"] == yy.num_classes
    b = info["backends"]
    assert b["torch"] == torch.__version__ and b["threads"] == torch.get_num_threads()
    assert b["cuda"] == torch.cuda.is_available() and b["matplotlib"]


def test_python_m_spikeforge_info_smoke() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "spikeforge", "info", "--json"], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "yinyang" in [d["name"] for d in result_of(proc.stdout, "info")["datasets"]]


# ---- train / evaluate end to end -----------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One tiny training run shared (read-only) by the tests below: returns out dir, stdout, stderr."""
    out_dir = tmp_path_factory.mktemp("cli") / "run"
    capture_out, capture_err = io.StringIO(), io.StringIO()  # not TTYs
    old = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = capture_out, capture_err
    try:
        code = cli.main(["train", *TINY, "--out", str(out_dir), "--json"])
    finally:
        sys.stdout, sys.stderr = old
    return {"code": code, "out_dir": out_dir, "stdout": capture_out.getvalue(), "stderr": capture_err.getvalue()}


def _check_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    w, h = struct.unpack(">II", data[16:24])
    assert w > 200 and h > 200


def test_train_writes_run_dir_and_json_summary(trained: dict[str, Any]) -> None:
    assert trained["code"] == 0, trained["stderr"]
    summary = result_of(trained["stdout"], "train")  # stdout is exactly one JSON object
    out_dir: Path = trained["out_dir"]
    for name in ("config.json", "metrics.json", "checkpoint.pt", "best.pt", *PNGS):
        assert (out_dir / name).is_file(), name
    for name in PNGS:
        _check_png(out_dir / name)
    assert summary["run_dir"] == str(out_dir)
    assert summary["epochs_run"] == 1 and summary["best_epoch"] == 1
    for key in ("train_acc", "val_acc", "test_acc"):
        assert 0.0 <= summary[key] <= 1.0
    assert summary["test_acc"] > 0.45  # 3 classes: well above chance (1/3) after one epoch
    rates = summary["firing_rates"]
    assert rates and all(0.0 <= r <= 1.0 for r in rates.values())
    assert summary["spikes_per_sample"] >= 0 and summary["wall_time_s"] > 0
    assert [Path(p).name for p in summary["plots"]] == list(PNGS)
    config = json.loads((out_dir / "config.json").read_text())
    expected = train_config(cli.build_parser().parse_args(["train", *TINY]))
    assert TrainConfig.from_dict(config) == expected and expected.hidden == (32,)


def test_train_progress_on_non_tty_is_plain_status_lines_and_one_line_per_epoch(trained: dict[str, Any]) -> None:
    err = trained["stderr"]
    assert "\r" not in err and "\x1b" not in err
    lines = err.strip().splitlines()
    assert lines[0] == "loading the yinyang data and building the mlp model ..."  # before the slow set-up
    assert lines[1].startswith("training: 1 epoch of ")
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert len(epochs) == 1 and epochs[0].startswith("epoch 1/1") and "loss" in epochs[0]
    assert lines[3:] == ["evaluating the best model on the test split ...", "drawing the plots ...",
                         "counting the energy per inference ..."]  # fmt: skip


def test_evaluate_reproduces_test_accuracy(trained: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    summary = result_of(trained["stdout"], "train")
    code, out, err = run(capsys, "evaluate", str(trained["out_dir"] / "best.pt"), "--json")
    assert code == 0, err
    result = result_of(out, "evaluate")
    assert result["split"] == "test"
    assert result["accuracy"] == pytest.approx(summary["test_acc"], abs=1e-9)
    code, out, _ = run(capsys, "evaluate", str(trained["out_dir"] / "best.pt"), "--split", "validation")
    assert code == 0 and "accuracy" in out and "validation" in out


def test_train_summary_table(trained: dict[str, Any]) -> None:
    text = summary_text(result_of(trained["stdout"], "train"))
    for row in ("epochs run", "reported epoch", "train accuracy", "val accuracy", "test accuracy", "firing rate",
                "spikes per sample", "wall time", "run directory", str(trained["out_dir"])):
        assert row in text


def test_train_refuses_existing_run_dir(trained: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    before = (trained["out_dir"] / "metrics.json").read_bytes()
    code, out, err = run(capsys, "train", *TINY, "--out", str(trained["out_dir"]), "--quiet")
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and "--overwrite" in err
    assert (trained["out_dir"] / "metrics.json").read_bytes() == before


def test_train_overwrite_quiet_no_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "run"
    out_dir.mkdir()
    (out_dir / "junk.txt").write_text("old")
    code, out, err = run(capsys, "train", *TINY, "--out", str(out_dir), "--overwrite", "--quiet", "--no-plots")
    assert code == 0, err
    assert err == ""  # --quiet: nothing on stderr
    assert "Training summary" in out and "test accuracy" in out
    assert (out_dir / "best.pt").is_file() and not (out_dir / "raster.png").exists()
    # --resume takes the configuration from the run's config.json: no other option needed
    code, out, err = run(capsys, "train", "--resume", "--out", str(out_dir), "--quiet", "--no-plots", "--json")
    assert code == 0, err
    summary = result_of(out, "train")
    assert summary["epochs_run"] == 1 and summary["run_dir"] == str(out_dir)
    # a changed option that alters the result is refused by the trainer with a one-line error
    code, out, err = run(capsys, "train", "--resume", "--out", str(out_dir), "--quiet", "--lr", "0.5")
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("content", [b"this is not a checkpoint", b""])
def test_evaluate_corrupt_checkpoint_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content)
    code, out, err = run(capsys, "evaluate", str(bad))
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("spikeforge evaluate: error:")
    for argv in (["evaluate", str(bad), "--debug"], ["--debug", "evaluate", str(bad)]):
        code, _, err = run(capsys, *argv)
        assert code == 1 and "Traceback" in err


def test_evaluate_truncated_checkpoint_exits_1(trained: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = (trained["out_dir"] / "best.pt").read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    code, _, err = run(capsys, "evaluate", str(cut))
    assert code == 1 and len(err.strip().splitlines()) == 1


def test_evaluate_missing_checkpoint_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "evaluate", str(tmp_path / "nope.pt"))
    assert code == 1 and "nope.pt" in err and len(err.strip().splitlines()) == 1


# ---- one convention: exit codes, one-line errors naming the fix, nothing left by a failed start ------------


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    return cli.build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr,return-value]


def test_train_help_lists_the_valid_names() -> None:
    text = " ".join(_subparsers()["train"].format_help().split())
    from spikeforge.training.choices import valid_names

    for field in ("dataset", "neuron", "surrogate", "model"):
        for name in valid_names()[field]:
            assert name in text, (field, name)


@pytest.mark.parametrize("command", sorted(c.name for c in cli.COMMANDS))
def test_every_option_has_its_own_help_text(command: str) -> None:
    helps = [(a.help, a.dest) for a in _subparsers()[command]._actions if a.help != argparse.SUPPRESS]
    assert all(h for h, _ in helps), [d for h, d in helps if not h]
    texts = [h for h, _ in helps]
    assert len(set(texts)) == len(texts), [h for h in texts if texts.count(h) > 1]


@pytest.mark.parametrize(
    "argv",
    [
        ["convert", "--dataset", "no_such_thing"],
        ["convert", "--arch", "no_such_thing"],
        ["convert", "--steps", "0"],
        ["convert", "--percentile", "150"],
        ["convert", "--lr", "-1"],
        ["import", "{tmp}/nope.nir", "--dt", "-1"],
        ["energy", "{tmp}/nope.pt", "--hardware", "loihi,no_such_thing"],
        ["energy", "{tmp}/nope.pt", "--samples", "0"],
        ["evaluate", "{tmp}/nope.pt", "--split", "no_such_thing"],
        ["export", "{tmp}/nope.pt", "--nir", "{tmp}/x.nir", "--approximate", "no_such_thing"],
        ["import", "{tmp}/nope.nir", "--discretization", "no_such_thing"],
        ["train", "--dataset", "no_such_thing"],
    ],
)
def test_unknown_names_and_bad_values_exit_2_everywhere(argv: list[str], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, *[a.format(tmp=tmp_path) for a in argv])
    assert code == 2 and out == "", err
    assert err.strip().splitlines()[-1].startswith(f"spikeforge {argv[0]}: error:")


@pytest.mark.parametrize("make", ["missing", "empty", "other files"])
def test_resume_refuses_a_folder_without_a_run(make: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "typo"
    if make != "missing":
        out_dir.mkdir()
    if make == "other files":
        (out_dir / "notes.txt").write_text("mine")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    code, out, err = run(capsys, "train", "--resume", "--out", str(out_dir), *TINY)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "no run to resume" in err and "--out" in err and "--overwrite" in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing trained, nothing written


def test_a_failed_start_leaves_nothing_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    for argv in (["train", "--dataset", "mnist"], ["train", "--dataset", "mnist", "--out", "run"]):
        code, out, err = run(capsys, *argv, *TINY)
        assert code == 1 and out == "" and "--data-dir" in err
        assert list(tmp_path.iterdir()) == []  # no runs/... or run/ folder


def test_plot_failure_still_prints_the_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from spikeforge.cli import plots

    def full_disk(*args: Any, **kwargs: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(plots, "plot_run", full_disk)
    code, out, err = run(capsys, "train", *TINY, "--out", str(tmp_path / "run"), "--quiet")
    assert code == 0, err
    assert "Training summary" in out and "test accuracy" in out and "No space left on device" in out
    assert err.strip().startswith("spikeforge train: warning: plots not written") and len(err.strip().splitlines()) == 1
    assert (tmp_path / "run" / "best.pt").is_file()
    code, out, err = run(capsys, "train", "--resume", "--out", str(tmp_path / "run"), "--quiet", "--json")
    assert code == 0, err
    summary = result_of(out, "train")
    assert summary["plots"] == [] and len(summary["warnings"]) == 1 and "Errno 28" in summary["warnings"][0]


@pytest.mark.parametrize("present", [True, False])
def test_info_finds_fashion_mnist_in_its_default_place(present: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from spikeforge.data import mnist

    if present:
        for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                     "t10k-labels-idx1-ubyte.gz"):
            (tmp_path / name).write_bytes(b"")
    monkeypatch.setattr(mnist, "FASHION_MNIST_SYSTEM_DIR", tmp_path)
    code, out, _ = run(capsys, "info")
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("fashion_mnist"))
    assert code == 0 and ("--data-dir" not in line) == present and ("files found" in line) == present
    mnist_line = next(ln for ln in out.splitlines() if ln.strip().startswith("mnist"))
    assert "--data-dir" in mnist_line
    code, out, _ = run(capsys, "info", "--json")
    by_name = {d["name"]: d for d in result_of(out, "info")["datasets"]}
    assert by_name["fashion_mnist"]["files_found"] is present and by_name["yinyang"]["files_found"] is True


class _Payload:
    """A pickle that would create a folder if it were ever unpickled unsafely."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        import os

        return os.mkdir, (str(self.marker),)


@pytest.mark.parametrize("command", ["evaluate", "energy", "export"])
def test_a_foreign_or_malicious_checkpoint_is_refused_safely(command: str, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.pt"
    torch.save({"model": _Payload(marker)}, bad)
    argv = [command, str(bad)] + (["--nir", str(tmp_path / "x.nir")] if command == "export" else [])
    code, out, err = run(capsys, *argv)
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert "not a spikeforge checkpoint" in err and "loaded safely" in err
    assert "weights_only=False" not in err and "weights_only` set to `False" not in err and "corrupt" not in err
    assert not marker.exists()


def test_a_truncated_checkpoint_is_reported_as_such(trained: dict[str, Any], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    data = (trained["out_dir"] / "best.pt").read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    code, _, err = run(capsys, "evaluate", str(cut))
    assert code == 1 and "cut short" in err and "weights_only" not in err


def test_steady_malloc_respects_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:

    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    assert _main.steady_malloc() is False  # the user's setting stands
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    result = _main.steady_malloc()
    assert isinstance(result, bool)
    if sys.platform.startswith("linux"):
        import ctypes.util

        assert result is (ctypes.util.find_library("c") is not None)


# ---- one-line errors, the lock during the summary, the thread policy of the other subcommands ----------


@pytest.mark.parametrize("argv", [["train", "--epochs", "x"], ["evaluate"], ["convert", "--steps"], ["info", "extra"]])
def test_usage_errors_are_one_line_with_a_help_hint(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert "usage:" not in err and f"see 'spikeforge {argv[0]} --help'" in err
    code, out, err = run(capsys, *argv, "--json")
    envelope = json.loads(out)
    assert code == 2 and envelope["ok"] is False and envelope["exit_code"] == 2 and envelope["command"] == argv[0]
    assert "usage:" not in err and len(err.strip().splitlines()) == 1


def test_an_unanticipated_error_is_one_line_and_its_traceback_only_with_debug(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(args: argparse.Namespace) -> Any:
        raise KeyError("surprise")

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    monkeypatch.setattr(sub.choices["info"], "_defaults", {**sub.choices["info"]._defaults, "handler": broken})
    monkeypatch.setattr(_main, "build_parser", lambda malloc="system": parser)
    code, out, err = run(capsys, "info")
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert "internal error (KeyError" in err and "--debug" in err and "Traceback" not in err
    code, out, err = run(capsys, "info", "--debug")
    assert code == 1 and "Traceback" in err and "internal error" in err.strip().splitlines()[-1]


def test_out_of_memory_inside_torch_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def oom(args: argparse.Namespace) -> Any:
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: 5 bytes")

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    monkeypatch.setattr(sub.choices["info"], "_defaults", {**sub.choices["info"]._defaults, "handler": oom})
    monkeypatch.setattr(_main, "build_parser", lambda malloc="system": parser)
    code, _, err = run(capsys, "info")
    assert code == 1 and len(err.strip().splitlines()) == 1 and "out of memory" in err and "smaller" in err


def test_the_run_directory_stays_locked_until_the_summary_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from spikeforge.cli import train as train_cli
    from spikeforge.training.rundir import RunDirBusyError
    from spikeforge.training.rundir import RunLock

    seen: list[str] = []

    def energy(model: Any, test_ds: Any) -> dict[str, float]:  # the last step of the summary
        try:
            RunLock(tmp_path / "run").acquire()
            seen.append("free")
        except RunDirBusyError:
            seen.append("locked")
        return {}

    monkeypatch.setattr(train_cli, "_energy_per_inference", energy)
    code, _, err = run(capsys, "train", *TINY, "--out", str(tmp_path / "run"), "--quiet", "--no-plots")
    assert code == 0, err
    assert seen == ["locked"]
    with RunLock(tmp_path / "run"):  # released when the command returns
        pass


@pytest.mark.parametrize("command", ["evaluate", "energy"])
def test_evaluate_and_energy_use_the_training_thread_policy(
    command: str, trained: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from spikeforge.training import saved
    from spikeforge.training import threads

    chosen: list[int] = []
    real = threads.use_threads

    def spy(n: int) -> Any:
        chosen.append(n)
        return real(n)

    monkeypatch.setattr(threads, "use_threads", spy)
    monkeypatch.setattr(saved, "use_threads", spy)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads()
    argv = [command, str(trained["out_dir"] / "best.pt")] + (["--samples", "16"] if command == "energy" else [])
    code, _, err = run(capsys, *argv)
    assert code == 0, err
    assert chosen == [1] and torch.get_num_threads() == before  # OMP_NUM_THREADS applied once, restored after


def test_convert_uses_the_thread_policy_of_its_ann(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from spikeforge.cli import convert

    chosen: list[int] = []
    real = convert.use_threads

    def spy(n: int) -> Any:
        chosen.append(n)
        return real(n)

    monkeypatch.setattr(convert, "use_threads", spy)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    code, _, err = run(capsys, "convert", "--dataset", "yinyang", "--epochs", "1", "--steps", "1", "--test-size", "16",
                       "--calib-size", "16", "--no-errors")  # fmt: skip
    assert code == 0, err
    assert chosen == [1]
