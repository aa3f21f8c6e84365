"""Test plumbing: raw frame peers over in-memory streams, and server/client pairs."""

from __future__ import annotations

from typing import Any

import nacl.signing
import trio
import trio.testing

from consensus.encoding import unpack
from node.api.framing import FrameDecoder, decode_limits_for, encode_body
from node.api.server import ClientApiServer
from node.tx import SignedTransaction, make_tx

FRAME_MAX = 1 << 20
ALICE = nacl.signing.SigningKey(b"\x11" * 32)
BOB = nacl.signing.SigningKey(b"\x22" * 32)
ISSUER = nacl.signing.SigningKey(b"\x33" * 32)


def pub(key: nacl.signing.SigningKey) -> bytes:
    return key.verify_key.encode()


def transfer(
    key: nacl.signing.SigningKey, nonce: int, amount: int = 100, chain_id: str = "test-chain"
) -> SignedTransaction:
    return make_tx(
        "transfer",
        {"asset_id": "BOND", "to_account": pub(BOB), "amount": amount},
        signer_key=key,
        nonce=nonce,
        chain_id=chain_id,
    )


class Peer:
    """A client that speaks raw frames, to test exactly what the server sends."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.decoder = FrameDecoder(FRAME_MAX)
        self.bodies: list[bytes] = []

    async def send(self, obj: Any) -> None:
        await self.stream.send_all(encode_body(obj, FRAME_MAX))

    async def send_bytes(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def recv(self) -> Any:
        while not self.bodies:
            data = await self.stream.receive_some(65536)
            if not data:
                raise EOFError("server closed the connection")
            self.bodies += self.decoder.feed(data)
        return unpack(self.bodies.pop(0), decode_limits_for(FRAME_MAX))

    async def request(self, request_id: int, op: str, args: dict[str, Any]) -> Any:
        await self.send([request_id, op, args])
        return await self.recv()

    async def expect_closed(self) -> None:
        assert not self.bodies, "unread frames before close"
        while True:
            data = await self.stream.receive_some(65536)
            if not data:
                return
            self.bodies += self.decoder.feed(data)
            assert not self.bodies, f"unexpected frame {self.bodies[0]!r} before close"


def connect_raw(nursery: trio.Nursery, server: ClientApiServer, address: str = "10.0.0.1") -> Peer:
    client_side, server_side = trio.testing.memory_stream_pair()
    nursery.start_soon(server.handle_stream, server_side, address)
    return Peer(client_side)


def connect_stream(
    nursery: trio.Nursery, server: ClientApiServer, address: str = "10.0.0.1"
) -> trio.abc.Stream:
    client_side, server_side = trio.testing.memory_stream_pair()
    nursery.start_soon(server.handle_stream, server_side, address)
    return client_side
