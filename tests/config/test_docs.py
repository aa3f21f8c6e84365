"""docs/configuration.md must stay true: its examples load, its tables match the code."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from config.genesis import parse_genesis
from config.node_config import LIMIT_BOUNDS, TIMEOUT_BOUNDS_MS, Limits, Timeouts, parse_node_config

DOC = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
EXAMPLES = re.findall(r"```toml\n(.*?)```", DOC, re.S)


def test_examples_load() -> None:
    assert len(EXAMPLES) == 2
    genesis = parse_genesis(tomllib.loads(EXAMPLES[0]))
    assert genesis.assets[0].issuer == genesis.accounts[0].public_key
    cfg = parse_node_config(tomllib.loads(EXAMPLES[1]), base_dir=Path("/etc/assetledger/node-0"))
    assert cfg.data_dir == Path("/etc/assetledger/node-0/data")


@pytest.mark.parametrize(
    ("defaults", "bounds"), [(Limits(), LIMIT_BOUNDS), (Timeouts(), TIMEOUT_BOUNDS_MS)]
)
def test_tables_match_defaults_and_bounds(
    defaults: object, bounds: dict[str, tuple[int, int]]
) -> None:
    for name, (lo, hi) in bounds.items():
        row = f"| `{name}` | {getattr(defaults, name)} | {lo}..{hi}"
        assert row in DOC, f"docs/configuration.md lacks or misstates: {row}"
