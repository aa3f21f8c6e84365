"""Checking reported equivocation: two conflicting consensus messages signed by one validator.

Evidence is untrusted bytes from a transaction; everything about it is checked here and any
flaw is an `EvidenceError` (the rule turns it into `bad_evidence`). What counts as conflict:

    pre_prepare, prepare, commit   same kind, view and seq, different digest
    checkpoint                     same seq, different state digest

Both signatures must verify under the validator's key in the given epoch, bound to the
epoch's signing domain (consensus.epochs.signing_domain). A PRE-PREPARE's signature covers
[view, seq, digest] only, so reporters strip its payload (the bytes are not needed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from consensus.encoding import DecodeLimits
from consensus.epochs import signing_domain
from consensus.messages import (
    Checkpoint,
    Commit,
    MessageError,
    Prepare,
    PrePrepare,
    checkpoint_body,
    decode_message,
    vote_body,
)
from consensus.signing import Purpose, verify
from node.tx.kinds import EVIDENCE_MESSAGE_BYTES_MAX

# The reported messages are votes or checkpoints (flat, small); nothing nests or repeats.
EVIDENCE_DECODE_LIMITS = DecodeLimits(
    buffer_bytes_max=EVIDENCE_MESSAGE_BYTES_MAX,
    bin_bytes_max=EVIDENCE_MESSAGE_BYTES_MAX,
    str_bytes_max=256,
    array_items_max=8,
    map_items_max=0,
)

# Stable kind names (stored in evidence records) and their one-byte codes in the index key.
MESSAGE_KINDS: dict[type, tuple[str, int, Purpose]] = {
    PrePrepare: ("pre_prepare", 1, Purpose.PRE_PREPARE),
    Prepare: ("prepare", 2, Purpose.PREPARE),
    Commit: ("commit", 3, Purpose.COMMIT),
    Checkpoint: ("checkpoint", 4, Purpose.CHECKPOINT),
}


class EvidenceError(ValueError):
    """The reported messages do not prove equivocation. The message says why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Equivocation:
    """What two messages proved: `validator` signed both in `epoch`."""

    validator: str
    public_key: bytes
    message_kind: str
    kind_code: int
    view: int  # 0 for checkpoints
    seq: int


Vote = PrePrepare | Prepare | Commit


def _decode(data: bytes, which: str) -> PrePrepare | Prepare | Commit | Checkpoint:
    try:
        # n and window bound VIEW-CHANGE/NEW-VIEW contents, which are refused below anyway.
        message = decode_message(data, limits=EVIDENCE_DECODE_LIMITS, n=1, window=1)
    except MessageError as exc:
        raise EvidenceError(f"{which} message does not decode ({exc.reason})") from None
    if type(message) not in MESSAGE_KINDS:
        raise EvidenceError(f"{which} message is not a pre-prepare, prepare, commit or checkpoint")
    return message  # type: ignore[return-value]


def check_equivocation(
    first: bytes,
    second: bytes,
    *,
    chain_id: str,
    epoch: int,
    key_of: Callable[[str], bytes | None],
) -> Equivocation:
    """Verify the evidence; `key_of(name)` is the validator's key in `epoch` (None: not one
    of its validators). Raises EvidenceError."""
    a = _decode(first, "first")
    b = _decode(second, "second")
    if type(a) is not type(b):
        raise EvidenceError("the two messages are of different kinds")
    if a.replica != b.replica:
        raise EvidenceError("the two messages name different validators")
    name, code, purpose = MESSAGE_KINDS[type(a)]
    if isinstance(a, Checkpoint):
        assert isinstance(b, Checkpoint)
        if a.seq != b.seq:
            raise EvidenceError("the checkpoints are for different sequence numbers")
        if a.state_digest == b.state_digest:
            raise EvidenceError("the checkpoints agree: no conflict")
        view = 0
        bodies = (checkpoint_body(a.seq, a.state_digest), checkpoint_body(b.seq, b.state_digest))
    else:
        assert isinstance(b, Vote)
        if a.view != b.view or a.seq != b.seq:
            raise EvidenceError("the votes are for different views or sequence numbers")
        if a.digest == b.digest:
            raise EvidenceError("the votes agree: no conflict")
        view = a.view
        bodies = (vote_body(a.view, a.seq, a.digest), vote_body(b.view, b.seq, b.digest))
    key = key_of(a.replica)
    if key is None:
        raise EvidenceError(f"{a.replica[:64]!r} is not a validator of epoch {epoch}")
    domain = signing_domain(chain_id, epoch)
    for message, body, which in ((a, bodies[0], "first"), (b, bodies[1], "second")):
        if not verify(key, message.signature, purpose, domain, body):
            raise EvidenceError(
                f"the {which} message's signature does not verify for {a.replica} in epoch {epoch}"
            )
    return Equivocation(
        validator=a.replica,
        public_key=key,
        message_kind=name,
        kind_code=code,
        view=view,
        seq=a.seq,
    )
