"""Tests of the progress output of ``spikeforge train`` (spikeforge.cli.progress, through rich) and of the
rich tables (spikeforge.cli._console): plain lines off a terminal, live bars and colours on one, silence
with ``quiet``, and live displays closed when training fails."""

from __future__ import annotations

import io
import re

import pytest

from spikeforge.cli._console import key_value_text
from spikeforge.cli._console import uses_colour
from spikeforge.cli.progress import FIRST_BATCH
from spikeforge.cli.progress import ProgressCallback
from spikeforge.cli.progress import format_epoch_line
from spikeforge.cli.train import summary_text
from spikeforge.train import TrainConfig

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
METRICS = {"loss": 0.25, "train_acc": 0.9, "val_acc": 0.8, "epoch_time_s": 1.5}


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """rich reads these; make the terminal detection depend on isatty() alone."""
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS", "LINES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")


def _drive(cb: ProgressCallback) -> None:
    with cb.running("loading the data"):
        cb.on_train_start(TrainConfig(), 2, 3)
        for epoch in (1, 2):
            for b in range(3):
                cb.on_batch_end(epoch, b, 3, 0.5 / (b + 1))
            cb.on_epoch_end(epoch, {"epoch": epoch, **METRICS})
        cb.on_train_end(None)
    with cb.running("evaluating"):
        cb.status("drawing the plots")


def test_format_epoch_line_reference() -> None:
    assert format_epoch_line(1, 2, METRICS) == "epoch 1/2  loss 0.2500  train 90.00%  val 80.00%  (1.5 s)"
    assert format_epoch_line(3, 20, {"loss": None}) == "epoch  3/20  loss -"


def test_not_a_terminal_gets_plain_lines() -> None:
    plain = io.StringIO()
    _drive(ProgressCallback(stream=plain))
    text = plain.getvalue()
    assert "\r" not in text and "\x1b" not in text
    assert text.splitlines() == [
        "loading the data ...",
        f"training: 2 epochs of 3 batches; the {FIRST_BATCH} ...",
        "epoch 1/2  loss 0.2500  train 90.00%  val 80.00%  (1.5 s)",
        "epoch 2/2  loss 0.2500  train 90.00%  val 80.00%  (1.5 s)",
        "evaluating ...",
        "drawing the plots ...",
    ]


@pytest.mark.parametrize("stream_type", [io.StringIO, FakeTTY])
def test_quiet_writes_nothing(stream_type: type[io.StringIO]) -> None:
    stream = stream_type()
    _drive(ProgressCallback(stream=stream, quiet=True))
    assert stream.getvalue() == ""


def test_terminal_gets_live_bars_and_coloured_epoch_lines() -> None:
    tty = FakeTTY()
    cb = ProgressCallback(stream=tty)
    assert cb.tty
    _drive(cb)
    text = tty.getvalue()
    assert "\x1b[" in text  # colours and cursor control
    plain = ANSI.sub("", text)
    assert "loading the data" in plain and "evaluating" not in plain.split("epoch 2/2  loss")[0]
    for epoch in (1, 2):  # finished epochs stay printed, with the same text as off a terminal
        assert format_epoch_line(epoch, 2, METRICS) in plain
    assert "loss 0.1667" in plain and "3/3" in plain  # the batch bar showed the last batch's loss
    assert cb._status is None and cb._progress is None  # every live display stopped
    assert text.count("\x1b[?25l") == text.count("\x1b[?25h") > 0  # the cursor shown again after each display


def test_running_closes_live_displays_when_training_fails() -> None:
    tty = FakeTTY()
    cb = ProgressCallback(stream=tty)
    with pytest.raises(KeyboardInterrupt), cb.running("loading the data"):
        cb.on_train_start(TrainConfig(), 5, 10)
        cb.on_batch_end(1, 0, 10, 0.7)
        raise KeyboardInterrupt
    assert cb._status is None and cb._progress is None
    text = tty.getvalue()
    assert text.count("\x1b[?25l") == text.count("\x1b[?25h") == 2  # status, then bars: both closed


def test_colour_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not uses_colour(io.StringIO())
    assert uses_colour(FakeTTY())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not uses_colour(FakeTTY())


def test_key_value_text_plain_and_coloured() -> None:
    rows = [("run directory", "runs/" + "x" * 200), ("epochs", 3), ("loss", 0.123456), ("missing", None)]
    plain = key_value_text("Summary", rows)
    assert plain.splitlines() == [
        "Summary",
        "  run directory  runs/" + "x" * 200,  # never wrapped, however long
        "  epochs         3",
        "  loss           0.1235",
        "  missing        -",
    ]
    short = [("run directory", "runs/a"), *rows[1:]]
    coloured = key_value_text("Summary", short, colour=True, styles={"epochs": "bold green"}, width=80)
    assert "\x1b[" in coloured
    assert [line.rstrip() for line in ANSI.sub("", coloured).splitlines()] == key_value_text(
        "Summary", short
    ).splitlines()


def test_summary_text_colours_only_when_asked() -> None:
    s = {"run_dir": "runs/a", "dataset": "yinyang", "model": "mlp", "neuron": "lif", "epochs_run": 2, "best_epoch": 2,
         "train_acc": 0.9, "val_acc": 0.8, "test_acc": 0.85, "firing_rates": {"layers.1": 0.1}, "spikes_per_sample": 3.0,
         "wall_time_s": 1.0, "checkpoint": "runs/a/best.pt", "plots": [], "energy_per_inference_j": {"loihi": 1e-8},
         "threads": 1, "threads_source": "work size", "threads_wanted": 1}  # fmt: skip
    plain = summary_text(s)
    assert "\x1b" not in plain and plain.startswith("Training summary\n  run directory")
    assert re.search(r"^  test accuracy +85\.00 %$", plain, re.M) and re.search(
        r"^  energy/inference loihi +10 nJ$", plain, re.M
    )
    coloured = summary_text(s, colour=True)
    assert "\x1b[" in coloured and "85.00 %" in ANSI.sub("", coloured)
