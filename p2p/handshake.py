"""Mutually authenticated key exchange (signed ephemeral X25519), byte layout in docs/p2p.md.

    initiator -> responder  HELLO    magic|ver|type|chain_tag|id_pk_i|eph_pk_i        102 B
    responder -> initiator  WELCOME  magic|ver|type|id_pk_r|eph_pk_r|sig_r            134 B
    initiator -> responder  CONFIRM  magic|ver|type|sig_i                              70 B

Why it is safe: each side signs (with its long-term Ed25519 key) a transcript holding the
chain id, both identities and both fresh ephemeral keys. A recorded handshake replayed to
either side fails, because that side's own ephemeral is new; a handshake from another chain
fails the chain tag and the signature. The responder checks the initiator's key against the
approved set from HELLO alone, before it generates an ephemeral or allocates anything.
Session keys come from keyed BLAKE2b over the X25519 secret and the transcript hash, one key
per direction.

The parse_* functions are pure and raise only HandshakeError (fuzzed); `perform_*` drive
them over any trio Stream.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass

import nacl.bindings
import nacl.exceptions
import nacl.signing
import trio

from p2p.errors import HandshakeError
from p2p.reader import StreamReader

MAGIC = b"ALP2"
VERSION = 1
TYPE_HELLO = 1
TYPE_WELCOME = 2
TYPE_CONFIRM = 3
KEY_BYTES = 32
SIGNATURE_BYTES = 64
HEADER_BYTES = 6
HELLO_BYTES = HEADER_BYTES + 3 * KEY_BYTES  # 102
WELCOME_UNSIGNED_BYTES = HEADER_BYTES + 2 * KEY_BYTES  # 70
WELCOME_BYTES = WELCOME_UNSIGNED_BYTES + SIGNATURE_BYTES  # 134
CONFIRM_BYTES = HEADER_BYTES + SIGNATURE_BYTES  # 70

CHAIN_TAG_DOMAIN = b"assetledger/p2p/chain-tag/v1"
RESPONDER_SIG_DOMAIN = b"assetledger/p2p/handshake/responder/v1"
INITIATOR_SIG_DOMAIN = b"assetledger/p2p/handshake/initiator/v1"
KEY_I2R_DOMAIN = b"assetledger/p2p/key/i2r/v1"
KEY_R2I_DOMAIN = b"assetledger/p2p/key/r2i/v1"


def _chain_field(chain_id: bytes) -> bytes:
    return struct.pack(">H", len(chain_id)) + chain_id


def chain_tag(chain_id: bytes) -> bytes:
    return hashlib.blake2b(CHAIN_TAG_DOMAIN + _chain_field(chain_id), digest_size=32).digest()


def _header(kind: int) -> bytes:
    return MAGIC + bytes((VERSION, kind))


def _check_header(data: bytes, kind: int, size: int) -> None:
    if len(data) != size:
        raise HandshakeError("malformed", f"message type {kind} must be {size} bytes")
    if data[:4] != MAGIC:
        raise HandshakeError("bad-magic", "not an assetledger p2p peer")
    if data[4] != VERSION:
        raise HandshakeError("bad-version", f"unsupported protocol version {data[4]}")
    if data[5] != kind:
        raise HandshakeError("unexpected-type", f"expected message type {kind}, got {data[5]}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello:
    chain_tag: bytes
    identity: bytes
    ephemeral: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Welcome:
    identity: bytes
    ephemeral: bytes
    signature: bytes


def encode_hello(hello: Hello) -> bytes:
    return _header(TYPE_HELLO) + hello.chain_tag + hello.identity + hello.ephemeral


def parse_hello(data: bytes) -> Hello:
    _check_header(data, TYPE_HELLO, HELLO_BYTES)
    return Hello(chain_tag=data[6:38], identity=data[38:70], ephemeral=data[70:102])


def encode_welcome(welcome: Welcome) -> bytes:
    return _header(TYPE_WELCOME) + welcome.identity + welcome.ephemeral + welcome.signature


def parse_welcome(data: bytes) -> Welcome:
    _check_header(data, TYPE_WELCOME, WELCOME_BYTES)
    return Welcome(identity=data[6:38], ephemeral=data[38:70], signature=data[70:134])


def encode_confirm(signature: bytes) -> bytes:
    return _header(TYPE_CONFIRM) + signature


def parse_confirm(data: bytes) -> bytes:
    _check_header(data, TYPE_CONFIRM, CONFIRM_BYTES)
    return data[6:70]


def responder_signed_bytes(chain_id: bytes, hello: bytes, welcome_unsigned: bytes) -> bytes:
    return RESPONDER_SIG_DOMAIN + _chain_field(chain_id) + hello + welcome_unsigned


def initiator_signed_bytes(chain_id: bytes, hello: bytes, welcome: bytes) -> bytes:
    return INITIATOR_SIG_DOMAIN + _chain_field(chain_id) + hello + welcome


def verify_signature(public_key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        nacl.bindings.crypto_sign_open(signature + message, public_key)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
        return False
    return True


def shared_secret(ephemeral_secret: bytes, peer_ephemeral: bytes) -> bytes:
    try:
        secret = nacl.bindings.crypto_scalarmult(ephemeral_secret, peer_ephemeral)
    except (nacl.exceptions.RuntimeError, nacl.exceptions.ValueError, ValueError) as exc:
        # libsodium refuses low-order points (all-zero result): a malicious ephemeral.
        raise HandshakeError("bad-ephemeral", "X25519 with peer ephemeral failed") from exc
    if secret == bytes(KEY_BYTES):
        raise HandshakeError("bad-ephemeral", "X25519 result is all zero")
    return secret


def session_keys(
    secret: bytes, chain_id: bytes, hello: bytes, welcome: bytes, confirm: bytes
) -> tuple[bytes, bytes]:
    """(initiator->responder key, responder->initiator key)."""
    transcript = hashlib.blake2b(
        _chain_field(chain_id) + hello + welcome + confirm, digest_size=32
    ).digest()
    i2r = hashlib.blake2b(KEY_I2R_DOMAIN + transcript, digest_size=32, key=secret).digest()
    r2i = hashlib.blake2b(KEY_R2I_DOMAIN + transcript, digest_size=32, key=secret).digest()
    return i2r, r2i


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """Result of a successful handshake: who the peer is and the per-direction keys."""

    peer_key: bytes
    initiator: bool  # True if we dialed
    send_key: bytes
    receive_key: bytes
    # Bytes that arrived after the handshake (the first frames); feed them to the decoder.
    leftover: bytes


def _ephemeral_keypair(secret: bytes | None) -> tuple[bytes, bytes]:
    """A fresh X25519 key pair; a given secret only serves test vectors (docs/p2p.md)."""
    if secret is None:
        return nacl.bindings.crypto_kx_keypair()
    return nacl.bindings.crypto_scalarmult_base(secret), secret


async def perform_initiator(
    stream: trio.abc.Stream,
    *,
    chain_id: bytes,
    identity: nacl.signing.SigningKey,
    expected_peer_key: bytes,
    read_bytes_max: int = 1 << 16,
    ephemeral_secret: bytes | None = None,
) -> Session:
    """Dial side. Raises HandshakeError; the caller closes the stream and bounds the time."""
    reader = StreamReader(stream, read_bytes_max=read_bytes_max)
    eph_public, eph_secret = _ephemeral_keypair(ephemeral_secret)
    hello = encode_hello(
        Hello(
            chain_tag=chain_tag(chain_id),
            identity=bytes(identity.verify_key),
            ephemeral=eph_public,
        )
    )
    await stream.send_all(hello)
    welcome_bytes = await reader.read_exactly(WELCOME_BYTES)
    welcome = parse_welcome(welcome_bytes)
    if welcome.identity != expected_peer_key:
        raise HandshakeError("unexpected-key", "responder is not the peer we dialed")
    signed = responder_signed_bytes(chain_id, hello, welcome_bytes[:WELCOME_UNSIGNED_BYTES])
    if not verify_signature(welcome.identity, welcome.signature, signed):
        raise HandshakeError("bad-signature", "responder transcript signature invalid")
    secret = shared_secret(eph_secret, welcome.ephemeral)
    confirm = encode_confirm(
        identity.sign(initiator_signed_bytes(chain_id, hello, welcome_bytes)).signature
    )
    await stream.send_all(confirm)
    i2r, r2i = session_keys(secret, chain_id, hello, welcome_bytes, confirm)
    return Session(
        peer_key=welcome.identity,
        initiator=True,
        send_key=i2r,
        receive_key=r2i,
        leftover=reader.take_buffered(),
    )


async def perform_responder(
    stream: trio.abc.Stream,
    *,
    chain_id: bytes,
    identity: nacl.signing.SigningKey,
    is_approved: Callable[[bytes], bool],
    read_bytes_max: int = 1 << 16,
    ephemeral_secret: bytes | None = None,
) -> Session:
    """Accept side. `is_approved(key)` is asked right after HELLO, before any allocation."""
    reader = StreamReader(stream, read_bytes_max=read_bytes_max)
    hello_bytes = await reader.read_exactly(HELLO_BYTES)
    hello = parse_hello(hello_bytes)
    if hello.chain_tag != chain_tag(chain_id):
        raise HandshakeError("wrong-chain", "peer is on another chain")
    if not is_approved(hello.identity):
        raise HandshakeError("unknown-key", f"key {hello.identity.hex()[:16]}.. not approved")
    if hello.identity == bytes(identity.verify_key):
        raise HandshakeError("self-connection", "peer presented our own identity")
    eph_public, eph_secret = _ephemeral_keypair(ephemeral_secret)
    welcome_unsigned = _header(TYPE_WELCOME) + bytes(identity.verify_key) + eph_public
    signature = identity.sign(
        responder_signed_bytes(chain_id, hello_bytes, welcome_unsigned)
    ).signature
    welcome_bytes = welcome_unsigned + signature
    await stream.send_all(welcome_bytes)
    confirm_bytes = await reader.read_exactly(CONFIRM_BYTES)
    confirm_sig = parse_confirm(confirm_bytes)
    if not verify_signature(
        hello.identity, confirm_sig, initiator_signed_bytes(chain_id, hello_bytes, welcome_bytes)
    ):
        raise HandshakeError("bad-signature", "initiator transcript signature invalid")
    secret = shared_secret(eph_secret, hello.ephemeral)
    i2r, r2i = session_keys(secret, chain_id, hello_bytes, welcome_bytes, confirm_bytes)
    return Session(
        peer_key=hello.identity,
        initiator=False,
        send_key=r2i,
        receive_key=i2r,
        leftover=reader.take_buffered(),
    )
