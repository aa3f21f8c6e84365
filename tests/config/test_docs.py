"""docs/configuration.md must stay true: its examples load, its tables match the code."""

from __future__ import annotations

import dataclasses
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
    assert (cfg.limits.log_window_seqs, cfg.limits.peer_frame_bytes_max) == (64, 32 << 20)
    assert cfg.timeouts.clock_skew_max_ms == 10_000


@pytest.mark.parametrize(
    ("defaults", "bounds"), [(Limits(), LIMIT_BOUNDS), (Timeouts(), TIMEOUT_BOUNDS_MS)]
)
def test_tables_match_defaults_and_bounds(
    defaults: object, bounds: dict[str, tuple[int, int]]
) -> None:
    for name, (lo, hi) in bounds.items():
        row = f"| `{name}` | {getattr(defaults, name)} | {lo}..{hi}"
        assert row in DOC, f"docs/configuration.md lacks or misstates: {row}"


@pytest.mark.parametrize(("section", "cls"), [("limits", Limits), ("timeouts", Timeouts)])
def test_tables_list_exactly_the_fields(section: str, cls: type) -> None:
    # A renamed or removed field must not leave a stale row behind.
    table = DOC.split(f"`[{section}]` (optional;", 1)[1].split("\n\n", 2)[1]
    rows = re.findall(r"^\| `([a-z_]+)` \|", table, re.M)
    assert rows == [f.name for f in dataclasses.fields(cls)]
