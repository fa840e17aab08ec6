"""``python -m spikeforge``: the same command line as the ``spikeforge`` console script."""

from __future__ import annotations

import sys

from spikeforge.cli import main

if __name__ == "__main__":
    sys.exit(main())
