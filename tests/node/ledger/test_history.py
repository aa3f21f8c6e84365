"""Account history as back-linked chains (node/ledger/history.py).

The chains are checked against a model (every account's positions, newest first) over random
runs of write transactions holding one or more blocks, some aborted, with the writer's heads
cache bounded, off, or replaced as after a restart. Then the ledger: pages and cursors, the
upgrade of a schema 2 store, and a failed group write that the cache must not outlive.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import lmdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.ledger import (
    HistoryCursorError,
    HistoryEntry,
    Ledger,
    LedgerCorruptError,
    LedgerFullError,
    LedgerLimits,
)
from node.ledger import keys as kl
from node.ledger.bucket_log import HISTORY_HEADS as HEADS_LOG
from node.ledger.bucket_log import BucketLog
from node.ledger.history import HeadsCache, HistoryItems, page
from node.ledger.records import encode_int
from node.tx import Kind
from tests.node.ledger.conftest import ALICE, BOB, BOND, CAROL, ISSUER, pk, standard_genesis
from tests.node.ledger.world import World

ACCOUNTS = [bytes([n]) * 32 for n in range(1, 6)]


def _tx_id(position: bytes) -> bytes:
    return hashlib.sha256(position).digest()


def _open(path: Path) -> tuple[lmdb.Environment, dict[str, Any]]:
    env = lmdb.open(str(path), map_size=64 << 20, max_dbs=4)
    names = (kl.HISTORY_HEADS, kl.HISTORY_LINKS, kl.HISTORY_HEADS_LOG, kl.META)
    return env, {name: env.open_db(name.encode()) for name in names}


# The heads' log (node/ledger/bucket_log.py) as (buckets, from_entries): off; a bucket swept
# every other block; every fourth; records kept for many blocks; and only once the tree
# holds 4 heads.
LOGS = [(0, 0), (2, 0), (4, 0), (256, 0), (2, 4)]
# A run: write transactions, each of 1-3 blocks (each block: transactions touching 1-3
# accounts, repeats allowed), committed or aborted, sometimes after a restart of the cache
# (with the log's limits it then draws: a restart may switch the log on or off, or change
# its bucket count).
touched = st.lists(st.sampled_from(ACCOUNTS), min_size=1, max_size=3).map(tuple)
blocks = st.lists(st.lists(touched, max_size=4), min_size=1, max_size=3)
runs = st.lists(
    st.tuples(blocks, st.booleans(), st.booleans(), st.sampled_from(LOGS)),
    min_size=1,
    max_size=12,
)


def _cache(
    env: lmdb.Environment,
    dbs: dict[str, Any],
    entries_max: int,
    log: tuple[int, int],
    height: int = 0,
) -> HeadsCache:
    """A heads cache and its log, opened as the ledger opens them at block `height` (a log
    written with another bucket count is merged into the tree)."""
    heads_log = BucketLog(HEADS_LOG, buckets=log[0], from_entries=log[1])
    with env.begin(write=True) as txn:
        heads_log.open(txn, dbs, height)
    return HeadsCache(entries_max, log=heads_log)


@settings(max_examples=60, deadline=None)
@given(
    run=runs,
    entries_max=st.sampled_from([0, 1, 3, 6, 1000]),
    page_size=st.integers(1, 4),
    warm=st.booleans(),
)
def test_chains_match_a_model(
    tmp_path_factory: pytest.TempPathFactory,
    run: list[tuple[list[list[tuple[bytes, ...]]], bool, bool, tuple[int, int]]],
    entries_max: int,
    page_size: int,
    warm: bool,
) -> None:
    env, dbs = _open(tmp_path_factory.mktemp("h"))
    cache = _cache(env, dbs, entries_max, run[0][3])
    model: dict[bytes, list[HistoryEntry]] = {a: [] for a in ACCOUNTS}  # newest first
    tip, height, serial = b"genesis", 0, 0
    try:
        for txn_blocks, commit, restart, log in run:
            if restart:  # as a node does: it loads every head if they fit (warm)
                cache = _cache(env, dbs, entries_max, log, height)
                if warm:
                    with env.begin() as txn:
                        cache.warm(txn, dbs, tip)
            parent, pending = tip, []
            with env.begin(write=True) as txn:
                for i, txs in enumerate(txn_blocks):
                    h = height + 1 + i
                    items: HistoryItems = []
                    for index, accounts in enumerate(txs):
                        position = kl.position_key(h, index)
                        items.append((position, _tx_id(position), accounts))
                        entry = HistoryEntry(height=h, index=index, tx_id=_tx_id(position))
                        pending += [(a, entry) for a in dict.fromkeys(accounts)]
                    serial += 1
                    block_hash = serial.to_bytes(32, "big")
                    cache.write(
                        txn, dbs, height=h, parent_hash=parent, block_hash=block_hash, items=items
                    )
                    parent = block_hash
                if not commit:
                    txn.abort()
                    cache.log.aborted()
            if commit:
                tip, height = parent, height + len(txn_blocks)
                cache.log.committed(height, floor=height)
                for account, entry in pending:
                    model[account].insert(0, entry)
        with env.begin() as txn:
            for account, expected in model.items():
                got: list[HistoryEntry] = []
                before = None
                while True:
                    entries = page(txn, dbs, account, page_size, before)
                    got += entries
                    if len(entries) < page_size:
                        break
                    before = (entries[-1].height, entries[-1].index)
                assert got == expected, account.hex()
    finally:
        env.close()


def test_a_cursor_must_name_an_entry_of_the_account(world: World) -> None:
    ids = [
        world.one(ALICE, Kind.TRANSFER, asset_id=BOND, to_account=pk(BOB), amount=1).tx_id
        for _ in range(3)
    ]
    led = world.ledger
    newest = led.history(pk(BOB), limit=1)[0]
    assert [e.tx_id for e in led.history(pk(BOB), before=(newest.height, newest.index))] == [
        ids[1],
        ids[0],
    ]
    for before in ((newest.height, newest.index + 1), (newest.height + 5, 0), (0, 0)):
        with pytest.raises(HistoryCursorError, match="not in the history of account"):
            led.history(pk(BOB), before=before)
    with pytest.raises(HistoryCursorError, match="not in the history of account"):
        led.history(pk(CAROL), before=(newest.height, newest.index))  # Bob's entry, not Carol's
    for bad in ((-1, 0), (1, 2, 3), ("1", 0), (1.0, 0)):
        with pytest.raises(HistoryCursorError, match="out of range"):
            led.history(pk(BOB), before=bad)  # type: ignore[arg-type]


def test_a_schema_2_store_is_converted_when_opened(world: World, tmp_path: Path) -> None:
    """Schema 2 kept one tree keyed account ‖ position -> tx id. Rebuilt here from the chains
    of a store with a history (so both describe the same entries), then reopened."""
    for amount in (1, 2, 3):
        world.one(ALICE, Kind.TRANSFER, asset_id=BOND, to_account=pk(BOB), amount=amount)
    world.one(BOB, Kind.TRANSFER, asset_id=BOND, to_account=pk(CAROL), amount=1)
    led = world.ledger
    accounts = [pk(ALICE), pk(BOB), pk(CAROL), pk(ISSUER)]
    before = {a: led.history(a, limit=1000) for a in accounts}
    assert all(before.values())
    env, dbs = led._env, led._dbs
    with env.begin(write=True) as txn:
        legacy = env.open_db(kl.LEGACY_HISTORY.encode(), txn=txn)
        for key, value in txn.cursor(db=dbs[kl.HISTORY_LINKS]):
            position, account = key[: kl.POSITION_BYTES], key[kl.POSITION_BYTES :]
            txn.put(account + position, value[kl.POSITION_BYTES :], db=legacy)
        for name in (kl.HISTORY_LINKS, kl.HISTORY_HEADS):
            txn.drop(dbs[name], delete=False)
        txn.put(kl.META_SCHEMA, encode_int(2), db=dbs[kl.META])
    world.reopen()
    led = world.ledger
    assert {a: led.history(a, limit=1000) for a in accounts} == before
    with led._env.begin() as txn:
        assert txn.get(kl.META_SCHEMA, db=led._dbs[kl.META]) == encode_int(kl.SCHEMA_VERSION)
        with pytest.raises(lmdb.NotFoundError):  # converted, then dropped
            led._env.open_db(kl.LEGACY_HISTORY.encode(), txn=txn, create=False)
    # The converted heads were loaded when the store opened: one per account with history.
    assert led.history_heads_stats().warmed == len(accounts)
    # And the chains go on from the converted heads.
    r = world.one(CAROL, Kind.TRANSFER, asset_id=BOND, to_account=pk(ALICE), amount=1)
    assert led.history(pk(ALICE), limit=1000) == [
        HistoryEntry(height=led.height, index=0, tx_id=r.tx_id),
        *before[pk(ALICE)],
    ]


def test_the_heads_cache_can_be_off(tmp_path: Path) -> None:
    world = World(tmp_path / "l", standard_genesis(), history_heads_cache_entries_max=0)
    try:
        world.one(ISSUER, Kind.MINT, asset_id=BOND, to_account=pk(ALICE), amount=10)
        ids = [
            world.one(ALICE, Kind.TRANSFER, asset_id=BOND, to_account=pk(BOB), amount=1).tx_id
            for _ in range(3)
        ]
        assert len(world.ledger._history_heads) == 0  # every head was read from the store
        assert [e.tx_id for e in world.ledger.history(pk(BOB))] == ids[::-1]
    finally:
        world.close()
    with pytest.raises(ValueError, match="history_heads_cache_entries_max"):
        LedgerLimits(history_heads_cache_entries_max=-1)


def test_a_block_that_fails_midway_leaves_no_head_behind(tmp_path: Path) -> None:
    """A put that fails inside `write` (here: links not after the stored ones) must not
    leave the block's heads in the cache for the block written next on the same parent."""
    env, dbs = _open(tmp_path / "h")
    cache = HeadsCache(1000, log=BucketLog(HEADS_LOG, buckets=0, from_entries=0))
    a, b = ACCOUNTS[:2]

    def items(height: int, *txs: tuple[bytes, ...]) -> HistoryItems:
        positions = [kl.position_key(height, i) for i in range(len(txs))]
        return [(p, _tx_id(p), t) for p, t in zip(positions, txs, strict=True)]

    try:
        with env.begin(write=True) as txn:
            cache.write(txn, dbs, height=5, parent_hash=b"g", block_hash=b"1", items=items(5, (a,)))
        with env.begin(write=True) as txn:  # height 3 < 5: the links append fails
            with pytest.raises(LedgerCorruptError, match="not after the stored history"):
                cache.write(
                    txn, dbs, height=6, parent_hash=b"1", block_hash=b"x", items=items(3, (b,))
                )
            txn.abort()
            cache.log.aborted()
        with env.begin(write=True) as txn:
            cache.write(txn, dbs, height=6, parent_hash=b"1", block_hash=b"2", items=items(6, (b,)))
        with env.begin() as txn:
            assert page(txn, dbs, b, 10, None) == [
                HistoryEntry(height=6, index=0, tx_id=_tx_id(kl.position_key(6, 0)))
            ]
    finally:
        env.close()


