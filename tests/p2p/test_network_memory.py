"""PeerNetwork end to end over an in-memory transport, on trio's MockClock (autojump):
keepalives, dead peers, backoff, timeouts and backpressure without real sleeps."""

from __future__ import annotations

import itertools
import random

import pytest
import trio

from p2p import MessageTooLargeError, PeerNetwork, TransportLimits, TransportTimeouts
from p2p.frames import LENGTH_BYTES
from p2p.handshake import perform_initiator
from tests.p2p.helpers import CHAIN, MemoryNet, info, key, pub, wait_until

TIMEOUTS = TransportTimeouts(
    handshake_timeout_ms=1_000,
    keepalive_interval_ms=1_000,
    peer_dead_after_ms=3_000,
    reconnect_backoff_min_ms=100,
    reconnect_backoff_max_ms=1_600,
    connection_stable_after_ms=2_000,
)


def make(
    net: MemoryNet,
    n: int,
    name: str,
    port: int,
    peers: list,
    *,
    limits: TransportLimits | None = None,
    logs: list[str] | None = None,
) -> PeerNetwork:
    return PeerNetwork(
        chain_id=CHAIN.decode(),
        identity=key(n),
        self_name=name,
        listen=("mem", port),
        peers=peers,
        limits=limits,
        timeouts=TIMEOUTS,
        rng=random.Random(n),
        log=logs.append if logs is not None else None,
        transport=net.transport(),
    )


def pair(net: MemoryNet, **kwargs: object) -> tuple[PeerNetwork, PeerNetwork]:
    a = make(net, 1, "a", 1, [info(2, "b", 2)], **kwargs)  # type: ignore[arg-type]
    b = make(net, 2, "b", 2, [info(1, "a", 1)], **kwargs)  # type: ignore[arg-type]
    return a, b


async def receive_n(network: PeerNetwork, count: int) -> list[tuple[str, bytes]]:
    return [await network.incoming.receive() for _ in range(count)]


def connected(*networks: PeerNetwork) -> bool:
    return all(network.connected_peers() for network in networks)


async def test_both_dial_and_one_connection_survives(autojump_clock: object) -> None:
    net = MemoryNet(connect_delay_s=0.5)
    a, b = pair(net)
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        await nursery.start(b.run)
        await wait_until(lambda: connected(a, b))
        await trio.sleep(1)  # let the losing duplicate finish closing
        assert len(net.dial_log) == 2  # both dialed: the race really happened
        total_connects = sum(n.stats()[o].connects for n, o in ((a, "b"), (b, "a")))
        total_refusals = sum(n.stats()[o].refusals for n, o in ((a, "b"), (b, "a")))
        # Each end saw both connections: installed or refused one, kept the same one.
        assert total_connects + total_refusals == 4
        preferred = min(pub(1), pub(2))
        assert a._peers["b"].connection.dialer_key == preferred  # type: ignore[union-attr]
        assert b._peers["a"].connection.dialer_key == preferred  # type: ignore[union-attr]
        for i in range(50):
            assert a.send("b", b"a%d" % i)
            assert b.send("a", b"b%d" % i)
        assert [m for _, m in await receive_n(b, 50)] == [b"a%d" % i for i in range(50)]
        assert [m for _, m in await receive_n(a, 50)] == [b"b%d" % i for i in range(50)]
        assert a.stats()["b"].messages_out == 50 and b.stats()["a"].messages_in == 50
        nursery.cancel_scope.cancel()


async def test_head_start_means_a_single_dial(autojump_clock: object) -> None:
    net = MemoryNet()
    a, b = pair(net)
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        await nursery.start(b.run)
        await wait_until(lambda: connected(a, b))
        await trio.sleep(5)
        # Only the lower key dialed; nothing was replaced, nothing refused.
        assert len(net.dial_log) == 1
        for network, other in ((a, "b"), (b, "a")):
            stats = network.stats()[other]
            assert (stats.connects, stats.refusals, stats.reconnects) == (1, 0, 0)
        nursery.cancel_scope.cancel()


async def test_tampered_frame_closes_and_the_link_recovers(autojump_clock: object) -> None:
    net = MemoryNet()
    logs: list[str] = []
    a = make(net, 1, "a", 1, [info(2, "b", 2)], logs=logs)
    b = make(net, 2, "b", 2, [info(1, "a", 1)], logs=logs)
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        await nursery.start(b.run)
        await wait_until(lambda: connected(a, b))
        assert len(net.links) == 1
        net.links[0].corrupt_next_send = True
        a.send("b", b"tampered in transit")
        await wait_until(
            lambda: a.stats()["b"].protocol_errors + b.stats()["a"].protocol_errors > 0
        )
        assert any("auth-failed" in line for line in logs)
        await wait_until(lambda: connected(a, b) and len(net.links) == 2)
        a.send("b", b"fresh")
        assert await b.incoming.receive() == ("a", b"fresh")
        nursery.cancel_scope.cancel()


