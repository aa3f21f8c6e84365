"""Fixtures for the config tests; the sample data lives in tests/config/samples.py."""

from __future__ import annotations

from typing import Any

import pytest

from tests.config.samples import genesis_dict, node_dict


@pytest.fixture
def genesis_data() -> dict[str, Any]:
    return genesis_dict()


@pytest.fixture
def node_data() -> dict[str, Any]:
    return node_dict()
