"""Terminal output through ``rich``: which stream gets colours, and two-column tables rendered to text.

A stream gets colours and live displays only when it is a terminal (``rich`` also honours ``NO_COLOR``,
``FORCE_COLOR`` and ``TERM=dumb``); anything else (a file, a pipe, CI logs) gets plain text with no escape
codes, so ``--json`` output and logs stay machine-readable.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import TextIO

from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

__all__ = ["console_for", "uses_colour", "key_value_text"]


def console_for(stream: TextIO) -> Console:
    """A rich console writing to ``stream`` (no automatic highlighting of numbers, no wrapping of long lines)."""
    return Console(file=stream, highlight=False, soft_wrap=True)


def uses_colour(stream: TextIO) -> bool:
    """Whether text for ``stream`` should carry colours: a terminal, with colours not switched off."""
    probe = console_for(stream)
    return bool(probe.is_terminal and probe.color_system is not None and not probe.no_color)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


def key_value_text(
    title: str,
    rows: Sequence[tuple[str, Any]],
    *,
    colour: bool = False,
    styles: Mapping[str, str] | None = None,
    width: int | None = None,
) -> str:
    """``title`` and two aligned columns (keys indented by two spaces), rendered by rich.

    Without ``colour``: plain text, no escape codes, no trailing spaces, never wrapped. With ``colour``: ANSI
    styles (keys cyan, ``styles[key]`` for a value) wrapped at ``width`` (default: the terminal's).
    """
    styles = styles or {}
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="cyan" if colour else None, no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in rows:
        grid.add_row(key, Text(_cell(value), style=styles.get(key, "") if colour else ""))
    if not colour:  # wide enough that nothing wraps
        width = 8 + max((len(k) + len(_cell(v)) for k, v in rows), default=0) + len(title)
    buf = io.StringIO()
    out = Console(
        file=buf,
        width=width,
        force_terminal=colour,
        color_system="standard" if colour else None,
        highlight=False,
        legacy_windows=False,
    )
    out.print(Text(title, style="bold" if colour else ""))
    out.print(Padding(grid, (0, 0, 0, 2), expand=False))
    return "\n".join(line.rstrip() for line in buf.getvalue().rstrip("\n").splitlines())
