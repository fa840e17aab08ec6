"""A small dependency-free progress bar and the training callback that drives it.

On a terminal (``stream.isatty()``) :class:`ProgressCallback` redraws one line in place with an
epoch bar and a batch bar, and leaves one summary line per finished epoch. On anything else (a
file, a pipe, CI logs) it writes only the summary line per epoch. With ``quiet=True`` it writes
nothing. Output goes to ``sys.stderr`` by default so stdout stays clean for ``--json``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any
from typing import TextIO

from spikeforge.training.loop import Callback

__all__ = ["render_bar", "ProgressBar", "ProgressCallback", "format_epoch_line"]


def render_bar(done: int, total: int, width: int = 20) -> str:
    """``[#####---------------]``: ``done`` of ``total`` filled; ``width`` cells between brackets."""
    if total < 1:
        raise ValueError(f"total must be >= 1, got {total}")
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    done = min(max(done, 0), total)
    filled = (done * width) // total
    return "[" + "#" * filled + "-" * (width - filled) + "]"


class ProgressBar:
    """A single-line progress bar redrawn in place with ``\\r`` (only when ``enabled``).

    Args:
        total: number of units of work (>= 1).
        stream: where to draw (default ``sys.stderr``).
        desc: text before the bar.
        width: number of cells in the bar.
        enabled: draw at all; default ``stream.isatty()``.
    """

    def __init__(
        self, total: int, *, stream: TextIO | None = None, desc: str = "", width: int = 20, enabled: bool | None = None
    ) -> None:
        if total < 1:
            raise ValueError(f"total must be >= 1, got {total}")
        self.total = total
        self.stream = sys.stderr if stream is None else stream
        self.desc = desc
        self.width = width
        self.enabled = _isatty(self.stream) if enabled is None else enabled
        self.n = 0
        self._last_len = 0

    def text(self, postfix: str = "") -> str:
        s = f"{self.desc} {render_bar(self.n, self.total, self.width)} {self.n}/{self.total}".lstrip()
        return f"{s} {postfix}" if postfix else s

    def update(self, n: int = 1, postfix: str = "") -> None:
        self.n = min(self.n + n, self.total)
        self.draw(self.text(postfix))

    def draw(self, line: str) -> None:
        if not self.enabled:
            return
        pad = " " * max(0, self._last_len - len(line))  # erase leftovers of a longer previous line
        self.stream.write("\r" + line + pad)
        self.stream.flush()
        self._last_len = len(line)

    def clear(self) -> None:
        if self.enabled and self._last_len:
            self.stream.write("\r" + " " * self._last_len + "\r")
            self.stream.flush()
            self._last_len = 0


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or exotic streams
        return False


def _fmt(value: Any, pct: bool = False) -> str:
    if isinstance(value, (int, float)):
        return f"{100 * value:.2f}%" if pct else f"{value:.4f}"
    return "-"


def format_epoch_line(epoch: int, n_epochs: int, metrics: Mapping[str, Any]) -> str:
    """``epoch  3/20  loss 0.4123  train 91.20%  val 92.00%  (1.3 s)`` from an epoch's metrics dict."""
    parts = [f"epoch {epoch:>{len(str(n_epochs))}}/{n_epochs}", f"loss {_fmt(metrics.get('loss'))}"]
    for key, label in (("train_acc", "train"), ("val_acc", "val"), ("test_acc", "test")):
        if key in metrics:
            parts.append(f"{label} {_fmt(metrics[key], pct=True)}")
    t = metrics.get("epoch_time_s")
    if isinstance(t, (int, float)):
        parts.append(f"({t:.1f} s)")
    return "  ".join(parts)


class ProgressCallback(Callback):
    """Training callback: progress bars on a terminal, one line per epoch otherwise, or silence.

    Args:
        stream: where to write (default ``sys.stderr``); bars are drawn only if ``stream.isatty()``.
        quiet: write nothing at all.
        width: cells of the batch bar (the epoch bar gets half).

    Epochs are 1-based, as :func:`spikeforge.train.train` passes them.
    """

    def __init__(self, *, stream: TextIO | None = None, quiet: bool = False, width: int = 20) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.quiet = quiet
        self.width = width
        self.tty = _isatty(self.stream)
        self.n_epochs = 1
        self.n_batches = 1
        self._bar: ProgressBar | None = None

    def on_train_start(self, config: Any, n_epochs: int, n_batches: int) -> None:
        self.n_epochs = max(1, int(n_epochs))
        self.n_batches = max(1, int(n_batches))
        draw = self.tty and not self.quiet
        self._bar = ProgressBar(self.n_batches, stream=self.stream, width=self.width, enabled=draw)

    def on_batch_end(self, epoch: int, batch_idx: int, n_batches: int, loss: float) -> None:
        if self.quiet or not self.tty:
            return
        if self._bar is None or self._bar.total != max(1, n_batches):
            self._bar = ProgressBar(max(1, n_batches), stream=self.stream, width=self.width, enabled=True)
        self._bar.n = min(batch_idx + 1, self._bar.total)
        epoch_bar = render_bar(epoch - 1, self.n_epochs, max(5, self.width // 2))
        line = (
            f"epoch {epoch}/{self.n_epochs} {epoch_bar} | batch {render_bar(self._bar.n, self._bar.total, self.width)} "
            f"{self._bar.n}/{self._bar.total} loss {loss:.4f}"
        )
        self._bar.draw(line)

    def on_epoch_end(self, epoch: int, metrics: dict) -> None:
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.clear()
        self.stream.write(format_epoch_line(epoch, self.n_epochs, metrics) + "\n")
        self.stream.flush()

    def on_train_end(self, result: Any) -> None:
        if self._bar is not None:
            self._bar.clear()
