"""PBFT messages: typed records, the canonical wire codec, and the signed bodies.

Wire form: a msgpack array whose first item is the message kind (an int tag), then the
fields in a fixed order (consensus.encoding rules). Decoding untrusted bytes goes through
`decode_message`, which applies size limits and validates every field's type and range;
it raises `MessageError` with a short reason code, which the replica counts and drops.

What each signature covers (purpose tag and chain id are added by consensus.signing):

    PRE-PREPARE, PREPARE, COMMIT   pack([view, seq, digest])
    CHECKPOINT                     pack([seq, state_digest])
    VIEW-CHANGE                    pack([new_view, checkpoint_seq, checkpoint_digest,
                                         checkpoint_proof, prepared])   (not the payloads)

A PRE-PREPARE's payload is not signed directly: its digest is, and receivers check
`digest(payload) == digest`. VIEW-CHANGE payloads travel beside the signed body for the same
reason, so a NEW-VIEW can embed VIEW-CHANGEs without their payloads. NEW-VIEW itself is not
signed: everything in it (2f+1 VIEW-CHANGEs, pre-prepares signed by the new primary) is
verifiable on its own, so any replica may forward it to a peer that missed it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import nacl.signing

from consensus.encoding import DecodeError, DecodeLimits, digest, pack, unpack
from consensus.signing import SIGNATURE_BYTES, Purpose, sign

DIGEST_BYTES = 32
NAME_CHARS_MAX = 64
VIEW_MAX = 2**62  # far beyond any real view; keeps view + 1 inside the encodable range
SEQ_MAX = 2**62
NULL_PAYLOAD = b""  # the "null request" a NEW-VIEW uses to fill a gap
NULL_DIGEST = digest(NULL_PAYLOAD)
GENESIS_STATE_DIGEST = bytes(DIGEST_BYTES)  # checkpoint 0, before any block

Signer = tuple[str, bytes]  # (replica name, signature) inside proofs


class MessageError(ValueError):
    """Untrusted bytes are not a well-formed consensus message. `reason` is a counter key."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class Kind(IntEnum):
    PRE_PREPARE = 1
    PREPARE = 2
    COMMIT = 3
    CHECKPOINT = 4
    VIEW_CHANGE = 5
    NEW_VIEW = 6


