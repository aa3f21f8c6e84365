"""A hand-driven cluster for unit and scenario tests: every delivery is explicit and traced.

Unlike the simulator, nothing here is random: a test decides which message reaches whom,
when ticks pass and who crashes, then reads the trace (printed on failure via `dump()`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import nacl.signing

from consensus import actions as act
from consensus import events as ev
from consensus import messages as m
from consensus.certificate import CommitCertificate
from consensus.config import ReplicaConfig, ReplicaLimits, ReplicaTimeouts
from consensus.encoding import DecodeLimits, digest, pack
from consensus.replica import Replica
from consensus.state import PersistedState

CHAIN_ID = "assetledger-test"


def key(i: int) -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(digest(f"test-validator-{i}".encode()))


def chain_next(prev: bytes, seq: int, d: bytes) -> bytes:
    return digest(prev + seq.to_bytes(8, "big") + d)


class FixedRandom:
    """Satisfies the replica's RandomSource protocol deterministically."""

    def random(self) -> float:
        return 0.5

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:
        return start if stop is not None else 0


def describe(data: bytes) -> str:
    try:
        x = m.decode_message(data, limits=DecodeLimits(), n=64, window=4096)
    except m.MessageError as exc:
        return f"<garbage: {exc.reason}>"
    if isinstance(x, m.PrePrepare):
        return f"PRE-PREPARE(v={x.view}, n={x.seq}, d={x.digest.hex()[:6]})"
    if isinstance(x, m.Prepare | m.Commit):
        kind = "PREPARE" if isinstance(x, m.Prepare) else "COMMIT"
        return f"{kind}(v={x.view}, n={x.seq}, d={x.digest.hex()[:6]})"
    if isinstance(x, m.Checkpoint):
        return f"CHECKPOINT(n={x.seq}, s={x.state_digest.hex()[:6]})"
    if isinstance(x, m.ViewChange):
        return f"VIEW-CHANGE(v={x.new_view}, h={x.checkpoint_seq}, P={[p.seq for p in x.prepared]})"
    return f"NEW-VIEW(v={x.view}, O={[p.seq for p in x.pre_prepares]})"


@dataclass(slots=True)
class InFlight:
    src: str
    dst: str
    data: bytes

    @property
    def text(self) -> str:
        return describe(self.data)


@dataclass(slots=True, kw_only=True)
class NodeStore:
    blocks: list[tuple[int, bytes, bytes, CommitCertificate]] = field(default_factory=list)
    chain: bytes = bytes(32)
    persisted: PersistedState | None = None
    unacked: list[tuple[int, PersistedState]] = field(default_factory=list)
    validations: list[act.ValidateProposal] = field(default_factory=list)
    fetches: list[act.FetchBlocks] = field(default_factory=list)
    mismatches: list[act.StateDigestMismatch] = field(default_factory=list)


