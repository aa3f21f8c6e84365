"""EpochReplica: the replica across validator-set changes (sans-I/O, like Replica).

One Replica per epoch (consensus.epochs). The host feeds events and performs actions exactly as
for a Replica; on top of that:

 E1  Every consensus message on the wire is prefixed with its epoch (4 bytes, big-endian).
     Messages of our epoch go to the replica. Messages of the next epoch are buffered (bounded
     per sender) and replayed when we switch. A message of an older epoch is answered (at
     most once per retransmit interval per sender) with our CHECKPOINT of that epoch's last
     block, if we made one (a quorum of those makes it stable at the laggard, which then
     fetches the blocks it misses, R12), and with an empty frame of our epoch: that tells
     the laggard we are ahead (E3) even when the new epoch is idle and fewer than a quorum
     of the old set made it across.
 E2  The switch happens on Executed(next_epoch=...), i.e. right after the epoch's last block,
     at the same sequence number on every replica. The new replica starts from that block as
     its stable checkpoint (no proof needed: every replica of the epoch executed it), in view
     0, with the new set, and votes only if we are in the set and hold our key of it.
 E3  A replica behind by whole epochs cannot check later epochs' signatures yet, but the
     transport authenticates senders: once a peer sends messages of a later epoch, it fetches
     committed blocks from the peers ahead (CatchUp, at most once per fetch retry interval)
     and verifies each block against the set of the epoch it belongs to, learning the next
     set by executing the previous one. One peer is enough: a single replica that crossed the
     boundary may hold the only copy of the epoch's last certificate, and a lying peer costs
     no more than a refused fetch. Until the new epoch has a stable checkpoint of its own, a
     switched replica keeps rebroadcasting its final CHECKPOINT of the old epoch and an empty
     frame of the new one (with its other resends, R13), so laggards learn of the switch even
     on an idle chain. A halted replica (R7) does not switch: it stays halted.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

import nacl.signing

from consensus.actions import Action, Broadcast, EpochStarted, Send
from consensus.config import ReplicaConfig, ReplicaLimits, ReplicaTimeouts
from consensus.epochs import EPOCH_MAX, Epoch
from consensus.events import CatchUp, Event, Executed, MessageReceived, PeersReachable, Tick
from consensus.messages import Kind
from consensus.replica import RandomSource, Replica
from consensus.state import PersistedState

EPOCH_PREFIX_BYTES = 4
AHEAD_FRESH_TICKS_FACTOR = 4  # a "peer is in a later epoch" hint lasts this many fetch retries
FINAL_CHECKPOINTS_KEPT = 8  # epochs back we can still help a laggard out of (E1)


def frame(epoch: int, data: bytes) -> bytes:
    return epoch.to_bytes(EPOCH_PREFIX_BYTES, "big") + data


class EpochReplica:
    def __init__(
        self,
        *,
        chain_id: str,
        name: str,
        keys: Mapping[bytes, nacl.signing.SigningKey],
        rng: RandomSource,
        epoch: Epoch,
        base_digest: bytes,
        executed_seq: int,
        executed_digest: bytes | None = None,
        last_seq: int | None = None,
        restored: PersistedState | None = None,
        limits: ReplicaLimits | None = None,
        timeouts: ReplicaTimeouts | None = None,
        replica_class: type[Replica] = Replica,
    ) -> None:
        """`keys` maps public keys to our signing keys (more than one across a rotation);
        `epoch` is the epoch of block executed_seq + 1, `base_digest` the state digest after
        its first block's predecessor (ignored for epoch 0), `executed_digest` the state digest
        after block executed_seq (None: unknown; a restart then cannot re-sign its unstable
        checkpoint, see Replica), `last_seq` its end if known."""
        if not keys:
            raise ValueError("at least one signing key is needed")
        self.chain_id = chain_id
        self.name = name
        self._keys = dict(keys)
        self._rng = rng
        self._limits = limits or ReplicaLimits()
        self._timeouts = timeouts or ReplicaTimeouts()
        self._replica_class = replica_class
        self._retired_counters: dict[str, int] = {}
        self._own_counters: dict[str, int] = {}
        self._future: dict[str, deque[bytes]] = {}
        self._ahead: dict[str, int] = {}  # peer -> tick of its latest later-epoch message
        self._final_checkpoints: dict[int, bytes] = {}  # epoch -> our framed last CHECKPOINT
        self._answered: dict[str, int] = {}  # peer -> tick we last answered its old epoch
        self._reachable: PeersReachable | None = None  # the host's latest report (R8b)
        self._now = 0
        self.epoch = epoch
        self.replica = self._make(
            epoch=epoch,
            base_digest=base_digest,
            executed_seq=executed_seq,
            executed_digest=executed_digest,
            last_seq=last_seq,
            restored=restored,
        )

    # ------------------------------------------------------------------ construction

    def _make(
        self,
        *,
        epoch: Epoch,
        base_digest: bytes,
        executed_seq: int,
        last_seq: int | None,
        restored: PersistedState | None,
        executed_digest: bytes | None = None,
        persist_token: int = 0,
    ) -> Replica:
        own_key = epoch.key_of(self.name)
        signing_key = self._keys.get(own_key) if own_key is not None else None
        config = ReplicaConfig(
            chain_id=self.chain_id,
            validators=epoch.validators,
            name=self.name,
            limits=self._limits,
            timeouts=self._timeouts,
            epoch=epoch.number,
            observer_ok=True,
            observe_only=own_key is not None and signing_key is None,
        )
        if own_key is not None and signing_key is None:
            self._count("own_key_missing")
        base = None if epoch.number == 0 else (epoch.base_seq, base_digest)
        return self._replica_class(
            config,
            signing_key=signing_key or next(iter(self._keys.values())),
            rng=self._rng,
            restored=restored,
            executed_seq=executed_seq,
            executed_digest=executed_digest,
            base=base,
            last_seq=last_seq,
            persist_token=persist_token,
        )

    # ------------------------------------------------------------------ replica facade

    @property
    def member(self) -> bool:
        return self.replica.member

    @property
    def view(self) -> int:
        return self.replica.view

    @property
    def view_active(self) -> bool:
        return self.replica.view_active

    @property
    def primary(self) -> str:
        return self.replica.primary

    @property
    def is_primary(self) -> bool:
        return self.replica.member and self.replica.is_primary

    @property
    def can_propose(self) -> bool:
        return self.replica.member and self.replica.can_propose

    @property
    def proposed_seq(self) -> int:
        return self.replica.proposed_seq

    @property
    def handed_seq(self) -> int:
        return self.replica.handed_seq

    @property
    def executed_seq(self) -> int:
        return self.replica.executed_seq

    @property
    def checkpoint_seq(self) -> int:
        return self.replica.checkpoint_seq

    @property
    def halted(self) -> bool:
        return self.replica.halted

    @property
    def counters(self) -> dict[str, int]:
        """Drop and event counts since start, over every epoch."""
        total = dict(self._retired_counters)
        for source in (self.replica.counters, self._own_counters):
            for reason, count in source.items():
                total[reason] = total.get(reason, 0) + count
        return total

    def snapshot(self) -> PersistedState:
        return self.replica.snapshot()

    # ------------------------------------------------------------------ step

    def step(self, event: Event) -> list[Action]:
        if isinstance(event, MessageReceived):
            return self._on_message(event)
        if isinstance(event, Tick):
            self._now += 1
            out = self._wrap(self.replica.step(event))
            return out + self._announce_switch() + self._maybe_catch_up()
        out = self._wrap(self.replica.step(event))
        if isinstance(event, PeersReachable):
            self._reachable = event  # valid (the replica checked): every later epoch's too
        if (
            isinstance(event, Executed)
            and event.next_epoch is not None
            and not self.replica.halted  # R7: a replica whose state diverged stays halted
        ):
            out += self._switch(event.next_epoch, event.seq, event.state_digest)
        return out

    def _count(self, reason: str) -> None:
        self._own_counters[reason] = self._own_counters.get(reason, 0) + 1

    def _wrap(self, actions: list[Action]) -> list[Action]:
        number = self.epoch.number
        out: list[Action] = []
        for a in actions:
            if isinstance(a, Broadcast):
                out.append(Broadcast(data=frame(number, a.data)))
            elif isinstance(a, Send):
                out.append(Send(to=a.to, data=frame(number, a.data)))
            else:
                out.append(a)
        return out

    def _on_message(self, event: MessageReceived) -> list[Action]:
        data = event.data
        if len(data) < EPOCH_PREFIX_BYTES:
            self._count("no_epoch_prefix")
            return []
        number = int.from_bytes(data[:EPOCH_PREFIX_BYTES], "big")
        inner = data[EPOCH_PREFIX_BYTES:]
        current = self.epoch.number
        if number == current:
            if not inner:
                self._count("epoch_hint")  # "we are ahead" from a peer, and we caught up
                return []
            return self._wrap(self.replica.step(MessageReceived(sender=event.sender, data=inner)))
        if number < current:
            self._count("old_epoch_message")
            final = self._final_checkpoints.get(number)
            last = self._answered.get(event.sender)
            interval = self._timeouts.retransmit_interval_ticks
            if last is not None and self._now - last < interval:
                return []
            if inner[1:2] == bytes([Kind.CHECKPOINT]):
                # A checkpoint is what a switched replica rebroadcasts itself (E3): answering
                # it would only start a ping-pong between two replicas that both switched.
                return []
            self._answered[event.sender] = self._now
            out: list[Action] = [Send(to=event.sender, data=frame(current, b""))]
            if final is not None:
                out.append(Send(to=event.sender, data=final))
            return out
        if number > EPOCH_MAX:
            self._count("bad_epoch")
            return []
        self._ahead[event.sender] = self._now
        if number == current + 1 and 0 < len(inner) <= self._limits.message_bytes_max:
            queue = self._future.setdefault(event.sender, deque())
            if len(queue) >= self._limits.future_view_messages_per_peer_max:
                queue.popleft()
                self._count("future_epoch_buffer_full")
            queue.append(inner)
        self._count("future_epoch_message")
        return []

    def _announce_switch(self) -> list[Action]:
        """E3: until this epoch has a stable checkpoint of its own, tell laggards we moved."""
        interval = self._timeouts.retransmit_interval_ticks
        if (
            self._now % interval
            or self.replica.checkpoint_seq > self.epoch.base_seq
            or self.epoch.number == 0
        ):
            return []
        out: list[Action] = [Broadcast(data=frame(self.epoch.number, b""))]
        final = self._final_checkpoints.get(self.epoch.number - 1)
        if final is not None:
            out.append(Broadcast(data=final))
        return out

    def _maybe_catch_up(self) -> list[Action]:
        fresh = self._timeouts.fetch_retry_ticks * AHEAD_FRESH_TICKS_FACTOR
        self._ahead = {p: t for p, t in self._ahead.items() if self._now - t <= fresh}
        if not self._ahead:
            return []
        target = self.replica.handed_seq + self._limits.fetch_blocks_max
        return self._wrap(
            self.replica.step(CatchUp(target_seq=target, peers=tuple(sorted(self._ahead))))
        )

    def _switch(self, epoch: Epoch, seq: int, state_digest: bytes) -> list[Action]:
        if epoch.first_seq != seq + 1 or epoch.number != self.epoch.number + 1:
            raise ValueError(
                f"epoch {epoch.number} starting at {epoch.first_seq} cannot follow epoch "
                f"{self.epoch.number} ending at {seq}"
            )
        for reason, count in self.replica.counters.items():
            self._retired_counters[reason] = self._retired_counters.get(reason, 0) + count
        final = self.replica.own_checkpoint(seq)
        if final is not None:
            self._final_checkpoints[self.epoch.number] = frame(self.epoch.number, final)
            while len(self._final_checkpoints) > FINAL_CHECKPOINTS_KEPT:
                del self._final_checkpoints[min(self._final_checkpoints)]
        self.epoch = epoch
        self.replica = self._make(
            epoch=epoch,
            base_digest=state_digest,
            executed_seq=seq,
            last_seq=None,
            restored=None,
            persist_token=self.replica.persist_token,
        )
        self._ahead.clear()
        self._count("epoch_switched")
        out: list[Action] = [EpochStarted(epoch=epoch, member=self.replica.member)]
        if self._reachable is not None:  # the host reports changes only: carry the last one
            out += self._wrap(self.replica.step(self._reachable))
        buffered, self._future = self._future, {}
        for sender, queue in buffered.items():
            for inner in queue:
                out += self._wrap(self.replica.step(MessageReceived(sender=sender, data=inner)))
        return out
