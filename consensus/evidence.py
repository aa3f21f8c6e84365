"""Equivocation evidence: two conflicting messages one validator signed, checkable by anyone.

A correct replica signs at most one PRE-PREPARE, PREPARE and COMMIT per (view, seq) and one
CHECKPOINT per seq. Two of the same kind with different digests, both validly signed by one
validator of the epoch, prove that validator faulty; the replica emits them
(EquivocationDetected) and the ledger records them after checking them with `check_evidence`.
"""

from __future__ import annotations

from dataclasses import dataclass

from consensus import messages as msg
from consensus.encoding import DecodeLimits
from consensus.epochs import signing_domain
from consensus.signing import Purpose, verify

EVIDENCE_MESSAGE_BYTES_MAX = 8 << 20  # a PRE-PREPARE carries its batch
EVIDENCE_LIMITS = DecodeLimits(
    buffer_bytes_max=EVIDENCE_MESSAGE_BYTES_MAX,
    bin_bytes_max=EVIDENCE_MESSAGE_BYTES_MAX,
    array_items_max=64,
)
MESSAGE_KINDS = {
    msg.PrePrepare: ("pre_prepare", Purpose.PRE_PREPARE),
    msg.Prepare: ("prepare", Purpose.PREPARE),
    msg.Commit: ("commit", Purpose.COMMIT),
    msg.Checkpoint: ("checkpoint", Purpose.CHECKPOINT),
}


class EvidenceError(ValueError):
    """The two messages do not prove an equivocation. The message says why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Equivocation:
    validator: str
    message_kind: str  # pre_prepare | prepare | commit | checkpoint
    view: int  # 0 for checkpoints
    seq: int


def _decode(data: bytes, which: str) -> msg.Message:
    if len(data) > EVIDENCE_MESSAGE_BYTES_MAX:
        raise EvidenceError(f"{which} message exceeds {EVIDENCE_MESSAGE_BYTES_MAX} bytes")
    try:
        return msg.decode_message(data, limits=EVIDENCE_LIMITS, n=1, window=1)
    except msg.MessageError as exc:
        raise EvidenceError(f"{which} message does not decode: {exc}") from None


def _signed(m: msg.Message) -> tuple[bytes, bytes]:
    """(body, conflicting value) of a vote or checkpoint."""
    if isinstance(m, msg.Checkpoint):
        return msg.checkpoint_body(m.seq, m.state_digest), m.state_digest
    assert isinstance(m, msg.PrePrepare | msg.Prepare | msg.Commit)
    return msg.vote_body(m.view, m.seq, m.digest), m.digest


def check_evidence(
    first: bytes,
    second: bytes,
    *,
    chain_id: str,
    epoch: int,
    validators: tuple[tuple[str, bytes], ...],
) -> Equivocation:
    """Return what `first` and `second` prove about a validator of `epoch`; raise
    EvidenceError if they prove nothing (undecodable, different kinds or slots, same value,
    unknown signer, bad signature)."""
    a, b = _decode(first, "first"), _decode(second, "second")
    kind = MESSAGE_KINDS.get(type(a))
    if kind is None:
        raise EvidenceError("only PRE-PREPARE, PREPARE, COMMIT and CHECKPOINT can equivocate")
    if type(a) is not type(b):
        raise EvidenceError("the two messages are of different kinds")
    assert isinstance(b, msg.PrePrepare | msg.Prepare | msg.Commit | msg.Checkpoint)
    assert isinstance(a, msg.PrePrepare | msg.Prepare | msg.Commit | msg.Checkpoint)
    if a.replica != b.replica:
        raise EvidenceError("the two messages are from different validators")
    view_a = 0 if isinstance(a, msg.Checkpoint) else a.view
    view_b = 0 if isinstance(b, msg.Checkpoint) else b.view
    if (view_a, a.seq) != (view_b, b.seq):
        raise EvidenceError("the two messages are for different views or sequence numbers")
    body_a, value_a = _signed(a)
    body_b, value_b = _signed(b)
    if value_a == value_b:
        raise EvidenceError("the two messages agree: no conflict")
    key = dict(validators).get(a.replica)
    if key is None:
        raise EvidenceError(f"{a.replica} is not a validator of epoch {epoch}")
    domain = signing_domain(chain_id, epoch)
    name, purpose = kind
    for which, body, m in (("first", body_a, a), ("second", body_b, b)):
        if not verify(key, m.signature, purpose, domain, body):
            raise EvidenceError(f"the {which} message's signature does not verify")
    return Equivocation(validator=a.replica, message_kind=name, view=view_a, seq=a.seq)
