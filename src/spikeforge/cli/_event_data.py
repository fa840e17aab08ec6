"""The first use of an emulated event data set (``nfashion_mnist``, ``nmnist_10k``): generate and cache it
with a progress bar on stderr before the command loads it (minutes, once; later runs read the cache)."""

from __future__ import annotations

import sys

__all__ = ["prepare_event_data"]


def prepare_event_data(dataset: str, data_dir: str | None, *, quiet: bool) -> None:
    """Generate ``dataset``'s cache now if it is an event data set whose cache is missing (no-op otherwise)."""
    from spikeforge.data.nfashion_mnist import EVENT_DATASETS
    from spikeforge.data.nfashion_mnist import is_prepared
    from spikeforge.data.nfashion_mnist import prepare

    if dataset not in EVENT_DATASETS or is_prepared(dataset, data_dir):
        return
    if quiet:
        prepare(dataset, data_dir)
        return
    from rich.progress import BarColumn
    from rich.progress import MofNCompleteColumn
    from rich.progress import Progress
    from rich.progress import TextColumn
    from rich.progress import TimeElapsedColumn

    from spikeforge.cli._console import console_for

    # no refresh thread: the generation forks worker processes
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console_for(sys.stderr), auto_refresh=False, transient=True) as bar:
        task = bar.add_task(f"generating {dataset} (first use; cached for later runs)", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)
            bar.refresh()

        prepare(dataset, data_dir, progress=update)
