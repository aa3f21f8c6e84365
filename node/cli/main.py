"""Top-level `assetledger` command group. Each command lives in its own module."""

from __future__ import annotations

import click

from node.cli.keygen import keygen


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="assetledger")
def cli() -> None:
    """assetledger: a permissioned PBFT ledger for regulated, tokenized state assets."""


cli.add_command(keygen)


def main() -> None:
    cli(prog_name="assetledger")
