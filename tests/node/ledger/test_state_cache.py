"""The state cache (node/ledger/state_cache.py) changes how often state is read, nothing else.

The same blocks go to ledgers with the cache off, tiny (evicting at every block) and at its
default size: receipts, digests and every record must be identical. A block evaluated and
never written, or whose evaluation failed half-way, must leave nothing behind in it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given

from node.ledger import Block, LedgerError, LedgerLimits, store
from node.ledger import keys as kl
from node.ledger.state_cache import StateCache
from node.tx import Kind
from tests.node.ledger.conftest import pk
from tests.node.ledger.test_fastpath import _dump, _sync_nonces
from tests.node.ledger.test_invariants import HOLDERS, _tx, _world, ledger_examples, op_blocks
from tests.node.ledger.test_pipeline import HeldPipeline
from tests.node.ledger.world import World

OFF, TINY, DEFAULT = 0, 2, LedgerLimits().state_cache_entries_max


def _world_with_cache(path: Path, entries_max: int) -> World:
    """The invariants world (funded holders) with this cache size."""
    return _world(path, state_cache_entries_max=entries_max)


def _block(w: World, txs: list[Any], height: int | None = None) -> Block:
    w.time_ms += 1000
    raws = tuple(t.encode() for t in txs)
    height = w.ledger.height + 1 if height is None else height
    return Block(height=height, timestamp_ms=w.time_ms, txs=raws)


def run_across_a_reopen(
    worlds: list[World],
    before: list[list[tuple[Any, ...]]],
    after: list[list[tuple[Any, ...]]],
    reopen: Callable[[], None],
) -> None:
    """Apply the blocks of `before`, call `reopen`, then those of `after`, to every world
    (signed by the first): every block's receipts must be the same on all of them."""
    signer = worlds[0]  # signs for all: the same bytes go to every ledger
    for run in (before, after):
        for spec in run:
            txs = [_tx(signer, op) for op in spec]
            block = _block(signer, txs)
            got = [w.ledger.apply_block(block) for w in worlds]
            assert all(g == got[0] for g in got)
            _sync_nonces(signer, txs, got[0])
        if run is before:
            reopen()


def _assert_same(worlds: list[World]) -> None:
    first, *rest = worlds
    for w in rest:
        assert w.ledger.state_digest == first.ledger.state_digest
        assert w.ledger.last_block_hash == first.ledger.last_block_hash
        assert _dump(w) == _dump(first)


def _transfer(w: World, src: int, dst: int, amount: int, **kw: Any) -> Any:
    args = {"asset_id": "AAA", "to_account": pk(HOLDERS[dst]), "amount": amount}
    return w.tx(HOLDERS[src], Kind.TRANSFER, args, **kw)


@ledger_examples(40)
@given(op_blocks(ops_max=8, blocks_min=1, blocks_max=8))
def test_random_blocks_are_identical_with_any_cache_size(
    tmp_path: Path, blocks: list[list[tuple[Any, ...]]]
) -> None:
    with tempfile.TemporaryDirectory(dir=tmp_path) as d:
        worlds = [_world_with_cache(Path(d) / str(n), n) for n in (OFF, TINY, DEFAULT)]
        signer = worlds[0]  # signs for all: the same bytes go to every ledger
        try:
            for spec in blocks:
                txs = [_tx(signer, op) for op in spec]
                block = _block(signer, txs)
                got = [w.ledger.apply_block(block) for w in worlds]
                assert got[1] == got[0] and got[2] == got[0]
                _sync_nonces(signer, txs, got[0])
            _assert_same(worlds)
        finally:
            for w in worlds:
                w.close()


def test_a_block_evaluated_and_never_written_leaves_nothing_behind(tmp_path: Path) -> None:
    w, ref = _world_with_cache(tmp_path / "w", DEFAULT), _world_with_cache(tmp_path / "r", OFF)
    try:
        # Warm the cache with the accounts involved.
        assert all(r.applied for r in w.apply(_transfer(w, 0, 1, 1)))
        assert all(r.applied for r in ref.apply(_transfer(ref, 0, 1, 1)))
        # Block A spends holder 0's balance and is abandoned (a rival block B, spending the
        # same nonce elsewhere, is committed instead): A's writes must not survive anywhere.
        abandoned = w.ledger.evaluate(_block(w, [_transfer(w, 0, 1, 999)]))
        assert abandoned.receipts[0].applied
        w.time_ms -= 1000
        rival = _transfer(w, 0, 2, 600, nonce=1)
        assert w.apply(rival) == ref.apply(rival)
        # Holder 0 has 399 left, not 0; holder 1 never got the 999 (it has 1,001 + 399).
        follow = [_transfer(w, 0, 1, 399, nonce=2), _transfer(w, 1, 2, 1_401, nonce=0)]
        got = w.apply(*follow)
        assert got == ref.apply(*follow)
        assert got[0].applied and got[1].reason == "insufficient_balance"
        assert w.ledger.balance("AAA", pk(HOLDERS[1])) == 1_400
        _assert_same([w, ref])
    finally:
        w.close()
        ref.close()


