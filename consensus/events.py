"""Events: everything that happens to a replica arrives as one of these (sans-I/O input)."""

from __future__ import annotations

from dataclasses import dataclass

from consensus.certificate import CommitCertificate


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
    """The host offers an encoded block proposal. Only the primary of an active view uses it."""

    payload: bytes


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
    """The host applied committed block `seq` (strictly in order); its state digest after."""

    seq: int
    state_digest: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchedBlock:
    seq: int
    payload: bytes
    certificate: CommitCertificate


@dataclass(frozen=True, slots=True, kw_only=True)
class BlocksFetched:
    """Committed blocks with their certificates, from a peer (untrusted: each is verified)."""

    blocks: tuple[FetchedBlock, ...]


Event = (
    MessageReceived | Tick | ProposeBatch | ProposalValidated | Persisted | Executed | BlocksFetched
)
