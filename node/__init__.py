"""assetledger node: the composition root (ledger, store, runtime, client API, CLI)."""
