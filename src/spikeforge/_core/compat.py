"""Names from newer Pythons, importable on every supported one (>= 3.10)."""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    from typing import Unpack
else:  # typing_extensions is always installed with torch
    from typing_extensions import Unpack

__all__ = ["Unpack"]