async def test_idle_link_survives_on_keepalives(autojump_clock: object) -> None:
    net = MemoryNet()
    a, b = pair(net)
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        await nursery.start(b.run)
        await wait_until(lambda: connected(a, b))
        await trio.sleep(1)
        connects = a.stats()["b"].connects
        await trio.sleep(60)  # 20 x peer_dead_after of silence from the application
        stats = a.stats()["b"]
        assert stats.keepalive_timeouts == 0 and stats.connects == connects
        assert stats.frames_in >= 50  # one keepalive per second, roughly
        nursery.cancel_scope.cancel()


async def test_dead_peer_detected_then_reconnected(autojump_clock: object) -> None:
    net = MemoryNet()
    a, b = pair(net)
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        await nursery.start(b.run)
        await wait_until(lambda: connected(a, b))
        await trio.sleep(1)
        cut_at = trio.current_time()
        for link in net.links:
            link.cut = True  # both directions vanish silently: no FIN, no error
        await wait_until(lambda: a.stats()["b"].keepalive_timeouts >= 1)
        assert trio.current_time() - cut_at <= 3.0 + 0.01
        # New links are healthy: both sides redial without any operator action.
        await wait_until(lambda: connected(a, b) and a.stats()["b"].reconnects >= 1)
        a.send("b", b"after")
        assert await b.incoming.receive() == ("a", b"after")
        nursery.cancel_scope.cancel()


async def test_heard_peers_follows_frames_not_open_connections(autojump_clock: object) -> None:
    """What a replica's host reports as reachable (R8b): a peer heard within the window,
    keepalives included; a silent peer drops out long before its connection is closed."""
    net = MemoryNet()
    a, b = pair(net)
    window_ms = 2 * TIMEOUTS.keepalive_interval_ms
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        await nursery.start(b.run)
        await wait_until(lambda: connected(a, b))
        await trio.sleep(10)  # nothing but keepalives
        assert a.heard_peers(window_ms) == {"b"} and b.heard_peers(window_ms) == {"a"}
        for link in net.links:
            link.cut = True  # silence, while the connection stays open for a while
        await trio.sleep(window_ms / 1000 + 0.1)
        assert a.connected_peers() == {"b"}  # not yet declared dead (peer_dead_after_ms)
        assert a.heard_peers(window_ms) == frozenset()
        await wait_until(lambda: connected(a, b) and a.stats()["b"].reconnects >= 1)
        await trio.sleep(1)
        assert a.heard_peers(window_ms) == {"b"}
        nursery.cancel_scope.cancel()


async def test_returning_peer_is_redialed_with_backoff(autojump_clock: object) -> None:
    net = MemoryNet()
    logs: list[str] = []
    a = make(net, 1, "a", 1, [info(2, "b", 2)], logs=logs)
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        b_scope = trio.CancelScope()

        async def run_b() -> None:
            with b_scope:
                await make(net, 2, "b", 2, [info(1, "a", 1)]).run()

        nursery.start_soon(run_b)
        await wait_until(lambda: connected(a))
        await trio.sleep(3)  # stable connection: backoff is at its minimum
        b_scope.cancel()
        await wait_until(lambda: not a.connected_peers())
        down_at = trio.current_time()
        await trio.sleep(10)
        dials = [t for t, address in net.dial_log if address == ("mem", 2) and t >= down_at]
        gaps = [later - earlier for earlier, later in itertools.pairwise(dials)]
        assert len(dials) >= 6
        ceilings_ms = [200, 400, 800, 1600, 1600]
        # The higher key waits backoff-min (100 ms) more before each dial (head start).
        extra_s = 0.1 if pub(1) > pub(2) else 0.0
        for gap, ceiling in zip(gaps, ceilings_ms, strict=False):
            assert ceiling / 2000 + extra_s - 0.001 <= gap <= ceiling / 1000 + extra_s + 0.001
        assert a.stats()["b"].dial_failures >= 6
        # b comes back on the same address: a reconnects on its own.
        b2 = make(net, 2, "b", 2, [info(1, "a", 1)])
        await nursery.start(b2.run)
        await wait_until(lambda: connected(a, b2))
        assert trio.current_time() - down_at <= 10 + 1.6 + 0.1 + 0.01
        b2.send("a", b"back")
        assert await a.incoming.receive() == ("b", b"back")
        assert a.stats()["b"].reconnects >= 1
        assert any("disconnected" in line for line in logs)
        nursery.cancel_scope.cancel()


