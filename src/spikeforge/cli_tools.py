"""Subcommands that wrap the library's tools: ``energy``, ``export``, ``import`` and ``convert``.

Each parses, validates, calls one public function and prints (text, or one JSON object with ``--json``).
Kept apart from :mod:`spikeforge.cli` (training, evaluation, info) so each file stays small.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

_FMT = argparse.RawDescriptionHelpFormatter

EXAMPLES = {
    "energy": "example:\n  spikeforge energy runs/yy/best.pt --hardware loihi,cmos45,gpu_v100 --plot energy.png",
    "export": "example:\n  spikeforge export runs/yy/best.pt --nir yy.nir --approximate subtract_as_reset",
    "import": "example:\n  spikeforge import yy.nir --dt 1.0",
    "convert": "example:\n  spikeforge convert --dataset digits --method qcfs --levels 4 --steps 1 2 4 8 16",
}
TOOL_COMMANDS = tuple(EXAMPLES)


def _print(obj: Any, text: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
    else:
        print(text)


def cmd_energy(args: argparse.Namespace) -> int:
    from spikeforge.energy import energy_command

    if not args.checkpoint.exists():
        raise FileNotFoundError(f"checkpoint {str(args.checkpoint)!r} does not exist")
    hardware = [h.strip() for h in args.hardware.split(",") if h.strip()]
    summary = energy_command(
        args.checkpoint, hardware, split=args.split, n_samples=args.samples, data_dir=args.data_dir, cost_file=args.cost_file
    )
    if args.plot:
        summary.plot(args.plot)
    _print(summary.to_dict(), summary.table(), args.json)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from spikeforge.nir import export_checkpoint

    if not args.checkpoint.exists():
        raise FileNotFoundError(f"checkpoint {str(args.checkpoint)!r} does not exist")
    text = export_checkpoint(
        args.checkpoint, args.nir, dt=args.dt, discretization=args.discretization, approximate=tuple(args.approximate)
    )
    print(text)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from spikeforge.nir import import_file

    _net, text = import_file(args.path, dt=args.dt, discretization=args.discretization)
    print(text)
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from spikeforge.conversion import convert_command

    keys = (
        "dataset arch method levels percentile input steps epochs batch_size lr calib_size "
        "test_size seed data_dir load save plot errors correction correction_steps correction_iterations"
    ).split()
    report = convert_command(**{k: getattr(args, k) for k in keys})
    _print(report.to_dict(), report.table(), args.json)
    return 0


def add_tool_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the tool subcommands to ``sub`` (the subparsers action of the main parser)."""
    en = sub.add_parser(
        "energy", parents=[common], formatter_class=_FMT, epilog=EXAMPLES["energy"],
        help="count spikes/SynOps/MACs of a checkpoint and price them on chips",
        description="Energy per inference of a trained checkpoint on neuromorphic and dense hardware (cited constants).",
    )
    en.add_argument("checkpoint", type=Path)
    en.add_argument("--hardware", default="cmos45,loihi",
                    help="comma-separated chips: cmos45, cmos45_int8, loihi, truenorth, spinnaker, gpu_v100")
    en.add_argument("--split", choices=("test", "validation", "train"), default="test")
    en.add_argument("--samples", type=int, default=256, help="number of samples to count over")
    en.add_argument("--data-dir", dest="data_dir", type=str, default=None, metavar="DIR")
    en.add_argument("--cost-file", dest="cost_file", type=Path, default=None, help="extra cost models (costs.json format)")
    en.add_argument("--plot", type=Path, default=None, help="write a PNG bar plot here")
    en.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    en.set_defaults(handler=cmd_energy)

    ex = sub.add_parser(
        "export", parents=[common], formatter_class=_FMT, epilog=EXAMPLES["export"],
        help="write a checkpoint's network as a NIR graph", description="Export a trained network to NIR (needs the nir extra).",
    )
    ex.add_argument("checkpoint", type=Path)
    ex.add_argument("--nir", type=Path, required=True, metavar="OUT.nir")
    ex.add_argument("--dt", type=float, default=None, help="NIR time step (default: the neurons' dt)")
    ex.add_argument("--discretization", choices=["exact", "euler"], default="exact",
                    help="euler matches snnTorch/SpikingJelly (use with --dt 1e-4)")
    ex.add_argument("--approximate", action="append", default=[], choices=["subtract_as_reset"],
                    help="allow a named lossy mapping (reset by subtraction written as reset to v_reset)")
    ex.set_defaults(handler=cmd_export)

    im = sub.add_parser(
        "import", parents=[common], formatter_class=_FMT, epilog=EXAMPLES["import"],
        help="load a NIR graph and print the spikeforge network", description="Import a NIR graph (needs the nir extra).",
    )
    im.add_argument("path", type=Path)
    im.add_argument("--dt", type=float, default=1.0)
    im.add_argument("--discretization", choices=["exact", "euler"], default=None)
    im.set_defaults(handler=cmd_import)

    c = sub.add_parser(
        "convert", parents=[common], formatter_class=_FMT, epilog=EXAMPLES["convert"],
        help="train or load an ANN, convert it to an SNN, evaluate accuracy over T",
        description="ANN-to-SNN conversion (Rueckauer 2017 percentile norm or Bu et al. 2022 QCFS).",
    )
    c.add_argument("--dataset", default="digits")
    c.add_argument("--arch", choices=("vgg", "mlp"), default="vgg")
    c.add_argument("--method", choices=("rueckauer", "qcfs"), default="qcfs")
    c.add_argument("--levels", type=int, default=4, help="QCFS quantisation levels L")
    c.add_argument("--percentile", type=float, default=99.9, help="Rueckauer percentile (100 = max-norm)")
    c.add_argument("--input", choices=("analog", "rate"), default="analog")
    c.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64, 128, 256], metavar="T")
    c.add_argument("--epochs", type=int, default=3)
    c.add_argument("--batch-size", dest="batch_size", type=int, default=128)
    c.add_argument("--lr", type=float, default=1e-3)
    c.add_argument("--calib-size", dest="calib_size", type=int, default=1000)
    c.add_argument("--test-size", dest="test_size", type=int, default=None)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--data-dir", dest="data_dir", default=None, metavar="DIR")
    c.add_argument("--load", default=None, metavar="PATH", help="ANN checkpoint written by --save (skips training)")
    c.add_argument("--save", default=None, metavar="PATH")
    c.add_argument("--plot", default=None, metavar="PNG")
    c.add_argument(
        "--correction", choices=("none", "bias", "membrane"), default="none",
        help="post-conversion offset correction of the mean per-channel rate error (Li et al. 2021); "
        "'none' is the paper-faithful conversion",
    )
    c.add_argument("--correction-steps", dest="correction_steps", type=int, default=None, metavar="T",
                   help="T used to measure the correction (default: L for QCFS)")
    c.add_argument("--correction-iterations", dest="correction_iterations", type=int, default=1)
    c.add_argument("--no-errors", dest="errors", action="store_false", help="skip per-layer conversion errors")
    c.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    c.set_defaults(handler=cmd_convert)
