"""Handshake over in-memory streams: success, partial reads, and every refusal path."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from p2p.errors import HandshakeError
from p2p.handshake import (
    CONFIRM_BYTES,
    HELLO_BYTES,
    WELCOME_BYTES,
    perform_initiator,
    perform_responder,
    shared_secret,
)
from tests.p2p.helpers import CHAIN, OneByteStream, handshake_pair, key, pub, run_handshake


async def test_handshake_agrees_on_keys_and_identities() -> None:
    a, b = trio.testing.memory_stream_pair()
    i, r = await handshake_pair(a, b)
    assert i.peer_key == pub(2) and r.peer_key == pub(1)
    assert i.initiator and not r.initiator
    assert i.send_key == r.receive_key and i.receive_key == r.send_key
    assert i.send_key != i.receive_key  # separate key per direction


async def test_fresh_keys_every_handshake() -> None:
    first = await handshake_pair(*trio.testing.memory_stream_pair())
    second = await handshake_pair(*trio.testing.memory_stream_pair())
    assert first[0].send_key != second[0].send_key


async def test_one_byte_at_a_time() -> None:
    a, b = trio.testing.memory_stream_pair()
    i, r = await handshake_pair(OneByteStream(a), OneByteStream(b))
    assert i.send_key == r.receive_key


async def test_lockstep_streams() -> None:
    a, b = trio.testing.lockstep_stream_pair()
    i, r = await handshake_pair(a, b)
    assert i.receive_key == r.send_key


class Recording(trio.abc.Stream):
    """Records everything sent through this end."""

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


async def _responder_error(**kwargs: object) -> tuple[HandshakeError, bytes]:
    """Run a handshake expected to fail at the responder; return its error and what it sent."""
    a, b = trio.testing.memory_stream_pair()
    recording = Recording(b)
    _, errors = await run_handshake(a, recording, **kwargs)  # type: ignore[arg-type]
    assert errors["i"].reason == "eof"
    return errors["r"], bytes(recording.sent)


async def test_wrong_chain_refused() -> None:
    error, sent = await _responder_error(chain_i=b"other-chain")
    assert error.reason == "wrong-chain"
    assert sent == b""


async def test_unknown_key_refused_before_anything_is_sent() -> None:
    error, sent = await _responder_error(approved={pub(9)})
    assert error.reason == "unknown-key"
    # No ephemeral generated, nothing signed or sent: the refusal costs one 102-byte read.
    assert sent == b""


async def test_initiator_refuses_unexpected_responder_key() -> None:
    a, b = trio.testing.memory_stream_pair()
    with pytest.raises(HandshakeError) as info:
        await handshake_pair(a, b, expected=pub(7))
    assert info.value.reason == "unexpected-key"


class Tamper(trio.abc.Stream):
    """Flips one bit at absolute offset `at` of everything sent through this end."""

    def __init__(self, inner: trio.abc.Stream, at: int) -> None:
        self.inner = inner
        self.at = at
        self.sent = 0

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        data = bytearray(data)
        if self.sent <= self.at < self.sent + len(data):
            data[self.at - self.sent] ^= 0x01
        self.sent += len(data)
        await self.inner.send_all(bytes(data))

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.parametrize("offset", [40, 75, HELLO_BYTES + 30])
async def test_tampered_initiator_bytes_fail(offset: int) -> None:
    # 40: identity (unknown key or bad signature); 75: ephemeral (signature);
    # 102+30: confirm signature.
    a, b = trio.testing.memory_stream_pair()
    with pytest.raises(HandshakeError) as info:
        await handshake_pair(Tamper(a, offset), b, approved=None)
    assert info.value.reason in {"unknown-key", "bad-signature", "eof"}


@pytest.mark.parametrize("offset", [10, 45, 100, WELCOME_BYTES - 1])
async def test_tampered_responder_bytes_fail(offset: int) -> None:
    a, b = trio.testing.memory_stream_pair()
    with pytest.raises(HandshakeError) as info:
        await handshake_pair(a, Tamper(b, offset))
    assert info.value.reason in {"unexpected-key", "bad-signature", "eof"}


async def _record_initiator_bytes() -> bytes:
    a, b = trio.testing.memory_stream_pair()
    recording = Recording(a)
    await handshake_pair(recording, b)
    assert len(recording.sent) == HELLO_BYTES + CONFIRM_BYTES
    return bytes(recording.sent)


async def test_replayed_initiator_handshake_fails() -> None:
    recorded = await _record_initiator_bytes()
    a, b = trio.testing.memory_stream_pair()
    await a.send_all(recorded)  # attacker replays HELLO+CONFIRM to a fresh responder
    with pytest.raises(HandshakeError) as info:
        await perform_responder(
            b, chain_id=CHAIN, identity=key(2), is_approved={pub(1)}.__contains__
        )
    assert info.value.reason == "bad-signature"


async def test_replayed_responder_handshake_fails() -> None:
    a, b = trio.testing.memory_stream_pair()
    recording = Recording(b)
    await handshake_pair(a, recording)
    welcome = bytes(recording.sent)
    assert len(welcome) == WELCOME_BYTES
    a2, b2 = trio.testing.memory_stream_pair()
    await b2.send_all(welcome)  # replay the old WELCOME to a fresh initiator
    with pytest.raises(HandshakeError) as info:
        await perform_initiator(a2, chain_id=CHAIN, identity=key(1), expected_peer_key=pub(2))
    assert info.value.reason == "bad-signature"


async def test_truncated_hello_is_eof() -> None:
    a, b = trio.testing.memory_stream_pair()
    await a.send_all(b"ALP2\x01\x01" + bytes(20))
    await a.aclose()
    with pytest.raises(HandshakeError) as info:
        await perform_responder(b, chain_id=CHAIN, identity=key(2), is_approved=bool)
    assert info.value.reason == "eof"


@pytest.mark.parametrize(
    ("prefix", "reason"),
    [(b"HTTP", "bad-magic"), (b"ALP2\x02", "bad-version"), (b"ALP2\x01\x03", "unexpected-type")],
)
async def test_garbage_hello(prefix: bytes, reason: str) -> None:
    a, b = trio.testing.memory_stream_pair()
    await a.send_all(prefix + bytes(HELLO_BYTES - len(prefix)))
    with pytest.raises(HandshakeError) as info:
        await perform_responder(b, chain_id=CHAIN, identity=key(2), is_approved=bool)
    assert info.value.reason == reason


async def test_self_connection_refused() -> None:
    a, b = trio.testing.memory_stream_pair()
    with pytest.raises(HandshakeError) as info:
        await handshake_pair(a, b, initiator_key=2, responder_key=2, approved={pub(2)})
    assert info.value.reason == "self-connection"


def test_low_order_ephemeral_rejected() -> None:
    with pytest.raises(HandshakeError) as info:
        shared_secret(bytes(range(32)), bytes(32))
    assert info.value.reason == "bad-ephemeral"
