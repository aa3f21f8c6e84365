"""Shared test helpers: deterministic keys, an in-memory Transport, polling with a bound."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import nacl.signing
import trio
import trio.testing

from p2p import PeerInfo
from p2p.errors import HandshakeError
from p2p.handshake import Session, perform_initiator, perform_responder
from p2p.transport import StreamHandler

CHAIN = b"test-chain"


def key(n: int) -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(bytes([n]) * 32)


def pub(n: int) -> bytes:
    return bytes(key(n).verify_key)


async def wait_until(predicate: Callable[[], bool], timeout_s: float = 60.0) -> None:
    """Poll a condition; the bound turns a hang into a failure. Under MockClock the polling
    interval costs no real time; on real sockets it is a readiness wait, not a timing bet."""
    with trio.fail_after(timeout_s):
        while not predicate():
            await trio.sleep(0.005)


class OneByteStream(trio.abc.Stream):
    """Delivers at most one byte per receive_some: exercises every partial-read path."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        for i in range(len(data)):
            await self.inner.send_all(bytes(data[i : i + 1]))

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(1)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def run_handshake(
    a: trio.abc.Stream,
    b: trio.abc.Stream,
    *,
    initiator_key: int = 1,
    responder_key: int = 2,
    chain_i: bytes = CHAIN,
    chain_r: bytes = CHAIN,
    expected: bytes | None = None,
    approved: set[bytes] | None = None,
) -> tuple[dict[str, Session], dict[str, HandshakeError]]:
    """Both sides concurrently; a side that fails closes its stream, as the network does,
    so the other side sees EOF instead of hanging. Returns (sessions, errors) by side."""
    results: dict[str, Session] = {}
    errors: dict[str, HandshakeError] = {}

    async def initiator() -> None:
        try:
            results["i"] = await perform_initiator(
                a,
                chain_id=chain_i,
                identity=key(initiator_key),
                expected_peer_key=expected if expected is not None else pub(responder_key),
            )
        except HandshakeError as exc:
            errors["i"] = exc
            await a.aclose()

    async def responder() -> None:
        allowed = approved if approved is not None else {pub(initiator_key)}
        try:
            results["r"] = await perform_responder(
                b, chain_id=chain_r, identity=key(responder_key), is_approved=allowed.__contains__
            )
        except HandshakeError as exc:
            errors["r"] = exc
            await b.aclose()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(initiator)
        nursery.start_soon(responder)
    return results, errors


async def handshake_pair(
    a: trio.abc.Stream, b: trio.abc.Stream, **kwargs: object
) -> tuple[Session, Session]:
    """Sessions of both sides, or the most telling HandshakeError (not the other's EOF)."""
    results, errors = await run_handshake(a, b, **kwargs)  # type: ignore[arg-type]
    if errors:
        telling = [e for e in errors.values() if e.reason != "eof"]
        raise (telling or list(errors.values()))[0]
    return results["i"], results["r"]


class Link:
    """Both directions of one in-memory connection; `cut` silently blackholes it (a peer
    that vanished without a FIN)."""

    def __init__(self) -> None:
        self.cut = False
        self.corrupt_next_send = False  # flip the last byte (a tag byte) of the next write


class LinkStream(trio.abc.Stream):
    def __init__(self, inner: trio.abc.Stream, link: Link) -> None:
        self.inner = inner
        self.link = link

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self.link.cut:
            await trio.lowlevel.checkpoint()
            return
        if self.link.corrupt_next_send and data:
            self.link.corrupt_next_send = False
            data = bytes(data[:-1]) + bytes([data[-1] ^ 0x01])
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await self.inner.receive_some(max_bytes)
        while self.link.cut and data:
            data = await self.inner.receive_some(max_bytes)
        return data

    async def aclose(self) -> None:
        await self.inner.aclose()


class MemoryNet:
    """An in-process 'internet' of listeners keyed by (host, port)."""

    def __init__(self, *, connect_delay_s: float = 0.0) -> None:
        # A connect slower than the dial head start forces both sides to dial at once.
        self.connect_delay_s = connect_delay_s
        self.listeners: dict[tuple[str, int], trio.MemorySendChannel[trio.abc.Stream]] = {}
        self.links: list[Link] = []
        self.dial_log: list[tuple[float, tuple[str, int]]] = []
        self._ports = itertools.count(40_000)

    def transport(self) -> MemoryTransport:
        return MemoryTransport(self)


class MemoryTransport:
    def __init__(self, net: MemoryNet) -> None:
        self.net = net

    async def connect(self, address: tuple[str, int]) -> trio.abc.Stream:
        self.net.dial_log.append((trio.current_time(), address))
        await trio.sleep(self.net.connect_delay_s)
        channel = self.net.listeners.get(address)
        if channel is None:
            raise ConnectionRefusedError(f"nobody listens on {address}")
        # Lockstep: send_all returns only once the peer has read the bytes, so a reader that
        # stops reading pushes back on the sender, as a full TCP window does.
        a, b = trio.testing.lockstep_stream_pair()
        link = Link()
        self.net.links.append(link)
        try:
            channel.send_nowait(LinkStream(b, link))
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ConnectionRefusedError("listener closed") from exc
        return LinkStream(a, link)

    async def serve(
        self,
        listen: tuple[str, int],
        handler: StreamHandler,
        *,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        host, port = listen
        port = port or next(self.net._ports)
        send, receive = trio.open_memory_channel[trio.abc.Stream](math.inf)
        self.net.listeners[(host, port)] = send
        try:
            async with trio.open_nursery() as nursery:
                task_status.started(port)
                async for stream in receive:
                    nursery.start_soon(handler, stream)
        finally:
            if self.net.listeners.get((host, port)) is send:
                del self.net.listeners[(host, port)]
            send.close()


def info(n: int, name: str, port: int, host: str = "mem") -> PeerInfo:
    return PeerInfo(name=name, public_key=pub(n), address=(host, port))
