"""Fixtures shared by the end-to-end command tests: a registered data set shrunk to a few samples, so that a tiny
training run takes seconds, and ``cli.main`` called with its output checked.

Every fixture is function-scoped, like those of ``tests/conftest.py``: the shrunk data set is a patch of the data
registry, undone after each test, and each training run in these files is a different model, used by one test only,
so a wider scope would share state between tests without saving a run.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from collections.abc import Mapping
from pathlib import Path

import pytest
import torch

from spikeforge import cli
from spikeforge.data import registry as reg


@pytest.fixture
def shrink_dataset(monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """``shrink_dataset(name, sizes, build=None) -> name``: registers ``name`` again with the split sizes ``sizes``
    (same shape and classes) for this test only.

    The samples are the first ``sizes[split]`` of the registered builder's, or ``build(split, data_dir)``'s when
    ``build`` is given (for a generated data set that makes a small split directly).
    """

    def shrink(
        name: str,
        sizes: Mapping[str, int],
        build: Callable[[str, Path | None], tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> str:
        info, registered = reg._REGISTRY[name]
        small = dataclasses.replace(info, splits=tuple(sizes.items()))

        def first_samples(split: str, data_dir: Path | None) -> tuple[torch.Tensor, torch.Tensor]:
            x, y = registered(split, data_dir)
            return x[: sizes[split]], y[: sizes[split]]

        monkeypatch.setattr(reg, "_REGISTRY", {**reg._REGISTRY, name: (small, build or first_samples)})
        return name

    return shrink


@pytest.fixture
def cli_json(capsys: pytest.CaptureFixture[str]) -> Callable[[list[str]], dict]:
    """``cli_json(argv)``: runs ``spikeforge <argv> --json``, checks that it succeeded and returns ``result``."""

    def run(argv: list[str]) -> dict:
        code = cli.main([*argv, "--json"])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        envelope = json.loads(captured.out)
        assert envelope["ok"]
        return envelope["result"]

    return run


@pytest.fixture
def cli_error(capsys: pytest.CaptureFixture[str]) -> Callable[[list[str]], str]:
    """``cli_error(argv)``: runs ``spikeforge <argv>``, checks that it failed without a traceback, returns stderr."""

    def run(argv: list[str]) -> str:
        code = cli.main(argv)
        err = capsys.readouterr().err
        assert code != 0
        assert "Traceback" not in err
        return err

    return run
