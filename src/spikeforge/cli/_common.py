"""What every subcommand shares: its subparser, the one output schema, and small text formatters.

A subcommand module defines ``COMMAND``, a :class:`Command`: its handler takes the parsed arguments
and returns an :class:`Output`. :func:`spikeforge.cli.main` prints it (text, or the JSON envelope of
:func:`success`) and turns exceptions into the envelope of :func:`failure`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from typing import NamedTuple

from spikeforge.training import choices as _choices

__all__ = [
    "PROG", "SPLITS", "MAX_EPOCHS", "MAX_TIME_STEPS", "MAX_JSON_BYTES", "capped_int", "read_json_file", "JSON_SCHEMA", "UsageError", "Output", "Command", "add_command", "add_data_dir",
    "success", "failure", "write_json", "jsonable", "existing_file", "writable_file", "positive_int", "positive_float",
    "percentile", "usage",
    "table", "pct", "activity_rows", "layer_lines", "numbered",
]  # fmt: skip

PROG = "spikeforge"
#: Caps on counts that would otherwise run for days without failing: epochs (``train``, ``convert``) and time
#: steps (``train --time-steps``, ``convert --steps``); one definition, in :mod:`spikeforge.training.choices`,
#: which ``TrainConfig`` checks too. A run beyond them is a typo.
MAX_EPOCHS = _choices.MAX_EPOCHS
MAX_TIME_STEPS = _choices.MAX_TIME_STEPS
#: Largest JSON file of a run (``config.json``, ``metrics.json``) the command line reads: 64 MiB.
MAX_JSON_BYTES = 64 * 2**20
#: Dataset splits a checkpoint can be evaluated on (as the run split them).
SPLITS: tuple[str, ...] = ("test", "validation", "train")
#: The ``--json`` envelope of every subcommand (shown by ``spikeforge --help``).
JSON_SCHEMA = """\
  success: {"command": "<subcommand>", "ok": true, "result": {...}}
  failure: {"command": "<subcommand>" or null, "ok": false, "error": "<one line>", "exit_code": 1 | 2 | 130}"""


class UsageError(Exception):
    """A bad command-line argument (exit code 2)."""


class Output(NamedTuple):
    """What a subcommand produced: ``result`` (the JSON envelope's ``"result"``) and the same as ``text``."""

    result: Mapping[str, Any]
    text: str


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    """A subcommand without options of its own."""


class Command(NamedTuple):
    """One subcommand: its name, ``--help`` texts, runnable examples, handler and own options.

    ``run`` returns the :class:`Output` (None: nothing to report, e.g. a non-zero rank under torchrun);
    ``arguments`` adds the subcommand's options to its parser.
    """

    name: str
    help: str
    description: str
    examples: tuple[str, ...]
    run: Callable[[argparse.Namespace], Output | None]
    arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments


def add_command(sub: Any, common: argparse.ArgumentParser, command: Command) -> argparse.ArgumentParser:
    """Add ``command`` to ``sub`` (the subparsers action) with the shared options (``common``: ``--debug``,
    ``--malloc``; and ``--json``), its own options and an ``example:`` epilog."""
    parser: argparse.ArgumentParser = sub.add_parser(
        command.name,
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,  # keep the epilog's line breaks
        epilog="example:\n" + "\n".join(f"  {e}" for e in command.examples),
        help=command.help,
        description=command.description,
    )
    parser.add_argument(
        "--json", action="store_true", help="print exactly one JSON object on stdout (schema: spikeforge --help)"
    )
    command.arguments(parser)
    parser.set_defaults(handler=command.run)
    return parser


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    """``--data-dir DIR`` (into ``args.data_dir``, default None)."""
    parser.add_argument(
        "--data-dir",
        dest="data_dir",
        type=str,
        default=None,
        metavar="DIR",
        help="folder with dataset files (for datasets read from files)",
    )


def success(command: str, result: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON envelope of a finished subcommand."""
    return {"command": command, "ok": True, "result": jsonable(result)}


def failure(command: str | None, error: str, exit_code: int) -> dict[str, Any]:
    """The JSON envelope of a failed subcommand (``error`` is the one-line message also written to stderr)."""
    return {"command": command, "ok": False, "error": error, "exit_code": exit_code}


def write_json(obj: Mapping[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()


def jsonable(obj: Any) -> Any:
    """Tensors, numpy values, Paths and tuples -> plain JSON types; non-finite floats -> None."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):  # tensor / numpy
        return jsonable(obj.tolist())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    return str(obj)


def existing_file(path: str | os.PathLike[str], what: str) -> None:
    """Raise ``FileNotFoundError`` (exit code 1) naming ``what`` when ``path`` does not exist, and
    ``IsADirectoryError`` (exit code 1) when it is a directory."""
    if not Path(path).exists():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist")
    if Path(path).is_dir():
        raise IsADirectoryError(f"{what} {str(path)!r} is a directory; give the file (e.g. its best.pt)")


def read_json_file(path: Path, fix: str) -> Any:
    """The JSON value in ``path`` (a run's ``config.json`` or ``metrics.json``), or ``ValueError`` naming the file
    and ``fix`` when it is over :data:`MAX_JSON_BYTES`, not UTF-8, not JSON or nested too deeply."""
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise ValueError(f"{str(path)!r} is {size:,} bytes, more than MAX_JSON_BYTES = {MAX_JSON_BYTES:,}; {fix}")
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{str(path)!r} is not valid JSON ({type(e).__name__}: {e}); {fix}") from None
    except RecursionError:
        raise ValueError(f"{str(path)!r} is nested too deeply to be a spikeforge file; {fix}") from None


def writable_file(path: str | os.PathLike[str] | None, option: str) -> None:
    """Before any work: ``UsageError`` (exit code 2) when the output file ``path`` of ``option`` names a
    directory or lies in a folder that does not exist; ``PermissionError`` (exit code 1) when that folder is not
    writable. A symbolic link at ``path`` is fine: it is replaced, never written through (``_core/files.py``)."""
    if path is None:
        return
    p = Path(path)
    if p.is_dir() and not p.is_symlink():
        raise UsageError(f"{option} {str(p)!r} is a directory; give a file name, e.g. {str(p / 'out')!r}")
    parent = p.parent
    if not parent.is_dir():
        raise UsageError(f"{option} {str(p)!r}: the folder {str(parent)!r} does not exist; create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"{option} {str(p)!r}: the folder {str(parent)!r} is not writable; choose another path")


def positive_int(text: str) -> int:
    """An argparse ``type``: a positive int (anything else is a usage error, exit code 2)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def capped_int(cap: int, name: str) -> Callable[[str], int]:
    """An argparse ``type``: a positive int at most ``cap`` (the constant ``name`` of this module)."""

    def parse(text: str) -> int:
        value = positive_int(text)
        if value > cap:
            raise argparse.ArgumentTypeError(f"expected at most {cap:,} ({name}), got {text!r}")
        return value

    parse.__name__ = "positive int"
    return parse


def positive_float(text: str) -> float:
    """An argparse ``type``: a finite float > 0 (anything else is a usage error, exit code 2)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def percentile(text: str) -> float:
    """An argparse ``type``: a percentile in (0, 100]."""
    value = positive_float(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"expected a percentile in (0, 100] (100 = max-norm), got {text!r}")
    return value


def usage(check: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``check(*args, **kwargs)``, its ``ValueError`` (an unknown name, a bad value) turned into a
    :class:`UsageError` (exit code 2)."""
    try:
        return check(*args, **kwargs)
    except ValueError as e:
        raise UsageError(str(e)) from e


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return "-" if v is None else str(v)


def table(rows: Sequence[tuple[str, Any]]) -> str:
    """Two aligned columns, indented by two spaces."""
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {_fmt_value(v)}" for k, v in rows)


def pct(v: Any) -> str:
    return f"{100 * v:.2f} %" if isinstance(v, (int, float)) else "-"


def activity_rows(metrics: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Table rows of the firing rates per layer and the spikes per sample in ``metrics``."""
    rows: list[tuple[str, Any]] = []
    rates = metrics.get("firing_rates")
    unit = metrics.get("firing_rate_unit", "spikes/neuron/step")  # exact methods: per inference (no time grid)
    if isinstance(rates, Mapping):
        for name, r in rates.items():
            rows.append((f"firing rate {name}", f"{r:.4f} {unit}" if isinstance(r, (int, float)) else r))
    n = metrics.get("spikes_per_sample")
    if isinstance(n, (int, float)):
        rows.append(("spikes per sample", f"{n:.1f}"))
    return rows


def layer_lines(layers: Sequence[Any]) -> list[str]:
    """``Class(settings)`` of each layer (what ``export`` and ``import`` list)."""
    return [f"{type(layer).__name__}({layer.extra_repr()})" for layer in layers]


def numbered(lines: Sequence[str]) -> str:
    """``lines`` indented, each after its index."""
    return "\n".join(f"  {i:>3}  {line}" for i, line in enumerate(lines))