@dataclass(frozen=True, slots=True, kw_only=True)
class PrePrepare:
    view: int
    seq: int
    digest: bytes
    replica: str
    signature: bytes
    payload: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Prepare:
    view: int
    seq: int
    digest: bytes
    replica: str
    signature: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Commit:
    view: int
    seq: int
    digest: bytes
    replica: str
    signature: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    seq: int
    state_digest: bytes
    replica: str
    signature: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedProof:
    """Proof that (view, seq, digest) prepared: the primary's pre-prepare signature and
    quorum - 1 PREPARE signatures from other replicas."""

    view: int
    seq: int
    digest: bytes
    pre_prepare_signature: bytes
    prepares: tuple[Signer, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ViewChange:
    new_view: int
    replica: str
    checkpoint_seq: int
    checkpoint_digest: bytes
    checkpoint_proof: tuple[Signer, ...]
    prepared: tuple[PreparedProof, ...]
    signature: bytes
    payloads: tuple[bytes, ...] = ()  # empty, or one per prepared proof (same order)

    def stripped(self) -> ViewChange:
        return ViewChange(
            new_view=self.new_view,
            replica=self.replica,
            checkpoint_seq=self.checkpoint_seq,
            checkpoint_digest=self.checkpoint_digest,
            checkpoint_proof=self.checkpoint_proof,
            prepared=self.prepared,
            signature=self.signature,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class NewView:
    view: int
    replica: str  # who sent it (informational: NEW-VIEW is self-certifying)
    view_changes: tuple[ViewChange, ...]
    pre_prepares: tuple[PrePrepare, ...]


Message = PrePrepare | Prepare | Commit | Checkpoint | ViewChange | NewView


# -- signed bodies -------------------------------------------------------------------------


def vote_body(view: int, seq: int, digest_: bytes) -> bytes:
    return pack([view, seq, digest_])


def checkpoint_body(seq: int, state_digest: bytes) -> bytes:
    return pack([seq, state_digest])


def _signers_wire(signers: tuple[Signer, ...]) -> list[Any]:
    return [[name, sig] for name, sig in signers]


def _proof_wire(p: PreparedProof) -> list[Any]:
    return [p.view, p.seq, p.digest, p.pre_prepare_signature, _signers_wire(p.prepares)]


def view_change_body(vc: ViewChange) -> bytes:
    return pack(
        [
            vc.new_view,
            vc.checkpoint_seq,
            vc.checkpoint_digest,
            _signers_wire(vc.checkpoint_proof),
            [_proof_wire(p) for p in vc.prepared],
        ]
    )


# -- builders (sign with our key) ------------------------------------------------------------


def make_pre_prepare(
    key: nacl.signing.SigningKey,
    chain_id: str,
    replica: str,
    *,
    view: int,
    seq: int,
    payload: bytes,
) -> PrePrepare:
    d = digest(payload)
    sig = sign(key, Purpose.PRE_PREPARE, chain_id, vote_body(view, seq, d))
    return PrePrepare(view=view, seq=seq, digest=d, replica=replica, signature=sig, payload=payload)


def make_prepare(
    key: nacl.signing.SigningKey,
    chain_id: str,
    replica: str,
    *,
    view: int,
    seq: int,
    d: bytes,
) -> Prepare:
    sig = sign(key, Purpose.PREPARE, chain_id, vote_body(view, seq, d))
    return Prepare(view=view, seq=seq, digest=d, replica=replica, signature=sig)


def make_commit(
    key: nacl.signing.SigningKey,
    chain_id: str,
    replica: str,
    *,
    view: int,
    seq: int,
    d: bytes,
) -> Commit:
    sig = sign(key, Purpose.COMMIT, chain_id, vote_body(view, seq, d))
    return Commit(view=view, seq=seq, digest=d, replica=replica, signature=sig)


def make_checkpoint(
    key: nacl.signing.SigningKey, chain_id: str, replica: str, seq: int, state_digest: bytes
) -> Checkpoint:
    sig = sign(key, Purpose.CHECKPOINT, chain_id, checkpoint_body(seq, state_digest))
    return Checkpoint(seq=seq, state_digest=state_digest, replica=replica, signature=sig)


def make_view_change(
    key: nacl.signing.SigningKey,
    chain_id: str,
    replica: str,
    *,
    new_view: int,
    checkpoint_seq: int,
    checkpoint_digest: bytes,
    checkpoint_proof: tuple[Signer, ...],
    prepared: tuple[PreparedProof, ...],
    payloads: tuple[bytes, ...],
) -> ViewChange:
    unsigned = ViewChange(
        new_view=new_view,
        replica=replica,
        checkpoint_seq=checkpoint_seq,
        checkpoint_digest=checkpoint_digest,
        checkpoint_proof=checkpoint_proof,
        prepared=prepared,
        signature=b"",
    )
    sig = sign(key, Purpose.VIEW_CHANGE, chain_id, view_change_body(unsigned))
    return ViewChange(
        new_view=new_view,
        replica=replica,
        checkpoint_seq=checkpoint_seq,
        checkpoint_digest=checkpoint_digest,
        checkpoint_proof=checkpoint_proof,
        prepared=prepared,
        signature=sig,
        payloads=payloads,
    )


# -- wire codec ----------------------------------------------------------------------------


def _vc_wire(vc: ViewChange) -> list[Any]:
    return [
        vc.new_view,
        vc.replica,
        vc.checkpoint_seq,
        vc.checkpoint_digest,
        _signers_wire(vc.checkpoint_proof),
        [_proof_wire(p) for p in vc.prepared],
        vc.signature,
        list(vc.payloads),
    ]


def _pp_wire(m: PrePrepare) -> list[Any]:
    return [m.view, m.seq, m.digest, m.replica, m.signature, m.payload]


def encode_message(m: Message) -> bytes:
    if isinstance(m, PrePrepare):
        return pack([Kind.PRE_PREPARE.value, *_pp_wire(m)])
    if isinstance(m, Prepare | Commit):
        kind = Kind.PREPARE if isinstance(m, Prepare) else Kind.COMMIT
        return pack([kind.value, m.view, m.seq, m.digest, m.replica, m.signature])
    if isinstance(m, Checkpoint):
        return pack([Kind.CHECKPOINT.value, m.seq, m.state_digest, m.replica, m.signature])
    if isinstance(m, ViewChange):
        return pack([Kind.VIEW_CHANGE.value, *_vc_wire(m)])
    if isinstance(m, NewView):
        return pack(
            [
                Kind.NEW_VIEW.value,
                m.view,
                m.replica,
                [_vc_wire(vc) for vc in m.view_changes],
                [_pp_wire(pp) for pp in m.pre_prepares],
            ]
        )
    raise TypeError(f"not a consensus message: {type(m).__name__}")


def _list(x: Any, size: int | None = None, *, what: str) -> list[Any]:
    if not isinstance(x, list):
        raise MessageError("bad_shape", f"{what} is not an array")
    if size is not None and len(x) != size:
        raise MessageError("bad_shape", f"{what} has {len(x)} fields, expected {size}")
    return x


def _uint(x: Any, limit: int, what: str) -> int:
    if not isinstance(x, int) or isinstance(x, bool) or x < 0:
        raise MessageError("bad_field", f"{what} is not a non-negative integer")
    if x > limit:
        raise MessageError("out_of_range", f"{what} {x} exceeds {limit}")
    return x


def _bytes(x: Any, size: int | None, what: str) -> bytes:
    if not isinstance(x, bytes):
        raise MessageError("bad_field", f"{what} is not bytes")
    if size is not None and len(x) != size:
        raise MessageError("bad_field", f"{what} is {len(x)} bytes, expected {size}")
    return x


def _name(x: Any, what: str = "replica") -> str:
    if not isinstance(x, str) or not 0 < len(x) <= NAME_CHARS_MAX:
        raise MessageError("bad_field", f"{what} is not a replica name")
    return x


def _signers(x: Any, count_max: int, what: str) -> tuple[Signer, ...]:
    items = _list(x, what=what)
    if len(items) > count_max:
        raise MessageError("too_many", f"{what} has {len(items)} entries (max {count_max})")
    out = []
    for item in items:
        pair = _list(item, 2, what=what)
        out.append((_name(pair[0]), _bytes(pair[1], SIGNATURE_BYTES, "signature")))
    return tuple(out)


def _pp_from(f: list[Any]) -> PrePrepare:
    _list(f, 6, what="pre-prepare")
    return PrePrepare(
        view=_uint(f[0], VIEW_MAX, "view"),
        seq=_uint(f[1], SEQ_MAX, "seq"),
        digest=_bytes(f[2], DIGEST_BYTES, "digest"),
        replica=_name(f[3]),
        signature=_bytes(f[4], SIGNATURE_BYTES, "signature"),
        payload=_bytes(f[5], None, "payload"),
    )


def _vc_from(f: Any, n: int, items_max: int) -> ViewChange:
    f = _list(f, 8, what="view-change")
    prepared = []
    raw_prepared = _list(f[5], what="prepared set")
    if len(raw_prepared) > items_max:
        raise MessageError("too_many", f"prepared set has {len(raw_prepared)} entries")
    for raw in raw_prepared:
        p = _list(raw, 5, what="prepared proof")
        prepared.append(
            PreparedProof(
                view=_uint(p[0], VIEW_MAX, "view"),
                seq=_uint(p[1], SEQ_MAX, "seq"),
                digest=_bytes(p[2], DIGEST_BYTES, "digest"),
                pre_prepare_signature=_bytes(p[3], SIGNATURE_BYTES, "signature"),
                prepares=_signers(p[4], n, "prepares"),
            )
        )
    payloads = tuple(_bytes(x, None, "payload") for x in _list(f[7], what="payloads"))
    if payloads and len(payloads) != len(prepared):
        raise MessageError("bad_shape", "payloads do not match the prepared set")
    return ViewChange(
        new_view=_uint(f[0], VIEW_MAX, "new_view"),
        replica=_name(f[1]),
        checkpoint_seq=_uint(f[2], SEQ_MAX, "checkpoint_seq"),
        checkpoint_digest=_bytes(f[3], DIGEST_BYTES, "checkpoint_digest"),
        checkpoint_proof=_signers(f[4], n, "checkpoint proof"),
        prepared=tuple(prepared),
        signature=_bytes(f[6], SIGNATURE_BYTES, "signature"),
        payloads=payloads,
    )


def decode_message(data: bytes, *, limits: DecodeLimits, n: int, window: int) -> Message:
    """Decode and shape-check untrusted bytes. `n` and `window` bound nested list sizes.

    Raises MessageError; never anything else for any input.
    """
    try:
        obj = unpack(data, limits)
    except DecodeError as exc:
        raise MessageError("undecodable", str(exc)) from exc
    f = _list(obj, what="message")
    if not f:
        raise MessageError("bad_shape", "empty message")
    tag = f[0]
    if tag == Kind.PRE_PREPARE:
        return _pp_from(f[1:])
    if tag in (Kind.PREPARE, Kind.COMMIT):
        _list(f, 6, what="vote")
        cls = Prepare if tag == Kind.PREPARE else Commit
        return cls(
            view=_uint(f[1], VIEW_MAX, "view"),
            seq=_uint(f[2], SEQ_MAX, "seq"),
            digest=_bytes(f[3], DIGEST_BYTES, "digest"),
            replica=_name(f[4]),
            signature=_bytes(f[5], SIGNATURE_BYTES, "signature"),
        )
    if tag == Kind.CHECKPOINT:
        _list(f, 5, what="checkpoint")
        return Checkpoint(
            seq=_uint(f[1], SEQ_MAX, "seq"),
            state_digest=_bytes(f[2], DIGEST_BYTES, "state_digest"),
            replica=_name(f[3]),
            signature=_bytes(f[4], SIGNATURE_BYTES, "signature"),
        )
    if tag == Kind.VIEW_CHANGE:
        return _vc_from(f[1:], n, window)
    if tag == Kind.NEW_VIEW:
        _list(f, 5, what="new-view")
        vcs = _list(f[3], what="view-changes")
        pps = _list(f[4], what="pre-prepares")
        if len(vcs) > n or len(pps) > window:
            raise MessageError("too_many", "new-view carries too many entries")
        return NewView(
            view=_uint(f[1], VIEW_MAX, "view"),
            replica=_name(f[2]),
            view_changes=tuple(_vc_from(vc, n, window) for vc in vcs),
            pre_prepares=tuple(_pp_from(_list(pp, what="pre-prepare")) for pp in pps),
        )
    raise MessageError("unknown_kind", f"message kind {tag!r}")
