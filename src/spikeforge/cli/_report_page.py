"""The HTML of ``spikeforge report``: one self-contained page (inline CSS, PNGs as ``data:`` URIs, no script).

Every string that comes from the run directory or the checkpoint is escaped here, in :func:`_cell` and
:func:`_text`; the callers pass plain strings. A Content-Security-Policy forbids the page to fetch anything:
an external reference would be blocked (and show as a console error) rather than loaded.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["GENERATOR", "Figure", "Section", "page", "table", "paragraph", "bullets", "figures", "key_value_rows"]

#: The ``<meta name="generator">`` of every report; ``spikeforge report`` overwrites only files that hold it.
GENERATOR = '<meta name="generator" content="spikeforge report">'

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2127; background: #f6f7f9;
       margin: 0 auto; max-width: 1100px; padding: 1.5em 2em 3em; }
h1 { font-size: 1.6em; margin: 0 0 .2em; } h2 { margin: 1.8em 0 .6em; border-bottom: 2px solid #d5dae1; }
.sub { color: #5b6472; margin: 0; overflow-wrap: anywhere; }
nav { margin: 1em 0; } nav a { margin-right: 1.2em; color: #2457a6; text-decoration: none; }
table { border-collapse: collapse; background: #fff; margin: .4em 0 1em; box-shadow: 0 1px 2px #0001; }
th, td { padding: .3em .8em; border: 1px solid #e1e5ea; text-align: left; vertical-align: top; }
th { background: #eef1f5; font-weight: 600; } td { overflow-wrap: anywhere; font-variant-numeric: tabular-nums; }
td:first-child { white-space: nowrap; }
figure { background: #fff; margin: 0 0 1.4em; padding: .8em; box-shadow: 0 1px 2px #0001; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; }
figcaption { color: #5b6472; margin-top: .4em; }
figure.missing { border-left: 4px solid #c0392b; color: #8e2a1f; }
ul.notes { color: #3c4452; } .note { color: #5b6472; font-size: .93em; }
"""


@dataclass(frozen=True)
class Figure:
    """One plot of the run: its file name, a caption, and the PNG bytes (None: ``problem`` says why)."""

    name: str
    caption: str
    png: bytes | None = None
    problem: str = ""


@dataclass(frozen=True)
class Section:
    """One titled part of the page; ``parts`` are :func:`table`, :func:`paragraph`, :func:`bullets` or
    :func:`figures` results (HTML already escaped)."""

    anchor: str
    title: str
    parts: Sequence[str]


def _text(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _cell(value: Any, tag: str = "td") -> str:
    return f"<{tag}>{_text(value)}</{tag}>"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], *, anchor: str = "") -> str:
    """A table; every header and cell is escaped."""
    ident = f' id="{_text(anchor)}"' if anchor else ""
    head = "<tr>" + "".join(_cell(h, "th") for h in header) + "</tr>"
    body = "\n".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table{ident}>\n{head}\n{body}\n</table>"


def paragraph(text: str, *, css: str = "note") -> str:
    return f'<p class="{css}">{_text(text)}</p>'


def bullets(items: Sequence[str]) -> str:
    return '<ul class="notes">\n' + "\n".join(f"<li>{_text(item)}</li>" for item in items) + "\n</ul>"


def figures(items: Sequence[Figure]) -> str:
    """Each plot as an ``<img>`` with a ``data:image/png;base64`` source, or a box saying why it is missing."""
    out = []
    for f in items:
        caption = f"<figcaption><code>{_text(f.name)}</code>: {_text(f.caption)}</figcaption>"
        if f.png is None:
            out.append(
                f'<figure class="missing" data-plot="{_text(f.name)}"><p>{_text(f.problem)}</p>{caption}</figure>'
            )
            continue
        data = base64.b64encode(f.png).decode("ascii")
        img = f'<img src="data:image/png;base64,{data}" alt="{_text(f.name)}: {_text(f.caption)}">'
        out.append(f'<figure data-plot="{_text(f.name)}">{img}{caption}</figure>')
    return "\n".join(out)


def page(title: str, subtitle: Sequence[str], sections: Sequence[Section], *, footer: str) -> str:
    """The whole document: a header, a table of contents, the sections and a footer line."""
    nav = "".join(f'<a href="#{_text(s.anchor)}">{_text(s.title)}</a>' for s in sections)
    subs = "\n".join(f'<p class="sub">{_text(line)}</p>' for line in subtitle)
    body = "\n".join(
        f'<section id="{_text(s.anchor)}">\n<h2>{_text(s.title)}</h2>\n' + "\n".join(s.parts) + "\n</section>"
        for s in sections
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"{GENERATOR}\n<title>{_text(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<header>\n<h1>{_text(title)}</h1>\n{subs}\n</header>\n<nav>{nav}</nav>\n{body}\n"
        f'<footer><p class="note">{_text(footer)}</p></footer>\n</body>\n</html>\n'
    )


def key_value_rows(mapping: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(key, value)`` rows of a flat mapping (values shown as JSON where they are not strings)."""
    return [(str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in mapping.items()]
