"""`python -m node.cli ...` runs the `assetledger` command (used to launch node processes)."""

from node.cli.main import main

main()
