"""PeerNetwork on real loopback sockets (port 0): connect, tie-break, reconnect,
update_peers, refusal. No sleeps stand in for synchronisation: every wait is on a
condition, bounded by fail_after so a bug fails instead of hanging."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
import trio

from p2p import PeerInfo, PeerNetwork, TransportTimeouts
from p2p.errors import HandshakeError
from p2p.handshake import perform_initiator
from tests.p2p.helpers import CHAIN, key, pub
from tests.p2p.helpers import wait_until as _wait_until

TIMEOUTS = TransportTimeouts(
    handshake_timeout_ms=5_000,
    keepalive_interval_ms=1_000,
    peer_dead_after_ms=5_000,
    reconnect_backoff_min_ms=10,
    reconnect_backoff_max_ms=100,
)


async def wait_until(predicate: Callable[[], bool]) -> None:
    await _wait_until(predicate, timeout_s=10.0)


def make(n: int, name: str, port: int = 0) -> PeerNetwork:
    return PeerNetwork(
        chain_id=CHAIN.decode(),
        identity=key(n),
        self_name=name,
        listen=("127.0.0.1", port),
        peers=[],
        timeouts=TIMEOUTS,
        rng=random.Random(n),
    )


def peer(n: int, name: str, port: int) -> PeerInfo:
    return PeerInfo(name=name, public_key=pub(n), address=("127.0.0.1", port))


async def test_both_dial_exactly_one_connection_survives() -> None:
    a, b = make(1, "a"), make(2, "b")
    async with trio.open_nursery() as nursery:
        port_a = await nursery.start(a.run)
        port_b = await nursery.start(b.run)
        assert a.listen_port == port_a
        # Both learn of each other in the same scheduling step: both dial at once.
        a.update_peers([peer(2, "b", port_b)])
        b.update_peers([peer(1, "a", port_a)])
        await wait_until(lambda: a.connected_peers() == {"b"} and b.connected_peers() == {"a"})
        preferred = min(pub(1), pub(2))
        # Both ends settle on the same connection: the one the lower key dialed.
        await wait_until(
            lambda: (
                a._peers["b"].connection is not None
                and b._peers["a"].connection is not None
                and a._peers["b"].connection.dialer_key == preferred
                and b._peers["a"].connection.dialer_key == preferred
            )
        )
        for i in range(1000):
            a.send("b", b"%d" % i)
        got = [(await b.incoming.receive())[1] for _ in range(1000)]
        assert got == [b"%d" % i for i in range(1000)]
        b.broadcast(b"hi")
        assert await a.incoming.receive() == ("b", b"hi")
        nursery.cancel_scope.cancel()


async def test_restarted_peer_reconnects_without_operator_action() -> None:
    a = make(1, "a")
    async with trio.open_nursery() as nursery:
        port_a = await nursery.start(a.run)
        b_scope = trio.CancelScope()
        b_started = trio.Event()
        ports: list[int] = []

        async def run_b(port: int) -> None:
            b = make(2, "b", port)
            b.update_peers([peer(1, "a", port_a)])
            with b_scope:
                async with trio.open_nursery() as inner:
                    ports.append(await inner.start(b.run))
                    b_started.set()

        nursery.start_soon(run_b, 0)
        await b_started.wait()
        a.update_peers([peer(2, "b", ports[0])])
        await wait_until(lambda: a.connected_peers() == {"b"})
        b_scope.cancel()  # b's process "exits": its sockets close
        await wait_until(lambda: not a.connected_peers())
        assert a.stats()["b"].disconnects >= 1
        b2 = make(2, "b", ports[0])
        b2.update_peers([peer(1, "a", port_a)])
        await nursery.start(b2.run)
        await wait_until(lambda: a.connected_peers() == {"b"} and b2.connected_peers() == {"a"})
        assert a.stats()["b"].reconnects >= 1
        a.send("b", b"welcome back")
        assert await b2.incoming.receive() == ("a", b"welcome back")
        nursery.cancel_scope.cancel()


async def test_update_peers_closes_connection_to_removed_peer() -> None:
    a, b, c = make(1, "a"), make(2, "b"), make(3, "c")
    async with trio.open_nursery() as nursery:
        ports = [await nursery.start(n.run) for n in (a, b, c)]
        a.update_peers([peer(2, "b", ports[1]), peer(3, "c", ports[2])])
        b.update_peers([peer(1, "a", ports[0])])
        c.update_peers([peer(1, "a", ports[0])])
        await wait_until(lambda: a.connected_peers() == {"b", "c"})
        a.update_peers([peer(2, "b", ports[1])])
        await wait_until(lambda: a.connected_peers() == {"b"} and not c.connected_peers())
        assert set(a.stats()) == {"b"}
        await wait_until(lambda: a.network_stats().refused_unknown_key >= 1)  # c redials
        a.broadcast(b"still here")
        assert await b.incoming.receive() == ("a", b"still here")
        nursery.cancel_scope.cancel()


async def test_unknown_and_wrong_chain_refused_on_tcp() -> None:
    a = make(1, "a")
    async with trio.open_nursery() as nursery:
        port = await nursery.start(a.run)
        for chain, identity in ((CHAIN, key(9)), (b"other-chain", key(2))):
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            with pytest.raises(HandshakeError):
                await perform_initiator(
                    stream, chain_id=chain, identity=identity, expected_peer_key=pub(1)
                )
            await stream.aclose()
        await wait_until(lambda: a.network_stats().handshake_failures_inbound == 1)
        assert a.network_stats().refused_unknown_key == 1
        assert a.stats() == {}
        nursery.cancel_scope.cancel()
