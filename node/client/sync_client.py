"""`Client`: a blocking wrapper for scripts. Each call opens a connection, runs, closes.

One connection per call keeps the wrapper free of threads and background state; the node
counts mempool transactions in `next_nonce`, so consecutive `send` calls still get fresh nonces.
Use `AsyncClient` to pipeline many requests over one connection.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

import nacl.signing
import trio

from node.api.framing import FRAME_BYTES_MAX_DEFAULT
from node.api.governance_results import EvidenceList, GovernancePage, ValidatorSetInfo
from node.api.requests import EVIDENCE_LIMIT_MAX, GOVERNANCE_LIMIT_MAX
from node.api.results import (
    AccountInfo,
    AssetInfo,
    BlockInfo,
    CheckResult,
    HistoryPage,
    ReceiptInfo,
    StatusInfo,
)
from node.client.async_client import (
    REQUEST_TIMEOUT_S_DEFAULT,
    WAIT_TIMEOUT_MS_DEFAULT,
    AsyncClient,
    SendOutcome,
)
from node.tx import Kind, SignedTransaction
from node.tx.kinds import Args

T = TypeVar("T")


class Client:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        chain_id: str | None = None,
        frame_bytes_max: int = FRAME_BYTES_MAX_DEFAULT,
        connect_timeout_s: float = 10.0,
        request_timeout_s: float = REQUEST_TIMEOUT_S_DEFAULT,
    ) -> None:
        self.host = host
        self.port = port
        self.chain_id = chain_id
        self.frame_bytes_max = frame_bytes_max
        self.connect_timeout_s = connect_timeout_s
        self.request_timeout_s = request_timeout_s

    def run(self, call: Callable[[AsyncClient], Awaitable[T]]) -> T:
        """Run `call(async_client)` on a fresh connection and return its result."""

        async def main() -> T:
            async with AsyncClient.connect(
                self.host,
                self.port,
                chain_id=self.chain_id,
                frame_bytes_max=self.frame_bytes_max,
                connect_timeout_s=self.connect_timeout_s,
                request_timeout_s=self.request_timeout_s,
            ) as client:
                result = await call(client)
                if self.chain_id is None and client._chain_id is not None:
                    self.chain_id = client._chain_id
                return result

        return trio.run(main)

    def status(self) -> StatusInfo:
        return self.run(lambda c: c.status())

    def balance(self, asset: str, account: bytes) -> int:
        return self.run(lambda c: c.balance(asset, account))

    def account(self, account: bytes) -> AccountInfo:
        return self.run(lambda c: c.account(account))

    def next_nonce(self, account: bytes) -> int:
        return self.run(lambda c: c.next_nonce(account))

    def asset(self, asset: str) -> AssetInfo:
        return self.run(lambda c: c.asset(asset))

    def block(self, height: int) -> BlockInfo:
        return self.run(lambda c: c.block(height))

    def receipt(self, tx_id: bytes) -> ReceiptInfo:
        return self.run(lambda c: c.receipt(tx_id))

    def history(
        self, account: bytes, *, limit: int = 100, cursor: bytes | None = None
    ) -> HistoryPage:
        return self.run(lambda c: c.history(account, limit=limit, cursor=cursor))

    def check(self, tx: SignedTransaction | bytes) -> CheckResult:
        return self.run(lambda c: c.check(tx))

    def validators(self, height: int | None = None) -> ValidatorSetInfo:
        return self.run(lambda c: c.validators(height))

    def governance(
        self, *, limit: int = GOVERNANCE_LIMIT_MAX, before_height: int | None = None
    ) -> GovernancePage:
        return self.run(lambda c: c.governance(limit=limit, before_height=before_height))

    def evidence(
        self, *, limit: int = EVIDENCE_LIMIT_MAX, before_height: int | None = None
    ) -> EvidenceList:
        return self.run(lambda c: c.evidence(limit=limit, before_height=before_height))

    def submit(self, tx: SignedTransaction | bytes) -> bytes:
        return self.run(lambda c: c.submit(tx))

    def submit_and_wait(
        self, tx: SignedTransaction | bytes, *, timeout_ms: int = WAIT_TIMEOUT_MS_DEFAULT
    ) -> ReceiptInfo:
        return self.run(lambda c: c.submit_and_wait(tx, timeout_ms=timeout_ms))

    def build(
        self,
        kind: Kind | str,
        args: Args | Mapping[str, Any],
        *,
        key: nacl.signing.SigningKey,
        cosigners: Iterable[nacl.signing.SigningKey] = (),
        memo: bytes | str | None = None,
        nonce: int | None = None,
    ) -> SignedTransaction:
        return self.run(
            lambda c: c.build(kind, args, key=key, cosigners=cosigners, memo=memo, nonce=nonce)
        )

    def send(
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
        return self.run(
            lambda c: c.send(
                kind,
                args,
                key=key,
                cosigners=cosigners,
                memo=memo,
                nonce=nonce,
                wait=wait,
                timeout_ms=timeout_ms,
            )
        )
