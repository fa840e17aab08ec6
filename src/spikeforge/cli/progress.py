"""Progress of ``spikeforge train`` through ``rich``: a status line while the run is set up, epoch and batch
bars with the loss while it trains, one line of metrics per finished epoch.

On a terminal (``stream.isatty()``) the status line is a spinner and the bars are redrawn in place by
``rich``; finished epochs stay printed above them, coloured. On anything else (a file, a pipe, CI logs)
every status and every finished epoch is one plain line, without escape codes. With ``quiet=True``
nothing is written. Output goes to ``sys.stderr`` by default, so stdout stays clean for ``--json``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from typing import Any
from typing import TextIO

from rich.live import Live
from rich.progress import BarColumn
from rich.progress import MofNCompleteColumn
from rich.progress import Progress
from rich.progress import SpinnerColumn
from rich.progress import TaskID
from rich.progress import TextColumn
from rich.progress import TimeElapsedColumn
from rich.spinner import Spinner

from spikeforge.cli._console import console_for
from spikeforge.training.loop import Callback

__all__ = ["ProgressCallback", "format_epoch_line", "FIRST_BATCH"]

#: Shown until the first batch ends: it can take seconds (kernels are compiled on first use).
FIRST_BATCH = "first batch (kernels compile on first use)"


def _fmt(value: Any, pct: bool = False) -> str:
    if isinstance(value, (int, float)):
        return f"{100 * value:.2f}%" if pct else f"{value:.4f}"
    return "-"


def _count(n: int, noun: str, plural: str) -> str:
    return f"{n} {noun if n == 1 else plural}"


def _epoch_parts(epoch: int, n_epochs: int, metrics: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(text, rich style) pieces of the line of a finished epoch."""
    parts = [(f"epoch {epoch:>{len(str(n_epochs))}}/{n_epochs}", "bold"), (f"loss {_fmt(metrics.get('loss'))}", "")]
    for key, label, style in (("train_acc", "train", ""), ("val_acc", "val", "green"), ("test_acc", "test", "")):
        if key in metrics:
            parts.append((f"{label} {_fmt(metrics[key], pct=True)}", style))
    t = metrics.get("epoch_time_s")
    if isinstance(t, (int, float)):
        parts.append((f"({t:.1f} s)", "dim"))
    return parts


def format_epoch_line(epoch: int, n_epochs: int, metrics: Mapping[str, Any]) -> str:
    """``epoch  3/20  loss 0.4123  train 91.20%  val 92.00%  (1.3 s)`` from an epoch's metrics dict."""
    return "  ".join(text for text, _ in _epoch_parts(epoch, n_epochs, metrics))


class ProgressCallback(Callback):
    """Training callback: status line, rich progress bars on a terminal, plain lines otherwise, or silence.

    Args:
        stream: where to write (default ``sys.stderr``); live displays only if ``stream.isatty()``.
        quiet: write nothing at all.

    Use :meth:`running` around work that prints nothing for a while (loading data, building the model,
    evaluating); it also closes the live display if training fails. Epochs are 1-based, as
    :func:`spikeforge.train.train` passes them.
    """

    def __init__(self, *, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.quiet = quiet
        self.console = console_for(self.stream)
        self.tty = self.console.is_terminal
        self.n_epochs = 1
        self._status: Live | None = None
        self._spinner: Spinner | None = None
        self._progress: Progress | None = None
        self._tasks: tuple[TaskID, TaskID] | None = None

    # ---- status line ----------------------------------------------------------------------------
    def status(self, text: str) -> None:
        """Show ``text`` until the next status, the first epoch or :meth:`close` (a plain line off a terminal)."""
        if self.quiet:
            return
        if not self.tty:
            self.console.print(f"{text} ...", markup=False)
            return
        if self._progress is not None:  # training has ended: the bars stay printed, the status goes below
            self.close()
        if self._status is None or self._spinner is None:
            self._spinner = Spinner("dots", text, style="cyan")
            self._status = Live(
                self._spinner, console=self.console, transient=True, refresh_per_second=12.5, redirect_stdout=False
            )
            self._status.start()
        else:
            self._spinner.update(text=text)

    @contextmanager
    def running(self, text: str) -> Iterator[ProgressCallback]:
        """Show ``text`` as the status while the block runs; every live display is closed when it ends."""
        self.status(text)
        try:
            yield self
        finally:
            self.close()

    def close(self) -> None:
        """Stop the status line and the bars (idempotent)."""
        if self._status is not None:
            self._status.stop()
            self._status, self._spinner = None, None
        if self._progress is not None:
            self._progress.stop()
            self._progress, self._tasks = None, None

    # ---- training callback ----------------------------------------------------------------------
    def on_train_start(self, config: Any, n_epochs: int, n_batches: int) -> None:
        self.close()
        self.n_epochs = max(1, int(n_epochs))
        n_batches = max(1, int(n_batches))
        if self.quiet:
            return
        if not self.tty:
            work = f"{_count(self.n_epochs, 'epoch', 'epochs')} of {_count(n_batches, 'batch', 'batches')}"
            self.console.print(f"training: {work}; the {FIRST_BATCH} ...", markup=False)
            return
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=self.console,
            refresh_per_second=8,
            redirect_stdout=False,  # stdout carries results (--json); warnings on stderr print above the bars
        )
        epochs = self._progress.add_task("epochs", total=self.n_epochs, info="")
        batches = self._progress.add_task("batch ", total=n_batches, info=FIRST_BATCH)
        self._tasks = (epochs, batches)
        self._progress.start()

    def on_batch_end(self, epoch: int, batch_idx: int, n_batches: int, loss: float) -> None:
        if self._progress is None or self._tasks is None:
            return
        epochs, batches = self._tasks
        if batch_idx == 0:  # a new epoch: its bar (and clock) start again
            self._progress.update(epochs, completed=epoch - 1, description=f"epoch {epoch}/{self.n_epochs}")
            self._progress.reset(batches, total=max(1, n_batches))
        self._progress.update(batches, completed=min(batch_idx + 1, n_batches), info=f"loss {loss:.4f}")

    def on_epoch_end(self, epoch: int, metrics: dict) -> None:
        if self.quiet:
            return
        if self._progress is None or self._tasks is None:
            self.console.print(format_epoch_line(epoch, self.n_epochs, metrics), markup=False)
            return
        line = "  ".join(
            f"[{style}]{text}[/]" if style else text for text, style in _epoch_parts(epoch, self.n_epochs, metrics)
        )
        self._progress.console.print(line)
        self._progress.update(self._tasks[0], completed=epoch)

    def on_train_end(self, result: Any) -> None:
        self.close()
