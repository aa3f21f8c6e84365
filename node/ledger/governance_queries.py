"""Read-side governance queries over one read transaction (Ledger wraps each in its own)."""

from __future__ import annotations

from typing import Any

from consensus.epochs import Epoch
from node.ledger import keys as kl
from node.ledger.errors import LedgerCorruptError
from node.ledger.governance_records import EpochInfo, EvidenceRecord, GovernanceRecord
from node.ledger.governance_state import (
    ValidatorSet,
    decode_evidence,
    decode_governance,
    epoch_number_for,
    latest_epoch_number,
    read_epoch,
    read_snapshot,
    read_validators,
)
from node.ledger.txn import Txn


def _pending(txn: Txn, dbs: dict[str, Any]) -> int | None:
    return read_snapshot(txn, dbs, -1).pending_last_seq


def _epoch(txn: Txn, dbs: dict[str, Any], number: int) -> EpochInfo:
    epoch = read_epoch(txn, dbs, number, _pending(txn, dbs))
    if epoch is None:
        raise LedgerCorruptError(f"epoch {number} missing: the data directory is damaged")
    return epoch


def epoch_for(txn: Txn, dbs: dict[str, Any], seq: int) -> EpochInfo:
    return _epoch(txn, dbs, epoch_number_for(txn, dbs, seq))


def current_epoch(txn: Txn, dbs: dict[str, Any]) -> EpochInfo:
    return _epoch(txn, dbs, latest_epoch_number(txn, dbs))


def epochs(txn: Txn, dbs: dict[str, Any]) -> list[EpochInfo]:
    latest = latest_epoch_number(txn, dbs)
    return [_epoch(txn, dbs, number) for number in range(latest + 1)]


def pending_validators(txn: Txn, dbs: dict[str, Any]) -> ValidatorSet | None:
    ledger_set = read_validators(txn, dbs)
    return None if ledger_set == current_epoch(txn, dbs).validators else ledger_set


def is_validator_key(txn: Txn, dbs: dict[str, Any], public_key: bytes) -> bool:
    if any(v.public_key == public_key for v in read_validators(txn, dbs)):
        return True
    return any(v.public_key == public_key for v in current_epoch(txn, dbs).validators)


def consensus_epoch(epoch: EpochInfo) -> Epoch:
    return Epoch(
        number=epoch.number,
        first_seq=epoch.first_seq,
        validators=tuple((v.name, v.public_key) for v in epoch.validators),
    )


def _newest_first(txn: Txn, db: Any, limit: int, before_height: int | None) -> list[bytes]:
    """Up to `limit` values, newest position first, all below height `before_height`."""
    cursor = txn.cursor(db=db)
    if before_height is None:
        found = cursor.last()
    elif cursor.set_range(kl.position_key(before_height, 0)):
        found = cursor.prev()  # the last key before (before_height, 0)
    else:
        found = cursor.last()
    out: list[bytes] = []
    while found and len(out) < limit:
        out.append(cursor.value())
        found = cursor.prev()
    return out


def governance_history(
    txn: Txn, dbs: dict[str, Any], limit: int, before_height: int | None
) -> list[GovernanceRecord]:
    raws = _newest_first(txn, dbs[kl.GOVERNANCE_HISTORY], limit, before_height)
    return [decode_governance(raw) for raw in raws]


def evidence(
    txn: Txn, dbs: dict[str, Any], limit: int, before_height: int | None
) -> list[EvidenceRecord]:
    raws = _newest_first(txn, dbs[kl.EVIDENCE], limit, before_height)
    return [decode_evidence(raw) for raw in raws]
