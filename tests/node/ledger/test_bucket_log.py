"""The bucketed logs (node/ledger/bucket_log.py) change where balances and history heads are
stored, nothing else, and their index never gives a reader a value its snapshot does not hold.

The same random blocks go to ledgers that log every balance and head write with two buckets
(a bucket swept every other block), with 256 (records stay for many blocks), and not at all,
with and without the state cache, and some change mode on a restart: receipts, state
digests, every balance and history query and every other table (but the logs' bucket counts
in `meta`) must be identical. (The heads' log on its own, against a model: test_history.py.)
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import lmdb
import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.errors import ConfigError
from config.node_config import Limits
from node.ledger import bucket_log, store
from node.ledger import keys as kl
from node.ledger.block import Block
from node.ledger.bucket_log import BucketLog, LogTables
from node.ledger.errors import LedgerCorruptError
from node.ledger.records import encode_int
from node.tx import Kind
from tests.node.ledger.conftest import pk
from tests.node.ledger.test_invariants import (
    ASSETS,
    HOLDERS,
    PEOPLE,
    _world,
    ledger_examples,
    op_blocks,
)
from tests.node.ledger.test_pipeline import replay, run_deep
from tests.node.ledger.test_state_cache import run_across_a_reopen
from tests.node.ledger.world import World

OFF = {"balance_log_buckets": 0, "history_heads_log_buckets": 0}
SWEEPS_OFTEN = {
    "balance_log_buckets": 2,
    "balance_log_from_entries": 0,
    "history_heads_log_buckets": 2,
    "history_heads_log_from_entries": 0,
}
SWEEPS_RARELY = {
    "balance_log_buckets": 256,
    "balance_log_from_entries": 0,
    "history_heads_log_buckets": 256,
    "history_heads_log_from_entries": 0,
}
BUCKET_KEYS = (kl.META_BALANCE_LOG_BUCKETS, kl.META_HEADS_LOG_BUCKETS)
LOGS = (bucket_log.BALANCES, bucket_log.HISTORY_HEADS)
NO_CACHE = {"state_cache_entries_max": 0}
# Every read of a balance and a head goes to the store: through the index, or at a snapshot.
NO_CACHES = {**NO_CACHE, "history_heads_cache_entries_max": 0}


def _tables(w: World) -> dict[str, list[tuple[bytes, bytes]]]:
    """Every table as stored, with each log and its tree read as one (the log wins)."""
    led = w.ledger
    with led._env.begin() as txn:
        out = {
            name: [(k, v) for k, v in txn.cursor(db=db) if k not in BUCKET_KEYS]
            for name, db in led._dbs.items()
            if name not in {n for t in LOGS for n in (t.tree, t.log)}
        }
        for t in LOGS:
            out[t.tree] = list(t.scan(txn, led._dbs))
    return out


def _queries(w: World) -> dict[str, Any]:
    led = w.ledger
    return {
        "holders": [led.holders(a) for a in ASSETS],
        "balances": [led.balance(a, pk(p)) for a in ASSETS for p in PEOPLE],
        "accounts": [led.account(pk(p)) for p in PEOPLE],
        "history": [led.history(pk(p), limit=1_000) for p in PEOPLE],
    }


def _logging_balances(tmp_path: Path, *, buckets: int) -> World:
    """A world funded with the logs off (so its balance log starts empty), reopened to log
    every balance write in `buckets` buckets, without the state cache (so evaluation and
    `check` read balances through the log's index)."""
    w = _world(tmp_path / "w", **OFF, **NO_CACHE)
    w.reopen(balance_log_buckets=buckets, balance_log_from_entries=0)
    return w


def _assert_same(w: World, reference: World) -> None:
    """The same state digest, tables (each log read with its tree) and query answers."""
    assert w.ledger.state_digest == reference.ledger.state_digest
    assert _tables(w) == _tables(reference)
    assert _queries(w) == _queries(reference)


def _records(w: World, tables: LogTables = bucket_log.BALANCES) -> dict[bytes, dict[bytes, bytes]]:
    with w.ledger._env.begin() as txn:
        return {
            bytes(k): msgpack.unpackb(v, strict_map_key=False)
            for k, v in txn.cursor(db=w.ledger._dbs[tables.log])
        }


def _key(holder: int) -> bytes:
    return kl.balance_key("AAA", pk(HOLDERS[holder]))


def _tree(w: World) -> dict[bytes, bytes]:
    with w.ledger._env.begin() as txn:
        return {bytes(k): bytes(v) for k, v in txn.cursor(db=w.ledger._dbs[kl.BALANCES])}


def _transfer(w: World, src: int, dst: int, amount: int) -> Any:
    args = {"asset_id": "AAA", "to_account": pk(HOLDERS[dst]), "amount": amount}
    return w.tx(HOLDERS[src], Kind.TRANSFER, args)


def _bucket(key: bytes, buckets: int) -> int:
    return key[-kl.KEY_BYTES] * buckets // 256


@ledger_examples(30)
@given(
    op_blocks(ops_max=8, blocks_min=1, blocks_max=5),
    op_blocks(ops_max=8, blocks_min=1, blocks_max=5),
)
def test_random_blocks_are_identical_however_balances_are_stored(
    tmp_path: Path, before: list[list[tuple[Any, ...]]], after: list[list[tuple[Any, ...]]]
) -> None:
    configs: list[dict[str, int]] = [
        {**OFF, **NO_CACHE},
        {**SWEEPS_OFTEN, **NO_CACHES},
        {**SWEEPS_RARELY, **NO_CACHES},
        SWEEPS_OFTEN,
        SWEEPS_RARELY,
    ]
    # On the restart between the two runs: log on -> off (it is merged into the tree), off
    # -> on, and a change of bucket count each way (merged, then logged anew).
    restarts: list[dict[str, int]] = [SWEEPS_OFTEN, OFF, SWEEPS_RARELY, SWEEPS_OFTEN, OFF]
    with tempfile.TemporaryDirectory(dir=tmp_path) as d:
        worlds = [_world(Path(d) / str(i), **c) for i, c in enumerate(configs)]

        def reopen() -> None:
            for w, limits in zip(worlds, restarts, strict=True):
                w.reopen(**limits)

        try:
            run_across_a_reopen(worlds, before, after, reopen)
            for w in worlds[1:]:
                _assert_same(w, worlds[0])
        finally:
            for w in worlds:
                w.close()


@pytest.mark.parametrize(
    "limits",
    [
        {**SWEEPS_OFTEN, **NO_CACHES},
        SWEEPS_OFTEN,
        # Funding (8 balances) is written straight to the tree; the log starts with the
        # first block after the tree holds 9 keys, which may come mid-run and mid-group.
        {**NO_CACHE, "balance_log_buckets": 2, "balance_log_from_entries": 9},
    ],
)
@ledger_examples(20)
@given(
    blocks=op_blocks(ops_max=6, blocks_min=2, blocks_max=10),
    depths=st.lists(st.integers(1, 4), min_size=1, max_size=4),
)
def test_pipelined_groups_equal_one_at_a_time_without_a_log(
    tmp_path: Path, limits: dict[str, int], blocks: list[list[tuple[Any, ...]]], depths: list[int]
) -> None:
    """Blocks evaluated up to four ahead of the store, reading the index while its writer
    puts the blocks below and commits them in groups (several sweeps per transaction)."""
    with tempfile.TemporaryDirectory(dir=tmp_path) as d:
        piped = _world(Path(d) / "piped", **limits)
        plain = _world(Path(d) / "plain", **OFF)
        try:
            _, sent, got = run_deep(piped, blocks, depths)
            replay(plain, sent, got)
            _assert_same(piped, plain)
        finally:
            piped.close()
            plain.close()


def test_a_block_writes_a_record_per_bucket_and_sweeps_one_bucket(tmp_path: Path) -> None:
    w = _logging_balances(tmp_path, buckets=256)
    try:
        buckets = {_bucket(_key(i), 256) for i in (0, 1)}
        assert len(buckets) == 2, "the test needs two buckets"
        assert w.apply(_transfer(w, 0, 1, 7))[0].applied
        h = w.ledger.height
        assert h % 256 not in buckets  # so nothing was swept yet
        assert _records(w) == {
            bytes([_bucket(_key(i), 256)]) + kl.height_key(h): {_key(i): encode_int(v)}
            for i, v in ((0, 993), (1, 1_007))
        }
        assert _tree(w)[_key(1)] == encode_int(1_000)  # the tree is a bucket behind
        assert w.ledger.balance("AAA", pk(HOLDERS[1])) == 1_007  # queries read the log
        assert (pk(HOLDERS[0]), 993) in w.ledger.holders("AAA")
        assert w.ledger.history(pk(HOLDERS[1]), limit=10)[0].height == h
        # The blocks until holder 1's bucket comes round: then its record is swept.
        while (w.ledger.height + 1) % 256 != _bucket(_key(1), 256):
            w.apply()
        assert len(_records(w)) == 2
        w.apply()
        assert set(_records(w)) == {bytes([_bucket(_key(0), 256)]) + kl.height_key(h)}
        assert _tree(w)[_key(1)] == encode_int(1_007)
        assert w.ledger.balance("AAA", pk(HOLDERS[1])) == 1_007
    finally:
        w.close()


def _raw(tmp_path: Path) -> tuple[Any, dict[str, Any]]:
    """A bare LMDB environment with the three tables a balance log touches."""
    env = lmdb.open(str(tmp_path / "raw"), max_dbs=3)
    names = (kl.BALANCES, kl.BALANCES_LOG, kl.META)
    return env, {name: env.open_db(name.encode()) for name in names}


def _account_key(first: int, asset: bytes = b"AAA") -> bytes:
    return asset + b"\x00" + bytes([first]) + bytes(31)


@pytest.mark.parametrize("buckets", [4, 256])
def test_the_newest_record_wins_in_reads_and_sweeps_in_every_bucket(
    tmp_path: Path, buckets: int
) -> None:
    """Keys in the first, a middle, the second last and the last bucket, each logged twice:
    a read at any snapshot finds the newer value, a sweep leaves it in the tree. A key only
    in the older record of its bucket is found there. A block logged twice is refused."""
    env, dbs = _raw(tmp_path)
    log = BucketLog(bucket_log.BALANCES, buckets=buckets, from_entries=0)
    keys = [_account_key(first) for first in (0x00, 0x81, 0xFE, 0xFF)]
    older = _account_key(0xFF, b"BBB")
    try:
        with env.begin(write=True) as txn:
            log.open(txn, dbs, 0)
            # Heights whose sweeps miss every key's bucket (each bucket is swept at
            # height % buckets), then the sweep of every bucket in turn.
            used = {_bucket(k, buckets) for k in keys}
            free = [h for h in range(1, 600) if h % buckets not in used]
            log.put(txn, dbs, free[0], sorted([(k, b"old") for k in (*keys, older)]))
            log.put(txn, dbs, free[1], [(k, b"new") for k in keys])
            for k in keys:
                assert bucket_log.BALANCES.read_at(txn, dbs, k) == b"new"
                assert log.read(txn, dbs, k, free[1]) == b"new"
                assert log.read(txn, dbs, k, free[0]) == b"new"  # the index is ahead: read_at
            assert bucket_log.BALANCES.read_at(txn, dbs, older) == b"old"
            with pytest.raises(LedgerCorruptError, match="log already holds block"):
                log.put(txn, dbs, free[1], [(keys[0], b"again")])
            assert bucket_log.BALANCES.read_at(txn, dbs, _account_key(0x40)) is None
            height = free[1]
            while txn.stat(dbs[kl.BALANCES_LOG])["entries"]:
                height += 1
                log.put(txn, dbs, height, [])
            assert dict(txn.cursor(db=dbs[kl.BALANCES])) == {
                **dict.fromkeys(keys, b"new"),
                older: b"old",
            }
        log.committed(height, floor=height)
        assert len(log) == 0  # every swept key forgotten: nobody reads an older snapshot
    finally:
        env.close()


def _sweep_then_fail(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make the next sweeps move their records, and the heads' log's then fail (the last
    put of a block: both logs have written); returns the buckets the heads' log swept."""
    swept: list[int] = []
    real_sweep = BucketLog._sweep

    def sweep_then_fail(self: BucketLog, txn: Any, dbs: Any, bucket: int) -> None:
        real_sweep(self, txn, dbs, bucket)
        if self.tables is bucket_log.HISTORY_HEADS:
            swept.append(bucket)
            raise OSError("simulated failure after the sweep, before the commit")

    monkeypatch.setattr(BucketLog, "_sweep", sweep_then_fail)
    return swept


def test_a_failed_write_leaves_the_tables_and_the_index_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a block fails mid-write, the next block (another one, at the same height) reads
    the index as before: a value the failed block logged would change its outcome."""
    with tempfile.TemporaryDirectory(dir=tmp_path) as d:
        logged = _world(Path(d) / "logged", **OFF, **NO_CACHES)
        plain = _world(Path(d) / "plain", **OFF, **NO_CACHES)
        try:
            logged.reopen(**SWEEPS_OFTEN)
            for w in (logged, plain):  # every key of holders 0-2 in the log
                assert w.apply(_transfer(w, 0, 1, 5), _transfer(w, 1, 2, 5))[0].applied
            with logged.ledger._env.begin() as txn:
                before = {n: list(txn.cursor(db=db)) for n, db in logged.ledger._dbs.items()}
            indexes_before = [log.indexed() for log in logged.ledger._logs]
            swept = _sweep_then_fail(monkeypatch)
            with pytest.raises(OSError, match="simulated failure"):
                logged.apply(_transfer(logged, 2, 1, 7))
            assert swept, "the failure came before the log's sweep"
            monkeypatch.undo()
            with logged.ledger._env.begin() as txn:
                after = {n: list(txn.cursor(db=db)) for n, db in logged.ledger._dbs.items()}
            assert after == before
            assert [log.indexed() for log in logged.ledger._logs] == indexes_before
            logged.nonces[pk(HOLDERS[2])] -= 1
            logged.time_ms -= 1000
            # Another block at that height, without holder 2; then holder 2 sends exactly
            # what it holds (the failed block's balance would be 7 short), and holder 1
            # exactly what it holds (7 more in the failed block).
            for w in (logged, plain):
                assert w.apply(_transfer(w, 0, 1, 1))[0].applied
                receipts = w.apply(_transfer(w, 2, 0, 1_005), _transfer(w, 1, 0, 1_001))
                assert all(r.applied for r in receipts), receipts
            _assert_same(logged, plain)
        finally:
            logged.close()
            plain.close()


def test_a_reader_keeps_a_swept_key_in_the_index_until_it_is_done(tmp_path: Path) -> None:
    """A reader registered before a sweep committed must not miss the swept key in the
    index (it would read its snapshot's tree, which has the old value); a key written
    after its snapshot must not give it the new value."""
    w = _logging_balances(tmp_path, buckets=2)
    try:
        led = w.ledger
        assert w.apply(_transfer(w, 0, 1, 7))[0].applied
        log, dbs = led._balance_log, led._dbs
        with led._readers.reading(), led._env.begin() as txn:
            snapshot = led.height
            w.apply()  # one bucket swept
            w.apply()  # and the other: both keys are in the tree now
            assert w.apply(_transfer(w, 0, 2, 1))[0].applied  # holder 1's key only swept
            assert _records(w), "the last transfer was not logged"
            assert log.read(txn, dbs, _key(1), snapshot) == encode_int(1_007)  # swept
            assert log.read(txn, dbs, _key(0), snapshot) == encode_int(993)  # logged since
            assert log.read(txn, dbs, _key(2), snapshot) == encode_int(1_000)  # first logged
        w.apply()
        w.apply()  # the last transfer swept; no reader left: everything forgotten
        assert not _records(w)
        assert len(log) == 0
        assert [w.ledger.balance("AAA", pk(h)) for h in HOLDERS] == [992, 1_007, 1_001]
    finally:
        w.close()


def test_a_key_swept_twice_while_a_reader_holds_an_old_snapshot(tmp_path: Path) -> None:
    """While an old reader keeps the index from forgetting, a bucket swept twice leaves two
    generations of a key behind: a new reader must get the newer one."""
    w = _logging_balances(tmp_path, buckets=2)
    try:
        led = w.ledger
        log, dbs = led._balance_log, led._dbs
        with led._readers.reading(), led._env.begin():
            for _ in range(2):  # holder 1's balance 1,001 in one generation, 1,002 in the next
                assert w.apply(_transfer(w, 0, 1, 1))[0].applied
                w.apply()
                w.apply()  # both buckets swept: holder 1's key retired
                assert not _records(w)
            with led._readers.reading(), led._env.begin() as txn:
                snapshot = led.height
                assert log.read(txn, dbs, _key(1), snapshot) == encode_int(1_002)
                assert led.check(_transfer(w, 1, 0, 1_002)).applied  # through the index
                w.apply()  # now an older snapshot: read through both generations' records
                assert log.read(txn, dbs, _key(1), snapshot) == encode_int(1_002)
    finally:
        w.close()


def test_a_log_in_use_stays_in_use_after_a_reopen_with_a_higher_threshold(
    tmp_path: Path,
) -> None:
    """A write straight to the tree would be shadowed by the log's older record."""
    w = _world(tmp_path / "w", **OFF)
    try:
        w.reopen(balance_log_buckets=256, balance_log_from_entries=0)
        assert w.apply(_transfer(w, 0, 1, 7))[0].applied
        assert _records(w)
        w.reopen(balance_log_buckets=256, balance_log_from_entries=1 << 30)
        assert w.apply(_transfer(w, 0, 1, 5))[0].applied
        assert w.ledger.balance("AAA", pk(HOLDERS[1])) == 1_012
    finally:
        w.close()


def test_readers_during_a_publication_read_their_snapshots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the writer publishes a commit to the index (here: between its updates), a
    reader of the new snapshot must not trust an index that lacks the new records, and a
    reader of the previous one must not get them."""
    w = _logging_balances(tmp_path, buckets=2)
    try:
        led = w.ledger
        log, dbs = led._balance_log, led._dbs
        seen: list[tuple[bytes | None, bytes | None]] = []
        real_add = bucket_log._Generation.add

        with led._readers.reading(), led._env.begin() as before:
            previous = led.height

            def look() -> None:
                with led._readers.reading(), led._env.begin() as txn:
                    new = led._balance_reader(txn)(_key(1))
                seen.append((new, log.read(before, dbs, _key(1), previous)))

            def add(self: Any, height: int, entries: dict[bytes, bytes]) -> None:
                look()
                real_add(self, height, entries)
                look()

            monkeypatch.setattr(bucket_log._Generation, "add", add)
            assert w.apply(_transfer(w, 0, 1, 7))[0].applied
            monkeypatch.undo()
        assert seen and set(seen) == {(encode_int(1_007), encode_int(1_000))}
    finally:
        w.close()


def test_a_publication_that_starts_during_a_read_sends_it_to_the_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader of the published snapshot that looks up the newest values while the writer
    publishes the next commit must notice and read its snapshot's records instead."""
    w = _logging_balances(tmp_path, buckets=2)
    try:
        led = w.ledger
        log, dbs = led._balance_log, led._dbs
        deferred: list[int] = []
        monkeypatch.setattr(led, "write_committed", deferred.append)
        real_write_committed = type(led).write_committed
        with led._readers.reading(), led._env.begin() as before:
            previous = led.height
            assert w.apply(_transfer(w, 0, 1, 7))[0].applied  # committed, not published
            monkeypatch.undo()

            class PublishOnLookup(dict[bytes, bytes]):
                def get(self, key: bytes, default: Any = None) -> Any:
                    while deferred:  # the writer publishes now, mid-read
                        real_write_committed(led, deferred.pop())
                    return super().get(key, default)

            bucket = _bucket(_key(1), 2)
            log._current[bucket].merged = PublishOnLookup(log._current[bucket].merged)
            assert log.read(before, dbs, _key(1), previous) == encode_int(1_000)
        assert not deferred
        assert w.ledger.balance("AAA", pk(HOLDERS[1])) == 1_007
    finally:
        w.close()


def test_a_write_after_the_snapshot_and_swept_since_is_not_read(tmp_path: Path) -> None:
    """A retired generation's records newer than a reader's snapshot are not its values."""
    w = _logging_balances(tmp_path, buckets=2)
    try:
        led = w.ledger
        log, dbs = led._balance_log, led._dbs
        with led._readers.reading(), led._env.begin() as txn:
            snapshot = led.height
            assert w.apply(_transfer(w, 0, 1, 7))[0].applied
            w.apply()
            w.apply()  # both buckets swept: the transfer sits in retired generations
            assert not _records(w)
            assert log.read(txn, dbs, _key(1), snapshot) == encode_int(1_000)
            assert log.read(txn, dbs, _key(0), snapshot) == encode_int(1_000)
    finally:
        w.close()


def test_the_floor_drops_a_buckets_oldest_generation_first(tmp_path: Path) -> None:
    """Reader 1 holds the floor over two sweeps of a bucket; reader 2 registers between
    them. When reader 1 leaves, only the first generation may go: reader 2 needs the
    second."""
    w = _logging_balances(tmp_path, buckets=2)
    try:
        led = w.ledger
        log, dbs = led._balance_log, led._dbs
        first = led._readers.reading()
        first.__enter__()
        assert w.apply(_transfer(w, 0, 1, 1))[0].applied  # 1,001
        w.apply()
        w.apply()  # swept: the first generation
        while (led.height + 1) % 2 == _bucket(_key(1), 2):
            w.apply()  # so the next transfer is not swept in its own block
        assert w.apply(_transfer(w, 0, 1, 1))[0].applied  # 1,002, in the log
        with led._readers.reading(), led._env.begin() as txn:
            snapshot = led.height
            first.__exit__(None, None, None)
            w.apply()
            w.apply()  # swept: the second generation; the floor passes the first only
            w.apply()
            assert log.read(txn, dbs, _key(1), snapshot) == encode_int(1_002)
    finally:
        w.close()


def test_a_sweep_retires_a_generation_before_it_starts_the_next(tmp_path: Path) -> None:
    """A reader of an older snapshot, looking while a sweep's generation is retired, must
    find it in the current generation or among the retired ones, never in neither."""
    w = _logging_balances(tmp_path, buckets=2)
    try:
        led = w.ledger
        log, dbs = led._balance_log, led._dbs
        bucket = _bucket(_key(1), 2)
        while (led.height + 1) % 2 == bucket:
            w.apply()  # so the transfer is not swept in its own block
        assert w.apply(_transfer(w, 0, 1, 7))[0].applied
        seen: list[bytes | None] = []
        with led._readers.reading(), led._env.begin() as txn:
            snapshot = led.height

            class Watched(list[Any]):
                def append(self, generation: Any) -> None:
                    seen.append(log.read(txn, dbs, _key(1), snapshot))
                    super().append(generation)

            log._retired[bucket] = Watched(log._retired[bucket])
            w.apply()
            w.apply()  # one of them sweeps holder 1's bucket
        assert seen == [encode_int(1_007)]
    finally:
        w.close()


def test_a_whole_publication_between_a_readers_first_looks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader must take the sequence before the published height: a publication that
    fits between the two would otherwise look like none."""
    w = _logging_balances(tmp_path, buckets=256)
    try:
        led = w.ledger
        log, dbs = led._balance_log, led._dbs
        deferred: list[int] = []
        real_write_committed = type(led).write_committed
        monkeypatch.setattr(led, "write_committed", deferred.append)
        slot: Any = vars(bucket_log.BucketLog)["_published"]  # the slot's descriptor

        class PublishingOnFirstLook(bucket_log.BucketLog):
            __slots__ = ()

            @property
            def _published(self) -> int:
                value = slot.__get__(self)
                while deferred:  # the writer publishes now, between the reader's looks
                    real_write_committed(led, deferred.pop())
                return int(value)

            @_published.setter
            def _published(self, value: int) -> None:
                slot.__set__(self, value)

        with led._readers.reading(), led._env.begin() as before:
            previous = led.height
            assert w.apply(_transfer(w, 0, 1, 7))[0].applied  # committed, not published
            monkeypatch.undo()
            log.__class__ = PublishingOnFirstLook
            assert log.read(before, dbs, _key(1), previous) == encode_int(1_000)
            log.__class__ = bucket_log.BucketLog
        assert not deferred
    finally:
        w.close()


def test_a_block_without_writes_still_sweeps(tmp_path: Path) -> None:
    w = _world(tmp_path / "w", **OFF)
    try:
        w.reopen(balance_log_buckets=4, balance_log_from_entries=0)
        assert w.apply(_transfer(w, 0, 1, 7))[0].applied
        assert _records(w)
        for _ in range(4):
            w.apply()
        assert not _records(w)
        assert _tree(w)[_key(1)] == encode_int(1_007)
    finally:
        w.close()


def test_a_reopen_with_another_bucket_count_merges_the_log(tmp_path: Path) -> None:
    w = _world(tmp_path / "w", **OFF)
    try:
        w.reopen(**SWEEPS_RARELY)
        assert w.apply(_transfer(w, 0, 1, 7))[0].applied
        assert _records(w) and _records(w, bucket_log.HISTORY_HEADS)
        w.reopen(**SWEEPS_OFTEN)
        assert not _records(w) and not _records(w, bucket_log.HISTORY_HEADS)
        with w.ledger._env.begin() as txn:
            assert bucket_log.BALANCES.stored_buckets(txn, w.ledger._dbs) == 2
        assert _tree(w)[_key(1)] == encode_int(1_007)
        assert w.ledger.history(pk(HOLDERS[1]), limit=10)[0].height == w.ledger.height
    finally:
        w.close()


def test_a_small_tree_is_written_directly(tmp_path: Path) -> None:
    """The default logs only a large tree: at a few thousand balances a block's writes
    share the tree's pages anyway (docs/benchmarks.md)."""
    w = _world(tmp_path / "w")
    try:
        assert w.apply(_transfer(w, 0, 1, 7))[0].applied
        assert not _records(w) and not _records(w, bucket_log.HISTORY_HEADS)
    finally:
        w.close()


def test_a_schema_4_store_has_its_journals_merged(tmp_path: Path) -> None:
    """Schemas 2-4 kept recent balances and heads in journal tables whose values win over
    the trees': opening such a store moves them into the trees and drops the tables."""
    w = _world(tmp_path / "w", **OFF)
    try:
        assert w.apply(_transfer(w, 0, 1, 7))[0].applied
        head = w.ledger.history(pk(HOLDERS[2]), limit=1)[0]
        env, dbs = w.ledger._env, w.ledger._dbs
        newer_head = kl.position_key(head.height, head.index)
        with env.begin(write=True) as txn:  # as schema 4 left it: the journals win
            recent = env.open_db(kl.LEGACY_BALANCES_RECENT.encode(), txn=txn)
            txn.put(_key(1), encode_int(1_234), db=recent)
            heads = env.open_db(kl.LEGACY_HISTORY_HEADS_RECENT.encode(), txn=txn)
            txn.put(pk(HOLDERS[0]), newer_head, db=heads)
            for key in (*kl.LEGACY_META_SWEEPS, kl.META_SCHEMA):
                txn.put(key, encode_int(4) if key == kl.META_SCHEMA else b"k", db=dbs[kl.META])
            for key in BUCKET_KEYS:
                txn.delete(key, db=dbs[kl.META])
        w.reopen()
        env, dbs = w.ledger._env, w.ledger._dbs
        assert w.ledger.balance("AAA", pk(HOLDERS[1])) == 1_234
        with env.begin() as txn:
            assert txn.get(pk(HOLDERS[0]), db=dbs[kl.HISTORY_HEADS]) == newer_head
            for name in (kl.LEGACY_BALANCES_RECENT, kl.LEGACY_HISTORY_HEADS_RECENT):
                with pytest.raises(lmdb.NotFoundError):
                    env.open_db(name.encode(), txn=txn, create=False)
            meta = dbs[kl.META]
            assert all(txn.get(key, db=meta) is None for key in kl.LEGACY_META_SWEEPS)
            assert txn.get(kl.META_SCHEMA, db=meta) == encode_int(kl.SCHEMA_VERSION)
    finally:
        w.close()


def test_limits_are_validated() -> None:
    with pytest.raises(
        ValueError, match=r"balance_log_buckets must be 0 \(off\) or a power of two"
    ):
        store.LedgerLimits(balance_log_buckets=3)
    with pytest.raises(ValueError, match="balance_log_from_entries"):
        store.LedgerLimits(balance_log_from_entries=-1)
    with pytest.raises(ValueError, match="history_heads_log_buckets"):
        store.LedgerLimits(history_heads_log_buckets=512)
    with pytest.raises(ValueError, match="history_heads_log_from_entries"):
        store.LedgerLimits(history_heads_log_from_entries=-1)
    with pytest.raises(ConfigError, match=r"^balance_log_buckets: must be 0 \(off\) or a power"):
        Limits(balance_log_buckets=100)


def test_a_reader_between_a_commit_and_its_publication_reads_its_snapshot(
    tmp_path: Path,
) -> None:
    """The writer publishes a transaction's records to the index after the commit: a reader
    whose snapshot already holds them must not take the index's silence for the tree."""
    w = _logging_balances(tmp_path, buckets=256)
    try:
        led = w.ledger
        tx = _transfer(w, 0, 1, 7)
        w.time_ms += 1000
        block = Block(height=led.height + 1, timestamp_ms=w.time_ms, txs=(tx.encode(),))
        effects = led.evaluate(block)
        with led._env.begin(write=True) as txn:
            led.write_in(txn, effects)
        assert _records(w), "the transfer was not logged"
        with led._readers.reading(), led._env.begin() as txn:
            read = led._balance_reader(txn)
            assert read(_key(1)) == encode_int(1_007)
        led.write_committed(effects.height)
        with led._readers.reading(), led._env.begin() as txn:
            assert led._balance_reader(txn)(_key(1)) == encode_int(1_007)
            assert len(led._balance_log) == 2  # published
    finally:
        w.close()
