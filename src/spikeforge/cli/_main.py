"""The parser of all subcommands, the process options (``--debug``, ``--malloc``) and :func:`main`."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable
from collections.abc import Sequence
from typing import NoReturn

from spikeforge.cli import convert
from spikeforge.cli import energy
from spikeforge.cli import evaluate
from spikeforge.cli import export
from spikeforge.cli import generate
from spikeforge.cli import import_
from spikeforge.cli import info
from spikeforge.cli import report
from spikeforge.cli import train
from spikeforge.cli._common import JSON_SCHEMA
from spikeforge.cli._common import PROG
from spikeforge.cli._common import Command
from spikeforge.cli._common import UsageError
from spikeforge.cli._common import add_command
from spikeforge.cli._common import failure
from spikeforge.cli._common import success
from spikeforge.cli._common import write_json

__all__ = ["main", "console", "build_parser", "COMMANDS", "MALLOC", "steady_malloc"]

#: The subcommands in ``--help`` order, one module each.
COMMANDS: tuple[Command, ...] = tuple(
    m.COMMAND for m in (train, evaluate, info, energy, report, export, import_, convert, generate)
)

#: Known errors -> exit code (checked in order). Anything else is a bug: it is reported in one line too (exit
#: code 1, "internal error", the traceback with --debug), never as a traceback on the terminal.
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (UsageError, 2),  # a bad argument or name
    (OSError, 1),  # missing, existing, locked or unwritable files; a full disk
    (ValueError, 1),  # bad checkpoints, bad values found while running
    (ImportError, 1),  # an optional extra is not installed
    (MemoryError, 1),  # a machine too small for the job
)


def _unexpected(error: Exception) -> Exception:
    """The one-line report of an error no check anticipated (a bug, or memory running out inside torch)."""
    text = " ".join(str(error).split())
    if isinstance(error, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text):
        return MemoryError(f"out of memory ({text[:200]}); use smaller settings (time steps, batch size, samples)")
    return RuntimeError(
        f"internal error ({type(error).__name__}: {text[:300]}); this is a bug: run the command again with --debug "
        "and report the traceback"
    )


def steady_malloc() -> bool:
    """``--malloc steady``: keep large freed buffers inside this process (glibc only).

    Training allocates ``[T, B, ...]`` activations afresh on every step. With glibc's default settings a
    freed buffer above the mmap threshold goes back to the OS and the next step faults every page in
    again, which measured as a large share of a step here (``benchmarks/RESULTS.md``, ``--malloc``). This
    raises the mmap threshold to its maximum (32 MiB) and the trim threshold to 2 GiB, as the
    environment variables ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` would; if either is
    already set, the user's choice stands. Returns True when applied. It changes the whole process, so
    it runs only when asked for, never on ``import spikeforge``.
    """
    import ctypes
    import ctypes.util
    import os

    if os.environ.get("MALLOC_MMAP_THRESHOLD_") or os.environ.get("MALLOC_TRIM_THRESHOLD_"):
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to tune
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, 32 * 2**20)) and bool(mallopt(m_trim_threshold, 2**31 - 1))


#: ``--malloc`` choices -> what they do to the process before the subcommand runs.
MALLOC: dict[str, Callable[[], bool]] = {"system": lambda: False, "steady": steady_malloc}
#: ``--malloc`` default of :func:`main` called from Python (never touch the caller's process unasked) and of the
#: ``spikeforge`` program / ``python -m spikeforge`` (:func:`console`: a training process of its own).
DEFAULT_MALLOC = "system"
PROGRAM_MALLOC = "steady"


class _ParseError(UsageError):
    """An argparse usage error, raised instead of argparse's ``sys.exit(2)`` so :func:`main` reports it."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _ParseError(self, message)


def _add_process_options(parser: argparse.ArgumentParser, *, subcommand: bool, malloc: str) -> None:
    """``--debug`` and ``--malloc``, accepted before and after the subcommand (the later one wins)."""
    parser.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS if subcommand else False,
        help="show the full traceback on errors",
    )  # fmt: skip
    parser.add_argument(
        "--malloc", choices=tuple(MALLOC), default=argparse.SUPPRESS if subcommand else malloc,
        help="steady: keep large freed buffers in the process (glibc mallopt; faster training on Linux); "
        f"system: leave the allocator alone; default: {malloc} (the spikeforge program: {PROGRAM_MALLOC}; "
        f"spikeforge.cli.main() called from Python: {DEFAULT_MALLOC})",
    )  # fmt: skip


def build_parser(malloc: str = DEFAULT_MALLOC) -> argparse.ArgumentParser:
    """The full argument parser (one subparser per module in :data:`COMMANDS`); ``malloc``: the ``--malloc``
    default."""
    from spikeforge import __version__

    parser = _Parser(
        prog=PROG,
        description="Train and evaluate spiking neural networks (spikeforge).",
        epilog=f"--json output of every subcommand (one object on stdout):\n{JSON_SCHEMA}\n\nexample:\n"
        "  spikeforge train            # Yin-Yang main job\n  spikeforge --malloc system train --epochs 5\n"
        "  spikeforge info",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _add_process_options(parser, subcommand=False, malloc=malloc)
    common = argparse.ArgumentParser(add_help=False)
    _add_process_options(common, subcommand=True, malloc=malloc)
    names = [command.name for command in COMMANDS]
    sub = parser.add_subparsers(dest="command", metavar="{" + ",".join(names) + "}", parser_class=_Parser)
    for command in COMMANDS:
        add_command(sub, common, command)
    return parser


def _report(where: str, command: str | None, error: BaseException, code: int, *, as_json: bool, debug: bool) -> int:
    """Write the one-line error to stderr (and the failure envelope to stdout with ``--json``)."""
    if debug:
        traceback.print_exception(error)
    message = " ".join((str(error) or type(error).__name__).split())
    print(f"{where}: error: {message}", file=sys.stderr)
    if as_json:
        write_json(failure(command, message, code))
    return code


def main(argv: Sequence[str] | None = None, *, malloc: str = DEFAULT_MALLOC) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``) and return the exit code.

    The process is changed only through ``--malloc``, whose default is ``malloc``: ``"system"`` (leave the
    allocator alone) when called from Python, whether or not ``argv`` is given; the ``spikeforge`` program
    runs :func:`console`, whose default is ``"steady"``.
    """
    if malloc not in MALLOC:
        raise ValueError(f"malloc must be one of {tuple(MALLOC)}, got {malloc!r}")
    tokens = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(malloc)
    try:
        args = parser.parse_args(tokens)
    except _ParseError as e:  # usage error: the command and --json are taken from the raw tokens
        command = next((t for t in tokens if t in {c.name for c in COMMANDS}), None)
        where = f"{PROG} {command}" if command is not None else e.parser.prog
        hint = UsageError(f"{e}; see '{where} --help'")
        return _report(where, command, hint, 2, as_json="--json" in tokens, debug=False)
    except SystemExit as e:  # --help or --version (already printed)
        return e.code if isinstance(e.code, int) else 0
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    as_json, debug, where = bool(getattr(args, "json", False)), bool(args.debug), f"{PROG} {args.command}"
    MALLOC[args.malloc]()
    try:
        output = args.handler(args)
    except KeyboardInterrupt:
        print(f"\n{where}: interrupted", file=sys.stderr)
        if as_json:
            write_json(failure(args.command, "interrupted", 130))
        return 130
    except Exception as e:
        code = next((c for kind, c in EXIT_CODES if isinstance(e, kind)), None)
        if code is None:
            if debug:
                traceback.print_exception(e)
            return _report(where, args.command, _unexpected(e), 1, as_json=as_json, debug=False)
        return _report(where, args.command, e, code, as_json=as_json, debug=debug)
    if output is None:  # a non-zero rank under torchrun: rank 0 reports
        return 0
    if as_json:
        write_json(success(args.command, output.result))
    else:
        sys.stdout.write(output.text + "\n")
        sys.stdout.flush()
    return 0


def console() -> NoReturn:
    """The ``spikeforge`` program and ``python -m spikeforge``: :func:`main` on ``sys.argv`` with
    ``--malloc steady`` by default (a training process keeps its large freed buffers; ``--malloc system``
    opts out), then exit with its code."""
    sys.exit(main(malloc=PROGRAM_MALLOC))
