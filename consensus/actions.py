"""Actions: everything a replica asks its host to do (sans-I/O output).

PERSISTENCE CONTRACT. Every message that attests to logged state (PRE-PREPARE from the
primary, PREPARE, COMMIT, VIEW-CHANGE, and NEW-VIEW with its pre-prepares) leaves the replica
only after a `Persist` covering it was acknowledged with `Persisted(token)`. The host must
(1) store `Persist.state` durably, (2) then feed back `Persisted(token)`; it may drop a
Persist that a newer one supersedes, acknowledging the newer token (acks are cumulative).
A replica restarted from the last acknowledged state never votes against what it voted.

EXECUTION CONTRACT. `Execute` actions arrive strictly in sequence order, each once; the host
applies the block (atomically with its certificate) and feeds back `Executed(seq, digest)`.
A NULL payload (b"") is a null request: the sequence number is used, nothing is applied.
"""

from __future__ import annotations

from dataclasses import dataclass

from consensus.certificate import CommitCertificate
from consensus.epochs import Epoch
from consensus.state import PersistedState


@dataclass(frozen=True, slots=True, kw_only=True)
class Send:
    to: str
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Broadcast:
    """Send to every other validator."""

    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Persist:
    """Store `state` durably, then acknowledge with Persisted(token). Tokens increase."""

    token: int
    state: PersistedState


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidateProposal:
    """Check a proposal (tx signatures, sizes, rules); answer with ProposalValidated."""

    view: int
    seq: int
    digest: bytes
    payload: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Execute:
    """Apply committed block `seq` (strictly in order), store it with its certificate."""

    seq: int
    payload: bytes
    certificate: CommitCertificate


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchBlocks:
    """Ask peers for committed blocks [from_seq, to_seq] with certificates (state transfer);
    answer with BlocksFetched. Any peer will do: every certificate is verified."""

    from_seq: int
    to_seq: int
    peers: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ViewChanged:
    """Informational: a new view is active with this primary (the host forwards batches)."""

    view: int
    primary: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StateDigestMismatch:
    """LOUD: our state digest at `seq` differs from the stable checkpoint's; we stopped voting."""

    seq: int
    ours: bytes
    stable: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class EquivocationDetected:
    """Two validly signed, conflicting messages from one validator (same view and sequence
    number, different digests; or two checkpoints of one sequence number with different state
    digests). `first` and `second` are the encoded messages, verifiable by anyone holding the
    set of `epoch`: the host records them on the ledger for the regulator."""

    epoch: int
    validator: str
    first: bytes
    second: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class EpochStarted:
    """Informational: from now on `epoch` governs; `member` says whether we vote in it. The
    host connects to the new set's peers and disconnects the ones that left."""

    epoch: Epoch
    member: bool


Action = (
    Send
    | Broadcast
    | Persist
    | ValidateProposal
    | Execute
    | FetchBlocks
    | ViewChanged
    | StateDigestMismatch
    | EquivocationDetected
    | EpochStarted
)
