"""The journals (node/ledger/journal.py) change where balances and history heads are
stored, nothing else.

The same random blocks go to ledgers that journal every balance and head write and sweep
often, journal and never sweep, and do not journal at all, with and without the state cache,
and some switch mode on a restart: receipts, state digests, every balance and history query
and every other table (but the sweeps' positions in `meta`) must be identical. A failure
after a sweep leaves both tables and the sweep's position as before. (The heads' journal on
its own, against a model: test_history.py.)
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import lmdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.ledger import journal, store
from node.ledger import keys as kl
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
from tests.node.ledger.test_pipeline import run_deep
from tests.node.ledger.test_state_cache import run_across_a_reopen
from tests.node.ledger.world import World

OFF = {"balance_journal_entries_max": 0, "history_heads_journal_entries_max": 0}
SWEEPS_OFTEN = {
    "balance_journal_entries_max": 3,
    "balance_journal_from_entries": 0,
    "history_heads_journal_entries_max": 3,
    "history_heads_journal_from_entries": 0,
}
NEVER_SWEEPS = {
    "balance_journal_entries_max": 1_000_000,
    "balance_journal_from_entries": 0,
    "history_heads_journal_entries_max": 1_000_000,
    "history_heads_journal_from_entries": 0,
}
SWEEP_KEYS = (kl.META_BALANCE_SWEEP, kl.META_HEADS_SWEEP)
NO_CACHE = {"state_cache_entries_max": 0}


def _tables(w: World) -> dict[str, list[tuple[bytes, bytes]]]:
    """Every table as stored, with each journal and its tree read as one (the journal wins)."""
    led = w.ledger
    journals = (journal.BALANCES, journal.HISTORY_HEADS)
    with led._env.begin() as txn:
        out = {
            name: [(k, v) for k, v in txn.cursor(db=db) if k not in SWEEP_KEYS]
            for name, db in led._dbs.items()
            if name not in {n for j in journals for n in (j.tree, j.recent)}
        }
        for j in journals:
            out[j.tree] = list(j.scan(txn, led._dbs))
    return out


def _queries(w: World) -> dict[str, Any]:
    led = w.ledger
    return {
        "holders": [led.holders(a) for a in ASSETS],
        "balances": [led.balance(a, pk(p)) for a in ASSETS for p in PEOPLE],
        "accounts": [led.account(pk(p)) for p in PEOPLE],
        "history": [led.history(pk(p), limit=1_000) for p in PEOPLE],
    }


def _journal_size(w: World) -> int:
    with w.ledger._env.begin() as txn:
        return int(txn.stat(w.ledger._dbs[kl.BALANCES_RECENT])["entries"])


def _key(holder: int) -> bytes:
    return kl.balance_key("AAA", pk(HOLDERS[holder]))


def _journal_keys_in(txn: Any, dbs: dict[str, Any]) -> set[bytes]:
    return {bytes(k) for k, _ in txn.cursor(db=dbs[kl.BALANCES_RECENT])}


def _journal_keys(w: World) -> set[bytes]:
    with w.ledger._env.begin() as txn:
        return _journal_keys_in(txn, w.ledger._dbs)


def _tree_has(w: World, key: bytes) -> bool:
    with w.ledger._env.begin() as txn:
        return txn.get(key, db=w.ledger._dbs[kl.BALANCES]) is not None


def _transfer(w: World, src: int, dst: int, amount: int) -> Any:
    args = {"asset_id": "AAA", "to_account": pk(HOLDERS[dst]), "amount": amount}
    return w.tx(HOLDERS[src], Kind.TRANSFER, args)


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
        {**SWEEPS_OFTEN, **NO_CACHE},
        {**NEVER_SWEEPS, **NO_CACHE},
        SWEEPS_OFTEN,
        NEVER_SWEEPS,
    ]
    # On the restart between the two runs: journal on -> off (its entries must be merged
    # before a direct write), off -> on, and never merging -> merging often.
    restarts: list[dict[str, int]] = [SWEEPS_OFTEN, OFF, SWEEPS_OFTEN, NEVER_SWEEPS, OFF]
    with tempfile.TemporaryDirectory(dir=tmp_path) as d:
        worlds = [_world(Path(d) / str(i), **c) for i, c in enumerate(configs)]

        def reopen() -> None:
            for w, limits in zip(worlds, restarts, strict=True):
                w.reopen(**limits)

        try:
            run_across_a_reopen(worlds, before, after, reopen)
            first = worlds[0]
            for w in worlds[1:]:
                assert w.ledger.state_digest == first.ledger.state_digest
                assert _tables(w) == _tables(first)
                assert _queries(w) == _queries(first)
        finally:
            for w in worlds:
                w.close()


@pytest.mark.parametrize(
    "limits",
    [
        {**SWEEPS_OFTEN, **NO_CACHE},
        SWEEPS_OFTEN,
        # Funding (8 balances) is written straight to the tree; the journal starts with the
        # first new balance key, which may come mid-run and mid-group.
        {"balance_journal_entries_max": 3, "balance_journal_from_entries": 9},
    ],
)
@ledger_examples(20)
@given(
    blocks=op_blocks(ops_max=6, blocks_min=2, blocks_max=10),
    depths=st.lists(st.integers(1, 4), min_size=1, max_size=4),
)
def test_pipelined_groups_with_merges_equal_one_at_a_time_without_a_journal(
    tmp_path: Path, limits: dict[str, int], blocks: list[list[tuple[Any, ...]]], depths: list[int]
) -> None:
    """Blocks evaluated up to four ahead of the store and committed in groups, so a merge
    can happen between two blocks of one write transaction."""
    with tempfile.TemporaryDirectory(dir=tmp_path) as d:
        piped = _world(Path(d) / "piped", **limits)
        plain = _world(Path(d) / "plain", **OFF)
        try:
            _, sent, got = run_deep(piped, blocks, depths)
            for block, receipts in zip(sent, got, strict=True):
                assert plain.ledger.apply_block(block) == receipts
            assert piped.ledger.state_digest == plain.ledger.state_digest
            assert _tables(piped) == _tables(plain)
            assert _queries(piped) == _queries(plain)
        finally:
            piped.close()
            plain.close()


def test_balances_wait_in_the_journal_and_the_excess_is_swept_in_key_order(
    tmp_path: Path,
) -> None:
    w = _world(tmp_path / "w", **OFF, **NO_CACHE)  # funded with the journal off: empty
    try:
        w.reopen(balance_journal_entries_max=2, balance_journal_from_entries=0)
        assert w.apply(_transfer(w, 0, 1, 7))[0].applied  # two balances: at the bound
        assert _journal_keys(w) == {_key(0), _key(1)}
        assert w.ledger.balance("AAA", pk(HOLDERS[1])) == 1_007  # queries read through it
        assert (pk(HOLDERS[0]), 993) in w.ledger.holders("AAA")
        assert w.apply(_transfer(w, 1, 2, 1))[0].applied  # three: one over
        first, *rest = sorted([_key(0), _key(1), _key(2)])
        assert _journal_keys(w) == set(rest) and _tree_has(w, first)  # the smallest moved
        assert [w.ledger.balance("AAA", pk(h)) for h in HOLDERS] == [993, 1_006, 1_001]
    finally:
        w.close()


def test_the_sweep_wraps_around_and_keeps_its_place_across_a_reopen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each sweep moves the first journal keys at or after the stored position, wrapping to
    the smallest at the end; the position survives a reopen (it is in `meta`)."""
    w = _world(tmp_path / "w", **OFF, **NO_CACHE)
    try:
        w.reopen(balance_journal_entries_max=1, balance_journal_from_entries=0)
        sweeps: list[tuple[bytes, set[bytes], list[bytes]]] = []
        real_sweep = journal.Journal.sweep

        def recording_sweep(self: journal.Journal, txn: Any, dbs: Any, count: int) -> int:
            assert self is journal.BALANCES  # the heads' journal is off at these sizes
            position = txn.get(kl.META_BALANCE_SWEEP, b"", dbs[kl.META])
            before = _journal_keys_in(txn, dbs)
            n = real_sweep(self, txn, dbs, count)
            sweeps.append((position, before, sorted(before - _journal_keys_in(txn, dbs))))
            return n

        monkeypatch.setattr(journal.Journal, "sweep", recording_sweep)
        for src, dst in ((0, 1), (1, 2), (2, 0), (0, 1)):
            assert w.apply(_transfer(w, src, dst, 1))[0].applied
            w.reopen()
        monkeypatch.undo()
        assert len(sweeps) >= 3, sweeps
        wrapped = False
        for position, before, moved in sweeps:
            at_or_after = sorted(k for k in before if k >= position)
            expected = (at_or_after + sorted(k for k in before if k < position))[: len(moved)]
            assert sorted(moved) == sorted(expected), (position, before, moved)
            wrapped |= len(at_or_after) < len(moved)
        assert wrapped, "no sweep reached the end of the journal"
        assert [w.ledger.balance("AAA", pk(h)) for h in HOLDERS] == [999, 1_001, 1_000]
    finally:
        w.close()


