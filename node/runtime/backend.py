"""The client API's view of a running node (implements node.api.backend.ClientBackend).

Reads are the API's LedgerQueries over LMDB read transactions (they never block the
writer); this class adds what needs the running node: admission, waiting for commits,
mempool-aware nonces and the consensus status.
"""

from __future__ import annotations

import dataclasses
import math
from collections import OrderedDict
from typing import TYPE_CHECKING

import trio

from node.api.errors import RejectedError, TooManyWaitsError, UnavailableError
from node.api.governance_results import EvidenceList, GovernancePage, ValidatorSetInfo
from node.api.ledger_queries import LedgerQueries, check_result, receipt_info
from node.api.results import (
    AccountInfo,
    AssetInfo,
    BlockInfo,
    CheckResult,
    ReceiptInfo,
    StatusInfo,
    ValidatorInfo,
)
from node.runtime.driver import TooManyWaitersError

if TYPE_CHECKING:
    from node.runtime.node import Node


CHECK_THREADS_MAX = 2
RECENT_BLOCKS_MAX = 64


class NodeBackend(LedgerQueries):
    def __init__(self, *, node: Node) -> None:
        super().__init__(node.ledger)
        self._node = node
        self._driver = node.driver
        # `check` verifies signatures: off the event loop, and bounded so that clients'
        # pre-flight checks cannot take every worker thread from consensus.
        self._check_limiter = trio.CapacityLimiter(CHECK_THREADS_MAX)
        self._recent_blocks: OrderedDict[int, BlockInfo] = OrderedDict()

    def _serving(self) -> None:
        if self._driver.halted:
            raise UnavailableError(
                "this node stopped: its state digest disagrees with the validators' stable"
                " checkpoint; ask another node"
            )

    async def check(self, tx: bytes) -> CheckResult:
        self._serving()
        receipt = await trio.to_thread.run_sync(self.ledger.check, tx, limiter=self._check_limiter)
        return check_result(receipt)

    async def balance(self, asset: str, account: bytes) -> int:
        self._serving()
        return await super().balance(asset, account)

    async def asset(self, asset: str) -> AssetInfo:
        self._serving()
        return await super().asset(asset)

    async def receipt(self, tx_id: bytes) -> ReceiptInfo:
        self._serving()
        return await super().receipt(tx_id)

    async def validators(self, height: int | None) -> ValidatorSetInfo:
        self._serving()
        return await super().validators(height)

    async def governance(self, limit: int, before_height: int | None) -> GovernancePage:
        self._serving()
        return await super().governance(limit, before_height)

    async def evidence(self, limit: int, before_height: int | None) -> EvidenceList:
        self._serving()
        return await super().evidence(limit, before_height)

    async def block(self, height: int) -> BlockInfo:
        """Committed blocks never change: keep the last few encoded for subscription streams
        (every subscriber asks for each new block; decoding its txs once is enough)."""
        self._serving()
        info = self._recent_blocks.get(height)
        if info is None:
            info = await super().block(height)
            self._recent_blocks[height] = info
            while len(self._recent_blocks) > RECENT_BLOCKS_MAX:
                self._recent_blocks.popitem(last=False)
        return info

    async def submit(self, tx: bytes) -> bytes:
        self._serving()
        (outcome,) = await self._driver.submit([tx])
        if outcome.reason is not None:
            raise RejectedError(outcome.reason, outcome.message)
        assert outcome.tx_id is not None
        return outcome.tx_id

    async def wait_receipt(self, tx_id: bytes) -> ReceiptInfo:
        # Waits until committed; the API server cancels this at the client's deadline.
        while True:
            try:
                receipt = await self._driver.wait_for_receipt(tx_id, math.inf)
            except TooManyWaitersError as exc:
                raise TooManyWaitsError(str(exc)) from exc
            if receipt is not None:
                return receipt_info(receipt, self.ledger.block(receipt.height))

    async def next_nonce(self, account: bytes) -> int:
        return self._node.mempool.next_free_nonce(account, self.ledger.nonce(account))

    async def account(self, account: bytes) -> AccountInfo:
        self._serving()
        info = await super().account(account)
        return dataclasses.replace(info, next_nonce=await self.next_nonce(account))

    async def wait_block(self, height: int) -> BlockInfo:
        while self.ledger.height < height:
            await self._driver.new_block.wait()
        return await self.block(height)

    async def status(self) -> StatusInfo:
        replica = self._node.replica
        return StatusInfo(
            node=self._node.name,
            chain_id=self._node.genesis.chain_id,
            height=self.ledger.height,
            view=replica.view,
            primary=replica.primary,
            validators=tuple(
                ValidatorInfo(name=name, public_key=key) for name, key in replica.epoch.validators
            ),
            state_digest=self.ledger.state_digest,
            mempool_size=len(self._node.mempool),
            tx_bytes_max=self._node.genesis.consensus.tx_bytes_max,
            memo_bytes_max=self._node.genesis.consensus.memo_bytes_max,
        )
