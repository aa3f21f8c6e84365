"""What applying a block does, computed before anything is written.

Applying a block has two phases (node/ledger/store.py): `evaluate` runs every rule against a
read snapshot and produces a BlockEffects (receipts, every record to write, the new state
digest and block hash); `write` puts those records into one LMDB write transaction and
commits it. Splitting them lets the pipeline (node/ledger/pipeline.py) evaluate block N+1
while block N's commit waits on the disk, and keeps the pure part free of LMDB writes.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.ledger.governance_state import GovernanceSnapshot
from node.ledger.history import HistoryItems
from node.ledger.records import Receipt
from node.ledger.view import ViewOverlay, WriteSet

Items = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockEffects:
    height: int
    timestamp_ms: int
    block_hash: bytes
    state_digest: bytes
    receipts: list[Receipt]
    # Everything the state digest covers: state and governance databases and the receipts,
    # {db: [(key, value-or-None), ...] sorted by key}; None deletes.
    write_set: WriteSet
    index_items: Items  # tx id -> position, sorted by key
    history_items: HistoryItems  # (position, tx id, accounts touched), in position order
    block_record: bytes
    certificate: bytes | None
    # For evaluating the next block before this one is committed (pipeline.py):
    overlay: ViewOverlay
    governance_touched: bool  # then the next block waits: governance reads bypass the overlay
    governance_snapshot: GovernanceSnapshot  # the governance state after this block
