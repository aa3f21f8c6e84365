"""Drive pre-signed transactions at a cluster and learn when each one commits.

Submission: every client connection has its own ordered queue and `workers_per_client`
tasks pulling from it, each awaiting one `submit` at a time, so a connection carries that
many pipelined requests (the node answers a submit at admission, in a millisecond or two).
A global window (`in_flight_max`) bounds how many admitted transactions may be waiting for
their commit: without it the mempool fills and latency measures the queue, not the system.

Commit detection: one subscription, on its own connection, to the node the watcher is
connected to. `Watch.BLOCKS` (the default) gets one frame per block, with the block's tx ids
and its record, whose per-transaction outcomes say applied or the rejection reason;
`Watch.RECEIPTS` gets one frame per transaction. Both avoid a waiter per transaction on the
node (a `submit_wait` per transaction ties up one of the node's `pending_waits_max` waiters
and one client request slot each until its block commits). Blocks are cheaper for the node:
measured in docs/benchmarks.md. Latency is from just before the submit was sent to the
commit's arrival here.

Transient refusals (mempool full, nonce too far ahead, too many requests) are retried after
a short pause, up to a limit; every other refusal is counted by reason.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import msgpack
import trio

from node.api.errors import ErrorCode
from node.api.results import BlockInfo
from node.bench.presign import PreSigned
from node.client import ApiError, AsyncClient, ClientError, RequestTimeoutError
from node.tx import TxDecodeError, decode_signed_transaction

WORKERS_PER_CLIENT_MAX = 200  # stays below the node's client_requests_in_flight_max (256)
IN_FLIGHT_MAX_LIMIT = 1_000_000
RETRY_PAUSE_S = 0.02
RETRIES_PER_TX_MAX = 1_000  # 20 s of retries at most for one transaction
PROGRESS_INTERVAL_S = 0.2
DRAIN_POLL_S = 0.01
RETRY_CODES = frozenset({ErrorCode.TOO_MANY_REQUESTS.value, ErrorCode.UNAVAILABLE.value})
RETRY_REASONS = frozenset({"mempool_full", "nonce_too_far"})


BLOCK_RECORD_FIELDS = 8  # node.ledger.records.BlockRecord.encode
APPLIED = "applied"


class Watch(StrEnum):
    BLOCKS = "blocks"
    RECEIPTS = "receipts"


class LoadError(Exception):
    """The load could not be driven (connection lost, protocol error): one line to show."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    sent: int
    committed: int
    rejected: int
    in_flight: int
    total: int
    elapsed_s: float


@dataclass(slots=True, kw_only=True)
class LoadReport:
    total: int  # transactions handed to `drive`
    sent: int = 0  # submitted at least once
    admitted: int = 0  # submit answered ok
    refused: dict[str, int] = field(default_factory=dict)  # by admission reason
    rejected_receipts: dict[str, int] = field(default_factory=dict)  # committed, rejected
    applied: int = 0
    retries: int = 0
    submit_timeouts: int = 0
    commit_times: list[float] = field(default_factory=list)  # perf_counter, per commit
    latencies_ms: list[float] = field(default_factory=list)  # same order as commit_times
    started_at: float = 0.0  # first submit
    submit_ended_at: float = 0.0
    uncommitted: int = 0  # admitted, no receipt by the end of the drain

    @property
    def committed(self) -> int:
        return len(self.commit_times)

    @property
    def rejected(self) -> int:
        return sum(self.refused.values()) + sum(self.rejected_receipts.values())

    def rejected_reasons(self) -> dict[str, int]:
        out = dict(self.refused)
        for reason, n in self.rejected_receipts.items():
            out[reason] = out.get(reason, 0) + n
        return out

    def window(self, duration_s: float | None) -> tuple[int, float, list[float]]:
        """(committed, seconds, latencies) of the measurement window.

        The window opens at the first submit. With a duration it is exactly that long (if the
        run got that far); otherwise it closes at the last commit."""
        if not self.commit_times:
            return 0, 0.0, []
        last = self.commit_times[-1]
        if duration_s is None or last <= self.started_at + duration_s:
            return self.committed, last - self.started_at, list(self.latencies_ms)
        end = self.started_at + duration_s
        inside = [
            lat for t, lat in zip(self.commit_times, self.latencies_ms, strict=True) if t <= end
        ]
        return len(inside), duration_s, inside


