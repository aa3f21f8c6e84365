from __future__ import annotations

from pathlib import Path

import pytest

from config.errors import ConfigError


def test_message_is_field_then_reason() -> None:
    error = ConfigError("limits.frame_bytes_max", "too big")
    assert str(error) == "limits.frame_bytes_max: too big"
    assert (error.field, error.reason) == ("limits.frame_bytes_max", "too big")
    assert isinstance(error, ValueError)
    assert str(ConfigError("", "whole file")) == "whole file"


@pytest.mark.parametrize(
    ("prefix", "field", "expected"),
    [
        ("genesis", "chain_id", "genesis.chain_id"),
        ("genesis.validators[2]", "public_key", "genesis.validators[2].public_key"),
        ("genesis.validators", "[2].name", "genesis.validators[2].name"),
        ("genesis", "", "genesis"),
        ("", "limits.frame_bytes_max", "limits.frame_bytes_max"),
    ],
)
def test_under_joins_paths(prefix: str, field: str, expected: str) -> None:
    assert ConfigError(field, "r").under(prefix).field == expected


def test_in_file_prefixes_the_path() -> None:
    path = Path("/etc/node.toml")
    assert str(ConfigError("log.level", "bad").in_file(path)) == "/etc/node.toml: log.level: bad"
    assert str(ConfigError("", "bad").in_file(path)) == "/etc/node.toml: bad"
