"""The node's messages between validators, inside p2p's authenticated frames.

Envelope (canonical msgpack): [kind, body]. Kinds:
  0 PBFT    body = a consensus message (bytes), handed to the replica untouched
  1 TXS     body = [raw signed tx, ...]: transactions a validator admitted, gossiped to all
  2 FETCH   body = [from_seq, to_seq]: state transfer request
  3 BLOCKS  body = [[seq, finality record], ...]: committed blocks, each with its certificate
Anything else is dropped with a counted reason; the peer is authenticated, not trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from consensus.encoding import DecodeError, DecodeLimits, pack, unpack


class PeerKind(IntEnum):
    PBFT = 0
    TXS = 1
    FETCH = 2
    BLOCKS = 3


class PeerWireError(ValueError):
    """A peer sent bytes that are not a valid envelope (counted, then dropped)."""


@dataclass(frozen=True, slots=True)
class Envelope:
    kind: PeerKind
    body: object


def encode_envelope(kind: PeerKind, body: object) -> bytes:
    return pack([int(kind), body])


def decode_envelope(data: bytes, *, bytes_max: int, items_max: int) -> Envelope:
    limits = DecodeLimits(
        buffer_bytes_max=bytes_max, bin_bytes_max=bytes_max, array_items_max=items_max
    )
    try:
        obj = unpack(data, limits)
    except DecodeError as exc:
        raise PeerWireError(str(exc)) from exc
    match obj:
        case [int(kind), body] if kind in PeerKind._value2member_map_:
            kind = PeerKind(kind)
        case _:
            raise PeerWireError("not an envelope [kind, body]")
    if kind is PeerKind.PBFT and not isinstance(body, bytes):
        raise PeerWireError("PBFT body must be bytes")
    if kind is PeerKind.TXS and not (
        isinstance(body, list) and all(isinstance(tx, bytes) for tx in body)
    ):
        raise PeerWireError("TXS body must be a list of byte strings")
    if kind is PeerKind.FETCH and not (
        isinstance(body, list)
        and len(body) == 2
        and all(type(x) is int and x >= 0 for x in body)
        and body[0] <= body[1]
    ):
        raise PeerWireError("FETCH body must be [from_seq, to_seq]")
    if kind is PeerKind.BLOCKS and not (
        isinstance(body, list)
        and all(
            isinstance(b, list) and len(b) == 2 and type(b[0]) is int and isinstance(b[1], bytes)
            for b in body
        )
    ):
        raise PeerWireError("BLOCKS body must be [[seq, finality record], ...]")
    return Envelope(kind, body)