def block_outcomes(block: BlockInfo) -> list[tuple[bytes, str]]:
    """(tx id, "applied" or rejection reason) for each transaction of a streamed block.

    The outcomes come from the block record (`BlockInfo.block`); the ids are the node's
    `tx_ids`, or computed here if the block holds undecodable transactions (which have no id
    there, so the two lists would not line up). Raises LoadError for a malformed record."""
    try:
        record = msgpack.unpackb(block.block, raw=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise LoadError(f"block {block.height}: unreadable block record ({exc})") from None
    if not isinstance(record, list) or len(record) != BLOCK_RECORD_FIELDS:
        raise LoadError(f"block {block.height}: block record is not a {BLOCK_RECORD_FIELDS}-list")
    txs, outcomes = record[6], record[7]
    if (
        not isinstance(txs, list)
        or not isinstance(outcomes, list)
        or len(txs) != len(outcomes)
        or not all(isinstance(o, str) for o in outcomes)
    ):
        raise LoadError(f"block {block.height}: transactions and outcomes do not line up")
    if len(block.tx_ids) == len(outcomes):
        return list(zip(block.tx_ids, outcomes, strict=True))
    out = []
    for raw, outcome in zip(txs, outcomes, strict=True):
        try:
            out.append((decode_signed_transaction(raw, tx_bytes_max=len(raw)).tx_id, outcome))
        except (TxDecodeError, TypeError):
            continue  # undecodable: not one of ours
    return out


def _first_leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


def route_by_signer(tx: PreSigned, position: int, clients: int) -> int:
    """Holder transfers: one holder always on one connection (its nonces stay in order);
    role-key transactions (one signer for all) are spread by position."""
    return (tx.signer if tx.signer >= 0 else position) % clients


class LoadDriver:
    def __init__(
        self,
        clients: Sequence[AsyncClient],
        watcher: AsyncClient,
        txs: Sequence[PreSigned],
        *,
        in_flight_max: int,
        workers_per_client: int,
        route: Callable[[PreSigned, int, int], int] = route_by_signer,
        watch: Watch = Watch.BLOCKS,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        if not clients:
            raise ValueError("need at least one client connection")
        if not 1 <= in_flight_max <= IN_FLIGHT_MAX_LIMIT:
            raise ValueError(f"in_flight_max must be 1..{IN_FLIGHT_MAX_LIMIT}, got {in_flight_max}")
        if not 1 <= workers_per_client <= WORKERS_PER_CLIENT_MAX:
            raise ValueError(
                f"workers_per_client must be 1..{WORKERS_PER_CLIENT_MAX}, got {workers_per_client}"
            )
        self._clients = list(clients)
        self._watcher = watcher
        self._queues: list[deque[PreSigned]] = [deque() for _ in clients]
        for position, tx in enumerate(txs):
            self._queues[route(tx, position, len(clients))].append(tx)
        self._window = trio.Semaphore(in_flight_max)
        self._workers = workers_per_client
        self._watch_kind = watch
        self._on_progress = on_progress
        self._pending: dict[bytes, float] = {}  # tx id -> perf_counter of its first submit
        self._stop_at = float("inf")
        self.report = LoadReport(total=len(txs))

    async def drive(
        self, *, from_height: int, duration_s: float | None, drain_timeout_s: float
    ) -> LoadReport:
        """Submit everything (or until `duration_s` passed), then wait up to `drain_timeout_s`
        for the admitted transactions to commit. Raises LoadError if a connection fails."""
        try:
            async with trio.open_nursery() as outer:
                await outer.start(self._watch, from_height)
                outer.start_soon(self._progress_loop)
                report = self.report
                report.started_at = time.perf_counter()
                if duration_s is not None:
                    self._stop_at = report.started_at + duration_s
                async with trio.open_nursery() as workers:
                    for index in range(len(self._clients)):
                        for _ in range(self._workers):
                            workers.start_soon(self._worker, index)
                report.submit_ended_at = time.perf_counter()
                with trio.move_on_after(drain_timeout_s):
                    while self._pending:
                        await trio.sleep(DRAIN_POLL_S)
                report.uncommitted = len(self._pending)
                self._emit_progress()
                outer.cancel_scope.cancel()
        except* (ClientError, LoadError) as group:
            first = _first_leaf(group)
            if isinstance(first, LoadError):
                raise first from None
            raise LoadError(f"lost the cluster while driving load: {first}") from first
        return self.report

    async def _watch(self, from_height: int, task_status: trio.TaskStatus[None]) -> None:
        if self._watch_kind is Watch.BLOCKS:
            async with self._watcher.subscribe_blocks(from_height) as blocks:
                task_status.started()
                async for block in blocks:
                    now = time.perf_counter()
                    for tx_id, outcome in block_outcomes(block):
                        self._committed(tx_id, outcome, now)
        else:
            async with self._watcher.subscribe_receipts(from_height) as receipts:
                task_status.started()
                async for receipt in receipts:
                    outcome = APPLIED if receipt.status == APPLIED else receipt.reason or "unknown"
                    self._committed(receipt.tx_id, outcome, time.perf_counter())
        raise LoadError(f"the node ended the {self._watch_kind} subscription")

    def _committed(self, tx_id: bytes, outcome: str, now: float) -> None:
        sent_at = self._pending.pop(tx_id, None)
        if sent_at is None:
            return  # not ours (other load on the cluster) or refused meanwhile
        report = self.report
        report.commit_times.append(now)
        report.latencies_ms.append((now - sent_at) * 1000)
        if outcome == APPLIED:
            report.applied += 1
        else:
            report.rejected_receipts[outcome] = report.rejected_receipts.get(outcome, 0) + 1
        self._window.release()

    async def _worker(self, index: int) -> None:
        client = self._clients[index]
        queue = self._queues[index]
        report = self.report
        while queue and time.perf_counter() < self._stop_at:
            await self._window.acquire()
            if not queue or time.perf_counter() >= self._stop_at:
                self._window.release()
                return
            tx = queue.popleft()
            self._pending[tx.tx_id] = time.perf_counter()
            report.sent += 1
            await self._submit(client, tx)

    async def _submit(self, client: AsyncClient, tx: PreSigned) -> None:
        report = self.report
        for _ in range(RETRIES_PER_TX_MAX):
            try:
                await client.submit(tx.raw)
            except ApiError as exc:
                if exc.code in RETRY_CODES or (
                    exc.code == ErrorCode.REJECTED and exc.reason in RETRY_REASONS
                ):
                    report.retries += 1
                    await trio.sleep(RETRY_PAUSE_S)
                    continue
                self._refuse(tx, exc.reason or exc.code)
                return
            except RequestTimeoutError:
                # It may still be admitted and commit: keep waiting for its receipt.
                report.submit_timeouts += 1
                return
            report.admitted += 1
            return
        self._refuse(tx, "retries_exhausted")

    def _refuse(self, tx: PreSigned, reason: str) -> None:
        if self._pending.pop(tx.tx_id, None) is not None:
            self._window.release()
        self.report.refused[reason] = self.report.refused.get(reason, 0) + 1

    def _emit_progress(self) -> None:
        if self._on_progress is None:
            return
        r = self.report
        self._on_progress(
            Progress(
                sent=r.sent,
                committed=r.committed,
                rejected=r.rejected,
                in_flight=len(self._pending),
                total=r.total,
                elapsed_s=time.perf_counter() - r.started_at if r.started_at else 0.0,
            )
        )

    async def _progress_loop(self) -> None:
        while True:
            self._emit_progress()
            await trio.sleep(PROGRESS_INTERVAL_S)
