"""Equivocation evidence: two conflicting messages one validator signed, checkable by anyone.

A correct replica signs at most one PRE-PREPARE, PREPARE and COMMIT per (view, seq) and one
CHECKPOINT per seq. Two of the same kind that conflict, both validly signed by one validator
of the epoch, prove that validator faulty:

    pre_prepare, prepare, commit   same view and seq, different digest
    checkpoint                     same seq, different state digest

The replica emits such pairs (EquivocationDetected); the ledger records them after checking
them here, and so does the simulator's checker. This is the one implementation: the
consensus layer owns the message formats and the signing domains. Evidence is untrusted
bytes (from a transaction or a peer), so every flaw is an `EvidenceError` with a stable
`reason` code, and decoding is bounded by `message_bytes_max`.

Both signatures must verify under the validator's key in the given epoch, bound to the
epoch's signing domain (consensus.epochs.signing_domain): a pair signed in epoch e proves
nothing about epoch e' != e. A PRE-PREPARE's signature covers [view, seq, digest] only, not
its payload (a whole batch), so evidence carries PRE-PREPAREs stripped of their payload:
that keeps every piece of evidence small and gives it one byte string.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from consensus import messages as msg
from consensus.encoding import DecodeLimits
from consensus.epochs import signing_domain
from consensus.signing import Purpose, verify

# A stripped vote or checkpoint is under 256 bytes (64-character name, 64-byte signature).
EVIDENCE_MESSAGE_BYTES_MAX = 1024
NAME_BYTES_MAX = 4 * msg.NAME_CHARS_MAX  # UTF-8


def evidence_form(m: msg.Message) -> msg.Message:
    """`m` as evidence carries it: a PRE-PREPARE without its batch (its signature covers
    view, seq and digest only, so the batch proves nothing and only costs bytes)."""
    if isinstance(m, msg.PrePrepare):
        return msg.PrePrepare(
            view=m.view,
            seq=m.seq,
            digest=m.digest,
            replica=m.replica,
            signature=m.signature,
            payload=b"",
        )
    return m


@dataclass(frozen=True, slots=True, kw_only=True)
class EvidenceKind:
    """A kind of message that can equivocate. `name` and `code` are stable: the ledger stores
    the name in evidence records and the code in its duplicate index (the wire tag, which
    never changes either)."""

    name: str
    code: int
    purpose: Purpose


MESSAGE_KINDS: dict[type, EvidenceKind] = {
    msg.PrePrepare: EvidenceKind(
        name="pre_prepare", code=int(msg.Kind.PRE_PREPARE), purpose=Purpose.PRE_PREPARE
    ),
    msg.Prepare: EvidenceKind(name="prepare", code=int(msg.Kind.PREPARE), purpose=Purpose.PREPARE),
    msg.Commit: EvidenceKind(name="commit", code=int(msg.Kind.COMMIT), purpose=Purpose.COMMIT),
    msg.Checkpoint: EvidenceKind(
        name="checkpoint", code=int(msg.Kind.CHECKPOINT), purpose=Purpose.CHECKPOINT
    ),
}
KIND_NAMES: tuple[str, ...] = tuple(k.name for k in MESSAGE_KINDS.values())
KIND_CODES: dict[str, int] = {k.name: k.code for k in MESSAGE_KINDS.values()}


class EvidenceError(ValueError):
    """The two messages do not prove an equivocation. `reason` is a stable code:

    too_large            a message exceeds message_bytes_max
    undecodable          a message is not a well-formed consensus message
    not_equivocable      a message is not a PRE-PREPARE, PREPARE, COMMIT or CHECKPOINT
    payload_not_stripped a PRE-PREPARE still carries its payload
    different_kinds      the two messages are of different kinds
    different_validators the two messages name different validators
    different_slots      different views or sequence numbers
    no_conflict          same digest (or state digest): nothing contradicts
    unknown_validator    the signer is not a validator of the epoch
    bad_signature        a signature does not verify in the epoch's signing domain
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True, slots=True, kw_only=True)
class Equivocation:
    """What two messages proved: `validator` (key `public_key`) signed both in `epoch`."""

    epoch: int
    validator: str
    public_key: bytes
    message_kind: str  # one of KIND_NAMES
    kind_code: int  # KIND_CODES[message_kind]
    view: int  # 0 for checkpoints
    seq: int