def test_an_evaluation_that_fails_half_way_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w, ref = _world_with_cache(tmp_path / "w", DEFAULT), _world_with_cache(tmp_path / "r", OFF)
    try:
        # Warm the cache: it now follows the tip, so the failed evaluation starts from it.
        warm = [_transfer(w, 2, 0, 1)]
        assert w.apply(*warm) == ref.apply(*warm)
        assert w.ledger._state_cache.position == w.ledger.last_block_hash
        txs = [_transfer(w, 0, 1, 250), _transfer(w, 1, 2, 100)]
        block = _block(w, txs)

        def broken(*_a: Any) -> bytes:  # after every rule ran and wrote into the cache's dicts
            raise LedgerError("digest unit on fire")

        monkeypatch.setattr(store, "write_set_hash", broken)
        with pytest.raises(LedgerError, match="on fire"):
            w.ledger.evaluate(block)
        monkeypatch.undo()
        ref.time_ms = w.time_ms
        got = w.ledger.apply_block(block)  # the same block again, on the same parent
        assert got == ref.ledger.apply_block(block)
        assert all(r.applied for r in got)  # not bad_nonce: the failed run's bumps are gone
        _assert_same([w, ref])
    finally:
        w.close()
        ref.close()


def test_blocks_evaluated_ahead_read_the_uncommitted_ones_despite_eviction(
    tmp_path: Path,
) -> None:
    """A tiny cache evicts at every block, but never what the blocks not yet committed
    wrote: the next block reads those values there, never from the store's older snapshot."""
    piped, plain = _world_with_cache(tmp_path / "p", 1), _world_with_cache(tmp_path / "q", OFF)
    try:
        with HeldPipeline(piped.ledger) as pipe:
            pending = []
            for _ in range(6):
                txs = [_transfer(piped, 0, 1, 7), _transfer(piped, 1, 2, 5)]
                txs.append(_transfer(piped, 2, 0, 3))
                block = _block(piped, txs, pipe.tip[0] + 1)
                pending.append((block, pipe.submit(block)))
            pipe.release()
            for block, p in pending:
                assert p.wait() == plain.ledger.apply_block(block)
        assert pipe.ahead == 5
        _assert_same([piped, plain])
    finally:
        piped.close()
        plain.close()


def test_a_block_below_an_abandoned_one_is_read_through_its_overlay(tmp_path: Path) -> None:
    """Block N is evaluated but not committed; a child of N is evaluated and abandoned, so
    the cache follows that child, not N. N's rival child must then see N's writes from
    N's overlay (the cache is cleared), not the store's snapshot, which lacks N."""
    w, ref = _world_with_cache(tmp_path / "w", DEFAULT), _world_with_cache(tmp_path / "r", OFF)
    try:
        warm = [_transfer(w, 0, 1, 1), _transfer(w, 1, 2, 1)]
        assert w.apply(*warm) == ref.apply(*warm)
        ledger = w.ledger
        parent = _block(w, [_transfer(w, 0, 1, 900, nonce=1)])
        n = ledger.evaluate(parent)
        height = n.height + 1
        abandoned = ledger.evaluate(_block(w, [_transfer(w, 0, 2, 50, nonce=2)], height), after=[n])
        assert abandoned.receipts[0].applied
        assert ledger._state_cache.position == abandoned.block_hash
        w.time_ms -= 1000
        # Holder 1 can send 1,500 only with N's 900; holder 0's nonce 2 is next only after N.
        txs = [_transfer(w, 1, 2, 1_500, nonce=1), _transfer(w, 0, 2, 5, nonce=2)]
        child = _block(w, txs, height)
        got = ledger.evaluate(child, after=[n])
        ledger.write(n)
        ledger.write(got)
        ref.time_ms = w.time_ms
        assert n.receipts == ref.ledger.apply_block(parent)
        assert got.receipts == ref.ledger.apply_block(child)
        assert all(r.applied for r in got.receipts)
        _assert_same([w, ref])
    finally:
        w.close()
        ref.close()


