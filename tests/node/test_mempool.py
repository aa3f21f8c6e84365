"""Mempool rules: bounded, deduplicated, nonce-ordered, fair, and gap-expiring."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.mempool import AdmitRefusal, Mempool, PendingTx


def tx(signer: int, nonce: int, *, size: int = 100, at_ms: int = 0, salt: int = 0) -> PendingTx:
    return PendingTx(
        tx_id=bytes([signer, nonce % 256, nonce // 256, salt]) + b"\x00" * 28,
        signer=bytes([signer]) * 32,
        nonce=nonce,
        raw=b"x" * size,
        received_ms=at_ms,
    )


def chain(nonces: dict[bytes, int] | None = None):
    table = defaultdict(int, nonces or {})
    return table, lambda signer: table[signer]


def test_admission_refusals_change_nothing() -> None:
    pool = Mempool(capacity_txs=2, gap_wait_ms=1000)
    assert pool.add(tx(1, 0), next_nonce=0) is None
    assert pool.add(tx(1, 0), next_nonce=0) is AdmitRefusal.DUPLICATE
    assert pool.add(tx(1, 0, salt=1), next_nonce=0) is AdmitRefusal.NONCE_TAKEN
    assert pool.add(tx(2, 3), next_nonce=5) is AdmitRefusal.NONCE_USED
    assert pool.add(tx(2, 5000), next_nonce=0) is AdmitRefusal.NONCE_TOO_FAR
    assert pool.add(tx(2, 0), next_nonce=0) is None
    assert pool.add(tx(3, 0), next_nonce=0) is AdmitRefusal.MEMPOOL_FULL
    assert len(pool) == 2


def test_batch_takes_contiguous_nonces_only() -> None:
    pool = Mempool(capacity_txs=100, gap_wait_ms=1000)
    for n in (0, 1, 3):  # 2 is missing
        pool.add(tx(1, n), next_nonce=0)
    batch = pool.take_batch(txs_max=10, bytes_max=10_000)
    assert [t.nonce for t in batch] == [0, 1]


def test_proposed_transactions_are_not_handed_out_twice_until_released() -> None:
    pool = Mempool(capacity_txs=100, gap_wait_ms=1000)
    for n in range(4):
        pool.add(tx(1, n), next_nonce=0)
    first = pool.take_batch(txs_max=2, bytes_max=10_000)
    second = pool.take_batch(txs_max=2, bytes_max=10_000)
    assert [t.nonce for t in first] == [0, 1]
    assert [t.nonce for t in second] == [2, 3]
    assert pool.take_batch(txs_max=2, bytes_max=10_000) == []
    pool.release_proposed()
    again = pool.take_batch(txs_max=10, bytes_max=10_000)
    assert [t.nonce for t in again] == [0, 1, 2, 3]


def test_batches_are_round_robin_across_signers() -> None:
    pool = Mempool(capacity_txs=100, gap_wait_ms=1000)
    for n in range(5):
        pool.add(tx(1, n), next_nonce=0)
    pool.add(tx(2, 0), next_nonce=0)
    batch = pool.take_batch(txs_max=3, bytes_max=10_000)
    assert [(t.signer[0], t.nonce) for t in batch] == [(1, 0), (2, 0), (1, 1)]


def test_ready_means_proposable_now() -> None:
    pool = Mempool(capacity_txs=100, gap_wait_ms=1000)
    pool.add(tx(1, 1), next_nonce=0)  # waits behind nonce 0
    assert not pool.has_ready()
    pool.add(tx(1, 0), next_nonce=0)
    assert pool.has_ready()
    pool.take_batch(txs_max=10, bytes_max=10_000)
    assert not pool.has_ready()  # both proposed


def test_batch_respects_byte_limit() -> None:
    pool = Mempool(capacity_txs=100, gap_wait_ms=1000)
    for n in range(5):
        pool.add(tx(1, n, size=400), next_nonce=0)
    batch = pool.take_batch(txs_max=10, bytes_max=1000)
    assert len(batch) == 2


def test_commit_removes_consumed_nonces() -> None:
    pool = Mempool(capacity_txs=100, gap_wait_ms=1000)
    table, next_nonce = chain()
    for n in range(3):
        pool.add(tx(1, n), next_nonce=0)
    pool.take_batch(txs_max=2, bytes_max=10_000)
    table[bytes([1]) * 32] = 2
    assert [t.nonce for t in pool.remove_committed(next_nonce, [bytes([1]) * 32], now_ms=0)] == [
        0,
        1,
    ]
    assert len(pool) == 1
    assert [t.nonce for t in pool.take_batch(txs_max=5, bytes_max=10_000)] == [2]


def test_gap_waits_expire() -> None:
    pool = Mempool(capacity_txs=100, gap_wait_ms=1000)
    pool.add(tx(1, 0, at_ms=0), next_nonce=0)
    pool.add(tx(1, 2, at_ms=0), next_nonce=0)
    assert pool.expire(now_ms=999) == []
    expired = pool.expire(now_ms=1000)
    assert [t.nonce for t in expired] == [2]
    assert len(pool) == 1  # the ready transaction stays


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        Mempool(capacity_txs=0, gap_wait_ms=1)


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 6)), max_size=60), st.integers(1, 8))
def test_batches_never_repeat_or_skip_nonces(adds: list[tuple[int, int]], txs_max: int) -> None:
    pool = Mempool(capacity_txs=30, gap_wait_ms=1000)
    table, _ = chain()
    for signer, nonce in adds:
        pool.add(tx(signer, nonce), next_nonce=table[bytes([signer]) * 32])
    seen: dict[bytes, list[int]] = defaultdict(list)
    while batch := pool.take_batch(txs_max=txs_max, bytes_max=10**6):
        assert len(batch) <= txs_max
        for t in batch:
            seen[t.signer].append(t.nonce)
    for nonces in seen.values():
        assert nonces == list(range(len(nonces)))
    assert len(pool) <= 30


def test_oldest_ready_counts_from_arrival_or_the_previous_nonce() -> None:
    pool = Mempool(capacity_txs=100, gap_wait_ms=10_000)
    table, next_nonce = chain()
    assert pool.oldest_ready_ms() is None
    pool.add(tx(1, 1, at_ms=100), next_nonce=0)  # behind a gap: not ready
    assert pool.oldest_ready_ms() is None
    pool.add(tx(1, 0, at_ms=300), next_nonce=0)
    pool.add(tx(2, 0, at_ms=200), next_nonce=0)
    assert pool.oldest_ready_ms() == 200
    # Signer 2's transaction is applied at 1,000: signer 1's is the oldest left.
    table[bytes([2]) * 32] = 1
    pool.remove_committed(next_nonce, [bytes([2]) * 32], now_ms=1_000)
    assert pool.oldest_ready_ms() == 300
    # Signer 1's nonce 0 is applied at 2,000: nonce 1 (here since 100) is ready from then.
    table[bytes([1]) * 32] = 1
    pool.remove_committed(next_nonce, [bytes([1]) * 32], now_ms=2_000)
    assert pool.oldest_ready_ms() == 2_000


def test_the_wait_restarts_when_admission_learns_a_later_nonce() -> None:
    pool = Mempool(capacity_txs=100, gap_wait_ms=10_000)
    pool.add(tx(1, 3, at_ms=100), next_nonce=2)  # waits for nonce 2
    assert pool.oldest_ready_ms() is None
    pool.add(tx(1, 4, at_ms=500), next_nonce=3)  # nonce 2 was consumed elsewhere
    assert pool.oldest_ready_ms() == 500


def test_restarting_the_waits_forgets_time_the_node_was_stalled() -> None:
    pool = Mempool(capacity_txs=100, gap_wait_ms=10_000)
    pool.add(tx(1, 0, at_ms=100), next_nonce=0)
    pool.add(tx(2, 0, at_ms=9_000), next_nonce=0)
    pool.restart_waits(now_ms=5_000)
    assert pool.oldest_ready_ms() == 5_000
    pool.add(tx(3, 0, at_ms=6_000), next_nonce=0)
    assert pool.oldest_ready_ms() == 5_000


def test_batches_rotate_so_no_ready_signer_starves() -> None:
    """More ready signers than a batch holds, each with a backlog: every signer gets in
    within two batches (a fixed order would serve the first ones forever)."""
    pool = Mempool(capacity_txs=10_000, gap_wait_ms=10_000)
    table, next_nonce = chain()
    for signer in range(1, 151):
        for n in range(10):
            pool.add(tx(signer, n), next_nonce=0)
    served: set[bytes] = set()
    for block in range(2):
        batch = pool.take_batch(txs_max=100, bytes_max=1 << 20)
        served |= {t.signer for t in batch}
        for t in batch:
            table[t.signer] = t.nonce + 1
        pool.remove_committed(next_nonce, {t.signer for t in batch}, now_ms=block)
    assert len(served) == 150


def test_an_ordered_transaction_whose_nonce_stayed_unused_leaves() -> None:
    pool = Mempool(capacity_txs=100, gap_wait_ms=10_000)
    _, next_nonce = chain()
    first, second = tx(1, 0, at_ms=5), tx(1, 1, at_ms=6)
    pool.add(first, next_nonce=0)
    pool.add(second, next_nonce=0)
    # Ordered, rejected without consuming nonce 0 (not authentic): the nonce is still 0.
    assert pool.remove_committed(next_nonce, [first.signer], now_ms=10) == []
    assert pool.remove_ordered([first.tx_id, b"\x00" * 32]) == [first]
    assert first.tx_id not in pool and len(pool) == 1
    assert pool.oldest_ready_ms() is None  # nonce 1 waits behind the gap


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["add", "batch", "commit", "ordered", "restart", "expire"]),
            st.integers(1, 6),  # signer
            st.integers(0, 5),  # nonce
            st.integers(0, 50),  # time step
        ),
        max_size=60,
    )
)
def test_the_oldest_ready_wait_matches_a_full_scan(ops: list[tuple[str, int, int, int]]) -> None:
    pool = Mempool(capacity_txs=20, gap_wait_ms=10_000)
    table, next_nonce = chain()
    now = 0
    for op, signer, nonce, step in ops:
        now += step
        key = bytes([signer]) * 32
        if op == "add":
            pool.add(tx(signer, nonce, at_ms=now), next_nonce=table[key])
        elif op == "batch":
            pool.take_batch(txs_max=3, bytes_max=10_000)
        elif op == "commit":
            table[key] = max(table[key], nonce)
            pool.remove_committed(next_nonce, [key], now_ms=now)
        elif op == "ordered":
            pool.remove_ordered([tx(signer, nonce).tx_id])
        elif op == "expire":
            pool.expire(now_ms=now * 100)
        else:
            pool.restart_waits(now_ms=now)
        scan = [q.ready_since() for q in pool._signers.values()]
        assert pool.oldest_ready_ms() == min((x for x in scan if x is not None), default=None)


def test_ready_before_lists_the_oldest_waiting_heads_first() -> None:
    pool = Mempool(capacity_txs=100, gap_wait_ms=10_000)
    table, next_nonce = chain()
    for signer, at_ms in ((1, 300), (2, 100), (3, 200), (4, 900)):
        pool.add(tx(signer, 0, at_ms=at_ms), next_nonce=0)
        pool.add(tx(signer, 1, at_ms=at_ms), next_nonce=0)
    # Signer 2's head is consumed at 950: its next one is ready only from then (stale entry).
    table[bytes([2]) * 32] = 1
    pool.remove_committed(next_nonce, [bytes([2]) * 32], now_ms=950)
    found = pool.ready_before(800, limit=10)
    assert [(t.signer[0], t.nonce) for t in found] == [(3, 0), (1, 0)]
    assert [t.signer[0] for t in pool.ready_before(800, limit=1)] == [3]
    assert [t.signer[0] for t in pool.ready_before(1_000, limit=10)] == [3, 1, 4, 2]
