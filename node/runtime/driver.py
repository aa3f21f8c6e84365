"""The consensus driver: one trio task owns the replica; everything else talks to it by events.

Theory of operation.

 D1  Only `_drive` calls `replica.step`. Every other task (network reader, ticker, the
     persist/validate/execute workers) sends events into one bounded inbox. No locks.
 D2  The driver never blocks on a worker: actions are handed over through in-memory queues
     whose size the replica itself bounds (log window), and workers block on the inbox
     instead. So there is no wait cycle, and backpressure flows to the network reader.
 D3  Persistence contract: a Persist is written (fsync'd LMDB commit, in a thread) before
     Persisted(token) is fed back; the replica only then releases the votes it covers. Only
     the newest pending Persist is written: acknowledgements are cumulative.
 D4  Execute actions are applied strictly in order, each in one LMDB write transaction with
     its finality record; Executed(seq, state digest) follows the commit.
 D5  The primary cuts a batch when `batch_txs_max` transactions are ready or the oldest has
     waited `batch_timeout_ms`, with at most `pipeline_depth` proposals outstanding.
     A backup with ready transactions tells its replica (ProposeBatch), which arms the
     view-change timer: a primary that ignores them is replaced. The offer carries how long
     the oldest of them has been ready, so a primary that orders everything else but leaves
     one out is replaced too (R8a); a stall of this node itself restarts those waits.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import trio

from consensus.actions import (
    Action,
    Broadcast,
    EpochStarted,
    EquivocationDetected,
    Execute,
    FetchBlocks,
    Persist,
    Send,
    StateDigestMismatch,
    ValidateProposal,
    ViewChanged,
)
from consensus.epoch_replica import EpochReplica
from consensus.events import (
    BlocksFetched,
    Event,
    Executed,
    FetchedBlock,
    MessageReceived,
    PeersReachable,
    Persisted,
    ProposalValidated,
    ProposeBatch,
    Tick,
)
from node.finality import (
    PAYLOAD_HEADER_BYTES,
    PAYLOAD_TX_OVERHEAD_BYTES,
    FinalityRecord,
    FinalityRecordError,
    Proposal,
)
from node.ledger import Ledger, Receipt
from node.ledger.pipeline import BlockPipeline, PendingBlock, PipelineStats
from node.mempool import Mempool, PendingTx
from node.runtime.admission import Admission, Outcome
from node.runtime.execution import (
    AppliedBlock,
    PreparedBlock,
    ProposalRules,
    prepare_block,
    submit_block,
    validate_proposal,
)
from node.runtime.metrics import NodeMetrics
from node.runtime.peer_wire import PeerKind, PeerWireError, decode_envelope, encode_envelope
from node.runtime.verifier import BatchVerifier, VerifiedCache
from node.tx.kinds import VALIDATOR_SET_KINDS

EXPIRE_INTERVAL_MS = 1_000  # nonce-gap expiry scans the pool: once a second is plenty
# Ticks this far apart mean this node was stalled (SIGSTOP, a paused VM, a starved loop):
# what it slept through says nothing about the primary, so the waits count from now (R8a).
STALL_TICKS = 10
STALL_MS_MIN = 1_000
# Long-waiting transactions a backup takes on per pass (one pass per regossip interval), so
# forwarding stays a trickle under overload, when many transactions wait.
FORWARD_TXS_MAX = 64


class StallWatch:
    """Notices gaps between ticks long enough to mean this node itself was not running."""

    def __init__(self, tick_interval_ms: int) -> None:
        self.threshold_ms = max(STALL_TICKS * tick_interval_ms, STALL_MS_MIN)
        self._last_ms: int | None = None

    def stalled_ms(self, now_ms: int) -> int | None:
        """Record a tick at `now_ms`; the gap since the previous one if it was a stall."""
        last, self._last_ms = self._last_ms, now_ms
        if last is None or now_ms - last <= self.threshold_ms:
            return None
        return now_ms - last


EVIDENCE_QUEUE_MAX = 64  # equivocation reports waiting to be signed and submitted


class PeerTransport(Protocol):
    @property
    def incoming(self) -> trio.MemoryReceiveChannel[tuple[str, bytes]]: ...

    def send(self, peer_name: str, message: bytes) -> bool: ...
    def broadcast(self, message: bytes) -> None: ...
    def heard_peers(self, within_ms: int) -> frozenset[str]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class DriverSettings:
    tick_interval_ms: int
    batch_timeout_ms: int
    batch_txs_max: int
    batch_bytes_max: int
    peer_frame_bytes_max: int
    # Proposals outstanding at once. Measured (docs/benchmarks.md): 2 beats 1 (blocks wait
    # for each other) and 4 or 8 (many small blocks, more CPU per transfer).
    pipeline_depth: int = 2
    gossip_interval_ms: int = 5
    regossip_interval_ms: int = 2_000
    # A transaction ready here this long is resent to every peer (until it commits), as a
    # PBFT backup forwards a waiting request to the primary: before blaming a primary (R8,
    # R8a), make sure it has the transaction. The node sets half the view-change timeout, the
    # shorter: on an idle chain R8's timer, not R8a's, runs out first.
    forward_waiting_after_ms: int = 1_000  # (half the default view-change timeout)
    inbox_events_max: int = 10_000
    gossip_in_batches_max: int = 1_000
    fetch_requests_max: int = 64
    waiters_max: int = 20_000
    # Peers heard from within this are reported to the replica as reachable (R8b: it does
    # not start a view change it could not complete). Two keepalive intervals.
    peers_heard_window_ms: int = 2_000


class TooManyWaitersError(Exception):
    """The node-wide limit of clients waiting for a receipt is reached."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _InFlight:
    """A committed block handed to the ledger; no prepared/pending if applied before."""

    action: Execute
    state_digest: bytes
    prepared: PreparedBlock | None = None
    pending: PendingBlock | None = None