async def test_silent_inbound_connection_times_out(autojump_clock: object) -> None:
    net = MemoryNet()
    a = make(net, 1, "a", 1, [])
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        start = trio.current_time()
        stream = await net.transport().connect(("mem", 1))
        assert await stream.receive_some() == b""  # closed by a, after the timeout
        assert trio.current_time() - start == pytest.approx(1.0, abs=0.01)
        assert a.network_stats().handshake_failures_inbound == 1
        nursery.cancel_scope.cancel()


async def test_unauthenticated_handshakes_are_bounded(autojump_clock: object) -> None:
    net = MemoryNet()
    a = make(net, 1, "a", 1, [], limits=TransportLimits(handshakes_inflight_max=1))
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        silent = await net.transport().connect(("mem", 1))
        await trio.sleep(0.1)
        start = trio.current_time()
        second = await net.transport().connect(("mem", 1))
        assert await second.receive_some() == b""  # closed at once, not after the timeout
        assert trio.current_time() - start < 0.01
        assert a.network_stats().refused_handshakes_full == 1
        assert await silent.receive_some() == b""
        nursery.cancel_scope.cancel()


async def test_unknown_key_refused_without_peer_state(autojump_clock: object) -> None:
    net = MemoryNet()
    a = make(net, 1, "a", 1, [info(2, "b", 2)])
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        stream = await net.transport().connect(("mem", 1))
        with pytest.raises(Exception, match="eof"):
            await perform_initiator(
                stream, chain_id=CHAIN, identity=key(9), expected_peer_key=pub(1)
            )
        assert a.network_stats().refused_unknown_key == 1
        assert set(a.stats()) == {"b"}
        nursery.cancel_scope.cancel()


async def test_repeated_unknown_key_refusals_are_logged_sparingly(autojump_clock: object) -> None:
    """A validator not approved yet redials forever: log the 1st, 2nd, 4th, 8th... refusal."""
    net = MemoryNet()
    logs: list[str] = []
    a = make(net, 1, "a", 1, [info(2, "b", 2)], logs=logs)
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        for _ in range(9):
            stream = await net.transport().connect(("mem", 1))
            with pytest.raises(Exception, match="eof"):
                await perform_initiator(
                    stream, chain_id=CHAIN, identity=key(9), expected_peer_key=pub(1)
                )
        assert a.network_stats().refused_unknown_key == 9
        refused = [line for line in logs if "inbound handshake refused" in line]
        assert [line.split("(")[1].split(" ")[0] for line in refused] == ["1", "2", "4", "8"]
        nursery.cancel_scope.cancel()


async def test_oversize_frame_closes_that_connection_not_the_node(autojump_clock: object) -> None:
    net = MemoryNet()
    logs: list[str] = []
    limits = TransportLimits(frame_bytes_max=4096, coalesce_bytes_max=1024)
    a = make(net, 1, "a", 1, [info(2, "b", 2)], limits=limits, logs=logs)
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        stream = await net.transport().connect(("mem", 1))
        await perform_initiator(stream, chain_id=CHAIN, identity=key(2), expected_peer_key=pub(1))
        await wait_until(lambda: "b" in a.connected_peers())
        await stream.send_all((4097).to_bytes(LENGTH_BYTES, "big"))
        await wait_until(lambda: not a.connected_peers())
        assert a.stats()["b"].protocol_errors == 1
        assert any("oversize" in line for line in logs)
        # The node is fine: the real b connects and talks.
        b = make(net, 2, "b", 2, [info(1, "a", 1)], limits=limits)
        await nursery.start(b.run)
        await wait_until(lambda: connected(a, b))
        b.send("a", b"ok")
        assert await a.incoming.receive() == ("b", b"ok")
        nursery.cancel_scope.cancel()