def _raw_tables(tmp_path: Path, journal: dict[bytes, bytes]) -> tuple[Any, dict[str, Any]]:
    """A bare LMDB environment with the three tables a sweep touches."""
    env = lmdb.open(str(tmp_path / "raw"), max_dbs=3)
    dbs = {name: env.open_db(name.encode()) for name in (kl.BALANCES, kl.BALANCES_RECENT, kl.META)}
    with env.begin(write=True) as txn:
        for key, value in journal.items():
            txn.put(key, value, db=dbs[kl.BALANCES_RECENT])
    return env, dbs


@pytest.mark.parametrize("chunk_entries", [65_536, 2])
def test_a_sweep_that_reaches_the_end_wraps_to_the_first_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_entries: int
) -> None:
    """From a position before the last key, a sweep of three moves the last key and then
    the first two (in chunks of two, too), and leaves the position after the last moved."""
    monkeypatch.setattr(journal, "SWEEP_CHUNK_ENTRIES", chunk_entries)
    keys = [bytes([k]) * 4 for k in (1, 2, 3, 4, 5)]
    env, dbs = _raw_tables(tmp_path, {k: b"v" + k for k in keys})
    with env.begin(write=True) as txn:
        txn.put(kl.META_BALANCE_SWEEP, keys[3] + b"\x01", db=dbs[kl.META])  # after key 4
        assert journal.BALANCES.sweep(txn, dbs, 3) == 3
        assert [k for k, _ in txn.cursor(db=dbs[kl.BALANCES_RECENT])] == [keys[2], keys[3]]
        assert dict(txn.cursor(db=dbs[kl.BALANCES])) == {
            k: b"v" + k for k in (keys[4], keys[0], keys[1])
        }
        assert txn.get(kl.META_BALANCE_SWEEP, db=dbs[kl.META]) == keys[1] + b"\x00"
    env.close()


