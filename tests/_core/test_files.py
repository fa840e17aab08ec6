"""The one safe-write helper: atomic, and never writes through a planted symlink."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from spikeforge._core.files import atomic_write
from spikeforge._core.files import atomic_write_bytes
from spikeforge._core.files import save_figure


def test_atomic_write_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_a_symlink_at_the_target_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.pt").symlink_to(victim)
    atomic_write_bytes(run / "best.pt", b"checkpoint")
    assert victim.read_bytes() == b"precious"
    assert not (run / "best.pt").is_symlink() and (run / "best.pt").read_bytes() == b"checkpoint"


def test_a_symlink_at_the_old_predictable_temp_name_is_not_followed(tmp_path: Path) -> None:
    """Earlier versions wrote to ``.NAME.tmp-PID`` with open('wb'); a link planted there redirected the write."""
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    (tmp_path / f".best.pt.tmp-{os.getpid()}").symlink_to(victim)
    atomic_write_bytes(tmp_path / "best.pt", b"checkpoint")
    assert victim.read_bytes() == b"precious" and (tmp_path / "best.pt").read_bytes() == b"checkpoint"


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    target.write_bytes(b"{}")

    def boom(f: object) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic_write(target, boom)
    assert target.read_bytes() == b"{}" and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_save_figure_writes_a_png_and_not_through_a_link(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    (tmp_path / "raster.png").symlink_to(victim)
    fig = Figure()
    FigureCanvasAgg(fig)
    fig.add_subplot(1, 1, 1).plot([0, 1], [1, 0])
    save_figure(fig, tmp_path / "raster.png", format="png")
    assert victim.read_bytes() == b"precious"
    assert (tmp_path / "raster.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
