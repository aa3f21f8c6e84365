"""What the client API needs from a node: the `ClientBackend` protocol.

The node runtime implements it over the mempool, the consensus task and the ledger; tests use
an in-memory fake. Refusals are raised as the `node.api.errors` exceptions (NotFoundError,
RejectedError(reason), UnavailableError, InvalidArgumentError, ...), which the server maps to
wire error codes; any other exception is reported as `internal` and logged.

Limits (in-flight requests, pending waits, subscriptions) and timeouts are enforced by the
server, so a backend method may simply wait; the server cancels it when the deadline passes.
"""

from __future__ import annotations

from typing import Protocol

from node.api.governance_results import EvidenceList, GovernancePage, ValidatorSetInfo
from node.api.results import (
    AccountInfo,
    AssetInfo,
    BlockInfo,
    CheckResult,
    HistoryPage,
    ReceiptInfo,
    StatusInfo,
)


class ClientBackend(Protocol):
    async def submit(self, tx: bytes) -> bytes:
        """Admit `tx` (encoded signed transaction) to the mempool; return its tx id.

        Raises RejectedError(reason) with the admission reason code (malformed, bad_signature,
        wrong_chain, bad_nonce, duplicate, mempool_full, too_large, ...)."""
        ...

    async def wait_receipt(self, tx_id: bytes) -> ReceiptInfo:
        """Return the receipt of `tx_id` with its finality proof once its block is committed.

        Must return at once if the receipt already exists (no race with `submit`); otherwise
        waits indefinitely: the server cancels it at the client's deadline."""
        ...

    async def receipt(self, tx_id: bytes) -> ReceiptInfo:
        """Receipt with proof of a committed transaction; NotFoundError if not committed."""
        ...

    async def balance(self, asset: str, account: bytes) -> int:
        """Base units; 0 for a known asset the account never held. NotFoundError: unknown asset."""
        ...

    async def account(self, account: bytes) -> AccountInfo:
        """NotFoundError if the key was never registered."""
        ...

    async def next_nonce(self, account: bytes) -> int:
        """Nonce of the account's next transaction, counting transactions in the mempool."""
        ...

    async def asset(self, asset: str) -> AssetInfo:
        """NotFoundError for an unknown asset id."""
        ...

    async def block(self, height: int) -> BlockInfo:
        """Committed block with certificate; NotFoundError above the current height."""
        ...

    async def wait_block(self, height: int) -> BlockInfo:
        """Like `block`, but waits until `height` is committed (subscriptions)."""
        ...

    async def block_receipts(self, height: int) -> tuple[ReceiptInfo, ...]:
        """Receipts of a committed block in block order (proof may be None)."""
        ...

    async def status(self) -> StatusInfo: ...

    async def check(self, tx: bytes) -> CheckResult:
        """Would `tx` be admitted and applied against the current state? Never mutates."""
        ...

    async def history(self, account: bytes, limit: int, cursor: bytes | None) -> HistoryPage:
        """Tx ids touching `account`, newest first, at most `limit`; UnavailableError if the
        node keeps no history index."""
        ...

    async def validators(self, height: int | None) -> ValidatorSetInfo:
        """The epoch governing block `height` (the next block when None) with the current
        pending change and regulator keys; NotFoundError above the next block."""
        ...

    async def governance(self, limit: int, before_height: int | None) -> GovernancePage:
        """Applied governance transactions below `before_height`, newest first."""
        ...

    async def evidence(self, limit: int, before_height: int | None) -> EvidenceList:
        """Recorded equivocation evidence below `before_height`, newest first."""
        ...