class Cluster:
    def __init__(
        self,
        n: int = 4,
        *,
        limits: ReplicaLimits | None = None,
        timeouts: ReplicaTimeouts | None = None,
        replica_class: type[Replica] = Replica,
    ) -> None:
        self.names = [f"r{i}" for i in range(n)]
        self.keys = {name: key(i) for i, name in enumerate(self.names)}
        validators = tuple((name, bytes(self.keys[name].verify_key)) for name in self.names)
        self.validators = validators
        self.configs = {
            name: ReplicaConfig(
                chain_id=CHAIN_ID,
                validators=validators,
                name=name,
                limits=limits
                or ReplicaLimits(
                    checkpoint_interval_seqs=4,
                    log_window_seqs=8,
                    batch_bytes_max=1024,
                    message_bytes_max=128 << 10,
                ),
                timeouts=timeouts
                or ReplicaTimeouts(
                    view_change_timeout_ticks=10,
                    retransmit_interval_ticks=1000,  # off unless a test asks
                    fetch_retry_ticks=5,
                ),
            )
            for name in self.names
        }
        self.replica_class = replica_class
        self.replicas: dict[str, Replica | None] = {}
        self.stores = {name: NodeStore() for name in self.names}
        self.queue: list[InFlight] = []
        # Executed events wait here, like a host's inbox: an Executed may make the replica
        # hand over more blocks, which must be applied after the ones already handed over.
        self._executed: dict[str, list[ev.Executed]] = {}
        self._draining: set[str] = set()
        self.trace: list[str] = []
        self.auto_persist: dict[str, bool] = dict.fromkeys(self.names, True)
        self.hold_executed: set[str] = set()  # these hosts apply blocks but do not say so yet
        self.verdict: Callable[[str, bytes], bool] = lambda name, payload: True
        for name in self.names:
            self.start(name)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, name: str) -> None:
        store = self.stores[name]
        self.replicas[name] = self.replica_class(
            self.configs[name],
            signing_key=self.keys[name],
            rng=FixedRandom(),
            restored=store.persisted,
            executed_seq=len(store.blocks),
            executed_digest=store.chain,
        )
        self.trace.append(f"start {name} (executed {len(store.blocks)})")

    def crash(self, name: str) -> None:
        self.replicas[name] = None
        self._executed.pop(name, None)
        self.stores[name].unacked.clear()
        self.queue = [x for x in self.queue if x.dst != name]
        self.trace.append(f"crash {name}")

    def replica(self, name: str) -> Replica:
        r = self.replicas[name]
        assert r is not None, f"{name} is down"
        return r

    def primary(self) -> str:
        views = [r.view for r in self.replicas.values() if r is not None]
        return self.names[max(views) % len(self.names)]

    # -- driving -----------------------------------------------------------------------------

    def step(self, name: str, event: ev.Event) -> list[act.Action]:
        r = self.replicas[name]
        if r is None:
            return []
        actions = r.step(event)
        self._handle(name, actions)
        return actions

    def propose(self, payload: bytes, to: str | None = None) -> None:
        self.step(to or self.primary(), ev.ProposeBatch(payload=payload))

    def tick(self, count: int = 1, names: list[str] | None = None) -> None:
        for _ in range(count):
            for name in names or self.names:
                self.step(name, ev.Tick())

    def ack_persist(self, name: str) -> None:
        store = self.stores[name]
        pending, store.unacked = store.unacked, []
        for token, state in pending:
            store.persisted = state
            self.step(name, ev.Persisted(token=token))

    def deliver(
        self,
        where: Callable[[InFlight], bool] = lambda x: True,
        *,
        rounds_max: int = 10_000,
    ) -> int:
        """Deliver queued messages matching `where` (FIFO, including ones they cause)."""
        delivered = 0
        for _ in range(rounds_max):
            index = next((i for i, x in enumerate(self.queue) if where(x)), None)
            if index is None:
                return delivered
            x = self.queue.pop(index)
            if self.replicas.get(x.dst) is None:
                continue
            self.trace.append(f"{x.src} -> {x.dst}: {x.text}")
            self.step(x.dst, ev.MessageReceived(sender=x.src, data=x.data))
            delivered += 1
        raise AssertionError("delivery does not settle")

    def drop(self, where: Callable[[InFlight], bool]) -> int:
        before = len(self.queue)
        dropped = [x for x in self.queue if where(x)]
        self.queue = [x for x in self.queue if not where(x)]
        for x in dropped:
            self.trace.append(f"DROP {x.src} -> {x.dst}: {x.text}")
        return before - len(self.queue)

    def _handle(self, name: str, actions: list[act.Action]) -> None:
        store = self.stores[name]
        for a in actions:
            if isinstance(a, act.Broadcast):
                for other in self.names:
                    if other != name:
                        self.queue.append(InFlight(name, other, a.data))
            elif isinstance(a, act.Send):
                self.queue.append(InFlight(name, a.to, a.data))
            elif isinstance(a, act.Persist):
                store.unacked.append((a.token, a.state))
                if self.auto_persist[name]:
                    self.ack_persist(name)
            elif isinstance(a, act.ValidateProposal):
                store.validations.append(a)
                self.step(
                    name,
                    ev.ProposalValidated(
                        view=a.view, seq=a.seq, digest=a.digest, valid=self.verdict(name, a.payload)
                    ),
                )
            elif isinstance(a, act.Execute):
                assert a.seq == len(store.blocks) + 1, f"{name} executes {a.seq} out of order"
                d = digest(a.payload)
                store.blocks.append((a.seq, d, a.payload, a.certificate))
                store.chain = chain_next(store.chain, a.seq, d)
                self.trace.append(f"{name} EXECUTE n={a.seq} d={d.hex()[:6]}")
                self._executed.setdefault(name, []).append(
                    ev.Executed(seq=a.seq, state_digest=store.chain)
                )
            elif isinstance(a, act.FetchBlocks):
                store.fetches.append(a)
                self.trace.append(f"{name} FETCH {a.from_seq}..{a.to_seq}")
            elif isinstance(a, act.ViewChanged):
                self.trace.append(f"{name} VIEW {a.view} (primary {a.primary})")
            elif isinstance(a, act.StateDigestMismatch):
                store.mismatches.append(a)
                self.trace.append(f"{name} STATE DIGEST MISMATCH at {a.seq}")
        if name in self._draining or name in self.hold_executed:
            return
        self._draining.add(name)
        try:
            queue = self._executed.get(name, [])
            while queue and self.replicas.get(name) is not None:
                self.step(name, queue.pop(0))
        finally:
            self._draining.discard(name)

    def release_executed(self, name: str) -> None:
        """Feed `name` the Executed events held back (see `hold_executed`)."""
        self.hold_executed.discard(name)
        queue = self._executed.get(name, [])
        while queue and self.replicas.get(name) is not None:
            self.step(name, queue.pop(0))

    def serve_fetch(self, name: str, from_peer: str) -> None:
        """Answer `name`'s last FetchBlocks from `from_peer`'s store."""
        store = self.stores[name]
        req = store.fetches[-1]
        blocks = tuple(
            ev.FetchedBlock(seq=s, payload=p, certificate=c)
            for s, _, p, c in self.stores[from_peer].blocks
            if req.from_seq <= s <= req.to_seq
        )
        self.step(name, ev.BlocksFetched(blocks=blocks))

    # -- reading -----------------------------------------------------------------------------

    def digests(self, name: str) -> list[bytes]:
        return [d for _, d, _, _ in self.stores[name].blocks]

    def height(self, name: str) -> int:
        return len(self.stores[name].blocks)

    def dump(self) -> str:
        return "trace:\n  " + "\n  ".join(self.trace[-200:])


def batch(*txs: str) -> bytes:
    return pack([t.encode() for t in txs])