def evidence_decode_limits(message_bytes_max: int) -> DecodeLimits:
    """Decode bounds for one reported message: flat and small, nothing nests or repeats."""
    return DecodeLimits(
        buffer_bytes_max=message_bytes_max,
        bin_bytes_max=message_bytes_max,
        str_bytes_max=NAME_BYTES_MAX,
        # A PRE-PREPARE has 7 fields; room for a VIEW-CHANGE's 9, so that one is refused by
        # name (not_equivocable) rather than as undecodable.
        array_items_max=16,
        map_items_max=0,
    )


Equivocable = msg.PrePrepare | msg.Prepare | msg.Commit | msg.Checkpoint


def _decode(data: bytes, which: str, limits: DecodeLimits) -> Equivocable:
    if len(data) > limits.buffer_bytes_max:
        raise EvidenceError(
            "too_large", f"{which} message is {len(data)} bytes (max {limits.buffer_bytes_max})"
        )
    try:
        # n and window bound VIEW-CHANGE/NEW-VIEW contents, which are refused below anyway.
        m = msg.decode_message(data, limits=limits, n=1, window=1)
    except msg.MessageError as exc:
        raise EvidenceError("undecodable", f"{which} message does not decode ({exc})") from None
    if not isinstance(m, Equivocable):
        raise EvidenceError(
            "not_equivocable",
            f"{which} message is not a pre-prepare, prepare, commit or checkpoint",
        )
    if isinstance(m, msg.PrePrepare) and m.payload:
        raise EvidenceError(
            "payload_not_stripped",
            f"{which} pre-prepare carries a payload; its signature covers only the digest",
        )
    return m


def _slot_and_value(m: Equivocable) -> tuple[int, bytes, bytes]:
    """(view, conflicting value, signed body); the view of a checkpoint is 0."""
    if isinstance(m, msg.Checkpoint):
        return 0, m.state_digest, msg.checkpoint_body(m.seq, m.state_digest)
    return m.view, m.digest, msg.vote_body(m.view, m.seq, m.digest)


def check_equivocation(
    first: bytes,
    second: bytes,
    *,
    chain_id: str,
    epoch: int,
    key_of: Callable[[str], bytes | None],
    message_bytes_max: int = EVIDENCE_MESSAGE_BYTES_MAX,
) -> Equivocation:
    """Return what `first` and `second` prove about a validator of `epoch`; `key_of(name)`
    is its public key in that epoch (None: not one of the epoch's validators). Raises
    EvidenceError (with `reason`) if they prove nothing. Order does not matter."""
    limits = evidence_decode_limits(message_bytes_max)
    a = _decode(first, "first", limits)
    b = _decode(second, "second", limits)
    if type(a) is not type(b):
        raise EvidenceError("different_kinds", "the two messages are of different kinds")
    if a.replica != b.replica:
        raise EvidenceError("different_validators", "the two messages name different validators")
    view_a, value_a, body_a = _slot_and_value(a)
    view_b, value_b, body_b = _slot_and_value(b)
    if (view_a, a.seq) != (view_b, b.seq):
        raise EvidenceError(
            "different_slots", "the two messages are for different views or sequence numbers"
        )
    if value_a == value_b:
        raise EvidenceError("no_conflict", "the two messages agree: no conflict")
    key = key_of(a.replica)
    if key is None:
        raise EvidenceError(
            "unknown_validator", f"{a.replica!r} is not a validator of epoch {epoch}"
        )
    kind = MESSAGE_KINDS[type(a)]
    domain = signing_domain(chain_id, epoch)
    for which, m, body in (("first", a, body_a), ("second", b, body_b)):
        if not verify(key, m.signature, kind.purpose, domain, body):
            raise EvidenceError(
                "bad_signature",
                f"the {which} message's signature does not verify for {a.replica} in epoch {epoch}",
            )
    return Equivocation(
        epoch=epoch,
        validator=a.replica,
        public_key=key,
        message_kind=kind.name,
        kind_code=kind.code,
        view=view_a,
        seq=a.seq,
    )


def check_evidence(
    first: bytes,
    second: bytes,
    *,
    chain_id: str,
    epoch: int,
    validators: tuple[tuple[str, bytes], ...],
    message_bytes_max: int = EVIDENCE_MESSAGE_BYTES_MAX,
) -> Equivocation:
    """check_equivocation for a caller that holds the epoch's set as (name, key) pairs."""
    return check_equivocation(
        first,
        second,
        chain_id=chain_id,
        epoch=epoch,
        key_of=dict(validators).get,
        message_bytes_max=message_bytes_max,
    )
