"""A bucketed log in front of a large tree of random keys: the balances, and the history heads.

Why: at 1,000,000 accounts a block of random transfers writes ~2,000 balances and ~2,000
heads, and they land on ~2,000 distinct leaves of each tree, so every block copies, writes
back and syncs a page per write; at 10,000 accounts the same writes share a few hundred
(docs/benchmarks.md, rounds 9, 10 and 16-18). So while a tree is large (at least
`from_entries`), a block's writes go into its log instead, one record per bucket of
accounts:

    <tree>_log   bucket (1 byte) ‖ height (8 bytes) -> msgpack map {key: value}

The bucket is the high bits of the account's first byte (every key ends with the account),
so a block's records are appends, one at the end of each bucket's range: a block dirties
about one leaf per bucket. Each block then sweeps ONE bucket, `height % buckets`: it merges
that bucket's records into the tree (the newest value wins) and deletes them. So a bucket
holds at most `buckets` records, the log about `buckets`² / 2, and a block dirties one
bucket's slice of the tree instead of a leaf per write (docs/benchmarks.md, round 18). All of
it happens inside the block's write transaction: a crash leaves the log and tree as they were.

Reading: a key's value is in the newest record of its bucket that holds it, else in the tree.
Two ways to find it:
- `LogTables.read_at`, at any snapshot: the key's bucket's records, newest first, decoded
  until one holds it (at most `buckets` small records). Queries use it; so does anything
  that reads a store it did not write.
- `BucketLog.read`, through an in-memory index of every key in the log (key -> height of
  its newest record, value), for evaluation and admission, which read thousands of keys
  a second. The index runs ahead of readers: the writer updates it as it puts, before its
  commit. So an entry newer than the reader's snapshot sends it to `read_at`, and a swept
  key leaves the index only once no reader holds a snapshot from before that sweep
  (`Readers`): until then such a reader, missing the key, would read the old tree.
An aborted write transaction's index updates are undone (`aborted`).

Layout only: receipts, state digests, histories and every query are the same with or
without the log (tests/node/ledger/test_bucket_log.py, test_history.py). Neither balances
(a zero balance is stored as 0) nor heads are ever deleted, so a log needs no tombstones.
"""

from __future__ import annotations

import operator
import threading
from bisect import bisect_left
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import msgpack

from config.node_config import LOG_BUCKETS_ALLOWED as BUCKETS_ALLOWED  # 0: off
from node.ledger import keys as kl
from node.ledger.errors import LedgerCorruptError
from node.ledger.records import decode_int, encode_int
from node.ledger.txn import Txn

_BUCKET = kl.KEY_BYTES  # a key's bucket comes from the byte this far from its end
_RECORD_KEY_BYTES = 1 + kl.HEIGHT_BYTES
_PAST_LAST = b"\xff" * (kl.KEY_BYTES + 1)  # after every account under a prefix
_first = operator.itemgetter(0)
_second = operator.itemgetter(1)


def _unpack(raw: bytes) -> dict[bytes, bytes]:
    record = msgpack.unpackb(raw, strict_map_key=False)
    if type(record) is not dict:
        raise LedgerCorruptError("a log record is not a map")
    return record


def _shift(buckets: int) -> int:
    """Right shift of a key's bucket byte that leaves log2(buckets) high bits."""
    return 8 - (buckets.bit_length() - 1)


