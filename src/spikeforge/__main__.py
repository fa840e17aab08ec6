"""``python -m spikeforge``: the same command line as the ``spikeforge`` console script."""

from __future__ import annotations

from spikeforge.cli import console

if __name__ == "__main__":
    console()
