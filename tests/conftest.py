"""Shared fixtures. Every fixture is function-scoped; nothing stateful is shared between tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(1234)
