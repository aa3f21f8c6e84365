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
- `validators --height H` answers for H up to the next block (tip + 1), NotFoundError above:
  the epoch of a block not yet known to be in an epoch would be a guess.
- governance pages never split a block (their cursor is a height), see `governance`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from node.api.errors import InvalidArgumentError, NotFoundError
from node.api.governance_results import (
    ArgValue,
    EvidenceEntry,
    EvidenceList,
    GovernanceEntry,
    GovernancePage,
    ValidatorEntry,
    ValidatorSetInfo,
)
from node.api.results import (
    AccountInfo,
    AssetInfo,
    BlockInfo,
    CheckResult,
    FinalityProof,
    HistoryPage,
    ReceiptInfo,
)
from node.ledger import HistoryCursorError, Ledger, Receipt
from node.ledger.governance_records import EvidenceRecord, GovernanceRecord, ValidatorInfo
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


def validator_entries(validators: tuple[ValidatorInfo, ...]) -> tuple[ValidatorEntry, ...]:
    return tuple(
        ValidatorEntry(name=v.name, public_key=v.public_key, address=v.address) for v in validators
    )


def governance_entry(record: GovernanceRecord) -> GovernanceEntry:
    return GovernanceEntry(
        height=record.height,
        tx_id=record.tx_id,
        kind=record.kind,
        args=_plain_args(record.args),
        signatures=tuple(record.signatures),
        effective_from_seq=record.effective_from_seq,
    )


def _plain_args(args: dict[str, Any]) -> dict[str, ArgValue]:
    # Tuples (key lists) travel as arrays; str enum values as plain strings.
    out: dict[str, ArgValue] = {}
    for name, value in args.items():
        if isinstance(value, tuple):
            out[name] = list(value)
        elif isinstance(value, str):
            out[name] = str(value)
        else:
            out[name] = value
    return out


def evidence_entry(record: EvidenceRecord) -> EvidenceEntry:
    return EvidenceEntry(
        height=record.height,
        tx_id=record.tx_id,
        validator=record.validator,
        public_key=record.public_key,
        epoch=record.epoch,
        message_kind=record.message_kind,
        view=record.view,
        seq=record.seq,
        first=record.first,
        second=record.second,
        reporter=record.reporter,
    )


class _Dated(Protocol):
    @property
    def height(self) -> int: ...


R = TypeVar("R", bound=_Dated)


def page_by_height(
    records: Sequence[R], limit: int, block_records: Sequence[R] | None
) -> tuple[list[R], int | None] | int:
    """Cut a page from `records` (newest first, up to limit + 1 of them) without splitting a
    block, since the next page resumes *below* a height. Returns (page, next_before_height),
    or, when one block holds more than `limit` records, that block's height: the caller then
    passes all of that block's records as `block_records` and gets them as the page."""
    if len(records) <= limit:
        return list(records), None
    boundary = records[limit].height  # the first record not shown
    page = [r for r in records[:limit] if r.height != boundary]
    if not page:
        if block_records is None:
            return boundary
        page = [r for r in block_records if r.height == boundary]
    return page, page[-1].height


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
        try:
            entries = self.ledger.history(account, min(limit + 1, page_max), before)
        except HistoryCursorError as exc:
            raise InvalidArgumentError(f"cursor: {exc}") from None
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

    async def validators(self, height: int | None) -> ValidatorSetInfo:
        view = self.ledger.governance_view(height)  # one read: every field at one height
        epoch = view.epoch
        if epoch is None:
            raise NotFoundError(
                f"no block at height {height}; the chain is at {view.tip}, so the latest height"
                f" with a known epoch is {view.tip + 1}"
            )
        pending = view.pending_validators
        return ValidatorSetInfo(
            height=view.tip,
            epoch=epoch.number,
            first_seq=epoch.first_seq,
            last_seq=epoch.last_seq,
            validators=validator_entries(epoch.validators),
            pending_validators=None if pending is None else validator_entries(pending),
            pending_last_seq=view.pending_last_seq,
            regulator_keys=tuple(view.regulator_keys),
            regulator_threshold=view.regulator_threshold,
        )

    async def governance(self, limit: int, before_height: int | None) -> GovernancePage:
        page, next_before = self._page_by_height(
            lambda n, below: self.ledger.governance_history(limit=n, before_height=below),
            limit,
            before_height,
        )
        return GovernancePage(
            records=tuple(governance_entry(r) for r in page), next_before_height=next_before
        )

    async def evidence(self, limit: int, before_height: int | None) -> EvidenceList:
        page, next_before = self._page_by_height(
            lambda n, below: self.ledger.evidence(limit=n, before_height=below),
            limit,
            before_height,
        )
        return EvidenceList(
            records=tuple(evidence_entry(r) for r in page), next_before_height=next_before
        )

    def _page_by_height(
        self, read: Callable[[int, int | None], list[R]], limit: int, before_height: int | None
    ) -> tuple[list[R], int | None]:
        """A page of `read(n, below)`'s records (newest first), cut by `page_by_height`."""
        page_max = self.ledger.limits.history_page_max
        # One extra record tells whether an older page exists and where the block boundary is.
        limit = max(1, min(limit, page_max - 1))
        records = read(min(limit + 1, page_max), before_height)
        cut = page_by_height(records, limit, None)
        if isinstance(cut, int):
            # One block holds more than `limit` records: a height cursor cannot resume inside
            # it, so this page is that whole block (up to the ledger's page max).
            cut = page_by_height(records, limit, read(page_max, cut + 1))
            assert not isinstance(cut, int)
        return cut