@dataclass(slots=True)
class _Waiter:
    event: trio.Event = field(default_factory=trio.Event)
    count: int = 0


class ConsensusDriver:
    def __init__(
        self,
        *,
        replica: EpochReplica,
        ledger: Ledger,
        mempool: Mempool,
        network: PeerTransport,
        admission: Admission,
        verifier: BatchVerifier,
        cache: VerifiedCache,
        rules: ProposalRules,
        settings: DriverSettings,
        metrics: NodeMetrics,
        log: logging.Logger,
        clock_ms: Callable[[], int],
        rng: random.Random,
        on_validators_changed: Callable[[], None] = lambda: None,
        evidence_tx: Callable[[EquivocationDetected], bytes] | None = None,
    ) -> None:
        self.replica = replica
        self._on_validators_changed = on_validators_changed
        self._evidence_tx = evidence_tx
        self._evidence_send, self._evidence_in = trio.open_memory_channel[EquivocationDetected](
            EVIDENCE_QUEUE_MAX
        )
        self.ledger = ledger
        self.mempool = mempool
        self._network = network
        self._reachable_reported: frozenset[str] | None = None
        self._admission = admission
        self._verifier = verifier
        self._pipeline: BlockPipeline | None = None  # from `run` on (closed once it returns)
        self._cache = cache
        self.rules = rules
        self._settings = settings
        self._metrics = metrics
        self._log = log
        self._clock_ms = clock_ms
        self._rng = rng
        self._inbox_send, self._inbox = trio.open_memory_channel[Event](settings.inbox_events_max)
        self._persist_latest: Persist | None = None
        self._persist_wakeup = trio.Event()
        self._validate_queue: deque[ValidateProposal] = deque()
        self._validate_wakeup = trio.Event()
        self._execute_queue: deque[Execute] = deque()
        self._execute_wakeup = trio.Event()
        self._gossip_in_send, self._gossip_in = trio.open_memory_channel[list[bytes]](
            settings.gossip_in_batches_max
        )
        self._fetch_send, self._fetch_in = trio.open_memory_channel[tuple[str, int, int]](
            settings.fetch_requests_max
        )
        self._gossip_out: deque[bytes] = deque()
        # Transactions our clients submitted (or that waited too long here) and when we last
        # gossiped them: p2p delivery is at most once, so until they commit we resend them
        # now and then (see _regossip, _forward_waiting).
        self._own: dict[bytes, int] = {}
        self._gossip_wakeup = trio.Event()
        self._first_unbatched_ms: int | None = None
        self._unbatched = 0
        self._waiters: dict[bytes, _Waiter] = {}
        self._admitted_at: dict[bytes, int] = {}
        self.new_block = trio.Event()  # replaced after every applied block (subscriptions)
        self.dropped: dict[str, int] = {}
        self._last_expire_ms = 0
        self._stall_watch = StallWatch(settings.tick_interval_ms)
        self._last_forward_ms = 0
        # Set when our state digest disagrees with a stable checkpoint: we stop serving state.
        self.halted = False

    # ------------------------------------------------------------------ public

    def status(self) -> dict[str, object]:
        r = self.replica
        return {
            "epoch": r.epoch.number,
            "member": r.member,
            "validators": [name for name, _ in r.epoch.validators],
            "view": r.view,
            "view_active": r.view_active,
            "primary": r.primary,
            "executed_seq": r.executed_seq,
            "checkpoint_seq": r.checkpoint_seq,
            "halted": r.halted,
            "mempool_size": len(self.mempool),
        }

    async def submit(self, raws: list[bytes]) -> list[Outcome]:
        """Admit client transactions; admitted ones are gossiped to every validator."""
        return await self._admission.admit(raws, from_client=True)

    async def wait_for_receipt(self, tx_id: bytes, timeout_s: float) -> Receipt | None:
        """The receipt of `tx_id` once its block is applied, or None after `timeout_s`."""
        receipt = self.ledger.receipt(tx_id)
        if receipt is not None:
            return receipt
        entry = self._waiters.get(tx_id)
        if entry is None:
            if len(self._waiters) >= self._settings.waiters_max:
                raise TooManyWaitersError(f"{len(self._waiters)} transactions already have waiters")
            entry = self._waiters[tx_id] = _Waiter()
        entry.count += 1
        try:
            with trio.move_on_after(timeout_s):
                await entry.event.wait()
        finally:
            entry.count -= 1
            if entry.count == 0 and self._waiters.get(tx_id) is entry:
                del self._waiters[tx_id]
        return self.ledger.receipt(tx_id)

    def on_admitted(self, txs: list[PendingTx], from_client: bool) -> None:
        now = self._clock_ms()
        for tx in txs:
            self._admitted_at[tx.tx_id] = now
        if self._first_unbatched_ms is None:
            self._first_unbatched_ms = now
        self._unbatched += len(txs)
        if from_client:
            for tx in txs:
                self._own[tx.tx_id] = now
            self._gossip_out.extend(tx.raw for tx in txs)
            self._gossip_wakeup.set()
        self._metrics.mempool_size.set(len(self.mempool))

    # ------------------------------------------------------------------ run

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        # Closed on the way out: waits for the last commit (to_thread calls are never
        # abandoned, so no submit is running by then).
        with BlockPipeline(self.ledger) as pipeline:
            self._pipeline = pipeline
            await self._run(pipeline, task_status)

    def pipeline_stats(self) -> PipelineStats | None:
        """Where applying blocks spent its time since the driver started (None before)."""
        return None if self._pipeline is None else self._pipeline.stats()

    async def _run(self, pipeline: BlockPipeline, task_status: trio.TaskStatus[None]) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self._verifier.run)
            nursery.start_soon(self._ticker)
            nursery.start_soon(self._network_reader)
            nursery.start_soon(self._persister)
            nursery.start_soon(self._validator)
            nursery.start_soon(self._executor, pipeline)
            nursery.start_soon(self._gossip_sender)
            nursery.start_soon(self._gossip_receiver)
            nursery.start_soon(self._fetch_server)
            nursery.start_soon(self._evidence_reporter)
            task_status.started()
            await self._drive()

    async def _drive(self) -> None:
        async for event in self._inbox:
            if isinstance(event, Tick):
                self._report_reachable()  # before the tick that may fire the R8 timer
            self._step(event)
            if isinstance(event, Tick):
                self._housekeeping()
            self._maybe_propose()

    def _report_reachable(self) -> None:
        """Tell the replica whom we hear from, when that changes (R8b)."""
        heard = self._network.heard_peers(self._settings.peers_heard_window_ms)
        if heard != self._reachable_reported:
            self._reachable_reported = heard
            self._step(PeersReachable(names=heard))

    def _step(self, event: Event) -> None:
        for action in self.replica.step(event):
            self._dispatch(action)

    def _dispatch(self, action: Action) -> None:
        match action:
            case Send(to=to, data=data):
                if not self._network.send(to, encode_envelope(PeerKind.PBFT, data)):
                    self._drop("peer_queue_full")
            case Broadcast(data=data):
                self._network.broadcast(encode_envelope(PeerKind.PBFT, data))
            case Persist():
                self._persist_latest = action
                self._persist_wakeup.set()
            case ValidateProposal():
                self._validate_queue.append(action)
                self._validate_wakeup.set()
            case Execute():
                self._execute_queue.append(action)
                self._execute_wakeup.set()
            case FetchBlocks(from_seq=start, to_seq=end, peers=peers):
                if peers:
                    peer = peers[self._rng.randrange(len(peers))]
                    self._network.send(peer, encode_envelope(PeerKind.FETCH, [start, end]))
                    self._log.info(
                        "state transfer requested",
                        extra={"peer": peer, "from_seq": start, "to_seq": end},
                    )
            case ViewChanged(view=view, primary=primary):
                self.mempool.release_proposed()
                self._first_unbatched_ms = self._clock_ms() if len(self.mempool) else None
                self._metrics.view.set(view)
                self._metrics.view_changes.inc()
                self._log.info("view changed", extra={"new_view": view, "primary": primary})
            case EpochStarted(epoch=epoch, member=member):
                self._on_validators_changed()
                self.mempool.release_proposed()
                self._first_unbatched_ms = self._clock_ms() if len(self.mempool) else None
                self._metrics.epoch.set(epoch.number)
                self._log.info(
                    "validator set changed: new epoch"
                    + ("" if member else "; this node does not vote in it"),
                    extra={
                        "epoch": epoch.number,
                        "first_seq": epoch.first_seq,
                        "validators": [name for name, _ in epoch.validators],
                        "member": member,
                    },
                )
            case EquivocationDetected(validator=validator, epoch=epoch):
                self._log.warning(
                    "EQUIVOCATION: a validator signed two conflicting messages; reporting it"
                    " on the ledger",
                    extra={"validator": validator, "epoch": epoch},
                )
                try:
                    self._evidence_send.send_nowait(action)
                except trio.WouldBlock:
                    self._drop("evidence_queue_full")
            case StateDigestMismatch(seq=seq, ours=ours, stable=stable):
                self.halted = True
                self._log.error(
                    "STATE DIGEST MISMATCH: this node's state differs from the stable checkpoint;"
                    " it stopped voting. Stop it, wipe its data directory and let it resync.",
                    extra={"seq": seq, "ours": ours, "stable": stable},
                )
            case _:
                raise AssertionError(f"unhandled action {action!r}")

    def _drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    # ------------------------------------------------------------------ proposing (D5)

    def _maybe_propose(self) -> None:
        replica = self.replica
        if not replica.can_propose:
            return
        outstanding = replica.proposed_seq - replica.executed_seq
        while outstanding < self._settings.pipeline_depth and replica.can_propose:
            if self._first_unbatched_ms is None:
                return
            now = self._clock_ms()
            full = self._unbatched >= self._settings.batch_txs_max
            due = now - self._first_unbatched_ms >= self._settings.batch_timeout_ms
            if not (full or due):
                return
            batch = self.mempool.take_batch(
                txs_max=self._settings.batch_txs_max,
                bytes_max=self._settings.batch_bytes_max - PAYLOAD_HEADER_BYTES,
                tx_overhead_bytes=PAYLOAD_TX_OVERHEAD_BYTES,
            )
            self._unbatched = max(0, self._unbatched - len(batch))
            if len(batch) < self._settings.batch_txs_max:
                self._first_unbatched_ms = None
                self._unbatched = 0
            if not batch:
                return
            payload = Proposal(timestamp_ms=now, txs=tuple(tx.raw for tx in batch)).encode()
            before = replica.proposed_seq
            self._step(ProposeBatch(payload=payload))
            if replica.proposed_seq == before:
                # Our bug if it happens (the size accounting above should make it impossible):
                # never strand the batch's transactions as "proposed".
                self.mempool.release_proposed()
                self._log.error(
                    "the replica refused our proposal; its transactions stay pending",
                    extra={"txs": len(batch), "payload_bytes": len(payload)},
                )
                return
            outstanding = replica.proposed_seq - replica.executed_seq

    def _housekeeping(self) -> None:
        now = self._clock_ms()
        if now - self._last_expire_ms >= EXPIRE_INTERVAL_MS:
            self._last_expire_ms = now
            expired = self.mempool.expire(now_ms=now)
            for tx in expired:
                self._admitted_at.pop(tx.tx_id, None)
            if expired:
                self._log.info("nonce-gap transactions expired", extra={"txs": len(expired)})
        tick_ms = self._settings.tick_interval_ms
        stalled = self._stall_watch.stalled_ms(now)
        if stalled is not None:
            self.mempool.restart_waits(now_ms=now)
            self._log.warning("this node was stalled", extra={"stalled_ms": stalled})
        if not self.replica.is_primary and len(self.mempool):
            # Not while committed blocks wait to be applied: their txs are still in the
            # mempool until _after_block removes them, and offering them would re-arm the
            # view-change timer the replica just disarmed -> a spurious view change.
            oldest = None if self._execute_queue else self.mempool.oldest_ready_ms()
            if oldest is not None:
                if self.replica.view_active:
                    waited_ticks = max(0, now - oldest) // tick_ms
                    self._step(ProposeBatch(payload=b"", oldest_wait_ticks=waited_ticks))
                # Also in a view change: alone in one, this node waits until the others
                # change view too, while the primary they follow may never have got the
                # transaction.
                self._forward_waiting(now, oldest)
        elif (
            self.replica.is_primary
            and self._first_unbatched_ms is None
            and self.mempool.has_ready()
        ):
            # Transactions left behind by a discarded proposal become eligible again.
            self._first_unbatched_ms = now
            self._unbatched = 1
        self._regossip(now)
        self._metrics.mempool_size.set(len(self.mempool))
        for reason, count in self.replica.counters.items():
            self._metrics.consensus_dropped.labels(reason=reason).set(count)

    def _forward_waiting(self, now: int, oldest: int) -> None:
        """Take on transactions that waited `forward_waiting_after_ms` here, whoever submitted
        them: `_regossip` then resends them until they commit. The primary may have lost the
        gossip, or refused it while its pool was full. At most one pass (FORWARD_TXS_MAX
        transactions) per half that wait, so a transaction is forwarded within 1.5 times it:
        before the view-change timer (twice it) runs out."""
        after = self._settings.forward_waiting_after_ms
        cutoff = now - after
        if oldest >= cutoff or now - self._last_forward_ms < after // 2:
            return
        self._last_forward_ms = now
        for tx in self.mempool.ready_before(cutoff, limit=FORWARD_TXS_MAX):
            self._own.setdefault(tx.tx_id, 0)  # never sent by us: due at once

    def _regossip(self, now: int) -> None:
        """Resend our clients' transactions that are still pending after an interval, a
        bounded number per tick, so one lost frame cannot strand a transaction (and those
        `_forward_waiting` took on)."""
        interval = self._settings.regossip_interval_ms
        budget = self._settings.batch_txs_max
        for tx_id, sent in list(self._own.items()):
            if budget == 0:
                break
            pending = self.mempool.get(tx_id)
            if pending is None:
                del self._own[tx_id]  # committed, expired or replaced
                continue
            if now - sent >= interval:
                self._own[tx_id] = now
                self._gossip_out.append(pending.raw)
                budget -= 1
        if self._gossip_out:
            self._gossip_wakeup.set()

    # ------------------------------------------------------------------ tasks

    async def _ticker(self) -> None:
        interval = self._settings.tick_interval_ms / 1000
        while True:
            await trio.sleep(interval)
            await self._inbox_send.send(Tick())

    async def _network_reader(self) -> None:
        frame_max = self._settings.peer_frame_bytes_max
        items_max = max(self._settings.batch_txs_max * 4, 4096)
        async for peer, data in self._network.incoming:
            try:
                envelope = decode_envelope(data, bytes_max=frame_max, items_max=items_max)
            except PeerWireError as exc:
                self._drop("bad_envelope")
                self._log.warning(
                    "dropped a malformed peer message", extra={"peer": peer, "error": str(exc)}
                )
                continue
            body = envelope.body
            match envelope.kind:
                case PeerKind.PBFT:
                    await self._inbox_send.send(MessageReceived(sender=peer, data=body))  # type: ignore[arg-type]
                case PeerKind.TXS:
                    try:
                        self._gossip_in_send.send_nowait(body)  # type: ignore[arg-type]
                    except trio.WouldBlock:
                        self._drop("gossip_in_full")
                case PeerKind.FETCH:
                    try:
                        self._fetch_send.send_nowait((peer, body[0], body[1]))  # type: ignore[index]
                    except trio.WouldBlock:
                        self._drop("fetch_queue_full")
                case PeerKind.BLOCKS:
                    blocks = []
                    for seq, record in body:  # type: ignore[attr-defined]
                        try:
                            finality = FinalityRecord.decode(record, bytes_max=frame_max)
                        except FinalityRecordError:
                            self._drop("bad_finality_record")
                            continue
                        blocks.append(
                            FetchedBlock(
                                seq=seq, payload=finality.payload, certificate=finality.certificate
                            )
                        )
                    if blocks:
                        await self._inbox_send.send(BlocksFetched(blocks=tuple(blocks)))

    async def _persister(self) -> None:
        while True:
            await self._persist_wakeup.wait()
            self._persist_wakeup = trio.Event()
            action = self._persist_latest
            if action is None:
                continue
            self._persist_latest = None
            data = action.state.encode()
            await trio.to_thread.run_sync(self.ledger.save_consensus_state, data)
            await self._inbox_send.send(Persisted(token=action.token))

    async def _validator(self) -> None:
        while True:
            if not self._validate_queue:
                await self._validate_wakeup.wait()
                self._validate_wakeup = trio.Event()
                continue
            action = self._validate_queue.popleft()
            verdict = await validate_proposal(
                action.payload,
                rules=self.rules,
                cache=self._cache,
                verifier=self._verifier,
                now_ms=self._clock_ms(),
            )
            if not verdict.valid:
                self._log.warning(
                    "voting against an invalid proposal",
                    extra={
                        "seq": action.seq,
                        "proposal_view": action.view,
                        "reason": verdict.reason,
                    },
                )
            await self._inbox_send.send(
                ProposalValidated(
                    view=action.view, seq=action.seq, digest=action.digest, valid=verdict.valid
                )
            )

    async def _executor(self, pipeline: BlockPipeline) -> None:
        """Apply committed blocks in order. While block N commits, block N+1 (if already
        committed by consensus) is evaluated (node/ledger/pipeline.py); N's receipts,
        waiters and Executed event follow only once N is durable."""
        inflight: _InFlight | None = None  # the queue's head, submitted, maybe not durable
        while True:
            queue = self._execute_queue
            if len(queue) > (inflight is not None):
                started = await self._start(queue[1 if inflight is not None else 0], pipeline)
                if inflight is not None:
                    await self._finish(inflight)  # durable: started's writes came after it
                inflight = started
            elif inflight is not None:
                await self._finish(inflight)
                inflight = None
            else:
                await self._execute_wakeup.wait()
                self._execute_wakeup = trio.Event()

    async def _start(self, action: Execute, pipeline: BlockPipeline) -> _InFlight:
        if action.seq <= pipeline.tip[0]:
            # Applied before a crash that came before Executed was fed back: same block.
            record = self.ledger.block(action.seq)
            assert record is not None, f"block {action.seq} missing below the tip"
            return _InFlight(action=action, state_digest=record.state_digest)
        finality = FinalityRecord(payload=action.payload, certificate=action.certificate)
        prepared = await prepare_block(
            action.seq,
            finality,
            cache=self._cache,
            verifier=self._verifier,
            on_undecodable=self._undecodable,
        )
        pending = await trio.to_thread.run_sync(submit_block, pipeline, prepared)
        return _InFlight(
            action=action,
            state_digest=pending.effects.state_digest,
            prepared=prepared,
            pending=pending,
        )

    async def _finish(self, inflight: _InFlight) -> None:
        if inflight.pending is not None and inflight.prepared is not None:
            await trio.to_thread.run_sync(inflight.pending.wait)  # raises if the commit failed
            self._after_block(inflight.prepared.applied(inflight.pending))
        self._execute_queue.popleft()
        await self._inbox_send.send(self._executed(inflight.action.seq, inflight.state_digest))

    def _executed(self, seq: int, state_digest: bytes) -> Executed:
        """What the ledger decided about epochs with block `seq` (consensus/epochs.py)."""
        epoch = self.ledger.epoch_for(seq)
        ends_here = epoch.last_seq == seq
        return Executed(
            seq=seq,
            state_digest=state_digest,
            epoch_last_seq=epoch.last_seq,
            next_epoch=self.ledger.consensus_epoch(seq + 1) if ends_here else None,
        )

    def _undecodable(self, seq: int, reason: str) -> None:
        self._log.error(
            "committed payload does not decode; applying it as empty",
            extra={"seq": seq, "reason": reason},
        )

    def _after_block(self, applied: AppliedBlock) -> None:
        signers = [stx.body.signer for stx in applied.txs]
        now = self._clock_ms()
        for raw in applied.raws:
            self._cache.discard(raw)  # committed: never verified again
        consumed = self.mempool.remove_committed(self.ledger.nonce, signers, now_ms=now)
        ordered = self.mempool.remove_ordered(stx.tx_id for stx in applied.txs)
        for tx in consumed + ordered:
            self._own.pop(tx.tx_id, None)
            admitted = self._admitted_at.pop(tx.tx_id, None)
            if admitted is not None:
                self._metrics.commit_latency.observe(max(0, now - admitted) / 1000)
        for receipt in applied.receipts:
            if receipt.applied:
                self._metrics.txs_applied.inc()
            else:
                self._metrics.txs_rejected.labels(reason=str(receipt.reason)).inc()
        for stx in applied.txs:
            waiter = self._waiters.pop(stx.tx_id, None)
            if waiter is not None:
                waiter.event.set()
        if any(stx.body.kind in VALIDATOR_SET_KINDS for stx in applied.txs):
            self._on_validators_changed()  # an approved validator may connect and sync now
        self._metrics.height.set(applied.height)
        self._metrics.mempool_size.set(len(self.mempool))
        self._log.debug(
            "block applied", extra={"block": applied.height, "txs": len(applied.receipts)}
        )
        self.new_block.set()
        self.new_block = trio.Event()

    async def _gossip_sender(self) -> None:
        budget = self._settings.peer_frame_bytes_max - 1024
        while True:
            await self._gossip_wakeup.wait()
            await trio.sleep(self._settings.gossip_interval_ms / 1000)  # coalesce a burst
            self._gossip_wakeup = trio.Event()
            while self._gossip_out:
                chunk: list[bytes] = []
                size = 0
                while (
                    self._gossip_out
                    and len(chunk) < self._settings.batch_txs_max
                    and (not chunk or size + len(self._gossip_out[0]) + 8 <= budget)
                ):
                    raw = self._gossip_out.popleft()
                    chunk.append(raw)
                    size += len(raw) + 8
                self._network.broadcast(encode_envelope(PeerKind.TXS, chunk))

    async def _gossip_receiver(self) -> None:
        async for raws in self._gossip_in:
            outcomes = await self._admission.admit(raws, from_client=False)
            for outcome in outcomes:
                if outcome.reason is not None:
                    self._drop(f"gossip_{outcome.reason}")

    async def _evidence_reporter(self) -> None:
        async for found in self._evidence_in:
            if self._evidence_tx is None:
                continue
            raw = self._evidence_tx(found)
            outcomes = await self.submit([raw])
            reason = outcomes[0].reason if outcomes else None
            self._log.info(
                "equivocation report submitted"
                if reason is None
                else "equivocation report refused",
                extra={"validator": found.validator, "epoch": found.epoch, "reason": reason},
            )

    async def _fetch_server(self) -> None:
        budget = self._settings.peer_frame_bytes_max - 4096
        async for peer, start, end in self._fetch_in:
            blocks = await trio.to_thread.run_sync(self._read_blocks, start, end, budget)
            if blocks:
                self._network.send(peer, encode_envelope(PeerKind.BLOCKS, blocks))

    def _read_blocks(self, start: int, end: int, budget: int) -> list[list[object]]:
        out: list[list[object]] = []
        size = 0
        top = min(end, self.ledger.height, start + 255)
        for seq in range(max(start, 1), top + 1):
            record = self.ledger.block(seq)
            if record is None or record.certificate is None:
                break
            if size + len(record.certificate) > budget and out:
                break
            out.append([seq, record.certificate])
            size += len(record.certificate) + 16
        return out
