"""Balance writes journalled in a small table in front of the large balances tree.

Why: at 1,000,000 accounts a block of random transfers writes ~2,000 balances, and they land
on ~1,900 distinct leaves of a ~13,800-leaf tree, so every block copies, writes back and
syncs ~8 MB of pages; at 10,000 accounts the same writes share ~400 leaves
(docs/benchmarks.md, rounds 9 and 10). So while the balances tree is large (at least
`journal_from_entries`), a block's balance writes go into the `balances_recent` table
instead: at most ~1,100 leaves when full, so a block's writes share its pages far more (the
1M commit fell from 32-43 to 24-25 ms).

The sweep: once the journal holds more than `journal_entries_max` entries, the block that
put it over moves the excess into the tree: the next journal entries in key order after
where the previous sweep stopped (a key kept in `meta`), wrapping around at the end. So the
tree's leaves are dirtied a key range at a time, each about once per turn of the sweep, as
often as a whole-journal merge would dirty them, but spread over the blocks: a merge of the
full journal wrote back most of the tree (~55 MB at 1M) in one block's commit, one block in
~33 (docs/benchmarks.md, round 13). All of it happens inside the block's write transaction,
so a crash leaves the tables and the sweep key as they were before that block.

One rule keeps every read right: a balance's current value is in the recent table if it is
there, else in the tree. Writing straight to the tree (while it is small, where the journal
does not pay) first merges a non-empty journal, so the rule also holds when the mode changes
between blocks or between runs with other limits.

Layout only: receipts, state digests and every query are the same with or without it
(tests/node/ledger/test_balance_journal.py). Balances are never deleted (a zero balance is
stored as 0), so the journal needs no tombstones.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from node.ledger import keys as kl
from node.ledger.txn import Txn

SWEEP_CHUNK_ENTRIES = 65_536  # entries moved per putmulti: bounds a sweep's memory


def stored(txn: Txn, dbs: dict[str, Any], key: bytes) -> bytes | None:
    """The stored value of balance `key` (encoded), or None: the journal first."""
    raw = txn.get(key, None, dbs[kl.BALANCES_RECENT])
    return txn.get(key, None, dbs[kl.BALANCES]) if raw is None else raw


def scan(txn: Txn, dbs: dict[str, Any], prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
    """Every stored (key, value) whose key starts with `prefix`, in key order, the
    journal's value winning over the tree's."""
    merged = dict(_range(txn, dbs[kl.BALANCES], prefix))
    merged.update(_range(txn, dbs[kl.BALANCES_RECENT], prefix))
    return iter(sorted(merged.items()))


def tree_then_journal(txn: Txn, dbs: dict[str, Any]) -> Iterator[tuple[bytes, bytes]]:
    """Every stored (key, value), the tree's first and then the journal's, so that filling a
    dict in this order leaves each key's current value (a key may come twice). Streams: the
    warm-up at open reads a million balances this way."""
    return itertools.chain(txn.cursor(db=dbs[kl.BALANCES]), txn.cursor(db=dbs[kl.BALANCES_RECENT]))


def entries(txn: Txn, dbs: dict[str, Any]) -> int:
    """Records in both tables: at least the number of distinct balances (the warm-up bound)."""
    return int(txn.stat(dbs[kl.BALANCES])["entries"] + txn.stat(dbs[kl.BALANCES_RECENT])["entries"])


def put(
    txn: Txn,
    dbs: dict[str, Any],
    items: list[tuple[bytes, bytes]],
    *,
    entries_max: int,
    from_entries: int,
) -> None:
    """Write one block's balances (key-sorted) into the journal, sweeping what exceeds
    `entries_max` into the tree, or, while the tree is smaller than `from_entries` (or
    `entries_max` is 0), into the tree."""
    tree, recent = dbs[kl.BALANCES], dbs[kl.BALANCES_RECENT]
    if entries_max and txn.stat(tree)["entries"] >= from_entries:
        txn.cursor(db=recent).putmulti(items)
        excess = txn.stat(recent)["entries"] - entries_max
        if excess > 0:
            sweep(txn, dbs, excess)
        return
    merge(txn, dbs)  # the rule above: nothing in the journal may shadow a direct write
    txn.cursor(db=tree).putmulti(items)


def sweep(txn: Txn, dbs: dict[str, Any], count: int) -> int:
    """Move `count` journal entries into the tree: the next ones in key order after where the
    previous sweep stopped, wrapping around. Returns how many moved. In chunks of
    SWEEP_CHUNK_ENTRIES, so a large excess (after a restart with a smaller bound) does not
    hold all of it in memory at once."""
    recent, meta = dbs[kl.BALANCES_RECENT], dbs[kl.META]
    cursor = txn.cursor(db=recent)
    tree = txn.cursor(db=dbs[kl.BALANCES])
    positioned = cursor.set_range(txn.get(kl.META_BALANCE_SWEEP, b"", meta)) or cursor.first()
    total = 0
    while positioned and total < count:
        moved: list[tuple[bytes, bytes]] = []
        while positioned and len(moved) < min(count - total, SWEEP_CHUNK_ENTRIES):
            moved.append((cursor.key(), cursor.value()))
            cursor.delete()  # moves to the next entry; past the last one, key() is empty
            positioned = bool(cursor.key()) or cursor.first()
        tree.putmulti(moved)
        total += len(moved)
        # The smallest key after the last one moved: where the next sweep starts.
        txn.put(kl.META_BALANCE_SWEEP, moved[-1][0] + b"\x00", db=meta)
    return total


def merge(txn: Txn, dbs: dict[str, Any]) -> int:
    """Move the journal into the tree (one sorted bulk put) and empty it; returns how many
    balances moved."""
    recent = dbs[kl.BALANCES_RECENT]
    if not txn.stat(recent)["entries"]:
        return 0
    items = list(txn.cursor(db=recent))
    txn.cursor(db=dbs[kl.BALANCES]).putmulti(items)
    txn.drop(recent, delete=False)
    return len(items)


def _range(txn: Txn, db: Any, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
    cursor = txn.cursor(db=db)
    if not cursor.set_range(prefix):
        return
    for key, value in cursor:
        if not key.startswith(prefix):
            return
        yield bytes(key), bytes(value)
