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
  its newest record, value), for evaluation and admission, which read thousands of keys a
  second. The writer publishes a transaction's records to the index after its commit, then
  raises the published height: a reader whose snapshot is past it, or whose key's entry is
  newer than its snapshot, reads at its snapshot instead. An aborted transaction's records
  are never published.
The index is kept per bucket, in generations: a sweep of a bucket retires the bucket's
current dict whole (its keys are in the tree now) and starts a new one. A retired dict is
dropped, in one step, once no reader holds a snapshot from before the sweep (node/ledger/readers.py): until
then such a reader, missing the key, would read the old tree. (Deleting the swept keys one by
one cost ~3 ms of the writer's time a commit at 1,000,000 accounts.)

Layout only: receipts, state digests, histories and every query are the same with or
without the log (tests/node/ledger/test_bucket_log.py, test_history.py). Neither balances
(a zero balance is stored as 0) nor heads are ever deleted, so a log needs no tombstones.
"""

from __future__ import annotations

import operator
from bisect import bisect_left
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
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
        buckets = self.stored_buckets(txn, dbs)
        if not buckets:
            return self.tree_value(txn, dbs, key)
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
                return value
            positioned = cursor.prev()
        return self.tree_value(txn, dbs, key)

    def tree_value(self, txn: Txn, dbs: dict[str, Any], key: bytes) -> bytes | None:
        """The tree's value of `key` at `txn`, or None (the log not consulted)."""
        raw = txn.get(key, None, dbs[self.tree])
        return None if raw is None else bytes(raw)

    def records(self, txn: Txn, dbs: dict[str, Any]) -> Iterator[tuple[int, dict[bytes, bytes]]]:
        """Every record as (height, entries), by bucket and then height: filling a dict in
        this order leaves each key's newest logged value (a key lives in one bucket)."""
        for record_key, entries in self.keyed_records(txn, dbs):
            yield int.from_bytes(record_key[1:], "big"), entries

    def keyed_records(
        self, txn: Txn, dbs: dict[str, Any]
    ) -> Iterator[tuple[bytes, dict[bytes, bytes]]]:
        """Every record as (bucket ‖ height, entries), in key order."""
        for record_key, raw in txn.cursor(db=dbs[self.log]):
            if len(record_key) != _RECORD_KEY_BYTES:
                raise LedgerCorruptError(f"log key {bytes(record_key).hex()} is malformed")
            yield bytes(record_key), _unpack(raw)

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

    def sweep(self, txn: Txn, dbs: dict[str, Any], bucket: int) -> None:
        """Move bucket `bucket`'s records into the tree (in height order: the newest wins)."""
        prefix = bytes([bucket])
        cursor = txn.cursor(db=dbs[self.log])
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
        # Sorted by key alone: comparing the pairs took 0.5 ms of 2,000, the keys 0.3.
        txn.cursor(db=dbs[self.tree]).putmulti(sorted(merged.items(), key=_first))

    def merge_all(self, txn: Txn, dbs: dict[str, Any]) -> None:
        """Move every record into the tree, whatever bucket count wrote them."""
        for bucket in range(256):
            self.sweep(txn, dbs, bucket)


class _Generation:
    """A bucket's index since one sweep: its records block by block (height, entries),
    oldest first, and their entries merged (each key's newest value)."""

    __slots__ = ("groups", "merged")

    def __init__(self) -> None:
        self.groups: list[tuple[int, dict[bytes, bytes]]] = []
        self.merged: dict[bytes, bytes] = {}

    def add(self, height: int, entries: dict[bytes, bytes]) -> None:
        self.merged.update(entries)
        self.groups.append((height, entries))


class BucketLog:
    """One tree's log as its writer keeps it: the tables, the bucket count, and the index of
    every key in the log (see the module docstring). The writer calls `put` once per block
    (every block sweeps, even one without writes) and then `committed` or `aborted`."""

    __slots__ = (
        "_current",
        "_logging",
        "_published",
        "_retired",
        "_retiring",
        "_seq",
        "_shift",
        "_staged",
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
        self._shift = _shift(buckets) if buckets else 8
        # The index, per bucket: the generation since the bucket's last sweep, and those
        # retired by sweeps that a reader may still need (oldest first). Up to block
        # `_published`. Written by the writer thread only; readers only look up.
        self._current: list[_Generation] = []
        self._retired: list[list[_Generation]] = []
        self._retiring: deque[tuple[int, int]] = deque()  # (swept at, bucket), oldest first
        self._published = 0
        self._seq = 0  # odd while the writer publishes (a sequence lock for `read`)
        self._logging = False  # once the log is in use it stays so while open
        # The open transaction's blocks: (height, its records per bucket, bucket swept).
        self._staged: list[tuple[int, dict[int, dict[bytes, bytes]], int]] = []
        self._reset()

    def _reset(self) -> None:
        slots = max(self.buckets, 1)
        self._current = [_Generation() for _ in range(slots)]
        self._retired = [[] for _ in range(slots)]
        self._retiring.clear()
        self._staged.clear()

    def __len__(self) -> int:
        """Keys in the index: in the log, or swept and not yet forgotten (a key in two
        generations counts twice)."""
        return sum(len(g.merged) for g in self._current) + sum(
            len(g.merged) for r in self._retired for g in r
        )

    def indexed(self) -> dict[bytes, bytes]:
        """The index flattened, each key's newest value: for tests and diagnostics."""
        out: dict[bytes, bytes] = {}
        for current, retired in zip(self._current, self._retired, strict=True):
            for generation in (*retired, current):
                out.update(generation.merged)
        return out

    # ------------------------------------------------------------------ open

    def open(self, txn: Txn, dbs: dict[str, Any], height: int) -> None:
        """(In the write transaction that opens the store, at block `height`.) Merge a log
        written with another bucket count (or with the log now off) into the tree, record
        the count, and build the index."""
        tables = self.tables
        if tables.stored_buckets(txn, dbs) != self.buckets:
            tables.merge_all(txn, dbs)
            txn.put(tables.buckets_key, encode_int(self.buckets), db=dbs[kl.META])
        self._reset()
        for record_key, entries in tables.keyed_records(txn, dbs):
            if record_key[0] >= len(self._current):
                raise LedgerCorruptError(f"log key {record_key.hex()} names no bucket")
            self._current[record_key[0]].add(int.from_bytes(record_key[1:], "big"), entries)
        self._published = height
        self._logging = len(self) > 0 or bool(
            self.buckets and txn.stat(dbs[tables.tree])["entries"] >= self.from_entries
        )

    def entries(self, txn: Txn, dbs: dict[str, Any]) -> int:
        """Keys in the tree plus keys in the log: at least the distinct keys (a warm-up's
        bound)."""
        return int(txn.stat(dbs[self.tables.tree])["entries"]) + len(self)

    # ------------------------------------------------------------------ reads

    def read(self, txn: Txn, dbs: dict[str, Any], key: bytes, snapshot: int) -> bytes | None:
        """The value of `key` at `txn`, whose snapshot is block `snapshot`, for a reader
        registered (node/ledger/readers.py) before `txn` began."""
        seq = self._seq  # before `_published`: see `committed`
        published = self._published
        if snapshot > published:  # committed, not yet in the index: rare
            return self.tables.read_at(txn, dbs, key)
        bucket = key[-_BUCKET] >> self._shift
        if snapshot == published and not seq & 1:  # the usual case: the newest values
            # A key swept since its bucket's last generation began is in the tree at this
            # snapshot: the retired generations are for older snapshots only.
            value = self._current[bucket].merged.get(key)
            if self._seq == seq:  # no publication overlapped
                return value if value is not None else self.tables.tree_value(txn, dbs, key)
        # An older snapshot, or a publication under way: the records block by block, the
        # retired generations too (a copy of the list: the writer may drop one).
        for generation in (self._current[bucket], *self._retired[bucket][::-1]):
            if key not in generation.merged:  # `add` fills it before it appends the group
                continue
            for height, entries in reversed(generation.groups):  # appended to, never cut
                if height <= snapshot:
                    value = entries.get(key)
                    if value is not None:
                        return value
        return self.tables.tree_value(txn, dbs, key)

    def read_own(self, txn: Txn, dbs: dict[str, Any], key: bytes) -> bytes | None:
        """The value of `key` in the writer's open transaction `txn`: its own records, newest
        first, then the index (which forgets a key only once its sweep committed), then the
        tree."""
        bucket = key[-_BUCKET] >> self._shift
        for _, groups, _ in reversed(self._staged):
            group = groups.get(bucket)
            if group is not None and key in group:
                return group[key]
        value = self._current[bucket].merged.get(key)  # a swept key is in `txn`'s tree
        return value if value is not None else self.tables.tree_value(txn, dbs, key)

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
        groups = self._groups(items) if items else {}
        if groups:
            suffix = kl.height_key(height)
            pack = msgpack.Packer(use_bin_type=True).pack  # local: a Packer is not thread-safe
            records = [(bytes([b]) + suffix, pack(groups[b])) for b in sorted(groups)]
            _, added = txn.cursor(db=dbs[tables.log]).putmulti(records, overwrite=False)
            if added != len(records):
                raise LedgerCorruptError(f"the {tables.tree} log already holds block {height}")
        swept = height % self.buckets
        self._sweep(txn, dbs, swept)
        self._staged.append((height, groups, swept))

    def _groups(self, items: list[tuple[bytes, bytes]]) -> dict[int, dict[bytes, bytes]]:
        """`items` per bucket. The keys are sorted, so a bucket's keys under one prefix (an
        asset's balances; the heads have none) are one run of them: found by bisection, not
        key by key."""
        keys = list(map(_first, items))
        if keys != sorted(keys):
            raise ValueError("a block's log entries must be sorted by key")
        shift, last = self._shift, self.buckets - 1
        groups: dict[int, dict[bytes, bytes]] = {}
        start, count = 0, len(keys)
        while start < count:
            key = keys[start]
            prefix, bucket = key[:-_BUCKET], key[-_BUCKET] >> shift
            bound = prefix + (bytes([(bucket + 1) << shift]) if bucket < last else _PAST_LAST)
            end = bisect_left(keys, bound, start + 1, count)
            group = groups.get(bucket)
            if group is None:
                groups[bucket] = dict(items[start:end])
            else:
                group.update(items[start:end])
            start = end
        return groups

    def _sweep(self, txn: Txn, dbs: dict[str, Any], bucket: int) -> None:
        """(A seam: tests fail a write right after a sweep.)"""
        self.tables.sweep(txn, dbs, bucket)

    def committed(self, height: int, floor: int) -> None:
        """(Writer.) The open write transaction committed blocks up to `height`, and every
        reader's snapshot is at least block `floor` (node/ledger/readers.py): publish its
        records to the index, block by block, then drop the generations swept at or below
        `floor`."""
        current, retired, retiring = self._current, self._retired, self._retiring
        self._seq += 1  # odd: readers of the newest values check the records' heights
        try:
            for block_height, groups, swept in self._staged:
                for bucket, entries in groups.items():
                    current[bucket].add(block_height, entries)
                if current[swept].groups:
                    retired[swept].append(current[swept])  # before the new one: never missing
                    current[swept] = _Generation()
                    retiring.append((block_height, swept))
            self._published = height  # after the index holds them (see `read`)
        finally:
            self._seq += 1
        self._staged.clear()
        while retiring and retiring[0][0] <= floor:
            _, bucket = retiring.popleft()
            retired[bucket].pop(0)  # its oldest generation

    def aborted(self) -> None:
        """(Writer.) The open write transaction was aborted: forget what it logged."""
        self._staged.clear()


BALANCES = LogTables(kl.BALANCES, kl.BALANCES_LOG, kl.META_BALANCE_LOG_BUCKETS)
HISTORY_HEADS = LogTables(kl.HISTORY_HEADS, kl.HISTORY_HEADS_LOG, kl.META_HEADS_LOG_BUCKETS)