def test_a_conversion_without_room_changes_nothing(tmp_path: Path) -> None:
    """Converting keeps both layouts in the map until the old one is dropped: without room
    for that, opening fails with LedgerFullError naming the limit, and the store stays a
    schema 2 store that opens with a larger map."""
    path, genesis = tmp_path / "l", standard_genesis()
    small = LedgerLimits(map_size_bytes=4 << 20)
    with (
        Ledger.open(path, genesis, limits=small, sync=False) as led,
        led._env.begin(write=True) as txn,
    ):
        legacy = led._env.open_db(kl.LEGACY_HISTORY.encode(), txn=txn)
        entries = [
            (n.to_bytes(32, "big") + kl.position_key(1 + i, 0), bytes(32))
            for n in range(500)
            for i in range(50)
        ]
        txn.cursor(db=legacy).putmulti(entries)
        txn.put(kl.META_SCHEMA, encode_int(2), db=led._dbs[kl.META])
    with pytest.raises(LedgerFullError, match=r"map_size_bytes=4194304.*Nothing was changed"):
        Ledger.open(path, genesis, limits=small, sync=False)
    roomy = LedgerLimits(map_size_bytes=16 << 20)
    with Ledger.open(path, genesis, limits=roomy, sync=False) as led:
        assert [e.height for e in led.history((7).to_bytes(32, "big"), limit=3)] == [50, 49, 48]


