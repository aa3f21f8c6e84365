"""The read side of `ClientBackend` over a `Ledger`: ledger records -> API results.

The node runtime composes this with its write side (mempool admission, commit waiters,
subscriptions). LMDB reads are point lookups or bounded ranges in a read transaction, which
never blocks the block writer, so they run inline on the event loop.

What this layer decides (and docs/protocol.md states):
- `account.registered` is the ledger status "registered" (revoked and recovered are not);
  `frozen` is a whole-account freeze, `frozen_assets` the per-asset ones.
- `account.next_nonce` / `next_nonce` count committed transactions only; the runtime should
  override `next_nonce` to count its mempool.
- `block.block` is the stored block record's canonical bytes; `tx_ids` are the ids of its
  decodable transactions, in order (undecodable bytes claim no id and have no receipt).
- history cursors are 12 bytes: big-endian height (8) and index (4) of the last entry seen.
"""

from __future__ import annotations

from node.api.errors import InvalidArgumentError, NotFoundError
from node.api.results import (
    AccountInfo,
    AssetInfo,
    BlockInfo,
    CheckResult,
    FinalityProof,
    HistoryPage,
    ReceiptInfo,
)
from node.ledger import Ledger, Receipt
from node.ledger.records import BlockRecord
from node.tx import TxDecodeError, decode_signed_transaction

CURSOR_BYTES = 12


def _tx_id(raw: bytes) -> bytes | None:
    try:
        return decode_signed_transaction(raw, tx_bytes_max=len(raw)).tx_id
    except TxDecodeError:
        return None  # undecodable bytes claim no id and have no stored receipt


def block_info(record: BlockRecord) -> BlockInfo:
    return BlockInfo(
        height=record.height,
        block_hash=record.block_hash,
        tx_ids=tuple(t for t in map(_tx_id, record.txs) if t is not None),
        block=record.encode(),
        certificate=record.certificate or b"",
    )


def receipt_info(receipt: Receipt, block: BlockRecord | None) -> ReceiptInfo:
    proof = None
    if block is not None and block.certificate:
        proof = FinalityProof(
            height=block.height, block_hash=block.block_hash, certificate=block.certificate
        )
    return ReceiptInfo(
        tx_id=receipt.tx_id,
        status=str(receipt.status),
        reason=None if receipt.reason is None else str(receipt.reason),
        height=receipt.height,
        index=receipt.index,
        proof=proof,
    )


def encode_cursor(height: int, index: int) -> bytes:
    return height.to_bytes(8, "big") + index.to_bytes(4, "big")


def decode_cursor(cursor: bytes) -> tuple[int, int]:
    if len(cursor) != CURSOR_BYTES:
        raise InvalidArgumentError(
            f"cursor must be the {CURSOR_BYTES}-byte next_cursor of a previous page"
        )
    return int.from_bytes(cursor[:8], "big"), int.from_bytes(cursor[8:], "big")


def check_result(receipt: Receipt) -> CheckResult:
    if receipt.applied:
        return CheckResult(accepted=True, reason=None)
    return CheckResult(accepted=False, reason=str(receipt.reason))


class LedgerQueries:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def balance(self, asset: str, account: bytes) -> int:
        if self.ledger.asset(asset) is None:
            raise NotFoundError(f"unknown asset {asset!r}")
        return self.ledger.balance(asset, account)

    async def account(self, account: bytes) -> AccountInfo:
        info = self.ledger.account(account)
        if info is None:
            raise NotFoundError(f"account {account.hex()} was never registered")
        return AccountInfo(
            account=account,
            registered=info.status == "registered",
            category=info.category,
            kyc_hash=info.kyc_hash,
            expires_at_ms=info.expires_at_ms,
            roles=tuple(sorted(info.roles)),
            frozen=any(f.asset_id is None for f in info.freezes),
            frozen_assets=tuple(sorted(f.asset_id for f in info.freezes if f.asset_id is not None)),
            next_nonce=self.ledger.nonce(account),
        )

    async def next_nonce(self, account: bytes) -> int:
        return self.ledger.nonce(account)

    async def asset(self, asset: str) -> AssetInfo:
        record = self.ledger.asset(asset)
        if record is None:
            raise NotFoundError(f"unknown asset {asset!r}")
        return AssetInfo(
            asset=record.asset_id,
            name=record.name,
            decimals=record.decimals,
            cap=record.cap,
            supply=record.supply,
            paused=record.paused,
            issuer=record.issuer,
            document_hash=record.document_hash,
        )

    async def block(self, height: int) -> BlockInfo:
        record = self.ledger.block(height)
        if record is None:
            raise NotFoundError(
                f"no block at height {height}; the chain is at {self.ledger.height}"
            )
        return block_info(record)

    async def receipt(self, tx_id: bytes) -> ReceiptInfo:
        receipt = self.ledger.receipt(tx_id)
        if receipt is None:
            raise NotFoundError(f"no committed transaction {tx_id.hex()}")
        return receipt_info(receipt, self.ledger.block(receipt.height))

    async def block_receipts(self, height: int) -> tuple[ReceiptInfo, ...]:
        record = self.ledger.block(height)
        if record is None:
            raise NotFoundError(f"no block at height {height}")
        out = []
        for raw in record.txs:
            tx_id = _tx_id(raw)
            receipt = None if tx_id is None else self.ledger.receipt(tx_id)
            # A tx id repeated in a block has one stored receipt: report it once.
            if receipt is not None and receipt.height == height:
                out.append(receipt_info(receipt, None))
        return tuple(dict.fromkeys(out))

    async def history(self, account: bytes, limit: int, cursor: bytes | None) -> HistoryPage:
        before = None if cursor is None else decode_cursor(cursor)
        page_max = self.ledger.limits.history_page_max
        # One extra entry tells whether another page exists, without an empty last page.
        entries = self.ledger.history(account, min(limit + 1, page_max), before)
        more = len(entries) > limit
        entries = entries[:limit]
        next_cursor = (
            encode_cursor(entries[-1].height, entries[-1].index)
            if entries and (more or len(entries) == page_max)
            else None
        )
        return HistoryPage(
            account=account, tx_ids=tuple(e.tx_id for e in entries), next_cursor=next_cursor
        )

    async def check(self, tx: bytes) -> CheckResult:
        """Against committed state only (the runtime adds mempool-level checks)."""
        return check_result(self.ledger.check(tx))
