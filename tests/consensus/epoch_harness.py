"""A hand-driven cluster of EpochReplicas over a toy ledger that changes the validator set.

Like tests/consensus/harness.py, nothing is random: the test decides deliveries, ticks and
crashes. The toy ledger plays the real ledger's part in epochs (consensus/epochs.py): a block
holding `gov|op|name|key` transactions changes its validator set; the first change schedules
the epoch end B = epoch_last_seq(s, K, W), and executing B starts the next epoch with the
ledger's set. Every node derives that alone, from its own blocks.

Each node's events (Persisted, ProposalValidated, Executed) go through an inbox drained after
each step, like a real host's, so a replica is never re-entered. Every consensus message a
node sends is checked against the epoch rules (`violations`): a vote lies inside its epoch
and never more than a log window beyond what its sender executed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import nacl.signing

from consensus import actions as act
from consensus import events as ev
from consensus import messages as m
from consensus.certificate import CommitCertificate
from consensus.config import ReplicaLimits, ReplicaTimeouts
from consensus.encoding import DecodeLimits, digest, pack, unpack
from consensus.epoch_replica import EPOCH_PREFIX_BYTES, EpochReplica
from consensus.epochs import Epoch, epoch_last_seq
from consensus.state import PersistedState
from tests.consensus.harness import CHAIN_ID, FixedRandom, chain_next, describe, key

LIMITS = ReplicaLimits(
    checkpoint_interval_seqs=4, log_window_seqs=8, batch_bytes_max=1024, message_bytes_max=128 << 10
)
TIMEOUTS = ReplicaTimeouts(
    view_change_timeout_ticks=10,
    retransmit_interval_ticks=1000,  # off unless a test asks
    fetch_retry_ticks=5,
)
ROTATED = 100  # key(i + ROTATED) is validator i's second key


def public(k: nacl.signing.SigningKey) -> bytes:
    return bytes(k.verify_key)


def gov(op: str, name: str, public_key: bytes) -> bytes:
    """A toy governance transaction: add / remove / rotate."""
    return b"|".join([b"gov", op.encode(), name.encode(), public_key.hex().encode()])


def batch(*txs: bytes) -> bytes:
    return pack(list(txs))


def apply_gov(validators: list[tuple[str, bytes]], tx: bytes) -> bool:
    """The toy ledger's rule (tests choose changes the real ledger's safety rule allows)."""
    _, op, raw_name, raw_key = tx.split(b"|")
    name, pub = raw_name.decode(), bytes.fromhex(raw_key.decode())
    if op == b"add":
        validators.append((name, pub))
    elif op == b"remove":
        validators[:] = [(n, k) for n, k in validators if n != name]
    elif op == b"rotate":
        validators[:] = [(n, pub if n == name else k) for n, k in validators]
    else:
        raise AssertionError(f"unknown governance op {op!r}")
    return True


def unframe(data: bytes) -> tuple[int, bytes]:
    return int.from_bytes(data[:EPOCH_PREFIX_BYTES], "big"), data[EPOCH_PREFIX_BYTES:]


def decode(inner: bytes) -> m.Message | None:
    try:
        return m.decode_message(inner, limits=DecodeLimits(), n=64, window=4096)
    except m.MessageError:
        return None


@dataclass(slots=True)
class InFlight:
    src: str
    dst: str
    data: bytes

    @property
    def epoch(self) -> int:
        return unframe(self.data)[0]

    @property
    def text(self) -> str:
        number, inner = unframe(self.data)
        return f"e{number}:" + (describe(inner) if inner else "<empty>")


@dataclass(slots=True, kw_only=True)
class Block:
    seq: int
    digest: bytes
    payload: bytes
    certificate: CommitCertificate
    chain: bytes


@dataclass(slots=True, kw_only=True)
class Node:
    name: str
    keys: dict[bytes, nacl.signing.SigningKey]
    ledger_set: list[tuple[str, bytes]]
    epochs: list[Epoch]
    replica: EpochReplica | None = None
    blocks: list[Block] = field(default_factory=list)
    pending_end: int | None = None
    durable: PersistedState | None = None
    inbox: deque[ev.Event] = field(default_factory=deque)
    fetches: list[act.FetchBlocks] = field(default_factory=list)
    started: list[act.EpochStarted] = field(default_factory=list)
    evidence: list[act.EquivocationDetected] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)  # every Persist token, in order
    auto_persist: bool = True
    unacked: list[tuple[int, PersistedState]] = field(default_factory=list)

    @property
    def height(self) -> int:
        return len(self.blocks)

    def chain_at(self, seq: int) -> bytes:
        return self.blocks[seq - 1].chain if seq else bytes(32)

    def epoch_of(self, seq: int) -> Epoch:
        return next(e for e in reversed(self.epochs) if e.first_seq <= seq)


class EpochCluster:
    def __init__(
        self,
        genesis: int = 4,
        *,
        others: int = 0,
        limits: ReplicaLimits = LIMITS,
        timeouts: ReplicaTimeouts = TIMEOUTS,
    ) -> None:
        """Validators v0..v{genesis-1} form epoch 0; v{genesis}.. start as observers."""
        self.limits = limits
        self.timeouts = timeouts
        self.names = [f"v{i}" for i in range(genesis + others)]
        self.genesis = tuple((f"v{i}", public(key(i))) for i in range(genesis))
        epoch0 = Epoch(number=0, first_seq=1, validators=self.genesis)
        self.nodes: dict[str, Node] = {}
        for i, name in enumerate(self.names):
            keys = {public(k): k for k in (key(i), key(i + ROTATED))}
            self.nodes[name] = Node(
                name=name, keys=keys, ledger_set=list(self.genesis), epochs=[epoch0]
            )
        self.queue: list[InFlight] = []
        self.trace: list[str] = []
        self.violations: list[str] = []
        self.epoch_ends: dict[int, int] = {}  # epoch -> last seq, once any ledger knows it
        for name in self.names:
            self.start(name)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, name: str) -> None:
        """Start (or restart) from the node's durable state, as a real host would."""
        node = self.nodes[name]
        epoch = node.epochs[-1]
        restored = None if node.durable is None else PersistedState.decode(node.durable.encode())
        node.replica = EpochReplica(
            chain_id=CHAIN_ID,
            name=name,
            keys=node.keys,
            rng=FixedRandom(),
            epoch=epoch,
            base_digest=node.chain_at(epoch.base_seq),
            executed_seq=node.height,
            executed_digest=node.chain_at(node.height),
            last_seq=node.pending_end,
            restored=restored,
            limits=self.limits,
            timeouts=self.timeouts,
        )
        node.unacked.clear()
        node.tokens.clear()  # a new incarnation numbers its Persists afresh
        self.trace.append(f"start {name} (executed {node.height}, epoch {epoch.number})")

    def crash(self, name: str) -> None:
        node = self.nodes[name]
        node.replica = None
        node.inbox.clear()
        node.unacked.clear()
        self.queue = [x for x in self.queue if x.dst != name]
        self.trace.append(f"crash {name}")

    def replica(self, name: str) -> EpochReplica:
        r = self.nodes[name].replica
        assert r is not None, f"{name} is down"
        return r

    def up(self) -> list[str]:
        return [n for n in self.names if self.nodes[n].replica is not None]

    def primary(self) -> str:
        for name in self.up():
            r = self.replica(name)
            if r.is_primary and r.view_active:
                return name
        raise AssertionError("no active primary")

    # -- driving -----------------------------------------------------------------------------

    def step(self, name: str, event: ev.Event) -> list[act.Action]:
        node = self.nodes[name]
        if node.replica is None:
            return []
        out = node.replica.step(event)
        self._handle(node, out)
        rounds = 0
        while node.inbox and node.replica is not None:
            rounds += 1
            assert rounds < 10_000, "inbox does not drain"
            more = node.replica.step(node.inbox.popleft())
            self._handle(node, more)
            out += more
        return out

    def propose(self, payload: bytes, to: str | None = None) -> None:
        self.step(to or self.primary(), ev.ProposeBatch(payload=payload))

    def tick(self, count: int = 1, names: list[str] | None = None) -> None:
        for _ in range(count):
            for name in names or self.up():
                self.step(name, ev.Tick())

    def ack_persist(self, name: str) -> None:
        node = self.nodes[name]
        pending, node.unacked = node.unacked, []
        for token, state in pending:
            node.durable = state
            self.step(name, ev.Persisted(token=token))

    def deliver(
        self, where: Callable[[InFlight], bool] = lambda x: True, *, rounds_max: int = 20_000
    ) -> int:
        delivered = 0
        for _ in range(rounds_max):
            index = next((i for i, x in enumerate(self.queue) if where(x)), None)
            if index is None:
                return delivered
            x = self.queue.pop(index)
            if self.nodes[x.dst].replica is None:
                continue
            self.trace.append(f"{x.src} -> {x.dst}: {x.text}")
            self.step(x.dst, ev.MessageReceived(sender=x.src, data=x.data))
            delivered += 1
        raise AssertionError("delivery does not settle")

    def drop(self, where: Callable[[InFlight], bool]) -> int:
        before = len(self.queue)
        self.queue = [x for x in self.queue if not where(x)]
        return before - len(self.queue)

    def serve_fetches(self) -> int:
        """Answer every pending FetchBlocks from the first listed peer that has blocks."""
        served = 0
        for name in self.up():
            node = self.nodes[name]
            requests, node.fetches = node.fetches, []
            for req in requests:
                for peer in req.peers:
                    have = [
                        ev.FetchedBlock(seq=b.seq, payload=b.payload, certificate=b.certificate)
                        for b in self.nodes[peer].blocks
                        if req.from_seq <= b.seq <= req.to_seq
                    ]
                    if have and self.nodes[peer].replica is not None:
                        self.trace.append(f"{peer} serves {name} {have[0].seq}..{have[-1].seq}")
                        self.step(name, ev.BlocksFetched(blocks=tuple(have)))
                        served += 1
                        break
        return served

    def settle(self, rounds_max: int = 100) -> None:
        for _ in range(rounds_max):
            if not self.deliver() and not self.serve_fetches():
                return
        raise AssertionError("cluster does not settle\n" + self.dump())

    def run(self, ticks: int, names: list[str] | None = None) -> None:
        for _ in range(ticks):
            self.tick(names=names)
            self.settle()

    # -- the host's side of the actions ------------------------------------------------------

    def _handle(self, node: Node, actions: list[act.Action]) -> None:
        for a in actions:
            if isinstance(a, act.Broadcast):
                self._check_outgoing(node, a.data)
                for other in self.names:
                    if other != node.name:
                        self.queue.append(InFlight(node.name, other, a.data))
            elif isinstance(a, act.Send):
                self._check_outgoing(node, a.data)
                self.queue.append(InFlight(node.name, a.to, a.data))
            elif isinstance(a, act.Persist):
                if node.tokens and a.token <= node.tokens[-1]:
                    self.violations.append(f"{node.name} Persist token {a.token} went back")
                node.tokens.append(a.token)
                if node.auto_persist:
                    node.durable = a.state
                    node.inbox.append(ev.Persisted(token=a.token))
                else:
                    node.unacked.append((a.token, a.state))
            elif isinstance(a, act.ValidateProposal):
                node.inbox.append(
                    ev.ProposalValidated(view=a.view, seq=a.seq, digest=a.digest, valid=True)
                )
            elif isinstance(a, act.Execute):
                node.inbox.append(self._execute(node, a))
            elif isinstance(a, act.FetchBlocks):
                node.fetches.append(a)
            elif isinstance(a, act.EpochStarted):
                node.started.append(a)
                self.trace.append(f"{node.name} EPOCH {a.epoch.number} member={a.member}")
            elif isinstance(a, act.EquivocationDetected):
                node.evidence.append(a)
            elif isinstance(a, act.ViewChanged):
                self.trace.append(f"{node.name} VIEW {a.view} (primary {a.primary})")
            elif isinstance(a, act.StateDigestMismatch):
                self.violations.append(f"{node.name} state digest mismatch at {a.seq}")

    def _execute(self, node: Node, a: act.Execute) -> ev.Executed:
        assert a.seq == node.height + 1, f"{node.name} executes {a.seq} at {node.height}"
        d = digest(a.payload)
        if a.certificate.epoch != node.epoch_of(a.seq).number:
            self.violations.append(f"{node.name} block {a.seq} certified in another epoch")
        chain = chain_next(node.chain_at(node.height), a.seq, d)
        node.blocks.append(
            Block(seq=a.seq, digest=d, payload=a.payload, certificate=a.certificate, chain=chain)
        )
        self.trace.append(f"{node.name} EXECUTE n={a.seq} d={d.hex()[:6]}")
        changed = False
        for tx in unpack(a.payload) if a.payload else []:
            if tx.startswith(b"gov|"):
                changed |= apply_gov(node.ledger_set, tx)
        if changed and node.pending_end is None:
            node.pending_end = epoch_last_seq(
                a.seq,
                checkpoint_interval_seqs=self.limits.checkpoint_interval_seqs,
                log_window_seqs=self.limits.log_window_seqs,
            )
            self.epoch_ends.setdefault(node.epochs[-1].number, node.pending_end)
        next_epoch = None
        if node.pending_end == a.seq:
            next_epoch = Epoch(
                number=node.epochs[-1].number + 1,
                first_seq=a.seq + 1,
                validators=tuple(node.ledger_set),
            )
            node.epochs.append(next_epoch)
            node.pending_end = None
        return ev.Executed(
            seq=a.seq, state_digest=chain, epoch_last_seq=node.pending_end, next_epoch=next_epoch
        )

    def _check_outgoing(self, node: Node, data: bytes) -> None:
        """The epoch rules, on every message that leaves a node (consensus/epochs.py)."""
        r = node.replica
        assert r is not None
        number, inner = unframe(data)
        if not inner:
            return  # the "I am ahead" answer to an old-epoch message (E1)
        msg = decode(inner)
        if msg is None:
            self.violations.append(f"{node.name} sent an undecodable message")
            return
        if number < r.epoch.number and isinstance(msg, m.Checkpoint):
            return  # our final checkpoint of an old epoch, for a laggard (E1)
        if number != r.epoch.number:
            self.violations.append(f"{node.name} in epoch {r.epoch.number} sent epoch {number}")
        votes: list[m.PrePrepare | m.Prepare | m.Commit] = []
        if isinstance(msg, m.PrePrepare | m.Prepare | m.Commit):
            votes.append(msg)
        elif isinstance(msg, m.NewView):
            votes.extend(msg.pre_prepares)
        window = self.limits.log_window_seqs
        last = self.epoch_ends.get(number)
        for vote in votes:
            if vote.seq > r.executed_seq + window:
                self.violations.append(
                    f"{node.name} voted on {vote.seq} having executed {r.executed_seq}"
                )
            if vote.seq < r.epoch.first_seq or (last is not None and vote.seq > last):
                self.violations.append(f"{node.name} voted on {vote.seq} outside epoch {number}")

    # -- reading -----------------------------------------------------------------------------

    def heights(self) -> dict[str, int]:
        return {n: self.nodes[n].height for n in self.names}

    def agreement(self) -> list[str]:
        """Problems with agreement: one digest per seq across nodes."""
        problems = []
        by_seq: dict[int, bytes] = {}
        for name in self.names:
            for b in self.nodes[name].blocks:
                if by_seq.setdefault(b.seq, b.digest) != b.digest:
                    problems.append(f"{name} block {b.seq} differs")
        return problems

    def dump(self) -> str:
        return "trace:\n  " + "\n  ".join(self.trace[-300:])
