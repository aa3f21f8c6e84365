"""Domain-separated Ed25519 signatures.

Every signature covers `pack([purpose, chain_id, payload])`: the purpose tag stops a
transaction signature from being replayed as a vote (or a vote as a checkpoint), and the
chain id stops anything signed for one chain from being valid on another. msgpack framing
is self-delimiting, so no two (purpose, chain, payload) triples share signed bytes.
"""

from __future__ import annotations

import functools
from enum import StrEnum

import msgpack
import nacl.bindings
import nacl.exceptions
import nacl.signing

from consensus.encoding import pack

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64


class Purpose(StrEnum):
    """Signature purpose tags. Never reuse or renumber one: old signatures depend on it."""

    TRANSACTION = "assetledger/tx/v1"
    PRE_PREPARE = "assetledger/pbft/pre-prepare/v1"
    PREPARE = "assetledger/pbft/prepare/v1"
    COMMIT = "assetledger/pbft/commit/v1"
    CHECKPOINT = "assetledger/pbft/checkpoint/v1"
    VIEW_CHANGE = "assetledger/pbft/view-change/v1"
    NEW_VIEW = "assetledger/pbft/new-view/v1"
    STATE_TRANSFER = "assetledger/pbft/state-transfer/v1"
    EVIDENCE = "assetledger/evidence/v1"


def signing_bytes(purpose: Purpose, chain_id: str, payload: bytes) -> bytes:
    """`pack([purpose, chain_id, payload])`, built from a cached prefix: it runs for every
    signature checked, and `pack`'s validation walk was most of a check's Python time."""
    if type(payload) is not bytes or type(chain_id) is not str:
        return pack([str(purpose), chain_id, payload])  # the general path, which validates
    # msgpack's own encoding of bytes is the canonical one (binary, smallest header).
    return _prefix(purpose, chain_id) + msgpack.packb(payload, use_bin_type=True)


@functools.lru_cache(maxsize=64)
def _prefix(purpose: Purpose, chain_id: str) -> bytes:
    """The canonical encoding of [purpose, chain_id, ...] up to the third item: a 3-item
    array header and the two strings. One node uses one chain id and a few purposes."""
    return b"\x93" + pack(str(purpose)) + pack(chain_id)


def sign(key: nacl.signing.SigningKey, purpose: Purpose, chain_id: str, payload: bytes) -> bytes:
    """Detached 64-byte signature over the domain-separated payload."""
    return key.sign(signing_bytes(purpose, chain_id, payload)).signature


def verify(
    public_key: bytes, signature: bytes, purpose: Purpose, chain_id: str, payload: bytes
) -> bool:
    """True iff `signature` is `public_key`'s over this purpose, chain and payload.

    Never raises for bad input: a wrong-length key or signature is simply not valid.
    """
    if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    message = signing_bytes(purpose, chain_id, payload)
    try:
        nacl.bindings.crypto_sign_open(bytes(signature) + message, bytes(public_key))
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
        return False
    return True