def test_evaluations_cannot_overlap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w = _world_with_cache(tmp_path / "w", DEFAULT)
    try:
        inner: list[BaseException] = []
        real = store.transfer_fast_path

        def reentrant(*a: Any, **kw: Any) -> Any:
            try:
                w.ledger.evaluate(_block(w, []))
            except LedgerError as exc:
                inner.append(exc)
            return real(*a, **kw)

        monkeypatch.setattr(store, "transfer_fast_path", reentrant)
        assert w.apply(_transfer(w, 0, 1, 1))[0].applied
        assert len(inner) == 1 and "another evaluation is running" in str(inner[0])
    finally:
        w.close()


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="state_cache_entries_max"):
        LedgerLimits(state_cache_entries_max=-1)
    with pytest.raises(ValueError, match="at least 0"):
        StateCache(-1)
    cache = StateCache(0)
    assert cache.begin(b"x" * 32) is None  # off: block views use their own dicts


def test_the_cache_stays_within_its_bound_between_blocks(tmp_path: Path) -> None:
    w = _world_with_cache(tmp_path / "w", 4)
    try:
        for _ in range(5):
            w.apply(_transfer(w, 0, 1, 1), _transfer(w, 1, 2, 1), _transfer(w, 2, 0, 1))
            cache = w.ledger._state_cache
            # Evicted at the start of a block: at most the bound plus one block's keys.
            assert len(cache) <= 4 + 3 * 4
            assert cache.position == w.ledger.last_block_hash
    finally:
        w.close()


def _account(i: int) -> bytes:
    return i.to_bytes(32, "big")


def _fill(cache: StateCache, parent: bytes, accounts: range, *, send: bool) -> None:
    """One block on `cache`: every account of `accounts` gets a record and an AAA balance;
    with `send`, also a nonce, and it is reported as a signer."""
    dicts = cache.begin(parent)
    assert dicts is not None
    records, balances, nonces = dicts
    for i in accounts:
        records[_account(i)] = None
        balances[b"AAA\x00" + _account(i)] = i
        if send:
            nonces[_account(i)] = 1
    cache.end(parent + b"+", senders=[_account(i) for i in accounts] if send else [])


def test_a_cut_keeps_the_senders_and_drops_the_oldest_recipients() -> None:
    """Insertion order alone dropped the signers first (they are read first, and stay put):
    at 1M accounts that cost ~20% once the cache was full. Senders now outlive recipients."""
    cache = StateCache(60)
    _fill(cache, b"a", range(10), send=True)  # 30 entries, oldest
    _fill(cache, b"a+", range(100, 120), send=False)  # 40 recipient entries
    assert len(cache) == 70
    _fill(cache, b"a++", range(0), send=False)  # the cut happens at the start of a block
    assert len(cache) == 30
    assert all(_account(i) in cache.accounts and _account(i) in cache.nonces for i in range(10))
    assert all(b"AAA\x00" + _account(i) in cache.balances for i in range(10))
    assert not any(_account(i) in cache.accounts for i in range(100, 120))


def test_a_cut_takes_old_senders_too_when_they_alone_pass_the_target() -> None:
    cache = StateCache(40)
    _fill(cache, b"a", range(15), send=True)  # 45 sender entries: more than the target 20
    _fill(cache, b"a+", range(0), send=False)
    assert len(cache) <= 20
    assert _account(14) in cache.accounts and _account(0) not in cache.accounts  # oldest go


def test_a_cut_never_drops_a_key_to_keep_even_past_its_target() -> None:
    cache = StateCache(10)
    _fill(cache, b"a", range(20, 30), send=False)  # 20 entries, none a sender's
    kept = {_account(i) for i in range(20, 30)}
    dicts = cache.begin(b"a+", keep=lambda: kept)
    assert dicts is not None
    assert set(cache.accounts) == kept  # every kept key stays; the balances made room
    assert len(cache.balances) == 0


def test_senders_are_forgotten_at_each_cut_and_when_cleared() -> None:
    cache = StateCache(40)
    _fill(cache, b"a", range(5), send=True)  # 15 sender entries, oldest
    _fill(cache, b"a+", range(50, 80), send=False)  # 75 entries
    _fill(cache, b"a++", range(0), send=False)  # cut to 20: senders kept, and forgotten
    assert len(cache) == 20 and _account(0) in cache.nonces and not cache._senders
    _fill(cache, b"a+++", range(80, 110), send=False)  # nobody sent since the cut
    _fill(cache, b"a++++", range(0), send=False)
    assert len(cache) == 20 and _account(0) not in cache.nonces  # now just the oldest: gone
    _fill(cache, b"a+++++", range(7, 9), send=True)
    _fill(cache, b"other", range(3), send=True)  # a fork: cleared, senders too
    assert cache._senders == {_account(i) for i in range(3)}


