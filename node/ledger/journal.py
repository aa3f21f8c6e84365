"""A small journal table in front of a large tree of random keys: the balances, and the
history heads.

Why: at 1,000,000 accounts a block of random transfers writes ~2,000 balances and ~2,000
heads, and they land on ~1,900 distinct leaves of each tree, so every block copies, writes
back and syncs a page per write; at 10,000 accounts the same writes share a few hundred
(docs/benchmarks.md, rounds 9, 10 and 16). So while a tree is large (at least
`from_entries`), a block's writes go into its journal table instead: at most ~1,100 leaves
when full, so a block's writes share its pages far more (the 1M balances' commit fell from
32-43 to 24-25 ms; the heads' at 1M accounts with a history, see round 16).

The sweep: once the journal holds more than `entries_max` entries, the block that put it
over moves the excess into the tree: the next journal entries in key order after where the
previous sweep stopped (a key kept in `meta`), wrapping around at the end. So the tree's
leaves are dirtied a key range at a time, each about once per turn of the sweep, as often as
a whole-journal merge would dirty them, but spread over the blocks: a merge of the full
journal wrote back most of the tree (~55 MB at 1M) in one block's commit, one block in ~33
(docs/benchmarks.md, round 13). All of it happens inside the block's write transaction, so a
crash leaves the tables and the sweep key as they were before that block.

One rule keeps every read right: a key's current value is in the journal if it is there,
else in the tree. Writing straight to the tree (while it is small, where the journal does not
pay) first merges a non-empty journal, so the rule also holds when the mode changes between
blocks or between runs with other limits.

Layout only: receipts, state digests, histories and every query are the same with or
without it (tests/node/ledger/test_journal.py, test_history.py). Neither balances
(a zero balance is stored as 0) nor heads are ever deleted, so a journal needs no tombstones.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from node.ledger import keys as kl
from node.ledger.txn import Txn

SWEEP_CHUNK_ENTRIES = 65_536  # entries moved per putmulti: bounds a sweep's memory


@dataclass(frozen=True, slots=True)
class Journal:
    """The journal of one tree: the two tables' names and the `meta` key of the sweep."""

    tree: str
    recent: str
    sweep_key: bytes

    def stored(self, txn: Txn, dbs: dict[str, Any], key: bytes) -> bytes | None:
        """The stored value of `key`, or None: the journal first."""
        raw = txn.get(key, None, dbs[self.recent])
        return txn.get(key, None, dbs[self.tree]) if raw is None else raw

    def scan(
        self, txn: Txn, dbs: dict[str, Any], prefix: bytes = b""
    ) -> Iterator[tuple[bytes, bytes]]:
        """Every stored (key, value) whose key starts with `prefix`, in key order, the
        journal's value winning over the tree's."""
        merged = dict(_range(txn, dbs[self.tree], prefix))
        merged.update(_range(txn, dbs[self.recent], prefix))
        return iter(sorted(merged.items()))

    def tree_then_journal(self, txn: Txn, dbs: dict[str, Any]) -> Iterator[tuple[bytes, bytes]]:
        """Every stored (key, value), the tree's first and then the journal's, so that filling
        a dict in this order leaves each key's current value (a key may come twice). Streams:
        the warm-ups at open read a million entries this way."""
        return itertools.chain(txn.cursor(db=dbs[self.tree]), txn.cursor(db=dbs[self.recent]))

    def entries(self, txn: Txn, dbs: dict[str, Any]) -> int:
        """Records in both tables: at least the number of distinct keys (the warm-up bound)."""
        return int(txn.stat(dbs[self.tree])["entries"] + txn.stat(dbs[self.recent])["entries"])

    def put(
        self,
        txn: Txn,
        dbs: dict[str, Any],
        items: list[tuple[bytes, bytes]],
        *,
        entries_max: int,
        from_entries: int,
    ) -> None:
        """Write one block's `items` (key-sorted) into the journal, sweeping what exceeds
        `entries_max` into the tree, or, while the tree is smaller than `from_entries` (or
        `entries_max` is 0), into the tree."""
        tree, recent = dbs[self.tree], dbs[self.recent]
        if entries_max and txn.stat(tree)["entries"] >= from_entries:
            txn.cursor(db=recent).putmulti(items)
            excess = txn.stat(recent)["entries"] - entries_max
            if excess > 0:
                self.sweep(txn, dbs, excess)
            return
        self.merge(txn, dbs)  # the rule above: nothing in the journal may shadow a direct write
        txn.cursor(db=tree).putmulti(items)

    def sweep(self, txn: Txn, dbs: dict[str, Any], count: int) -> int:
        """Move `count` journal entries into the tree: the next ones in key order after where
        the previous sweep stopped, wrapping around. Returns how many moved. In chunks of
        SWEEP_CHUNK_ENTRIES, so a large excess (after a restart with a smaller bound) does
        not hold all of it in memory at once."""
        meta = dbs[kl.META]
        cursor = txn.cursor(db=dbs[self.recent])
        tree = txn.cursor(db=dbs[self.tree])
        positioned = cursor.set_range(txn.get(self.sweep_key, b"", meta)) or cursor.first()
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
            txn.put(self.sweep_key, moved[-1][0] + b"\x00", db=meta)
        return total

    def merge(self, txn: Txn, dbs: dict[str, Any]) -> int:
        """Move the journal into the tree (one sorted bulk put) and empty it; returns how
        many entries moved."""
        recent = dbs[self.recent]
        if not txn.stat(recent)["entries"]:
            return 0
        items = list(txn.cursor(db=recent))
        txn.cursor(db=dbs[self.tree]).putmulti(items)
        txn.drop(recent, delete=False)
        return len(items)


BALANCES = Journal(kl.BALANCES, kl.BALANCES_RECENT, kl.META_BALANCE_SWEEP)
HISTORY_HEADS = Journal(kl.HISTORY_HEADS, kl.HISTORY_HEADS_RECENT, kl.META_HEADS_SWEEP)


def _range(txn: Txn, db: Any, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
    cursor = txn.cursor(db=db)
    if not cursor.set_range(prefix):
        return
    for key, value in cursor:
        if not key.startswith(prefix):
            return
        yield bytes(key), bytes(value)
