"""State digest and block hashing.

    write_set_hash(h) = sha256(pack([[db, [[key, value-or-None], ...]], ...]))
        over every record block h wrote to a state database or to receipts; databases in
        name order, keys in byte order within each, None for a deletion
    state_digest(h)   = sha256(pack(["assetledger/state/v1", h, state_digest(h-1),
                                     write_set_hash(h)]))
    state_digest(-1)  = genesis digest

Incremental: a block costs work proportional to what it wrote, never a rescan. Two nodes
agree on state_digest(h) iff they made identical writes in every block up to h (up to
SHA-256 collisions), which is what validators compare at checkpoints.

    block_hash = sha256(pack(["assetledger/block/v1", chain_id, height, timestamp_ms,
                              prev_block_hash, tx_root]))
    tx_root    = sha256(pack(["assetledger/txroot/v1", [sha256(raw_tx) for raw_tx in txs]]))

The block hash depends only on the header (known before execution), so a commit certificate
over it can be checked without re-executing; the state digest is stored next to it.
"""

from __future__ import annotations

import hashlib

import msgpack

from consensus.encoding import digest, pack
from node.ledger.view import WriteSet

STATE_TAG = "assetledger/state/v1"
BLOCK_TAG = "assetledger/block/v1"
TX_ROOT_TAG = "assetledger/txroot/v1"


def write_set_hash(write_set: WriteSet) -> bytes:
    # Only str, bytes and None, in tuples we built: msgpack's own encoding of that shape is
    # exactly consensus.encoding.pack's (tested), without its per-item walk, which would
    # cost more than the rest of a transfer.
    ordered = [(db, write_set[db]) for db in sorted(write_set)]
    return hashlib.sha256(msgpack.packb(ordered, use_bin_type=True)).digest()


def next_state_digest(height: int, prev_digest: bytes, ws_hash: bytes) -> bytes:
    return digest(pack([STATE_TAG, height, prev_digest, ws_hash]))


def tx_root(txs: tuple[bytes, ...] | list[bytes]) -> bytes:
    sha = hashlib.sha256
    hashes = [sha(raw).digest() for raw in txs]
    return sha(msgpack.packb((TX_ROOT_TAG, hashes), use_bin_type=True)).digest()


def block_hash(
    *, chain_id: str, height: int, timestamp_ms: int, prev_block_hash: bytes, root: bytes
) -> bytes:
    return digest(pack([BLOCK_TAG, chain_id, height, timestamp_ms, prev_block_hash, root]))
