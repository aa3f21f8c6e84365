"""`AsyncClient`: typed operations, transaction building and nonce tracking over one connection.

    async with AsyncClient.connect("127.0.0.1", 7001) as client:
        outcome = await client.send("transfer", {"asset_id": "BOND", "to_account": pub,
                                                 "amount": 1250}, key=key, wait=True)

Transactions are built and signed by node.tx's builder (`make_tx`), never re-implemented here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import nacl.signing

from node.api.errors import ErrorCode
from node.api.framing import FRAME_BYTES_MAX_DEFAULT
from node.api.governance_results import EvidenceList, GovernancePage, ValidatorSetInfo
from node.api.requests import EVIDENCE_LIMIT_MAX, GOVERNANCE_LIMIT_MAX, Op, SubscriptionKind
from node.api.results import (
    AccountInfo,
    AssetInfo,
    BalanceInfo,
    BlockInfo,
    CheckResult,
    FinalityProof,
    HistoryPage,
    NonceInfo,
    ReceiptInfo,
    StatusInfo,
    SubmitResult,
)
from node.api.schema import SchemaError
from node.client.connection import ClientConnection, open_connection
from node.client.errors import ApiError, ProtocolError
from node.client.finality import Validators, verify_finality
from node.finality import FinalityRecord
from node.tx import Kind, SignedTransaction, TxLimits, make_tx, public_key
from node.tx.kinds import Args

REQUEST_TIMEOUT_S_DEFAULT = 30.0
WAIT_TIMEOUT_MS_DEFAULT = 30_000
# Extra client-side time on top of submit_wait's own timeout, so the node's `timeout` answer
# (which says the tx may still commit) arrives before our own deadline does.
WAIT_MARGIN_S = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class SendOutcome:
    """What happened to a submitted transaction, as the CLI's `--json` reports it.

    status: "committed" (applied in a final block), "rejected" (refused at admission, or
    committed with a rejected receipt: then `height` is set), "pending" (admitted, not yet
    known to be committed)."""

    tx_id: bytes
    status: str
    height: int | None
    reason: str | None
    receipt: ReceiptInfo | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "tx_id": self.tx_id.hex(),
            "status": self.status,
            "height": self.height,
            "reason": self.reason,
        }


def _parse(cls: Any, obj: Any) -> Any:
    try:
        return cls.from_wire(obj)
    except SchemaError as exc:
        raise ProtocolError(f"unexpected result shape from the node: {exc}") from exc


def _tx_bytes(tx: SignedTransaction | bytes) -> bytes:
    return tx if isinstance(tx, bytes) else tx.encode()


def _page_args(limit: int, before_height: int | None) -> dict[str, Any]:
    """Arguments of a query paged by height (governance, evidence)."""
    args: dict[str, Any] = {"limit": limit}
    if before_height is not None:
        args["before_height"] = before_height
    return args


class AsyncClient:
    def __init__(
        self,
        connection: ClientConnection,
        *,
        chain_id: str | None = None,
        request_timeout_s: float = REQUEST_TIMEOUT_S_DEFAULT,
    ) -> None:
        self.connection = connection
        self.request_timeout_s = request_timeout_s
        self._chain_id = chain_id
        self._tx_limits: TxLimits | None = None  # the chain's, from the node's status
        # Next nonce per signer, learnt from the node and advanced by our own submissions.
        self._nonces: dict[bytes, int] = {}

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        chain_id: str | None = None,
        frame_bytes_max: int = FRAME_BYTES_MAX_DEFAULT,
        connect_timeout_s: float = 10.0,
        request_timeout_s: float = REQUEST_TIMEOUT_S_DEFAULT,
    ) -> AsyncIterator[AsyncClient]:
        async with open_connection(
            host, port, frame_bytes_max=frame_bytes_max, connect_timeout_s=connect_timeout_s
        ) as connection:
            yield cls(connection, chain_id=chain_id, request_timeout_s=request_timeout_s)

    async def _call(self, op: Op, args: dict[str, Any], timeout_s: float | None = None) -> Any:
        return await self.connection.request(
            op, args, timeout_s=self.request_timeout_s if timeout_s is None else timeout_s
        )

    # --- queries --------------------------------------------------------------------

    async def status(self) -> StatusInfo:
        return _parse(StatusInfo, await self._call(Op.STATUS, {}))

    async def chain_id(self) -> str:
        if self._chain_id is None:
            await self._learn_chain()
        assert self._chain_id is not None
        return self._chain_id

    async def tx_limits(self) -> TxLimits:
        """The chain's transaction limits (genesis [consensus]), as the node reports them:
        `build` checks a transaction against these, not against this library's defaults."""
        if self._tx_limits is None:
            await self._learn_chain()
        assert self._tx_limits is not None
        return self._tx_limits

    async def _learn_chain(self) -> None:
        """Chain id and transaction limits, from one status call (they never change)."""
        status = await self.status()
        try:
            limits = TxLimits(
                tx_bytes_max=status.tx_bytes_max, memo_bytes_max=status.memo_bytes_max
            )
        except ValueError as exc:
            raise ProtocolError(f"the node reported impossible transaction limits: {exc}") from None
        if self._chain_id is None:
            self._chain_id = status.chain_id
        self._tx_limits = limits

    async def balance(self, asset: str, account: bytes) -> int:
        info: BalanceInfo = _parse(
            BalanceInfo, await self._call(Op.BALANCE, {"asset": asset, "account": account})
        )
        return info.balance

    async def account(self, account: bytes) -> AccountInfo:
        return _parse(AccountInfo, await self._call(Op.ACCOUNT, {"account": account}))

    async def next_nonce(self, account: bytes) -> int:
        info: NonceInfo = _parse(NonceInfo, await self._call(Op.NONCE, {"account": account}))
        return info.next_nonce

    async def asset(self, asset: str) -> AssetInfo:
        return _parse(AssetInfo, await self._call(Op.ASSET, {"asset": asset}))

    async def block(self, height: int) -> BlockInfo:
        return _parse(BlockInfo, await self._call(Op.BLOCK, {"height": height}))

    async def receipt(self, tx_id: bytes) -> ReceiptInfo:
        return _parse(ReceiptInfo, await self._call(Op.RECEIPT, {"tx_id": tx_id}))

    async def history(
        self, account: bytes, *, limit: int = 100, cursor: bytes | None = None
    ) -> HistoryPage:
        args: dict[str, Any] = {"account": account, "limit": limit}
        if cursor is not None:
            args["cursor"] = cursor
        return _parse(HistoryPage, await self._call(Op.HISTORY, args))

    async def check(self, tx: SignedTransaction | bytes) -> CheckResult:
        return _parse(CheckResult, await self._call(Op.CHECK, {"tx": _tx_bytes(tx)}))

    async def validators(self, height: int | None = None) -> ValidatorSetInfo:
        """The epoch governing block `height` (default: the next block), the pending change
        and the regulator keys. ApiError(code="not_found") above the next block."""
        args: dict[str, Any] = {} if height is None else {"height": height}
        return _parse(ValidatorSetInfo, await self._call(Op.VALIDATORS, args))

    async def governance(
        self, *, limit: int = GOVERNANCE_LIMIT_MAX, before_height: int | None = None
    ) -> GovernancePage:
        """Applied governance transactions, newest first; page with `next_before_height`."""
        args = _page_args(limit, before_height)
        return _parse(GovernancePage, await self._call(Op.GOVERNANCE, args))

    async def evidence(
        self, *, limit: int = EVIDENCE_LIMIT_MAX, before_height: int | None = None
    ) -> EvidenceList:
        """Recorded equivocation evidence, newest first; page with `next_before_height`."""
        args = _page_args(limit, before_height)
        return _parse(EvidenceList, await self._call(Op.EVIDENCE, args))

    # --- transactions ---------------------------------------------------------------

    async def build(
        self,
        kind: Kind | str,
        args: Args | Mapping[str, Any],
        *,
        key: nacl.signing.SigningKey,
        cosigners: Iterable[nacl.signing.SigningKey] = (),
        memo: bytes | str | None = None,
        nonce: int | None = None,
    ) -> SignedTransaction:
        """Build and sign one transaction; the nonce comes from the node unless given.

        Raises node.tx's TxBuildError / ArgsError for arguments that can never be valid."""
        signer = public_key(key)
        if nonce is None:
            nonce = self._nonces.get(signer)
            if nonce is None:
                nonce = await self.next_nonce(signer)
        stx = make_tx(
            kind,
            args,
            signer_key=key,
            nonce=nonce,
            chain_id=await self.chain_id(),
            cosigners=cosigners,
            memo=memo,
            limits=await self.tx_limits(),
        )
        return stx

    def _advance(self, stx: SignedTransaction | bytes) -> None:
        if isinstance(stx, SignedTransaction):
            self._nonces[stx.body.signer] = stx.body.nonce + 1

    def _forget(self, stx: SignedTransaction | bytes) -> None:
        # After a refusal our idea of the nonce may be wrong: ask the node next time.
        if isinstance(stx, SignedTransaction):
            self._nonces.pop(stx.body.signer, None)

    async def submit(self, tx: SignedTransaction | bytes) -> bytes:
        """Admit to the mempool; returns the tx id. ApiError(code="rejected") on refusal."""
        try:
            result: SubmitResult = _parse(
                SubmitResult, await self._call(Op.SUBMIT, {"tx": _tx_bytes(tx)})
            )
        except ApiError:
            self._forget(tx)
            raise
        self._advance(tx)
        return result.tx_id

    async def submit_and_wait(
        self, tx: SignedTransaction | bytes, *, timeout_ms: int = WAIT_TIMEOUT_MS_DEFAULT
    ) -> ReceiptInfo:
        """Submit and return the receipt (with finality proof) once committed.

        ApiError(code="timeout") if not committed in time: the tx may still commit."""
        try:
            obj = await self._call(
                Op.SUBMIT_WAIT,
                {"tx": _tx_bytes(tx), "timeout_ms": timeout_ms},
                timeout_s=timeout_ms / 1000 + WAIT_MARGIN_S,
            )
        except ApiError as exc:
            if exc.code != ErrorCode.TIMEOUT:
                self._forget(tx)
            else:
                self._advance(tx)  # admitted: its nonce is taken
            raise
        self._advance(tx)
        return _parse(ReceiptInfo, obj)

    async def send(
        self,
        kind: Kind | str,
        args: Args | Mapping[str, Any],
        *,
        key: nacl.signing.SigningKey,
        cosigners: Iterable[nacl.signing.SigningKey] = (),
        memo: bytes | str | None = None,
        nonce: int | None = None,
        wait: bool = False,
        timeout_ms: int = WAIT_TIMEOUT_MS_DEFAULT,
    ) -> SendOutcome:
        """Build, sign, submit (and optionally wait); refusals become a `rejected` outcome."""
        stx = await self.build(kind, args, key=key, cosigners=cosigners, memo=memo, nonce=nonce)
        return await self.send_signed(stx, wait=wait, timeout_ms=timeout_ms)

    async def send_signed(
        self,
        stx: SignedTransaction,
        *,
        wait: bool = False,
        timeout_ms: int = WAIT_TIMEOUT_MS_DEFAULT,
    ) -> SendOutcome:
        try:
            if not wait:
                tx_id = await self.submit(stx)
                return SendOutcome(tx_id=tx_id, status="pending", height=None, reason=None)
            receipt = await self.submit_and_wait(stx, timeout_ms=timeout_ms)
        except ApiError as exc:
            if exc.code == ErrorCode.REJECTED:
                return SendOutcome(
                    tx_id=stx.tx_id, status="rejected", height=None, reason=exc.reason
                )
            if exc.code == ErrorCode.TIMEOUT:
                return SendOutcome(tx_id=stx.tx_id, status="pending", height=None, reason=None)
            raise
        status = "committed" if receipt.status == "applied" else "rejected"
        return SendOutcome(
            tx_id=receipt.tx_id,
            status=status,
            height=receipt.height,
            reason=receipt.reason,
            receipt=receipt,
        )

    # --- streams and proofs ---------------------------------------------------------

    @asynccontextmanager
    async def subscribe_blocks(
        self, from_height: int = 1
    ) -> AsyncIterator[AsyncIterator[BlockInfo]]:
        """`async with client.subscribe_blocks(h) as blocks: async for b in blocks: ...`"""
        args = {"kind": SubscriptionKind.BLOCKS.value, "from_height": from_height}
        async with self.connection.stream(Op.SUBSCRIBE, args) as subscription:
            yield _typed(subscription, BlockInfo)

    @asynccontextmanager
    async def subscribe_receipts(
        self, from_height: int = 1
    ) -> AsyncIterator[AsyncIterator[ReceiptInfo]]:
        args = {"kind": SubscriptionKind.RECEIPTS.value, "from_height": from_height}
        async with self.connection.stream(Op.SUBSCRIBE, args) as subscription:
            yield _typed(subscription, ReceiptInfo)

    @staticmethod
    def verify_finality(
        proof: FinalityProof | ReceiptInfo,
        validators: Validators,
        chain_id: str,
        *,
        epoch: int = 0,
    ) -> FinalityRecord:
        """See node.client.finality.verify_finality; raises FinalityError."""
        return verify_finality(proof, validators, chain_id, epoch=epoch)


class _typed:  # noqa: N801 -- reads like a function at the call site
    """Parses each stream payload into `cls` (a protocol error if it does not fit)."""

    def __init__(self, source: AsyncIterator[Any], cls: Any) -> None:
        self._source = source
        self._cls = cls

    def __aiter__(self) -> _typed:
        return self

    async def __anext__(self) -> Any:
        return _parse(self._cls, await self._source.__anext__())
