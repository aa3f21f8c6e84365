"""Shared by the CLI tests: regulator keys, running a command, the one-line error check."""

from __future__ import annotations

import click
import nacl.signing
from click.testing import CliRunner, Result

REGULATOR = nacl.signing.SigningKey(b"\x44" * 32)  # the fake backend's regulator key
REGULATOR_2 = nacl.signing.SigningKey(b"\x55" * 32)


def run(group: click.Command, args: list[str]) -> Result:
    return CliRunner().invoke(group, args, catch_exceptions=False)


def one_line_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
