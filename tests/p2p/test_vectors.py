"""The test vectors of docs/p2p.md, checked twice: against the implementation, and against
an independent re-derivation from the spec using only hashlib and libsodium primitives."""

from __future__ import annotations

import hashlib
import struct

import nacl.bindings
import nacl.signing
import trio
import trio.testing

from p2p.frames import KEEPALIVE_PLAINTEXT, FrameDecoder, FrameEncoder, encode_messages_plaintext
from p2p.handshake import perform_initiator, perform_responder

CHAIN_ID = b"assetledger-testnet"
SEED_I, SEED_R = bytes([1]) * 32, bytes([2]) * 32
EPH_I, EPH_R = bytes([3]) * 32, bytes([4]) * 32
HELLO = bytes.fromhex(
    "414c503201019d1a34cd527db697854f5e7937d34b80f3ebeb30aa562eb7f0ff2386058209cb8a88e3dd"
    "7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c5dfedd3b6bd47f6fa28ee15d969d"
    "5bb0ea53774d488bdaf9df1c6e0124b3ef22"
)
WELCOME = bytes.fromhex(
    "414c503201028139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394ac01b220"
    "9e86354fb853237b5de0f4fab13c7fcbf433a61c019369617fecf10b63d697200737afdb5e7d2b26a2e5"
    "627ba4d911e13248e51bdbc98943a848d48724b835f50caa9345a103ffeb2261af27af02e61ea0e61a54"
    "e1865e7867b2c403"
)
CONFIRM = bytes.fromhex(
    "414c50320103c1eb03e0e704e7642d4a315413c9f8b3508371dbaa9552b381998ca2768f29ab82f5e349"
    "e0cc3b65a6f777fd059f5044c743c41c5aca3a2a8a5122fcd1351b0a"
)
K_I2R = bytes.fromhex("7e6ea337dbf6af6b491e599e203826a82bb8e64a895951d48dd11bea9d1967d1")
K_R2I = bytes.fromhex("bbf29d9979c84af725075f7041f6af6c8025112181853472bc8fbbc85e7b68af")
FRAME0 = bytes.fromhex(
    "0000002373fda277b95d75b2ba4e0b400f17bba7526108c3cf3171affe799fc977685bc847f7d1"
)
FRAME1 = bytes.fromhex("00000011ba393f8347e6515d2e21ea0315f323744c")


class Recording(trio.abc.Stream):
    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.sent = bytearray()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.sent.extend(data)
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_implementation_reproduces_the_vectors() -> None:
    a, b = trio.testing.memory_stream_pair()
    ra, rb = Recording(a), Recording(b)
    key_i, key_r = nacl.signing.SigningKey(SEED_I), nacl.signing.SigningKey(SEED_R)
    sessions = {}

    async def initiator() -> None:
        sessions["i"] = await perform_initiator(
            ra,
            chain_id=CHAIN_ID,
            identity=key_i,
            expected_peer_key=bytes(key_r.verify_key),
            ephemeral_secret=EPH_I,
        )

    async def responder() -> None:
        sessions["r"] = await perform_responder(
            rb,
            chain_id=CHAIN_ID,
            identity=key_r,
            is_approved=lambda k: k == bytes(key_i.verify_key),
            ephemeral_secret=EPH_R,
        )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(initiator)
        nursery.start_soon(responder)
    assert bytes(ra.sent) == HELLO + CONFIRM
    assert bytes(rb.sent) == WELCOME
    assert (sessions["i"].send_key, sessions["i"].receive_key) == (K_I2R, K_R2I)
    encoder = FrameEncoder(K_I2R, frame_bytes_max=1 << 20)
    assert encoder.seal(encode_messages_plaintext([b"hello", b"world"])) == FRAME0
    assert encoder.seal(KEEPALIVE_PLAINTEXT) == FRAME1
    decoder = FrameDecoder(K_I2R, frame_bytes_max=1 << 20)
    decoder.feed(FRAME0 + FRAME1)
    assert decoder.next_frame().messages == [b"hello", b"world"]  # type: ignore[union-attr]
    assert decoder.next_frame().messages == []  # type: ignore[union-attr]


def test_spec_rederivation_matches_the_vectors() -> None:
    """Everything below follows docs/p2p.md literally, without importing p2p."""
    pk_i = nacl.signing.SigningKey(SEED_I).verify_key.encode()
    pk_r = nacl.signing.SigningKey(SEED_R).verify_key.encode()
    chain_field = struct.pack(">H", len(CHAIN_ID)) + CHAIN_ID
    tag = hashlib.blake2b(b"assetledger/p2p/chain-tag/v1" + chain_field, digest_size=32).digest()
    eph_pk_i = nacl.bindings.crypto_scalarmult_base(EPH_I)
    eph_pk_r = nacl.bindings.crypto_scalarmult_base(EPH_R)
    hello = b"ALP2\x01\x01" + tag + pk_i + eph_pk_i
    assert hello == HELLO
    welcome_unsigned = b"ALP2\x01\x02" + pk_r + eph_pk_r
    sig_r = (
        nacl.signing.SigningKey(SEED_R)
        .sign(b"assetledger/p2p/handshake/responder/v1" + chain_field + hello + welcome_unsigned)
        .signature
    )
    welcome = welcome_unsigned + sig_r
    assert welcome == WELCOME
    sig_i = (
        nacl.signing.SigningKey(SEED_I)
        .sign(b"assetledger/p2p/handshake/initiator/v1" + chain_field + hello + welcome)
        .signature
    )
    confirm = b"ALP2\x01\x03" + sig_i
    assert confirm == CONFIRM
    shared = nacl.bindings.crypto_scalarmult(EPH_I, eph_pk_r)
    assert shared == nacl.bindings.crypto_scalarmult(EPH_R, eph_pk_i)
    transcript = hashlib.blake2b(chain_field + hello + welcome + confirm, digest_size=32).digest()
    k_i2r = hashlib.blake2b(
        b"assetledger/p2p/key/i2r/v1" + transcript, digest_size=32, key=shared
    ).digest()
    k_r2i = hashlib.blake2b(
        b"assetledger/p2p/key/r2i/v1" + transcript, digest_size=32, key=shared
    ).digest()
    assert (k_i2r, k_r2i) == (K_I2R, K_R2I)
    plaintext = b"\x01" + b"\x00\x00\x00\x05hello" + b"\x00\x00\x00\x05world"
    header = struct.pack(">I", len(plaintext) + 16)
    nonce0 = bytes(4) + struct.pack(">Q", 0)
    sealed = nacl.bindings.crypto_aead_chacha20poly1305_ietf_encrypt(
        plaintext, header, nonce0, k_i2r
    )
    assert header + sealed == FRAME0
    nonce1 = bytes(4) + struct.pack(">Q", 1)
    keepalive = nacl.bindings.crypto_aead_chacha20poly1305_ietf_encrypt(
        b"\x02", struct.pack(">I", 17), nonce1, k_i2r
    )
    assert struct.pack(">I", 17) + keepalive == FRAME1
