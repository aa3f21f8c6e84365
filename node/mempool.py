"""The mempool: a bounded, deduplicated, nonce-ordered pool of admitted transactions.

Rules:

1. Only admitted transactions enter (decoded, right chain, signatures verified, nonce not yet
   used): the pool never re-checks signatures, so each transaction is verified once per node.
2. Deduplicated by tx id; one transaction per (signer, nonce): the first one wins, a second one
   with the same nonce is refused (`nonce_taken`), so nobody can replace a pending transfer.
3. Bounded by `capacity_txs`; when full, new transactions are refused (`mempool_full`) rather
   than evicting older ones: a flood cannot push out transactions clients already hold ids for.
4. A batch only takes, per signer, a contiguous run of nonces starting at the next nonce the
   chain expects (counting transactions already proposed but not yet committed). A transaction
   behind a nonce gap waits at most `gap_wait_ms`, then is dropped (`nonce_gap_expired`).
5. Batches are fair: signers are served round-robin, one transaction each per round, and a
   signer that got into a batch goes to the back of the line for the next one, so neither
   one busy signer nor more ready signers than a batch holds can starve anyone.
6. Safety never depends on the pool: the ledger rejects a replayed nonce even if a faulty
   primary proposes one. The pool only keeps honest primaries from proposing waste.
7. The pool remembers each pending signer's next chain nonce (learnt at admission, refreshed
   by `remove_committed` after every applied block), so cutting a batch, checking readiness
   and expiring never read the store.
8. The pool knows how long its oldest ready transaction has been waiting for a block
   (`oldest_ready_ms`, kept in a heap: a node may hold tens of thousands of signers): a
   signer's next transaction has been ready since the later of its arrival and the moment
   the signer's previous nonce was consumed. A backup reports that wait to its replica,
   which replaces a primary that orders everything else but not it (docs/consensus.md, R8a).
9. A transaction a block ordered leaves the pool even if the ledger left its nonce unused
   (`remove_ordered`: an inauthentic transaction's rejection does not consume it): it had its
   outcome, and kept, it would look ready, and so censored, forever.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum


class AdmitRefusal(StrEnum):
    DUPLICATE = "duplicate"
    NONCE_USED = "nonce_used"
    NONCE_TAKEN = "nonce_taken"
    NONCE_TOO_FAR = "nonce_too_far"
    MEMPOOL_FULL = "mempool_full"


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingTx:
    tx_id: bytes
    signer: bytes
    nonce: int
    raw: bytes
    received_ms: int


@dataclass(slots=True)
class _SignerQueue:
    by_nonce: dict[int, PendingTx]
    chain_next: int  # the chain's next nonce for this signer, as last learnt
    ready_since_ms: int  # when chain_next last moved (or the waits were restarted)
    proposed_upto: int = -1  # highest nonce handed out in a batch not yet committed

    @property
    def first_unproposed(self) -> int:
        return max(self.chain_next, self.proposed_upto + 1)

    def ready_since(self) -> int | None:
        """Since when its next transaction for the chain has been ready, None if not here."""
        head = self.by_nonce.get(self.chain_next)
        return None if head is None else max(head.received_ms, self.ready_since_ms)


class Mempool:
    def __init__(self, *, capacity_txs: int, gap_wait_ms: int, nonce_window_max: int = 1024):
        if capacity_txs <= 0 or gap_wait_ms <= 0 or nonce_window_max <= 0:
            raise ValueError("mempool limits must be positive")
        self._capacity_txs = capacity_txs
        self._gap_wait_ms = gap_wait_ms
        self._nonce_window_max = nonce_window_max
        self._by_id: dict[bytes, PendingTx] = {}
        # The round-robin order of signers (rule 5): served ones move to the end.
        self._signers: OrderedDict[bytes, _SignerQueue] = OrderedDict()
        # (ready since, signer, chain nonce) whenever a signer's head becomes ready; entries
        # that no longer match their queue are dropped when they reach the top (rule 8).
        self._ready: list[tuple[int, bytes, int]] = []

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, tx_id: bytes) -> bool:
        return tx_id in self._by_id

    def get(self, tx_id: bytes) -> PendingTx | None:
        return self._by_id.get(tx_id)

    def add(self, tx: PendingTx, *, next_nonce: int) -> AdmitRefusal | None:
        """Admit `tx`; `next_nonce` is the chain's next expected nonce for its signer.

        Returns None when admitted, else the reason it was refused (nothing changes then).
        """
        if tx.tx_id in self._by_id:
            return AdmitRefusal.DUPLICATE
        if tx.nonce < next_nonce:
            return AdmitRefusal.NONCE_USED
        if tx.nonce >= next_nonce + self._nonce_window_max:
            return AdmitRefusal.NONCE_TOO_FAR
        queue = self._signers.get(tx.signer)
        if queue is not None and tx.nonce in queue.by_nonce:
            return AdmitRefusal.NONCE_TAKEN
        if len(self._by_id) >= self._capacity_txs:
            return AdmitRefusal.MEMPOOL_FULL
        moved = False
        if queue is None:
            queue = self._signers[tx.signer] = _SignerQueue(
                by_nonce={}, chain_next=next_nonce, ready_since_ms=tx.received_ms
            )
        elif next_nonce > queue.chain_next:
            queue.chain_next = next_nonce
            queue.ready_since_ms = tx.received_ms
            moved = True
        queue.by_nonce[tx.nonce] = tx
        self._by_id[tx.tx_id] = tx
        if moved or tx.nonce == queue.chain_next:
            self._note_ready(tx.signer, queue)
        return None

    def take_batch(
        self,
        *,
        txs_max: int,
        bytes_max: int,
        tx_overhead_bytes: int = 0,
    ) -> list[PendingTx]:
        """Cut a batch for a proposal and mark its transactions as proposed.

        Each transaction counts `len(raw) + tx_overhead_bytes` against `bytes_max` (the
        caller's encoding adds framing per item). Proposed transactions stay in the pool (a
        view change may discard the proposal) but are not handed out again until
        `release_proposed` or `remove_committed`.
        """
        batch: list[PendingTx] = []
        batch_bytes = 0
        cursors: dict[bytes, int] = {}
        active = list(self._signers)
        while active and len(batch) < txs_max:
            still_active = []
            for signer in active:
                queue = self._signers[signer]
                nonce = cursors.get(signer)
                if nonce is None:
                    nonce = queue.first_unproposed
                tx = queue.by_nonce.get(nonce)
                if tx is None:
                    continue
                size = len(tx.raw) + tx_overhead_bytes
                if batch_bytes + size > bytes_max:
                    continue
                batch.append(tx)
                batch_bytes += size
                cursors[signer] = nonce + 1
                still_active.append(signer)
                if len(batch) >= txs_max:
                    break
            active = still_active
        for signer, after in cursors.items():
            self._signers[signer].proposed_upto = after - 1
            self._signers.move_to_end(signer)  # the back of the line (rule 5)
        return batch

    def has_ready(self) -> bool:
        """True if some transaction could go into a batch now (not stuck behind a gap)."""
        return any(queue.first_unproposed in queue.by_nonce for queue in self._signers.values())

    def oldest_ready_ms(self) -> int | None:
        """Since when the longest-waiting ready transaction has been ready (rule 8), or None
        if no signer's next nonce is here."""
        ready = self._ready
        while ready:
            if self._current(*ready[0]) is not None:
                return ready[0][0]
            heapq.heappop(ready)  # stale: consumed, gone, or ready again since later
        return None

    def _current(self, since: int, signer: bytes, nonce: int) -> PendingTx | None:
        """The transaction a readiness entry names, if the entry still holds."""
        queue = self._signers.get(signer)
        if queue is None or queue.chain_next != nonce or queue.ready_since() != since:
            return None
        return queue.by_nonce[nonce]

    def ready_before(self, cutoff_ms: int, *, limit: int) -> list[PendingTx]:
        """Up to `limit` ready transactions (signers' next ones) ready since before
        `cutoff_ms`, oldest first."""
        found: list[PendingTx] = []
        seen: set[bytes] = set()
        # The smallest entries only (not a sort of the whole heap), with room for stale ones.
        for since, signer, nonce in heapq.nsmallest(4 * limit + 16, self._ready):
            if since >= cutoff_ms or len(found) >= limit:
                break
            tx = None if signer in seen else self._current(since, signer, nonce)
            if tx is not None:
                seen.add(signer)
                found.append(tx)
        return found

    def restart_waits(self, *, now_ms: int) -> None:
        """Count every wait from now: the node itself was stalled (paused, starved), and a
        wait it slept through is no evidence against the primary."""
        for queue in self._signers.values():
            queue.ready_since_ms = max(queue.ready_since_ms, now_ms)
        self._rebuild_ready()

    def remove_ordered(self, tx_ids: Iterable[bytes]) -> list[PendingTx]:
        """Drop the transactions a block ordered that are still here (rule 9); return them."""
        removed: list[PendingTx] = []
        for tx_id in tx_ids:
            tx = self._by_id.pop(tx_id, None)
            if tx is None:
                continue
            removed.append(tx)
            queue = self._signers[tx.signer]
            del queue.by_nonce[tx.nonce]
            if not queue.by_nonce:
                del self._signers[tx.signer]
        return removed

    def _note_ready(self, signer: bytes, queue: _SignerQueue) -> None:
        since = queue.ready_since()
        if since is None:
            return
        heapq.heappush(self._ready, (since, signer, queue.chain_next))
        if len(self._ready) > 2 * len(self._signers) + 1024:
            self._rebuild_ready()  # stale entries that never reached the top

    def _rebuild_ready(self) -> None:
        ready: list[tuple[int, bytes, int]] = []
        for signer, queue in self._signers.items():
            since = queue.ready_since()
            if since is not None:
                ready.append((since, signer, queue.chain_next))
        heapq.heapify(ready)
        self._ready = ready

    def next_free_nonce(self, signer: bytes, next_nonce: int) -> int:
        """The nonce a signer's next transaction should use, counting pending ones."""
        queue = self._signers.get(signer)
        if queue is None:
            return next_nonce
        nonce = next_nonce
        while nonce in queue.by_nonce:
            nonce += 1
        return nonce

    def release_proposed(self) -> None:
        """Forget which transactions were proposed (after a view change discarded proposals)."""
        for queue in self._signers.values():
            queue.proposed_upto = -1

    def remove_committed(
        self, next_nonce: Callable[[bytes], int], signers: Iterable[bytes], *, now_ms: int
    ) -> list[PendingTx]:
        """Drop every transaction whose nonce the chain has now consumed (a block applied
        at `now_ms`); return them."""
        removed: list[PendingTx] = []
        for signer in set(signers):
            queue = self._signers.get(signer)
            if queue is None:
                continue
            floor = next_nonce(signer)
            moved = floor > queue.chain_next
            if moved:
                queue.ready_since_ms = now_ms
            queue.chain_next = floor
            for nonce in [n for n in queue.by_nonce if n < floor]:
                tx = queue.by_nonce.pop(nonce)
                del self._by_id[tx.tx_id]
                removed.append(tx)
            queue.proposed_upto = max(queue.proposed_upto, floor - 1)
            if not queue.by_nonce:
                del self._signers[signer]
            elif moved:
                self._note_ready(signer, queue)
        return removed

    def expire(self, *, now_ms: int) -> list[PendingTx]:
        """Drop transactions that waited behind a nonce gap longer than `gap_wait_ms`."""
        expired: list[PendingTx] = []
        for signer in list(self._signers):
            queue = self._signers[signer]
            expected = queue.first_unproposed
            while expected in queue.by_nonce:
                expected += 1
            for nonce in sorted(n for n in queue.by_nonce if n > expected):
                tx = queue.by_nonce[nonce]
                if now_ms - tx.received_ms >= self._gap_wait_ms:
                    expired.append(queue.by_nonce.pop(nonce))
                    del self._by_id[tx.tx_id]
            if not queue.by_nonce:
                del self._signers[signer]
        return expired
