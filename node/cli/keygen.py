"""`assetledger keygen`: create an Ed25519 key file."""

from __future__ import annotations

from pathlib import Path

import click

from config.keyfile import KeyFileError, generate_key_file
from node.cli.errors import UserError
from node.cli.output import emit_json


@click.command()
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help="Key file to create (mode 0600).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def keygen(out: Path, as_json: bool) -> None:
    """Create an Ed25519 key file readable only by its owner and print its public key."""
    try:
        key = generate_key_file(out)
    except KeyFileError as exc:
        raise UserError(str(exc)) from exc
    public = key.verify_key.encode().hex()
    if as_json:
        emit_json({"public_key": public, "path": str(out)})
    else:
        click.echo(f"public key: {public}")
        click.echo(f"written to: {out} (mode 0600)")