def test_the_warm_up_takes_a_head_from_the_log_over_the_tree(tmp_path: Path) -> None:
    """An account whose old head was swept into the tree and whose newer head waits in the
    log: a cache loaded at open must link the next entry to the newer one."""
    env, dbs = _open(tmp_path / "h")
    a, b = ACCOUNTS[:2]
    entry = {
        h: HistoryEntry(height=h, index=0, tx_id=_tx_id(kl.position_key(h, 0)))
        for h in (1, 2, 3, 4)
    }

    def write(cache: HeadsCache, height: int, account: bytes) -> None:
        position = kl.position_key(height, 0)
        with env.begin(write=True) as txn:
            cache.write(
                txn,
                dbs,
                height=height,
                parent_hash=bytes([height - 1]),
                block_hash=bytes([height]),
                items=[(position, _tx_id(position), (account,))],
            )

    try:
        # a and b share bucket 0 of 2, swept at even heights: heights 1 and 2 go to the
        # tree at 2, height 3 waits in the log.
        cache = _cache(env, dbs, 1000, (2, 0))
        for height, account in ((1, a), (2, b), (3, a)):
            write(cache, height, account)
        with env.begin() as txn:
            tree = dict(txn.cursor(db=dbs[kl.HISTORY_HEADS]))
            logged = dict(HEADS_LOG.records(txn, dbs))
        assert tree == {a: kl.position_key(1, 0), b: kl.position_key(2, 0)}
        assert logged == {3: {a: kl.position_key(3, 0)}}
        cache = _cache(env, dbs, 1000, (2, 0))
        with env.begin() as txn:
            cache.warm(txn, dbs, bytes([3]))
        write(cache, 4, a)
        with env.begin() as txn:
            assert page(txn, dbs, a, 10, None) == [entry[4], entry[3], entry[1]]
            assert page(txn, dbs, b, 10, None) == [entry[2]]
    finally:
        env.close()
