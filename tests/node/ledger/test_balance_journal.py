"""The balance journal (node/ledger/balance_journal.py) changes where balances are stored,
nothing else.

The same random blocks go to ledgers that journal every balance write and merge often,
journal and never merge, and do not journal at all, with and without the state cache, and
some switch mode on a restart: receipts, state digests, every balance query and every
other table must be identical. A failure after a merge leaves both tables as before.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.ledger import balance_journal, store
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

OFF = {"balance_journal_entries_max": 0}
MERGES_OFTEN = {"balance_journal_entries_max": 3, "balance_journal_from_entries": 0}
NEVER_MERGES = {"balance_journal_entries_max": 1_000_000, "balance_journal_from_entries": 0}
NO_CACHE = {"state_cache_entries_max": 0}


def _tables(w: World) -> dict[str, list[tuple[bytes, bytes]]]:
    """Every table as stored, with the two balance tables read as one (the journal wins)."""
    led = w.ledger
    with led._env.begin() as txn:
        out = {
            name: list(txn.cursor(db=db))
            for name, db in led._dbs.items()
            if name not in (kl.BALANCES, kl.BALANCES_RECENT)
        }
        out[kl.BALANCES] = list(balance_journal.scan(txn, led._dbs))
    return out


def _queries(w: World) -> dict[str, Any]:
    led = w.ledger
    return {
        "holders": [led.holders(a) for a in ASSETS],
        "balances": [led.balance(a, pk(p)) for a in ASSETS for p in PEOPLE],
        "accounts": [led.account(pk(p)) for p in PEOPLE],
    }


def _journal_size(w: World) -> int:
    with w.ledger._env.begin() as txn:
        return int(txn.stat(w.ledger._dbs[kl.BALANCES_RECENT])["entries"])


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
        {**MERGES_OFTEN, **NO_CACHE},
        {**NEVER_MERGES, **NO_CACHE},
        MERGES_OFTEN,
        NEVER_MERGES,
    ]
    # On the restart between the two runs: journal on -> off (its entries must be merged
    # before a direct write), off -> on, and never merging -> merging often.
    restarts: list[dict[str, int]] = [MERGES_OFTEN, OFF, MERGES_OFTEN, NEVER_MERGES, OFF]
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
        {**MERGES_OFTEN, **NO_CACHE},
        MERGES_OFTEN,
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


def test_balances_wait_in_the_journal_and_move_to_the_tree_when_it_fills(
    tmp_path: Path,
) -> None:
    w = _world(tmp_path / "w", **OFF, **NO_CACHE)  # funded with the journal off: empty
    try:
        w.reopen(balance_journal_entries_max=3, balance_journal_from_entries=0)
        assert w.apply(_transfer(w, 0, 1, 7))[0].applied  # two balances: into the journal
        assert _journal_size(w) == 2
        assert w.ledger.balance("AAA", pk(HOLDERS[1])) == 1_007  # queries read through it
        assert (pk(HOLDERS[0]), 993) in w.ledger.holders("AAA")
        assert w.apply(_transfer(w, 1, 2, 1))[0].applied  # holder 2 is the third: merged
        assert _journal_size(w) == 0
        assert w.ledger.balance("AAA", pk(HOLDERS[2])) == 1_001
        with w.ledger._env.begin() as txn:
            tree = txn.get(kl.balance_key("AAA", pk(HOLDERS[2])), db=w.ledger._dbs[kl.BALANCES])
        assert tree is not None  # the tree holds the merged value now
    finally:
        w.close()


def test_a_small_tree_is_written_directly(tmp_path: Path) -> None:
    """The default journals only a large tree: at a few thousand balances a block's writes
    share the tree's pages anyway, and a second table would cost (docs/benchmarks.md)."""
    w = _world(tmp_path / "w")
    try:
        assert w.apply(_transfer(w, 0, 1, 7))[0].applied
        assert _journal_size(w) == 0
    finally:
        w.close()


def test_a_failure_after_a_merge_leaves_both_tables_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = _world(tmp_path / "w", **OFF)  # funded with the journal off: it starts empty
    try:
        w.reopen(balance_journal_entries_max=3, balance_journal_from_entries=0)
        assert w.apply(_transfer(w, 0, 1, 7))[0].applied
        assert _journal_size(w) == 2
        with w.ledger._env.begin() as txn:
            before = {name: list(txn.cursor(db=db)) for name, db in w.ledger._dbs.items()}
        merged: list[int] = []
        real_merge = balance_journal.merge

        def merge_then_fail(*args: Any) -> int:
            merged.append(real_merge(*args))
            raise OSError("simulated failure after the merge, before the commit")

        monkeypatch.setattr(balance_journal, "merge", merge_then_fail)
        tx = _transfer(w, 1, 2, 1)
        with pytest.raises(OSError, match="simulated failure"):
            w.apply(tx)
        assert merged == [3]  # holders 0, 1 and 2
        with w.ledger._env.begin() as txn:
            after = {name: list(txn.cursor(db=db)) for name, db in w.ledger._dbs.items()}
        assert after == before
        monkeypatch.undo()
        w.reopen()  # as a restarted node would, after a failed write
        w.time_ms -= 1000
        assert w.apply(tx)[0].applied
        assert _journal_size(w) == 0
        assert w.ledger.balance("AAA", pk(HOLDERS[2])) == 1_001
    finally:
        w.close()


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="balance_journal_entries_max"):
        store.LedgerLimits(balance_journal_entries_max=-1)
    with pytest.raises(ValueError, match="balance_journal_from_entries"):
        store.LedgerLimits(balance_journal_from_entries=-1)
