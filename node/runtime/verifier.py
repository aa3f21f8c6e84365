"""Batched signature checks off the event loop.

Concurrent callers' transactions are merged into one batch, split across `threads` worker
threads (PyNaCl releases the GIL, so this scales with cores), and each caller gets its own
results back. Merging matters: one thread hop per transaction would cost more than the
Ed25519 verify itself.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import trio

from consensus.encoding import digest
from node.tx import SignedTransaction, verify_batch


@dataclass(slots=True)
class _Request:
    txs: Sequence[SignedTransaction]
    done: trio.Event = field(default_factory=trio.Event)
    results: list[bool] = field(default_factory=list)


class BatchVerifier:
    def __init__(self, *, threads: int, batch_txs_max: int = 1024, queue_requests_max: int = 4096):
        if threads < 1 or batch_txs_max < 1 or queue_requests_max < 1:
            raise ValueError("verifier limits must be positive")
        self._threads = threads
        self._batch_txs_max = batch_txs_max
        self._send, self._receive = trio.open_memory_channel[_Request](queue_requests_max)
        self.verified_total = 0

    async def verify(self, txs: Sequence[SignedTransaction]) -> list[bool]:
        """Verify `txs` (waits for queue room: backpressure on the caller)."""
        if not txs:
            return []
        request = _Request(txs)
        await self._send.send(request)
        await request.done.wait()
        return request.results

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async for first in self._receive:
            requests = [first]
            size = len(first.txs)
            while size < self._batch_txs_max:
                try:
                    more = self._receive.receive_nowait()
                except trio.WouldBlock:
                    break
                requests.append(more)
                size += len(more.txs)
            flat = [tx for r in requests for tx in r.txs]
            results = await self._verify_parallel(flat)
            self.verified_total += len(flat)
            offset = 0
            for request in requests:
                request.results = results[offset : offset + len(request.txs)]
                offset += len(request.txs)
                request.done.set()

    async def _verify_parallel(self, txs: list[SignedTransaction]) -> list[bool]:
        chunks = self._threads if len(txs) >= 64 else 1
        size = -(-len(txs) // chunks)
        parts = [txs[i : i + size] for i in range(0, len(txs), size)]
        out: list[list[bool]] = [[] for _ in parts]

        async def one(i: int) -> None:
            out[i] = await trio.to_thread.run_sync(verify_batch, parts[i])

        async with trio.open_nursery() as nursery:
            for i in range(len(parts)):
                nursery.start_soon(one, i)
        return [ok for part in out for ok in part]


class VerifiedCache:
    """Bounded memory of transactions this node already decoded and checked, keyed by the
    hash of their raw bytes, so a transaction is verified once per node (admission, then
    proposal validation, then execution all reuse the result)."""

    def __init__(self, *, entries_max: int):
        if entries_max < 1:
            raise ValueError("entries_max must be positive")
        self._entries_max = entries_max
        self._entries: OrderedDict[bytes, tuple[SignedTransaction, bool]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def key(raw: bytes) -> bytes:
        return digest(raw)

    def get(self, raw: bytes) -> tuple[SignedTransaction, bool] | None:
        return self._entries.get(digest(raw))

    def discard(self, raw: bytes) -> None:
        self._entries.pop(digest(raw), None)

    def put(self, raw: bytes, stx: SignedTransaction, ok: bool) -> None:
        key = digest(raw)
        self._entries[key] = (stx, ok)
        self._entries.move_to_end(key)
        while len(self._entries) > self._entries_max:
            self._entries.popitem(last=False)
