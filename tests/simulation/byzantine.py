"""Byzantine behaviours: a real replica with a valid key whose traffic is corrupted.

Each behaviour rewrites or adds to what the replica sends. Re-signing with the replica's own
key is allowed (it is the faulty party); forging others' signatures is not possible, so a
behaviour that needs them sends garbage signatures instead.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import nacl.signing

from consensus import messages as m
from consensus.encoding import DecodeLimits, digest, pack

MODES = (
    "equivocate",  # as primary: different batches to different backups
    "conflicting_votes",  # PREPARE/COMMIT for another digest to some peers
    "unknown_digests",  # votes for digests nobody proposed
    "huge_views",  # messages from absurd future views
    "replay",  # old messages, again and again
    "garbage",  # random, truncated and bit-flipped bytes
    "silent",  # says nothing at all
    "forge_prepared",  # VIEW-CHANGE claiming prepared certificates it cannot prove
    "bad_state_transfer",  # serves tampered blocks to state transfer
    "censor",  # as primary: orders blocks but leaves out half the transactions (host.py)
)


@dataclass(slots=True, kw_only=True)
class Byzantine:
    mode: str
    name: str
    key: nacl.signing.SigningKey
    chain_id: str
    peers: tuple[str, ...]
    rng: random.Random
    submitted: list[bytes]
    seen: list[bytes] = field(default_factory=list)
    alt: dict[tuple[int, int], tuple[bytes, frozenset[str]]] = field(default_factory=dict)
    injected: int = 0

    def _decode(self, data: bytes) -> m.Message | None:
        try:
            return m.decode_message(data, limits=DecodeLimits(), n=64, window=4096)
        except m.MessageError:
            return None

    def record(self, data: bytes) -> None:
        """Remember traffic it received, for replays (bounded)."""
        if self.mode == "replay" and len(self.seen) < 500:
            self.seen.append(data)

    def outgoing(self, to: str | None, data: bytes) -> list[tuple[str | None, bytes]]:
        """What actually leaves, for one message the replica wanted to send."""
        mode = self.mode
        if mode == "silent":
            return []
        msg = self._decode(data)
        if mode == "equivocate":
            return self._equivocate(to, data, msg)
        if mode in ("conflicting_votes", "unknown_digests") and isinstance(
            msg, m.Prepare | m.Commit
        ):
            out: list[tuple[str | None, bytes]] = [(to, data)]
            other = self._resign(msg, self.rng.randbytes(32))
            target = self.rng.choice(self.peers) if to is None else to
            if mode == "conflicting_votes":
                self.injected += 1
                return [(p, other if p == target else data) for p in self.peers]
            self.injected += 1
            out.append((target, other))
            return out
        if mode == "forge_prepared" and isinstance(msg, m.ViewChange):
            self.injected += 1
            return [(to, m.encode_message(self._forged_view_change(msg)))]
        return [(to, data)]

    def on_tick(self, now: int) -> list[tuple[str | None, bytes]]:
        """Unsolicited traffic."""
        mode = self.mode
        if now % 3:
            return []
        if mode == "huge_views":
            self.injected += 1
            view = m.VIEW_MAX - self.rng.randrange(3)
            vote = m.make_prepare(
                self.key, self.chain_id, self.name, view=view, seq=1, d=self.rng.randbytes(32)
            )
            pp = m.make_pre_prepare(
                self.key, self.chain_id, self.name, view=view, seq=1, payload=b"x"
            )
            vc = m.make_view_change(
                self.key,
                self.chain_id,
                self.name,
                new_view=view,
                checkpoint_seq=0,
                checkpoint_digest=m.GENESIS_STATE_DIGEST,
                checkpoint_proof=(),
                prepared=(),
                payloads=(),
            )
            return [(None, m.encode_message(x)) for x in (vote, pp, vc)]
        if mode == "replay" and self.seen:
            self.injected += 1
            return [(self.rng.choice(self.peers), self.rng.choice(self.seen)) for _ in range(3)]
        if mode == "garbage":
            self.injected += 1
            base = self.rng.choice(self.seen) if self.seen else pack([2, 1, 1, b"x" * 32])
            choice = self.rng.randrange(4)
            if choice == 0:
                data = self.rng.randbytes(self.rng.randrange(1, 200))
            elif choice == 1:
                data = base[: self.rng.randrange(len(base))]
            elif choice == 2:
                flip = bytearray(base)
                i = self.rng.randrange(len(flip))
                flip[i] ^= 1 << self.rng.randrange(8)
                data = bytes(flip)
            else:
                data = pack([self.rng.randrange(10), [b"nest"] * 5, {"k": 1}])
            return [(None, data)]
        if mode == "unknown_digests":
            self.injected += 1
            seq = self.rng.randrange(1, 40)
            commit = m.make_commit(
                self.key, self.chain_id, self.name, view=0, seq=seq, d=self.rng.randbytes(32)
            )
            return [(None, m.encode_message(commit))]
        return []

    # -- behaviours ----------------------------------------------------------------------

    def _resign(self, msg: m.Prepare | m.Commit, d: bytes) -> bytes:
        maker = m.make_prepare if isinstance(msg, m.Prepare) else m.make_commit
        return m.encode_message(
            maker(self.key, self.chain_id, self.name, view=msg.view, seq=msg.seq, d=d)
        )

    def _equivocate(
        self, to: str | None, data: bytes, msg: m.Message | None
    ) -> list[tuple[str | None, bytes]]:
        if isinstance(msg, m.PrePrepare) and to is None and msg.payload:
            # A different batch of genuine transactions, so backups' validation passes.
            others = [t for t in self.submitted[-50:] if t not in msg.payload]
            alt_txs = sorted(self.rng.sample(others, min(2, len(others)))) or self.submitted[:1]
            alt_payload = pack(alt_txs)
            if digest(alt_payload) == msg.digest:
                return [(to, data)]
            group = frozenset(p for p in self.peers if self.rng.random() < 0.5)
            alt = m.make_pre_prepare(
                self.key, self.chain_id, self.name, view=msg.view, seq=msg.seq, payload=alt_payload
            )
            self.alt[(msg.view, msg.seq)] = (alt.digest, group)
            self.injected += 1
            alt_data = m.encode_message(alt)
            return [(p, alt_data if p in group else data) for p in self.peers]
        if isinstance(msg, m.Prepare | m.Commit) and (msg.view, msg.seq) in self.alt:
            alt_digest, group = self.alt[(msg.view, msg.seq)]
            alt_data = self._resign(msg, alt_digest)
            return [(p, alt_data if p in group else data) for p in self.peers]
        return [(to, data)]

    def _forged_view_change(self, vc: m.ViewChange) -> m.ViewChange:
        """Claims prepared certificates in the newest possible view for the next sequence
        numbers, with payload digests ground to sort above any honest digest (ties in a view
        break on the digest), and prepares it cannot sign for."""
        prepared = []
        payloads = []
        for seq in range(vc.checkpoint_seq + 1, vc.checkpoint_seq + 4):
            while True:
                payload = pack([self.rng.randbytes(8)])
                d = digest(payload)
                if d[0] == 0xFF:
                    break
            view = vc.new_view - 1
            sig = self.rng.randbytes(64)
            prepared.append(
                m.PreparedProof(
                    view=view,
                    seq=seq,
                    digest=d,
                    pre_prepare_signature=sig,
                    prepares=tuple((p, self.rng.randbytes(64)) for p in self.peers[:2]),
                )
            )
            payloads.append(payload)
        return m.make_view_change(
            self.key,
            self.chain_id,
            self.name,
            new_view=vc.new_view,
            checkpoint_seq=vc.checkpoint_seq,
            checkpoint_digest=vc.checkpoint_digest,
            checkpoint_proof=vc.checkpoint_proof,
            prepared=tuple(prepared),
            payloads=tuple(payloads),
        )