def test_loads_and_cuts_are_counted_for_operators() -> None:
    cache = StateCache(60)
    _fill(cache, b"a", range(10), send=True)  # 30 keys loaded
    _fill(cache, b"a+", range(100, 120), send=False)  # 40 more
    assert cache.stats()[:4] == (70, 60, 70, 0)
    _fill(cache, b"a++", range(0), send=False)  # a cut to 30; nothing loaded
    assert cache.stats()[:4] == (30, 60, 70, 1)
    _fill(cache, b"a+++", range(100, 102), send=False)  # 2 recipients read again: 4 keys
    assert cache.stats().loads == 74


def test_the_ledger_reports_its_cache(tmp_path: Path) -> None:
    w = _world_with_cache(tmp_path / "w", DEFAULT)
    try:
        opened = w.ledger.state_cache_stats().warmed  # the genesis accounts, loaded at open
        w.apply(_transfer(w, 0, 1, 1))
        warm = w.ledger.state_cache_stats()
        assert warm.entries == opened + warm.loads and warm.loads > 0
        assert warm.cuts == 0  # nothing was ever dropped
        assert warm.entries_max == DEFAULT
        w.ledger._state_cache.clear()  # as after a fork: everything is read again
        w.apply(_transfer(w, 0, 1, 1), _transfer(w, 1, 2, 1))
        cold = w.ledger.state_cache_stats()
        # At least both signers' nonce, account and balance, and the last recipient's balance.
        assert cold.loads - warm.loads == cold.entries >= 7
    finally:
        w.close()


def _state_entries(w: World) -> int:
    """Records in the store's accounts, balances and nonces: what a warm cache holds."""
    ledger = w.ledger
    with ledger._env.begin() as txn:
        names = (kl.ACCOUNTS, kl.BALANCES, kl.NONCES)
        return sum(txn.stat(ledger._dbs[name])["entries"] for name in names)


@ledger_examples(25)
@given(
    op_blocks(ops_max=8, blocks_min=1, blocks_max=5),
    op_blocks(ops_max=8, blocks_min=1, blocks_max=5),
)
def test_a_reopened_ledger_loads_its_whole_state_and_agrees_with_a_cold_one(
    tmp_path: Path, before: list[list[tuple[Any, ...]]], after: list[list[tuple[Any, ...]]]
) -> None:
    """Freezes, recoveries and revocations included: what the cache loads at open is what
    the store holds, so the next blocks come out exactly as on a ledger without a cache."""
    with tempfile.TemporaryDirectory(dir=tmp_path) as d:
        worlds = [_world_with_cache(Path(d) / str(n), n) for n in (OFF, DEFAULT)]

        def reopen() -> None:
            for w in worlds:
                w.reopen()
            warm = worlds[1].ledger.state_cache_stats()
            assert warm.warmed == warm.entries == _state_entries(worlds[1]) > 0
            assert worlds[1].ledger._state_cache.position == worlds[1].ledger.last_block_hash
            assert worlds[0].ledger.state_cache_stats().warmed == 0  # off: nothing

        try:
            run_across_a_reopen(worlds, before, after, reopen)
            _assert_same(worlds)
        finally:
            for w in worlds:
                w.close()


def test_a_reopened_ledger_reads_no_state_for_known_accounts(tmp_path: Path) -> None:
    w = _world_with_cache(tmp_path / "w", DEFAULT)
    try:
        w.apply(_transfer(w, 0, 1, 1), _transfer(w, 1, 2, 1))
        w.reopen()
        assert w.ledger.state_cache_stats().loads == 0
        receipts = w.apply(_transfer(w, 0, 2, 5), _transfer(w, 1, 0, 3))  # both signed before
        assert all(r.applied for r in receipts)
        assert w.ledger.state_cache_stats().loads == 0  # every key was there from the start
    finally:
        w.close()


def test_a_state_larger_than_the_cache_is_not_loaded(tmp_path: Path) -> None:
    w = _world_with_cache(tmp_path / "w", DEFAULT)
    try:
        w.apply(_transfer(w, 0, 1, 1))
        size = _state_entries(w)
        fits = -(-size * 4 // 3)  # loaded into three quarters of the bound, no more
        w.reopen(state_cache_entries_max=fits - 1)
        assert w.ledger.state_cache_stats()[:2] == (0, fits - 1)  # cold: not a random part
        assert w.ledger.state_cache_stats().warmed == 0
        assert w.apply(_transfer(w, 1, 2, 1))[0].applied  # and it fills as blocks read
        assert w.ledger.state_cache_stats().loads > 0
        size = _state_entries(w)  # one more: holder 1's first nonce
        fits = -(-size * 4 // 3)
        w.reopen(state_cache_entries_max=fits)
        assert w.ledger.state_cache_stats().warmed == size
    finally:
        w.close()
