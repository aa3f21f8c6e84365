"""What a replica persists: enough that, restarted from it, it never votes against itself.

Persisted: the view (and whether a view change is in progress), the stable checkpoint with
its proof, every vote we sent in the open window (pre-prepares with their payloads, prepares,
commits), and the prepared certificates a VIEW-CHANGE must carry (with payloads, so a new
primary can re-propose them). Not persisted: other replicas' votes, buffers, timers -- they
are rebuilt from the network (retransmission) after a restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consensus.encoding import DecodeError, DecodeLimits, pack, unpack
from consensus.epochs import EPOCH_MAX
from consensus.messages import (
    DIGEST_BYTES,
    SEQ_MAX,
    VIEW_MAX,
    MessageError,
    PreparedProof,
    PrePrepare,
    Signer,
    _bytes,
    _list,
    _pp_from,
    _proof_wire,
    _signers,
    _uint,
)

STATE_VERSION = 2  # 2: the epoch the votes belong to
STATE_LIMITS = DecodeLimits(
    buffer_bytes_max=64 << 20, bin_bytes_max=16 << 20, array_items_max=1 << 16
)


class StateError(ValueError):
    """Persisted state bytes are corrupt or from an incompatible version."""


@dataclass(frozen=True, slots=True, kw_only=True)
class VoteRecord:
    """A PREPARE or COMMIT we signed (the signature is deterministic, so it is not kept)."""

    view: int
    seq: int
    digest: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class PersistedState:
    view: int
    view_active: bool
    view_change_attempts: int
    checkpoint_seq: int
    checkpoint_digest: bytes
    checkpoint_proof: tuple[Signer, ...]
    pre_prepares: tuple[PrePrepare, ...]  # ours, as primary, with payloads
    prepares: tuple[VoteRecord, ...]
    commits: tuple[VoteRecord, ...]
    prepared: tuple[PreparedProof, ...]  # highest-view prepared certificate per seq
    prepared_payloads: tuple[bytes, ...]  # one per prepared proof
    epoch: int = 0  # votes of another epoch than the one the ledger is in are void

    def encode(self) -> bytes:
        def votes(records: tuple[VoteRecord, ...]) -> list[Any]:
            return [[r.view, r.seq, r.digest] for r in records]

        return pack(
            [
                STATE_VERSION,
                self.view,
                self.view_active,
                self.view_change_attempts,
                self.checkpoint_seq,
                self.checkpoint_digest,
                [[n, s] for n, s in self.checkpoint_proof],
                [
                    [m.view, m.seq, m.digest, m.replica, m.signature, m.payload]
                    for m in self.pre_prepares
                ],
                votes(self.prepares),
                votes(self.commits),
                [_proof_wire(p) for p in self.prepared],
                list(self.prepared_payloads),
                self.epoch,
            ]
        )

    @staticmethod
    def decode(data: bytes) -> PersistedState:
        try:
            obj = unpack(data, STATE_LIMITS)
            if isinstance(obj, list) and obj and obj[0] != STATE_VERSION:
                raise StateError(f"persisted state version {obj[0]!r}, expected {STATE_VERSION}")
            f = _list(obj, 13, what="persisted state")
            if not isinstance(f[2], bool):
                raise StateError("view_active is not a bool")

            def votes(x: Any) -> tuple[VoteRecord, ...]:
                out = []
                for item in _list(x, what="votes"):
                    v = _list(item, 3, what="vote")
                    out.append(
                        VoteRecord(
                            view=_uint(v[0], VIEW_MAX, "view"),
                            seq=_uint(v[1], SEQ_MAX, "seq"),
                            digest=_bytes(v[2], DIGEST_BYTES, "digest"),
                        )
                    )
                return tuple(out)

            prepared = []
            for raw in _list(f[10], what="prepared"):
                p = _list(raw, 5, what="prepared proof")
                prepared.append(
                    PreparedProof(
                        view=_uint(p[0], VIEW_MAX, "view"),
                        seq=_uint(p[1], SEQ_MAX, "seq"),
                        digest=_bytes(p[2], DIGEST_BYTES, "digest"),
                        pre_prepare_signature=_bytes(p[3], 64, "signature"),
                        prepares=_signers(p[4], 1 << 16, "prepares"),
                    )
                )
            payloads = tuple(_bytes(x, None, "payload") for x in _list(f[11], what="payloads"))
            if len(payloads) != len(prepared):
                raise StateError("prepared payloads do not match prepared proofs")
            return PersistedState(
                view=_uint(f[1], VIEW_MAX, "view"),
                view_active=f[2],
                view_change_attempts=_uint(f[3], 64, "view_change_attempts"),
                checkpoint_seq=_uint(f[4], SEQ_MAX, "checkpoint_seq"),
                checkpoint_digest=_bytes(f[5], DIGEST_BYTES, "checkpoint_digest"),
                checkpoint_proof=_signers(f[6], 1 << 16, "checkpoint proof"),
                pre_prepares=tuple(
                    _pp_from(_list(x, what="pre-prepare")) for x in _list(f[7], what="pre-prepares")
                ),
                prepares=votes(f[8]),
                commits=votes(f[9]),
                prepared=tuple(prepared),
                prepared_payloads=payloads,
                epoch=_uint(f[12], EPOCH_MAX, "epoch"),
            )
        except (DecodeError, MessageError) as exc:
            raise StateError(f"corrupt persisted state: {exc}") from exc
