"""Events: everything that happens to a replica arrives as one of these (sans-I/O input)."""

from __future__ import annotations

from dataclasses import dataclass

from consensus.certificate import CommitCertificate
from consensus.epochs import Epoch


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageReceived:
    """Raw bytes from a peer. Untrusted: decoded, validated, counted and maybe dropped."""

    sender: str
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Tick:
    """One unit of time passed. Every timer of the replica is counted in ticks."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProposeBatch:
    """The host offers an encoded block proposal. Only the primary of an active view uses it.

    A backup's host offers (the payload may be empty) to say it holds transactions the primary
    should order: `oldest_wait_ticks` is how long the oldest of them has been ready here (R8,
    R8a in consensus.replica)."""

    payload: bytes
    oldest_wait_ticks: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ProposalValidated:
    """The host's verdict on a ValidateProposal action (tx signatures, sizes, rules)."""

    view: int
    seq: int
    digest: bytes
    valid: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Persisted:
    """The host durably stored the PersistedState of Persist(token) (and all earlier ones)."""

    token: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Executed:
    """The host applied committed block `seq` (strictly in order); its state digest after.

    The host's ledger decides epochs (consensus.epochs): `epoch_last_seq` is the end of the
    current epoch once a validator-set change has committed (None: no change pending), and
    `next_epoch` is given with the block that ends the epoch (seq == epoch_last_seq).
    """

    seq: int
    state_digest: bytes
    epoch_last_seq: int | None = None
    next_epoch: Epoch | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchedBlock:
    seq: int
    payload: bytes
    certificate: CommitCertificate


@dataclass(frozen=True, slots=True, kw_only=True)
class BlocksFetched:
    """Committed blocks with their certificates, from a peer (untrusted: each is verified)."""

    blocks: tuple[FetchedBlock, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class CatchUp:
    """Evidence from outside this epoch's messages (e.g. f + 1 peers already in a later
    epoch) that committed blocks exist up to at least `target_seq`: fetch them from `peers`."""

    target_seq: int
    peers: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PeersReachable:
    """The peers the host heard from lately (any frame, keepalives included), when that set
    changes. A replica that cannot reach a quorum does not start a view change (R8b). A host
    that never sends this leaves every peer counted as reachable."""

    names: frozenset[str]


Event = (
    MessageReceived
    | Tick
    | ProposeBatch
    | ProposalValidated
    | Persisted
    | Executed
    | BlocksFetched
    | CatchUp
    | PeersReachable
)