@dataclass(frozen=True, slots=True)
class LogTables:
    """Where one tree's log lives, and the reads any snapshot can make of it: stateless.
    The bucket count is in `meta` (`buckets_key`): the store describes its own layout."""

    tree: str
    log: str
    buckets_key: bytes

    def stored_buckets(self, txn: Txn, dbs: dict[str, Any]) -> int:
        raw = txn.get(self.buckets_key, None, dbs[kl.META])
        return 0 if raw is None else decode_int(raw)

    def read_at(self, txn: Txn, dbs: dict[str, Any], key: bytes) -> bytes | None:
        """The value of `key` at `txn`'s snapshot, or None: its bucket's records newest
        first, then the tree."""
        found = self.newest_at(txn, dbs, key)
        if found is not None:
            return found[1]
        raw = txn.get(key, None, dbs[self.tree])
        return None if raw is None else bytes(raw)

    def newest_at(self, txn: Txn, dbs: dict[str, Any], key: bytes) -> tuple[int, bytes] | None:
        """(height of the newest record holding `key`, its value) at `txn`'s snapshot."""
        buckets = self.stored_buckets(txn, dbs)
        if not buckets:
            return None
        bucket = key[-_BUCKET] >> _shift(buckets)
        cursor = txn.cursor(db=dbs[self.log])
        # Position on the bucket's last record: before the next bucket's first, or the last.
        if bucket + 1 < 256 and cursor.set_range(bytes([bucket + 1])):
            positioned = cursor.prev()
        else:
            positioned = cursor.last()
        while positioned:
            record_key = cursor.key()
            if record_key[0] != bucket:
                break
            value = _unpack(cursor.value()).get(key)
            if value is not None:
                return int.from_bytes(record_key[1:], "big"), value
            positioned = cursor.prev()
        return None

    def records(self, txn: Txn, dbs: dict[str, Any]) -> Iterator[tuple[int, dict[bytes, bytes]]]:
        """Every record as (height, entries), by bucket and then height: filling a dict in
        this order leaves each key's newest logged value (a key lives in one bucket)."""
        for record_key, raw in txn.cursor(db=dbs[self.log]):
            if len(record_key) != _RECORD_KEY_BYTES:
                raise LedgerCorruptError(f"log key {bytes(record_key).hex()} is malformed")
            yield int.from_bytes(record_key[1:], "big"), _unpack(raw)

    def tree_then_log(self, txn: Txn, dbs: dict[str, Any]) -> Iterator[tuple[bytes, bytes]]:
        """Every stored (key, value), the tree's first and then the log's, so that filling
        a dict in this order leaves each key's current value (a key may come twice).
        Streams the tree: the warm-ups at open read a million entries this way."""
        yield from txn.cursor(db=dbs[self.tree])
        for _, entries in self.records(txn, dbs):
            yield from entries.items()

    def scan(
        self, txn: Txn, dbs: dict[str, Any], prefix: bytes = b""
    ) -> Iterator[tuple[bytes, bytes]]:
        """Every stored (key, value) whose key starts with `prefix`, in key order, the
        log's value winning over the tree's. Decodes the whole log: for audits."""
        merged: dict[bytes, bytes] = {}
        cursor = txn.cursor(db=dbs[self.tree])
        if cursor.set_range(prefix):
            for key, value in cursor:
                if not key.startswith(prefix):
                    break
                merged[bytes(key)] = bytes(value)
        for _, entries in self.records(txn, dbs):
            merged.update((k, v) for k, v in entries.items() if k.startswith(prefix))
        return iter(sorted(merged.items()))

    def merge_all(self, txn: Txn, dbs: dict[str, Any]) -> int:
        """Move every record into the tree and empty the log; returns the keys moved."""
        merged: dict[bytes, bytes] = {}
        for _, entries in self.records(txn, dbs):
            merged.update(entries)
        if merged:
            txn.cursor(db=dbs[self.tree]).putmulti(sorted(merged.items()))
        txn.drop(dbs[self.log], delete=False)
        return len(merged)


class Readers:
    """The snapshots readers of a log's index may hold, so a swept key stays in the index
    until none of them predates the sweep (see the module docstring).

    A reader registers the last committed height it knows of BEFORE it begins its read
    transaction, so its snapshot is at least that height; the floor is the lowest
    registered height, or the committed height when nobody reads."""

    __slots__ = ("_active", "_committed", "_lock")

    def __init__(self, committed: int) -> None:
        self._lock = threading.Lock()
        self._active: Counter[int] = Counter()
        self._committed = committed

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._lock:
            registered = self._committed
            self._active[registered] += 1
        try:
            yield
        finally:
            with self._lock:
                self._active[registered] -= 1
                if not self._active[registered]:
                    del self._active[registered]

    def committed(self, height: int) -> int:
        """(Writer, after a commit of blocks up to `height`.) The floor: every reader's
        snapshot is at least this height."""
        with self._lock:
            self._committed = height
            return min(self._active, default=height)