def test_a_small_tree_is_written_directly(tmp_path: Path) -> None:
    """The default journals only a large tree: at a few thousand balances a block's writes
    share the tree's pages anyway, and a second table would cost (docs/benchmarks.md)."""
    w = _world(tmp_path / "w")
    try:
        assert w.apply(_transfer(w, 0, 1, 7))[0].applied
        assert _journal_size(w) == 0
    finally:
        w.close()


def test_a_failure_after_a_sweep_leaves_both_tables_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = _world(tmp_path / "w", **OFF)  # funded with the journal off: it starts empty
    try:
        w.reopen(balance_journal_entries_max=2, balance_journal_from_entries=0)
        assert w.apply(_transfer(w, 0, 1, 7))[0].applied
        assert _journal_size(w) == 2
        with w.ledger._env.begin() as txn:
            before = {name: list(txn.cursor(db=db)) for name, db in w.ledger._dbs.items()}
        swept: list[int] = []
        real_sweep = journal.Journal.sweep

        def sweep_then_fail(*args: Any) -> int:
            swept.append(real_sweep(*args))
            raise OSError("simulated failure after the sweep, before the commit")

        monkeypatch.setattr(journal.Journal, "sweep", sweep_then_fail)
        tx = _transfer(w, 1, 2, 1)
        with pytest.raises(OSError, match="simulated failure"):
            w.apply(tx)
        assert swept == [1]  # three balances, one over the bound
        with w.ledger._env.begin() as txn:
            after = {name: list(txn.cursor(db=db)) for name, db in w.ledger._dbs.items()}
        assert after == before  # both tables and the sweep's position
        monkeypatch.undo()
        w.reopen()  # as a restarted node would, after a failed write
        w.time_ms -= 1000
        assert w.apply(tx)[0].applied
        assert _journal_size(w) == 2
        assert w.ledger.balance("AAA", pk(HOLDERS[2])) == 1_001
    finally:
        w.close()


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="balance_journal_entries_max"):
        store.LedgerLimits(balance_journal_entries_max=-1)
    with pytest.raises(ValueError, match="balance_journal_from_entries"):
        store.LedgerLimits(balance_journal_from_entries=-1)
    with pytest.raises(ValueError, match="history_heads_journal_entries_max"):
        store.LedgerLimits(history_heads_journal_entries_max=16_777_217)
    with pytest.raises(ValueError, match="history_heads_journal_from_entries"):
        store.LedgerLimits(history_heads_journal_from_entries=-1)
