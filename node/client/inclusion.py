"""Checking that a transaction is inside a final block, without trusting the node.

`verify_finality` proves a payload final at a height. This module closes the gap to a
transaction (it is at the receipt's index of the certified payload) and, when the caller
also holds the ledger's block record, to the block (its bytes hash, through its header, to
its block hash, and its transactions are exactly the certified ones). Layout of
`BlockInfo.block` (canonical msgpack):

    [height, timestamp_ms, prev_block_hash, tx_root, block_hash, state_digest, txs, outcomes]
    block_hash = sha256(pack(["assetledger/block/v1", chain_id, height, timestamp_ms,
                              prev_block_hash, tx_root]))
    tx_root    = sha256(pack(["assetledger/txroot/v1", [sha256(raw) for raw in txs]]))
"""

from __future__ import annotations

from collections.abc import Iterable

from consensus.encoding import DecodeError, DecodeLimits, unpack
from node.api.results import BlockInfo, ReceiptInfo, ValidatorInfo
from node.client.errors import FinalityError
from node.client.finality import certified_transactions, verify_finality
from node.finality import FinalityRecord
from node.ledger.digest import block_hash, tx_root
from node.tx import TxDecodeError, decode_signed_transaction
from node.tx.limits import TxLimits

BLOCK_LIMITS = DecodeLimits(
    buffer_bytes_max=64 << 20,
    bin_bytes_max=1 << 20,
    str_bytes_max=256,
    array_items_max=100_000,
    map_items_max=0,
)
# Decoding a tx only to learn its id: accept anything the node could have put in a block.
_ANY_TX = TxLimits(tx_bytes_max=1 << 20, memo_bytes_max=1 << 19, signatures_max=64)


def _tx_id(raw: bytes) -> bytes | None:
    try:
        return decode_signed_transaction(raw, limits=_ANY_TX).tx_id
    except TxDecodeError:
        return None  # an undecodable transaction has no id (and no receipt)


def _block_txs(block: BlockInfo, chain_id: str) -> list[bytes]:
    try:
        fields = unpack(block.block, BLOCK_LIMITS)
    except DecodeError as exc:
        raise FinalityError(f"block {block.height}: not a canonical block encoding: {exc}") from exc
    if not isinstance(fields, list) or len(fields) != 8:
        raise FinalityError(f"block {block.height}: expected an array of 8 fields")
    height, timestamp_ms, prev_hash, root, claimed_hash, _state, txs, _outcomes = fields
    if (
        not isinstance(height, int)
        or not isinstance(timestamp_ms, int)
        or not isinstance(prev_hash, bytes)
        or not isinstance(root, bytes)
        or not isinstance(txs, list)
        or not all(isinstance(raw, bytes) for raw in txs)
    ):
        raise FinalityError(f"block {block.height}: header fields have the wrong types")
    if height != block.height or claimed_hash != block.block_hash:
        raise FinalityError(f"block {block.height}: encoding is for another block")
    if tx_root(txs) != root:
        raise FinalityError(f"block {block.height}: transactions do not match the header's tx_root")
    computed = block_hash(
        chain_id=chain_id,
        height=height,
        timestamp_ms=timestamp_ms,
        prev_block_hash=prev_hash,
        root=root,
    )
    if computed != block.block_hash:
        raise FinalityError(f"block {block.height}: header does not hash to the block hash")
    return txs


def block_tx_ids(block: BlockInfo, chain_id: str) -> tuple[bytes | None, ...]:
    """Check that `block.block` is the block whose hash is `block.block_hash` on `chain_id`;
    return the id of each transaction in it, in order (None for undecodable bytes)."""
    return tuple(_tx_id(raw) for raw in _block_txs(block, chain_id))


def verify_inclusion(
    receipt: ReceiptInfo,
    validators: Iterable[tuple[str, bytes]] | Iterable[ValidatorInfo],
    chain_id: str,
    *,
    block: BlockInfo | None = None,
    epoch: int = 0,
) -> FinalityRecord:
    """The receipt's transaction is final, at its index of the certified block; with `block`,
    that block record is also the certified one."""
    record = verify_finality(receipt, validators, chain_id, epoch=epoch)
    txs = certified_transactions(record)
    if receipt.index >= len(txs) or _tx_id(txs[receipt.index]) != receipt.tx_id:
        raise FinalityError(
            f"transaction {receipt.tx_id.hex()} is not at index {receipt.index} of block {receipt.height}"
        )
    if block is not None:
        if block.height != receipt.height:
            raise FinalityError(
                f"receipt is for height {receipt.height}, the block is {block.height}"
            )
        if tuple(_block_txs(block, chain_id)) != txs:
            raise FinalityError(
                f"block {block.height}: transactions differ from the certified payload"
            )
    return record
