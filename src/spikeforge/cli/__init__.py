"""The ``spikeforge`` command line: a thin veneer over the library, one module per subcommand.

- ``train`` (:mod:`~spikeforge.cli.train`): :func:`spikeforge.train.train`, then evaluation and plots
- ``evaluate`` (:mod:`~spikeforge.cli.evaluate`): :func:`spikeforge.train.evaluate_checkpoint`
- ``info`` (:mod:`~spikeforge.cli.info`): versions and the registries' valid names
- ``energy`` (:mod:`~spikeforge.cli.energy`): :func:`spikeforge.energy.summarize` on a checkpoint
- ``export`` (:mod:`~spikeforge.cli.export`): :func:`spikeforge.nir.to_nir` of a checkpoint
- ``import`` (:mod:`~spikeforge.cli.import_`): :func:`spikeforge.nir.from_nir` of a NIR file
- ``convert`` (:mod:`~spikeforge.cli.convert`): an ANN (:mod:`spikeforge.training.ann`) through
  :func:`spikeforge.conversion.convert`

Shared pieces: :mod:`spikeforge.cli._common` (subparser, output envelope, formatting),
:mod:`spikeforge.cli._main` (parser, process options, errors), :mod:`spikeforge.cli._config_options`
(``TrainConfig`` fields as options), :mod:`spikeforge.cli.progress` (progress bars) and
:mod:`spikeforge.cli.plots` (the PNGs of a training run). Library packages never parse arguments or print.
Adding a subcommand: one module that ends in ``COMMAND = Command(name, help, description, examples, run,
arguments)`` (:class:`~spikeforge.cli._common.Command`), listed in ``spikeforge.cli._main.COMMANDS``.

Output. Human-readable text goes to stdout, progress and errors to stderr. With ``--json`` (accepted by
every subcommand) stdout holds exactly one JSON object, the same envelope for every subcommand:

JSON output
-----------

    success: {"command": "<subcommand>", "ok": true, "result": {...}}
    failure: {"command": "<subcommand>" or null, "ok": false, "error": "<one line>", "exit_code": 1 | 2 | 130}

``result`` is the subcommand's own object: ``train`` the run summary (``run_dir``, accuracies, firing
rates, ``energy_per_inference_j``, ``checkpoint``, ``plots``, ...), ``evaluate`` the checkpoint, split and
metrics, ``info`` the versions and valid names, ``energy`` ``{"meta", "counts", "reports"}``, ``export``
``{"nir", "nodes", "dt", "discretization", "approximate", "encoding", "decoding", "layers"}``, ``import``
``{"path", "dt", "discretization", "parameters", "layers"}``, ``convert`` the conversion report
(``ann_accuracy``, ``curve``, ``layer_errors``, ...). Tensors become lists, non-finite floats ``null``. On
failure the one-line error is also written to stderr; a usage error found by the parser gives the
``command`` named on the command line (``null`` if none).

Exit codes: 0 success, 1 a runtime failure (missing, existing or locked file, full disk, bad checkpoint, invalid
value found while running, missing optional extra, too little memory; an unanticipated error is reported as an
"internal error" line, its traceback only with ``--debug``), 2 a usage error (unknown option, invalid option
value or name: one line naming the fix and ``--help``, no usage block), 130 interrupted. No error prints a
traceback unless ``--debug`` is given.

Process options, before or after the subcommand: ``--debug`` adds the traceback to an error;
``--malloc {steady,system}`` chooses whether glibc's ``mallopt`` keeps large freed buffers in the process
(``steady``: faster training on Linux, see ``benchmarks/RESULTS.md``). It is the only process-wide effect and
the switch is explicit: the ``spikeforge`` program and ``python -m spikeforge`` (:func:`console`) default to
``steady`` (their process is a training run of its own; ``--malloc system`` opts out), while :func:`main`
called from Python defaults to ``system`` and so never changes the caller's process unless asked (with or
without ``argv``). The ``--help`` of every subcommand ends in a runnable example.

Example::

    spikeforge train                      # the Yin-Yang main job with defaults
    spikeforge --malloc system train --epochs 5 --json > summary.json
    spikeforge evaluate runs/yinyang-mlp-20250101-120000/best.pt --split test
"""

from __future__ import annotations

from spikeforge.cli._common import JSON_SCHEMA
from spikeforge.cli._common import Output
from spikeforge.cli._common import UsageError
from spikeforge.cli._main import COMMANDS
from spikeforge.cli._main import build_parser
from spikeforge.cli._main import console
from spikeforge.cli._main import main

__all__ = ["main", "console", "build_parser", "COMMANDS", "UsageError", "Output", "JSON_SCHEMA"]
