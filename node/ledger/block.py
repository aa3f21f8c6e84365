"""The block the ledger applies: what consensus ordered, before execution."""

from __future__ import annotations

from dataclasses import dataclass

from node.ledger.errors import BlockError

TIMESTAMP_MS_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Block:
    height: int  # must be the ledger's height + 1
    timestamp_ms: int  # proposer's time; >= the previous block's; used for expiry checks
    txs: tuple[bytes, ...]  # raw signed transactions, in order

    def __post_init__(self) -> None:
        if type(self.height) is not int or self.height < 1:
            raise BlockError(f"block height must be an integer >= 1, got {self.height!r}")
        if type(self.timestamp_ms) is not int or not 0 <= self.timestamp_ms <= TIMESTAMP_MS_MAX:
            raise BlockError(f"timestamp_ms must be an integer in 0..{TIMESTAMP_MS_MAX}")
        if type(self.txs) is not tuple or not all(
            isinstance(tx, (bytes, bytearray)) for tx in self.txs
        ):
            raise BlockError("txs must be a tuple of bytes")