class BucketLog:
    """One tree's log as its writer keeps it: the tables, the bucket count, and the index of
    every key in the log (see the module docstring). The writer calls `put` once per block
    (every block sweeps, even one without writes) and then `committed` or `aborted`."""

    __slots__ = (
        "_index",
        "_logging",
        "_published",
        "_removals",
        "_staged",
        "_swept",
        "buckets",
        "from_entries",
        "tables",
    )

    def __init__(self, tables: LogTables, *, buckets: int, from_entries: int) -> None:
        if buckets not in BUCKETS_ALLOWED:
            raise ValueError(f"buckets must be one of {BUCKETS_ALLOWED}, not {buckets}")
        if from_entries < 0:
            raise ValueError(f"from_entries must be at least 0, not {from_entries}")
        self.tables = tables
        self.buckets = buckets
        self.from_entries = from_entries
        # key -> (height of its newest record, value), for every committed record up to
        # block `_published`. Written by the writer thread only; readers only `get`.
        self._index: dict[bytes, tuple[int, bytes]] = {}
        self._published = 0
        self._logging = False  # once the log is in use it stays so while open
        self._staged: dict[bytes, tuple[int, bytes]] = {}  # the open transaction's records
        self._swept: list[tuple[int, list[bytes]]] = []  # the open transaction's sweeps
        self._removals: deque[tuple[int, list[bytes]]] = deque()  # committed sweeps

    def __len__(self) -> int:
        """Keys in the index: in the log, or swept and not yet forgotten."""
        return len(self._index)

    # ------------------------------------------------------------------ open

    def open(self, txn: Txn, dbs: dict[str, Any], height: int) -> int:
        """(In the write transaction that opens the store, at block `height`.) Merge a log
        written with another bucket count (or with the log now off) into the tree, record
        the count, and build the index. Returns the keys merged."""
        tables = self.tables
        merged = 0
        if tables.stored_buckets(txn, dbs) != self.buckets:
            merged = tables.merge_all(txn, dbs)
            txn.put(tables.buckets_key, encode_int(self.buckets), db=dbs[kl.META])
        index: dict[bytes, tuple[int, bytes]] = {}
        for record_height, entries in tables.records(txn, dbs):
            index.update(zip(entries, zip(repeat(record_height), entries.values()), strict=True))
        self._index = index
        self._published = height
        self._logging = bool(index) or bool(
            self.buckets and txn.stat(dbs[tables.tree])["entries"] >= self.from_entries
        )
        self._staged.clear()
        self._swept.clear()
        self._removals.clear()
        return merged

    def entries(self, txn: Txn, dbs: dict[str, Any]) -> int:
        """Keys in the tree plus keys in the log: at least the distinct keys (a warm-up's
        bound)."""
        return int(txn.stat(dbs[self.tables.tree])["entries"]) + len(self._index)

    # ------------------------------------------------------------------ reads

    def read(self, txn: Txn, dbs: dict[str, Any], key: bytes, snapshot: int) -> bytes | None:
        """The value of `key` at `txn`, whose snapshot is block `snapshot`, for a reader
        registered with `Readers.reading` before `txn` began."""
        # `_published` first: the writer fills the index before it raises `_published`.
        if snapshot > self._published:  # committed, not yet in the index: rare
            return self.tables.read_at(txn, dbs, key)
        entry = self._index.get(key)
        if entry is None:
            raw = txn.get(key, None, dbs[self.tables.tree])
            return None if raw is None else bytes(raw)
        if entry[0] <= snapshot:
            return entry[1]
        return self.tables.read_at(txn, dbs, key)  # the index is ahead of this snapshot

    def read_own(self, txn: Txn, dbs: dict[str, Any], key: bytes) -> bytes | None:
        """The value of `key` in the writer's open transaction `txn`: its own records, then
        the index (which forgets a key only once its sweep committed), then the tree."""
        entry = self._staged.get(key) or self._index.get(key)
        if entry is not None:
            return entry[1]
        raw = txn.get(key, None, dbs[self.tables.tree])
        return None if raw is None else bytes(raw)

    # ------------------------------------------------------------------ writes

    def put(
        self, txn: Txn, dbs: dict[str, Any], height: int, items: list[tuple[bytes, bytes]]
    ) -> None:
        """Block `height`'s writes `items` (key-sorted; may be empty): into the log, then
        sweep one bucket; or straight into the tree while the log is not in use."""
        tables = self.tables
        if not self._logging:
            if not self.buckets or txn.stat(dbs[tables.tree])["entries"] < self.from_entries:
                if items:
                    txn.cursor(db=dbs[tables.tree]).putmulti(items)
                return
            self._logging = True
        if items:
            records = self._records(items, kl.height_key(height))
            _, added = txn.cursor(db=dbs[tables.log]).putmulti(records, overwrite=False)
            if added != len(records):
                raise LedgerCorruptError(f"the {tables.tree} log already holds block {height}")
            self._staged.update(
                zip(map(_first, items), zip(repeat(height), map(_second, items)), strict=True)
            )
        self._sweep(txn, dbs, height % self.buckets, height)

    def _records(
        self, items: list[tuple[bytes, bytes]], suffix: bytes
    ) -> list[tuple[bytes, bytes]]:
        """`items` as one record per bucket, keyed bucket ‖ `suffix`. The keys are sorted,
        so a bucket's keys under one prefix (an asset's balances; the heads have none) are
        one run of them: found by bisection, not key by key."""
        keys = list(map(_first, items))
        if keys != sorted(keys):
            raise ValueError("a block's log entries must be sorted by key")
        shift, last = _shift(self.buckets), self.buckets - 1
        groups: dict[int, list[tuple[bytes, bytes]]] = {}
        start, count = 0, len(keys)
        while start < count:
            key = keys[start]
            prefix, bucket = key[:-_BUCKET], key[-_BUCKET] >> shift
            bound = prefix + (bytes([(bucket + 1) << shift]) if bucket < last else _PAST_LAST)
            end = bisect_left(keys, bound, start + 1, count)
            group = groups.get(bucket)
            if group is None:
                groups[bucket] = items[start:end]
            else:
                group += items[start:end]
            start = end
        pack = msgpack.Packer(use_bin_type=True).pack_map_pairs  # local: not thread-safe
        return [(bytes([b]) + suffix, pack(groups[b])) for b in sorted(groups)]

    def _sweep(self, txn: Txn, dbs: dict[str, Any], bucket: int, height: int) -> None:
        """Move bucket `bucket`'s records into the tree (in height order: the newest wins)."""
        prefix = bytes([bucket])
        cursor = txn.cursor(db=dbs[self.tables.log])
        merged: dict[bytes, bytes] = {}
        records = 0
        if cursor.set_range(prefix):
            for record_key, raw in cursor:
                if record_key[0] != bucket:
                    break
                merged.update(_unpack(raw))
                records += 1
        if not records:
            return
        cursor.set_range(prefix)
        for _ in range(records):
            cursor.delete()  # moves to the next record
        txn.cursor(db=dbs[self.tables.tree]).putmulti(sorted(merged.items()))
        self._swept.append((height, list(merged)))

    def committed(self, height: int, floor: int) -> None:
        """(Writer.) The open write transaction committed blocks up to `height`, and every
        reader's snapshot is at least block `floor` (`Readers.committed`): publish its
        records to the index, then forget the keys swept at or below `floor`."""
        index = self._index
        index.update(self._staged)
        self._published = height  # after the index holds them (see `read`)
        self._staged.clear()
        removals = self._removals
        removals += self._swept
        self._swept.clear()
        while removals and removals[0][0] <= floor:
            swept_at, keys = removals.popleft()
            for key in keys:
                entry = index.get(key)
                if entry is not None and entry[0] <= swept_at:  # not written since
                    del index[key]

    def aborted(self) -> None:
        """(Writer.) The open write transaction was aborted: forget what it logged."""
        self._staged.clear()
        self._swept.clear()


BALANCES = LogTables(kl.BALANCES, kl.BALANCES_LOG, kl.META_BALANCE_LOG_BUCKETS)
HISTORY_HEADS = LogTables(kl.HISTORY_HEADS, kl.HISTORY_HEADS_LOG, kl.META_HEADS_LOG_BUCKETS)
