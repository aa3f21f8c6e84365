"""The simulated host of one replica instance: durable store, mempool, proposer, executor.

It plays the node's part of the contract: persists what Persist asks (with a random delay,
and a crash loses what was not yet acknowledged), validates proposals, executes committed
blocks in order with a hash-chained state digest, answers state-transfer requests from a
peer's store, and offers batches to its replica.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import nacl.signing

from consensus import actions as act
from consensus import events as ev
from consensus.certificate import CommitCertificate, quorum_size
from consensus.config import ReplicaConfig
from consensus.encoding import DecodeError, digest, pack, unpack
from consensus.epoch_replica import EpochReplica
from consensus.epochs import Epoch, epoch_last_seq
from consensus.messages import NULL_PAYLOAD
from consensus.replica import Replica
from consensus.state import PersistedState

if TYPE_CHECKING:
    from tests.simulation.world import World

GENESIS_CHAIN = bytes(32)


@dataclass(slots=True, kw_only=True)
class Block:
    seq: int
    digest: bytes
    payload: bytes
    certificate: CommitCertificate
    chain: bytes  # hash chain over (seq, digest) up to here = the state digest


def chain_step(prev: bytes, seq: int, d: bytes) -> bytes:
    return hashlib.sha256(prev + seq.to_bytes(8, "big") + d).digest()


def decode_batch(payload: bytes) -> list[bytes] | None:
    if payload == NULL_PAYLOAD:
        return []
    try:
        txs = unpack(payload)
    except DecodeError:
        return None
    if not isinstance(txs, list) or not all(isinstance(t, bytes) for t in txs):
        return None
    return txs


GOV_PREFIX = b"gov|"


def censored(tx: bytes) -> bool:
    """Half the transactions: those a Byzantine "censor" primary never orders."""
    return digest(tx)[0] % 2 == 1


def gov_tx(op: str, name: str, key: bytes, unique: str) -> bytes:
    """A governance transaction of the simulated ledger: add / remove / rotate."""
    return b"|".join([b"gov", op.encode(), name.encode(), key.hex().encode(), unique.encode()])


def apply_gov(
    validators: list[tuple[str, bytes]], epoch_set: tuple[tuple[str, bytes], ...], tx: bytes
) -> bool:
    """Apply one governance tx to the ledger's set, with the ledger's safety rule (continuing
    validators of the epoch must form a quorum of the new set). False: rejected, no change."""
    _, op, raw_name, raw_key, _ = tx.split(b"|")
    name, key = raw_name.decode(), bytes.fromhex(raw_key.decode())
    new = list(validators)
    names = [n for n, _ in new]
    if op == b"add" and name not in names and all(k != key for _, k in new):
        new.append((name, key))
    elif op == b"remove" and name in names:
        new = [(n, k) for n, k in new if n != name]
    elif op == b"rotate" and name in names and all(k != key for _, k in new):
        new = [(n, key if n == name else k) for n, k in new]
    else:
        return False
    continuing = sum(1 for v in new if v in epoch_set)
    if len(new) < 4 or continuing < quorum_size(len(new)):
        return False
    validators[:] = new
    return True


@dataclass(slots=True, kw_only=True)
class Host:
    instance: str
    name: str
    config: ReplicaConfig  # of epoch 0: chain id, genesis validators, limits, timeouts
    keys: dict[bytes, nacl.signing.SigningKey]  # every key this validator holds (rotation)
    replica_class: type[Replica]
    world: World
    rng: random.Random
    replica: EpochReplica | None = None
    durable: PersistedState | None = None  # last acknowledged state (encoded on restart)
    pending_persists: list[tuple[int, int, PersistedState]] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    applied: dict[bytes, int] = field(default_factory=dict)  # tx -> seq
    mempool: dict[bytes, int] = field(default_factory=dict)  # tx -> tick it arrived here
    inflight: set[bytes] = field(default_factory=set)
    inbox: list[ev.Event] = field(default_factory=list)
    crashed: bool = False
    crash_count: int = 0
    halted_loudly: bool = False
    honest: bool = True
    censors: bool = False  # Byzantine "censor": as primary, leaves out every censored() tx
    views_seen: int = 0
    # The ledger's governance state (durable: derived from the blocks, kept across crashes).
    ledger_set: list[tuple[str, bytes]] = field(default_factory=list)
    epochs: list[Epoch] = field(default_factory=list)
    pending_end: int | None = None
    reachable_reported: frozenset[str] | None = None  # the last PeersReachable fed (R8b)

    def __post_init__(self) -> None:
        self.ledger_set = list(self.config.validators)
        self.epochs = [Epoch(number=0, first_seq=1, validators=self.config.validators)]

    def epoch_of(self, seq: int) -> Epoch:
        return next(e for e in reversed(self.epochs) if e.first_seq <= seq)

    def start(self) -> None:
        # Through bytes, as a real restart would: the codec is part of what is tested.
        restored = None if self.durable is None else PersistedState.decode(self.durable.encode())
        epoch = self.epochs[-1]
        base = self.blocks[epoch.base_seq - 1].chain if epoch.base_seq else GENESIS_CHAIN
        self.replica = EpochReplica(
            chain_id=self.config.chain_id,
            name=self.name,
            keys=self.keys,
            rng=self.rng,
            epoch=epoch,
            base_digest=base,
            executed_seq=len(self.blocks),
            executed_digest=self.blocks[-1].chain if self.blocks else GENESIS_CHAIN,
            last_seq=self.pending_end,
            restored=restored,
            limits=self.config.limits,
            timeouts=self.config.timeouts,
            replica_class=self.replica_class,
        )
        self.crashed = False
        self.inbox.clear()
        self.reachable_reported = None  # a restarted replica has heard no report

    def crash(self) -> None:
        """Lose everything volatile: the replica, unacknowledged persists, mempool, inbox."""
        self.replica = None
        self.crashed = True
        self.crash_count += 1
        self.pending_persists.clear()
        self.inbox.clear()
        self.mempool.clear()
        self.inflight.clear()

    @property
    def height(self) -> int:
        return len(self.blocks)

    # -- driving ------------------------------------------------------------------------

    def feed(self, event: ev.Event) -> None:
        if self.replica is None:
            return
        self.handle(self.replica.step(event))

    def run_inbox(self) -> None:
        rounds = 0
        while self.inbox and self.replica is not None:
            rounds += 1
            assert rounds < 10_000, "host inbox does not drain"
            event = self.inbox.pop(0)
            self.feed(event)

    def report_reachable(self, heard: frozenset[str]) -> None:
        """Feed the replica whom it hears from, when that changes (as the node's driver does)."""
        if self.replica is not None and heard != self.reachable_reported:
            self.reachable_reported = heard
            self.feed(ev.PeersReachable(names=heard))

    def tick(self, now: int) -> None:
        if self.replica is None:
            return
        due = [p for p in self.pending_persists if p[0] <= now]
        if due:
            self.pending_persists = [p for p in self.pending_persists if p[0] > now]
            for _, token, state in due:
                self.durable = state
                self.inbox.append(ev.Persisted(token=token))
        self.run_inbox()
        self.feed(ev.Tick())
        self.run_inbox()
        self.propose(now)
        self.run_inbox()

    def propose(self, now: int) -> None:
        r = self.replica
        if r is None:
            return
        pending = sorted(
            t for t in self.mempool if t not in self.applied and t not in self.inflight
        )
        if not pending:
            return
        if r.can_propose and self.censors:
            pending = [t for t in pending if not censored(t)]
            if not pending:
                return
        if r.can_propose:
            in_flight_blocks = r.proposed_seq - r.handed_seq
            if in_flight_blocks >= self.world.params.pipeline_depth:
                return
            batch = pending[: self.world.params.batch_txs_max]
            self.inflight.update(batch)
            self.feed(ev.ProposeBatch(payload=pack(batch)))
        elif now % self.world.params.offer_interval_ticks == 0:
            # Offering to a backup arms its "waiting for a request" timer (R8), and tells it
            # how long the oldest transaction has waited here (R8a: censorship).
            waited = now - min(self.mempool[t] for t in pending)
            self.feed(ev.ProposeBatch(payload=pack(pending[:1]), oldest_wait_ticks=waited))

    # -- actions --------------------------------------------------------------------------

    def handle(self, actions: list[act.Action]) -> None:
        w = self.world
        for a in actions:
            if isinstance(a, act.Broadcast):
                w.transmit(self, None, a.data)
            elif isinstance(a, act.Send):
                w.transmit(self, a.to, a.data)
            elif isinstance(a, act.Persist):
                # A disk completes writes in order: never before an earlier Persist.
                ready = w.now + self.rng.randint(0, w.params.persist_delay_ticks_max)
                if self.pending_persists:
                    ready = max(ready, self.pending_persists[-1][0])
                self.pending_persists.append((ready, a.token, a.state))
            elif isinstance(a, act.ValidateProposal):
                self.inbox.append(
                    ev.ProposalValidated(
                        view=a.view, seq=a.seq, digest=a.digest, valid=self.validate(a.payload)
                    )
                )
            elif isinstance(a, act.Execute):
                self.execute(a)
            elif isinstance(a, act.FetchBlocks):
                w.fetch(self, a)
            elif isinstance(a, act.ViewChanged):
                self.views_seen += 1
                self.inflight.clear()
                w.stats["view_changes"] += 1
            elif isinstance(a, act.EpochStarted):
                w.note(f"{self.instance} epoch {a.epoch.number} member={a.member}")
            elif isinstance(a, act.EquivocationDetected):
                w.checker.on_evidence(self, a)
            elif isinstance(a, act.StateDigestMismatch):
                self.halted_loudly = True
                w.note(f"{self.instance} halted: state digest mismatch at {a.seq}")
            else:
                raise AssertionError(f"unknown action {a!r}")

    def validate(self, payload: bytes) -> bool:
        txs = decode_batch(payload)
        if txs is None or not txs:
            return False
        if len(set(txs)) != len(txs):
            return False
        return all(t in self.world.submitted for t in txs)

    def execute(self, a: act.Execute) -> None:
        w = self.world
        if a.seq != self.height + 1:
            w.violation(f"{self.instance} got Execute({a.seq}) at height {self.height}")
            return
        d = digest(a.payload)
        if a.certificate.digest != d or a.certificate.seq != a.seq:
            w.violation(f"{self.instance} Execute({a.seq}) with a certificate for another block")
        if a.certificate.epoch != self.epoch_of(a.seq).number:
            w.violation(f"{self.instance} Execute({a.seq}) certified by another epoch's set")
        txs = decode_batch(a.payload)
        if txs is None:
            w.violation(f"{self.instance} executed an undecodable payload at {a.seq}")
            txs = []
        prev = self.blocks[-1].chain if self.blocks else GENESIS_CHAIN
        chain = chain_step(prev, a.seq, d)
        self.blocks.append(
            Block(seq=a.seq, digest=d, payload=a.payload, certificate=a.certificate, chain=chain)
        )
        changed = False
        for t in txs:
            if t not in self.applied:  # the ledger skips a tx already applied (nonce rule)
                self.applied[t] = a.seq
                self.inflight.discard(t)
                self.mempool.pop(t, None)
                w.observe_commit(self, t)
                if t.startswith(GOV_PREFIX):
                    changed |= apply_gov(self.ledger_set, self.epochs[-1].validators, t)
        limits = self.config.limits
        if changed and self.pending_end is None:
            self.pending_end = epoch_last_seq(
                a.seq,
                checkpoint_interval_seqs=limits.checkpoint_interval_seqs,
                log_window_seqs=limits.log_window_seqs,
            )
        next_epoch = None
        if self.pending_end == a.seq:
            next_epoch = Epoch(
                number=len(self.epochs), first_seq=a.seq + 1, validators=tuple(self.ledger_set)
            )
            self.epochs.append(next_epoch)
            self.pending_end = None
        self.inbox.append(
            ev.Executed(
                seq=a.seq,
                state_digest=chain,
                epoch_last_seq=self.pending_end,
                next_epoch=next_epoch,
            )
        )
