"""Ledger errors: operating errors of the caller (wrong block, wrong data dir), never tx rejections.

A transaction that breaks a rule is not an error; it gets a rejected receipt.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every ledger error."""


class GenesisMismatchError(LedgerError):
    """The data directory belongs to another chain or another genesis."""


class BlockError(LedgerError):
    """A block cannot be applied (wrong height, time going backwards, too many txs...).

    Raised before anything is written: the store is unchanged.
    """


class LedgerSchemaError(LedgerError):
    """The data directory was written by a later build (a newer store layout). Nothing was
    read or written; run that build or a later one."""


class LedgerCorruptError(LedgerError):
    """The store contradicts itself (missing meta, bad record). Our bug or disk damage."""


class LedgerFullError(LedgerError):
    """The LMDB map is full. Nothing of what was being written (a block, the consensus
    state, the genesis or a schema upgrade) was written; raise `map_size_bytes`."""
