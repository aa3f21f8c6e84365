"""Top-level `assetledger` command group. Each command lives in its own module."""

from __future__ import annotations

import click

from node.cli.bench import bench
from node.cli.cluster import cluster
from node.cli.demo import demo
from node.cli.keygen import keygen
from node.cli.node_cmd import node_command
from node.cli.query import query
from node.cli.tx import tx


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="assetledger")
def cli() -> None:
    """assetledger: a permissioned PBFT ledger for regulated, tokenized state assets."""


cli.add_command(keygen)
cli.add_command(bench)
cli.add_command(demo)
cli.add_command(node_command)
cli.add_command(tx)
cli.add_command(query)
cli.add_command(cluster)


def main() -> None:
    cli(prog_name="assetledger")
