"""The `assetledger` command line. One module per command group; `main` is the entry point."""

from node.cli.main import main

__all__ = ["main"]
