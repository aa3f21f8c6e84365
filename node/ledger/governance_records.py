"""What the ledger remembers about governance: validator sets per epoch, the audited history
of governance transactions, and recorded misbehaviour evidence.

These records are read by queries (API, CLI) and by the runtime (which validator set governs
which block). They are plain frozen values; the ledger stores and encodes them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidatorInfo:
    name: str
    public_key: bytes  # 32-byte Ed25519 key: consensus signatures and the p2p identity
    address: str  # host:port of its peer listener


@dataclass(frozen=True, slots=True, kw_only=True)
class EpochInfo:
    """Epoch `number` governs blocks first_seq..last_seq (last_seq None: still open)."""

    number: int
    first_seq: int
    last_seq: int | None
    validators: tuple[ValidatorInfo, ...]  # primary-rotation order


@dataclass(frozen=True, slots=True, kw_only=True)
class GovernanceRecord:
    """One applied governance transaction, with the regulator signatures that approved it."""

    height: int
    tx_id: bytes
    kind: str  # add_validator | remove_validator | rotate_validator_key | set_regulator_keys
    args: dict[str, object]  # the decoded arguments (bytes stay bytes)
    signatures: tuple[tuple[bytes, bytes], ...]  # (regulator public key, signature)
    effective_from_seq: int | None  # first block of the epoch that carries the change, if known


@dataclass(frozen=True, slots=True, kw_only=True)
class EvidenceRecord:
    """Two conflicting signed consensus messages from one validator, proven on the ledger."""

    height: int
    tx_id: bytes
    validator: str
    public_key: bytes
    epoch: int
    message_kind: str  # pre_prepare | prepare | commit | checkpoint
    view: int  # 0 for checkpoints
    seq: int
    first: bytes  # the two encoded signed messages, as reported
    second: bytes
    reporter: bytes  # public key of the validator that reported it


@dataclass(frozen=True, slots=True, kw_only=True)
class GovernanceView:
    """What `query validators` shows, read at one height (one read transaction). `epoch` is
    the epoch governing the block asked for, None if that block is beyond tip + 1."""

    tip: int
    epoch: EpochInfo | None
    pending_validators: tuple[ValidatorInfo, ...] | None
    pending_last_seq: int | None
    regulator_keys: tuple[bytes, ...]
    regulator_threshold: int
