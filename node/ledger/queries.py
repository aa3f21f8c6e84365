"""Read-side queries. Each is a point lookup or a bounded prefix range, never a scan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack

from node.ledger import bucket_log
from node.ledger import keys as kl
from node.ledger.errors import LedgerCorruptError
from node.ledger.records import AccountRecord, AssetRecord, BlockRecord, Freeze, Receipt, decode_int
from node.ledger.txn import Txn
from node.tx.kinds import ROLES


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountInfo:
    public_key: bytes
    category: str
    kyc_hash: bytes
    expires_at_ms: int | None
    status: str  # registered | revoked | recovered
    recovered_to: bytes | None
    roles: frozenset[str]
    freezes: tuple[Freeze, ...]  # whole-account freeze first (asset_id None), then per asset
    assets: tuple[str, ...]  # assets ever held
    registered_height: int


def account(txn: Txn, dbs: dict[str, Any], public_key: bytes) -> AccountInfo | None:
    raw = txn.get(public_key, db=dbs[kl.ACCOUNTS])
    if raw is None:
        return None
    r = AccountRecord.decode(raw)
    roles = frozenset(
        role for role in ROLES if txn.get(kl.role_key(public_key, role), db=dbs[kl.ROLES])
    )
    return AccountInfo(
        public_key=public_key,
        category=r.category,
        kyc_hash=r.kyc_hash,
        expires_at_ms=r.expires_at_ms,
        status=r.status,
        recovered_to=r.recovered_to,
        roles=roles,
        freezes=r.freezes(),
        assets=r.assets,
        registered_height=r.registered_height,
    )


def asset(txn: Txn, dbs: dict[str, Any], asset_id: str) -> AssetRecord | None:
    raw = txn.get(asset_id.encode(), db=dbs[kl.ASSETS])
    return None if raw is None else AssetRecord.decode(raw)


def balance(txn: Txn, dbs: dict[str, Any], asset_id: str, public_key: bytes) -> int:
    raw = bucket_log.BALANCES.read_at(txn, dbs, kl.balance_key(asset_id, public_key))
    return 0 if raw is None else decode_int(raw)


def nonce(txn: Txn, dbs: dict[str, Any], public_key: bytes) -> int:
    raw = txn.get(public_key, db=dbs[kl.NONCES])
    return 0 if raw is None else decode_int(raw)


def receipt(txn: Txn, dbs: dict[str, Any], tx_id: bytes) -> Receipt | None:
    where = tx_location(txn, dbs, tx_id)
    if where is None:
        return None
    raw = txn.get(kl.position_key(*where), db=dbs[kl.RECEIPTS])
    if raw is None:
        raise LedgerCorruptError(f"tx index points at {where} but no receipt is stored there")
    return Receipt.decode(raw)


def tx_location(txn: Txn, dbs: dict[str, Any], tx_id: bytes) -> tuple[int, int] | None:
    raw = txn.get(tx_id, db=dbs[kl.TX_INDEX])
    if raw is None:
        return None
    height, index = msgpack.unpackb(raw)
    return (height, index)


def block(txn: Txn, dbs: dict[str, Any], height: int) -> BlockRecord | None:
    if height < 0:
        return None
    key = kl.height_key(height)
    raw = txn.get(key, db=dbs[kl.BLOCKS])
    if raw is None:
        return None
    return BlockRecord.decode(raw, txn.get(key, db=dbs[kl.CERTIFICATES]))


def holders(txn: Txn, dbs: dict[str, Any], asset_id: str) -> list[tuple[bytes, int]]:
    """Every (account, balance) of one asset: a range over that asset's keys only.

    Unbounded by design for audits and tests; the node's client API must page it.
    """
    prefix = kl.balance_prefix(asset_id)
    return [
        (key[len(prefix) :], decode_int(value))
        for key, value in bucket_log.BALANCES.scan(txn, dbs, prefix)
    ]
