"""docs/configuration.md must stay true: its examples load, its tables match the code."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

from config.errors import ConfigError
from config.genesis import CONSENSUS_BOUNDS, ConsensusParams, parse_genesis
from config.node_config import (
    LIMIT_BOUNDS,
    MOVED_TO_GENESIS,
    TIMEOUT_BOUNDS_MS,
    Limits,
    Timeouts,
    parse_node_config,
)

DOC = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
EXAMPLES = re.findall(r"```toml\n(.*?)```", DOC, re.S)


def test_examples_load() -> None:
    assert len(EXAMPLES) == 2
    genesis = parse_genesis(tomllib.loads(EXAMPLES[0]))
    assert genesis.assets[0].issuer == genesis.accounts[0].public_key
    assert genesis.consensus == ConsensusParams(checkpoint_interval_seqs=16, log_window_seqs=64)
    cfg = parse_node_config(tomllib.loads(EXAMPLES[1]), base_dir=Path("/etc/assetledger/node-0"))
    assert cfg.data_dir == Path("/etc/assetledger/node-0/data")
    assert cfg.limits.peer_frame_bytes_max == 32 << 20
    assert cfg.timeouts.clock_skew_max_ms == 10_000
    # The example node can run the example chain (the check the node makes at start)...
    cfg.limits.check_chain(genesis.consensus)
    # ...and the comment's figure is the real minimum: 64 x (262144 + 1024) + 2 x 65536.
    with pytest.raises(ConfigError, match=r"expected at least 16973824\)$"):
        Limits().check_chain(genesis.consensus)


def test_consensus_table_matches_the_code() -> None:
    table = DOC.split("`[consensus]` (optional", 1)[1].split("\n\n", 2)[1]
    rows = re.findall(r"^\| `([a-z_]+)` \|", table, re.M)
    assert rows == [f.name for f in dataclasses.fields(ConsensusParams)]
    defaults = ConsensusParams()
    for name, (lo, hi) in CONSENSUS_BOUNDS.items():
        row = f"| `{name}` | integer | {getattr(defaults, name)} | {lo}..{hi}"
        assert row in table, f"docs/configuration.md lacks or misstates: {row}"


def test_moved_keys_are_documented_as_moved() -> None:
    limits_part = DOC.split("`[limits]` (optional;", 1)[1].split("`[timeouts]`", 1)[0]
    for name in MOVED_TO_GENESIS:
        assert f"| `{name}` |" not in limits_part
        assert f"`{name}`" in limits_part  # the note that says where it went


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
