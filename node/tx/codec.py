"""Decoding untrusted transaction bytes: size first, then msgpack limits, then shape and types.

Nothing reads a field of a transaction before this module has validated all of it.
"""

from __future__ import annotations

from typing import Any

from consensus.encoding import DecodeError, digest, unpack
from node.tx.errors import ArgsError, DecodeReason, TxDecodeError
from node.tx.kinds import ARGS_BY_KIND, KEY_BYTES, Args, Kind
from node.tx.limits import DEFAULT_TX_LIMITS, TxLimits
from node.tx.model import NONCE_MAX, SIGNATURE_BYTES, SignedTransaction, Transaction, memo_bytes

CHAIN_ID_CHARS_MAX = 64
# kind name -> (Kind, its args class): one str-keyed lookup (an Enum member hashes in Python).
_KINDS: dict[str, tuple[Kind, type[Args]]] = {k.value: (k, ARGS_BY_KIND[k]) for k in Kind}


def _shape(message: str) -> TxDecodeError:
    return TxDecodeError(DecodeReason.BAD_SHAPE, message)


def _signatures_bytes(count: int) -> int:
    """Length of the canonical encoding of `count` validated [key(32), signature(64)] pairs."""
    header = 1 if count <= 15 else 3  # fixarray, else array16 (signatures_max <= 64)
    return header + count * _SIGNATURE_PAIR_BYTES


# One pair: fixarray(2) + bin8 header and 32 key bytes + bin8 header and 64 signature bytes.
_SIGNATURE_PAIR_BYTES = 1 + (2 + KEY_BYTES) + (2 + SIGNATURE_BYTES)


def decode_signed_transaction(
    data: bytes, *, limits: TxLimits = DEFAULT_TX_LIMITS, tx_bytes_max: int | None = None
) -> SignedTransaction:
    """Validate untrusted bytes into a SignedTransaction or raise TxDecodeError.

    Signatures are NOT checked here (see node.tx.verify): decoding is cheap and pure, and
    verification can then run in worker threads on many transactions at once.
    """
    size_max = limits.tx_bytes_max if tx_bytes_max is None else tx_bytes_max
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise _shape(f"expected bytes, got {type(data).__name__}")
    if len(data) > size_max:
        raise TxDecodeError(
            DecodeReason.OVERSIZE, f"{len(data)} bytes exceeds tx_bytes_max={size_max}"
        )
    try:
        obj = unpack(data, limits.decode_limits())
    except DecodeError as exc:
        raise TxDecodeError(DecodeReason.MALFORMED, str(exc)) from None
    if type(obj) is not list or len(obj) != 2:
        raise _shape("a signed transaction is an array [body, signatures]")
    body_wire, sigs_wire = obj
    fields = _decode_body(body_wire, limits)
    signatures = _decode_signatures(sigs_wire, limits)
    # `data` is canonical: 0x92 (the envelope), the body's own bytes, then the signatures,
    # whose encoded length is fixed by their count. So the body (signed, and hashed for the
    # id) is a slice: no re-encoding.
    body_bytes = bytes(data[1 : len(data) - _signatures_bytes(len(signatures))])
    body = Transaction._from_decoded(*fields, body_bytes)
    return SignedTransaction._from_decoded(body, signatures, digest(body_bytes))


_BodyFields = tuple[str, bytes, int, Kind, Args, bytes | str | None]


def _decode_body(wire: Any, limits: TxLimits) -> _BodyFields:
    """Every body field checked at least as strictly as Transaction.__post_init__ does."""
    if type(wire) is not list or len(wire) != 6:
        raise _shape("body is an array [chain_id, signer, nonce, kind, args, memo]")
    chain_id, signer, nonce, kind_name, args_wire, memo = wire
    if type(chain_id) is not str or not 1 <= len(chain_id) <= CHAIN_ID_CHARS_MAX:
        raise _shape(f"chain_id must be 1..{CHAIN_ID_CHARS_MAX} characters")
    if type(signer) is not bytes or len(signer) != KEY_BYTES:
        raise _shape(f"signer must be {KEY_BYTES} bytes")
    if type(nonce) is not int or not 0 <= nonce <= NONCE_MAX:
        raise _shape(f"nonce must be an integer in 0..{NONCE_MAX}")
    if type(kind_name) is not str:
        raise _shape("kind must be a string")
    found = _KINDS.get(kind_name)
    if found is None:
        raise TxDecodeError(DecodeReason.UNKNOWN_KIND, f"unknown kind {kind_name[:64]!r}")
    kind, args_class = found
    if memo is not None and type(memo) not in (bytes, str):
        raise _shape("memo must be bytes, str or nil")
    if memo_bytes(memo) > limits.memo_bytes_max:
        raise TxDecodeError(
            DecodeReason.MEMO_TOO_LONG,
            f"memo of {memo_bytes(memo)} bytes exceeds memo_bytes_max={limits.memo_bytes_max}",
        )
    try:
        args: Args = args_class.from_wire(args_wire)
    except ArgsError as exc:
        raise TxDecodeError(DecodeReason.BAD_ARGS, f"{kind}: {exc}") from None
    except TypeError as exc:  # wrong field names cannot happen; kept as a guard
        raise TxDecodeError(DecodeReason.BAD_ARGS, f"{kind}: {exc}") from None
    return (chain_id, signer, nonce, kind, args, memo)


def _decode_signatures(wire: Any, limits: TxLimits) -> tuple[tuple[bytes, bytes], ...]:
    if type(wire) is not list or not wire:
        raise _shape("signatures must be a non-empty array")
    if len(wire) > limits.signatures_max:
        raise TxDecodeError(
            DecodeReason.TOO_MANY_SIGNATURES,
            f"{len(wire)} signatures exceeds signatures_max={limits.signatures_max}",
        )
    out: list[tuple[bytes, bytes]] = []
    for item in wire:
        if type(item) is not list or len(item) != 2:
            raise _shape("each signature is an array [public_key, signature]")
        public_key, signature = item
        if type(public_key) is not bytes or len(public_key) != KEY_BYTES:
            raise _shape(f"signature public key must be {KEY_BYTES} bytes")
        if type(signature) is not bytes or len(signature) != SIGNATURE_BYTES:
            raise _shape(f"signature must be {SIGNATURE_BYTES} bytes")
        out.append((public_key, signature))
    return tuple(out)


def encode_signed_transaction(stx: SignedTransaction) -> bytes:
    return stx.encode()