async def test_slow_consumer_pushes_back_without_unbounded_buffering(
    autojump_clock: object,
) -> None:
    net = MemoryNet()
    limits = TransportLimits(
        frame_bytes_max=4096,
        coalesce_bytes_max=1024,
        incoming_messages_max=10,
        send_queue_messages_max=50,
        read_bytes_max=1024,
    )
    a, b = pair(net, limits=limits)
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        await nursery.start(b.run)
        await wait_until(lambda: connected(a, b))
        await trio.sleep(1)
        accepted = 0
        for i in range(2_000):
            accepted += a.send("b", i.to_bytes(4, "big") * 25)
            if i % 10 == 0:
                await trio.sleep(0.01)
        assert a.stats()["b"].drops_queue_full > 0
        assert b.incoming.statistics().current_buffer_used == 10
        await trio.sleep(30)  # b's reader is waiting on us, not dead: no keepalive timeout
        assert connected(a, b) and b.stats()["a"].keepalive_timeouts == 0
        # Nor silent for the replica's report (R8b): we are the ones not reading.
        assert b.heard_peers(2 * TIMEOUTS.keepalive_interval_ms) == {"a"}
        received: list[bytes] = []
        while len(received) < accepted:
            received.append((await b.incoming.receive())[1])
        numbers = [int.from_bytes(m[:4], "big") for m in received]
        assert numbers == sorted(numbers)  # in order; only refused messages are missing
        assert a.stats()["b"].drops_in_flight == 0
        nursery.cancel_scope.cancel()


async def test_update_peers_closes_removed_and_rotated(autojump_clock: object) -> None:
    net = MemoryNet()
    a, b = pair(net)
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        b_scope = trio.CancelScope()

        async def run(network: PeerNetwork, scope: trio.CancelScope) -> None:
            with scope:
                await network.run()

        nursery.start_soon(run, b, b_scope)
        await wait_until(lambda: connected(a, b))
        a.update_peers([])
        await wait_until(lambda: not connected(a) and not connected(b))
        assert a.stats() == {}
        await trio.sleep(5)  # b keeps redialing and is refused every time
        assert a.network_stats().refused_unknown_key >= 2
        assert not a.connected_peers()
        a.update_peers([info(2, "b", 2)])
        await wait_until(lambda: connected(a, b))
        # b rotates its key (new process, same name and address); a is told.
        b_scope.cancel()
        await wait_until(lambda: ("mem", 2) not in net.listeners)
        b_rotated = make(net, 3, "b", 2, [info(1, "a", 1)])
        a.update_peers([info(3, "b", 2)])
        await nursery.start(b_rotated.run)
        await wait_until(lambda: connected(a, b_rotated))
        b_rotated.send("a", b"rotated")
        assert await a.incoming.receive() == ("b", b"rotated")
        nursery.cancel_scope.cancel()


async def test_rotation_closes_live_connection(autojump_clock: object) -> None:
    net = MemoryNet()
    logs: list[str] = []
    a = make(net, 1, "a", 1, [info(2, "b", 2)], logs=logs)
    b = make(net, 2, "b", 2, [info(1, "a", 1)])
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        await nursery.start(b.run)
        await wait_until(lambda: connected(a, b))
        a.update_peers([info(3, "b", 2)])  # b's approved key is now another one
        await wait_until(lambda: not a.connected_peers())
        assert any("key rotated" in line for line in logs)
        await trio.sleep(5)
        assert not a.connected_peers()  # the old key is refused from now on
        nursery.cancel_scope.cancel()


async def test_send_contract(autojump_clock: object) -> None:
    net = MemoryNet()
    limits = TransportLimits(frame_bytes_max=4096, coalesce_bytes_max=1024)
    a = make(net, 1, "a", 1, [info(2, "b", 2), info(1, "a", 1)], limits=limits)
    assert set(a.stats()) == {"b"}  # our own entry is ignored
    assert not a.send("nobody", b"x")
    assert a.network_stats().drops_unknown_peer == 1
    with pytest.raises(MessageTooLargeError):
        a.send("b", bytes(limits.message_bytes_max + 1))
    assert a.send("b", bytes(limits.message_bytes_max))  # queued while disconnected
    a.broadcast(b"all")
    assert a.queued_messages("b") == 2
    with pytest.raises(ValueError, match="duplicate"):
        a.update_peers([info(2, "b", 2), info(2, "c", 3)])


async def test_run_is_one_shot_and_closes_incoming(autojump_clock: object) -> None:
    net = MemoryNet()
    a = make(net, 1, "a", 1, [])
    with pytest.raises(RuntimeError):
        _ = a.listen_port
    async with trio.open_nursery() as nursery:
        assert await nursery.start(a.run) == 1 == a.listen_port
        nursery.cancel_scope.cancel()
    with pytest.raises(trio.EndOfChannel):
        await a.incoming.receive()
    with pytest.raises(RuntimeError, match="once"):
        await a.run()
