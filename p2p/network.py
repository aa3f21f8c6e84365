"""PeerNetwork: the node's one entry point to the p2p layer.

Theory of operation
1. Every approved peer has a `_Peer`: its info, a bounded send queue, counters, at most one
   installed Connection, and one dialer task that (re)dials while it has no connection.
2. Both sides listen and dial. When two authenticated connections to the same peer exist,
   the one dialed by the lower public key (bytes order) wins; between two dialed by the same
   side the newer wins (that side only redials once it considers the old one dead). Both ends
   apply the same rule to the same pair, so they keep the same connection. The higher-key
   side waits reconnect_backoff_min_ms before each dial, so normally only the winning
   connection is ever made and no message is lost to a replacement.
3. Inbound: the approved-key check runs on the first handshake message, before anything
   per-peer exists; unauthenticated handshakes in flight are bounded.
4. Messages are opaque bytes and delivery is at most once, in order per connection: queued
   messages survive a reconnect, those in flight on a connection that breaks are lost
   (counted as drops_in_flight). Consensus above tolerates loss.
5. `incoming` is bounded; when the consumer is slow, each reader waits on it, stops reading
   its socket, and TCP pushes back on the peer, whose send queue then fills and drops.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable

import nacl.signing
import trio

from p2p.backoff import Backoff
from p2p.config import PeerInfo, TransportLimits, TransportTimeouts, check_chain_id
from p2p.connection import Connection
from p2p.errors import HandshakeError
from p2p.handshake import Session, perform_initiator, perform_responder
from p2p.send_queue import SendQueue
from p2p.stats import NetworkStats, PeerStats
from p2p.transport import TcpTransport, Transport

LogFunction = Callable[[str], None]


class _Peer:
    __slots__ = (
        "connection",
        "dialer_scope",
        "disconnected",
        "ever_connected",
        "info",
        "queue",
        "stats",
    )

    def __init__(self, info: PeerInfo, limits: TransportLimits) -> None:
        self.info = info
        self.queue = SendQueue(
            messages_max=limits.send_queue_messages_max, bytes_max=limits.send_queue_bytes_max
        )
        self.stats = PeerStats()
        self.connection: Connection | None = None
        self.disconnected = trio.Event()
        self.disconnected.set()
        self.dialer_scope: trio.CancelScope | None = None
        self.ever_connected = False


class PeerNetwork:
    def __init__(
        self,
        *,
        chain_id: str,
        identity: nacl.signing.SigningKey,
        self_name: str,
        listen: tuple[str, int],
        peers: Iterable[PeerInfo],
        limits: TransportLimits | None = None,
        timeouts: TransportTimeouts | None = None,
        rng: random.Random | None = None,
        log: logging.Logger | LogFunction | None = None,
        transport: Transport | None = None,
    ) -> None:
        if not isinstance(identity, nacl.signing.SigningKey):
            raise TypeError("identity must be a nacl.signing.SigningKey")
        self._chain_id = check_chain_id(chain_id)
        self._identity = identity
        self._own_key = bytes(identity.verify_key)
        self._self_name = self_name
        self._listen = listen
        self._limits = limits or TransportLimits()
        self._timeouts = timeouts or TransportTimeouts()
        # Jitter only; a seeded rng makes a test's reconnect schedule reproducible.
        self._rng = rng or random.Random()
        self._logger = log if isinstance(log, logging.Logger) else logging.getLogger("p2p")
        self._log_function = None if isinstance(log, logging.Logger) else log
        self._transport = transport or TcpTransport()
        self._peers: dict[str, _Peer] = {}
        self._names_by_key: dict[bytes, str] = {}
        self._network_stats = NetworkStats()
        self._handshakes_inflight = 0
        self._nursery: trio.Nursery | None = None
        self._has_run = False
        self._listen_port: int | None = None
        self._incoming_send, self.incoming = trio.open_memory_channel[tuple[str, bytes]](
            self._limits.incoming_messages_max
        )
        self.update_peers(peers)

    # ----- public API -------------------------------------------------------------------

    @property
    def listen_port(self) -> int:
        if self._listen_port is None:
            raise RuntimeError("listen_port is known once run() has started")
        return self._listen_port

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Bind, report the bound port, then accept and dial until cancelled. One-shot."""
        if self._has_run:
            raise RuntimeError("PeerNetwork.run() may be called once (incoming closes after it)")
        self._has_run = True
        try:
            async with trio.open_nursery() as nursery:
                self._listen_port = await nursery.start(
                    self._transport.serve, self._listen, self._handle_inbound
                )
                self._nursery = nursery
                for peer in self._peers.values():
                    self._start_dialer(peer)
                self._log(logging.INFO, f"listening on port {self._listen_port}")
                task_status.started(self._listen_port)
        finally:
            self._nursery = None
            self._incoming_send.close()

    def send(self, peer_name: str, message: bytes) -> bool:
        """Enqueue without blocking. False (and a counted drop) if the peer is unknown or its
        queue is full: the NEW message is dropped, accepted ones are kept.
        Raises MessageTooLargeError if the message can never fit in a frame."""
        self._limits.check_message(message)
        peer = self._peers.get(peer_name)
        if peer is None:
            self._network_stats.drops_unknown_peer += 1
            return False
        if peer.queue.put_nowait(message):
            return True
        peer.stats.drops_queue_full += 1
        return False

    async def send_wait(self, peer_name: str, message: bytes) -> bool:
        """Backpressure form of send(): waits for room in the queue. False if unknown."""
        self._limits.check_message(message)
        peer = self._peers.get(peer_name)
        if peer is None:
            self._network_stats.drops_unknown_peer += 1
            return False
        if await peer.queue.put_wait(message):
            return True
        self._network_stats.drops_unknown_peer += 1  # removed while we waited
        return False

    def broadcast(self, message: bytes) -> None:
        """send() to every approved peer; per-peer drops are counted in stats()."""
        self._limits.check_message(message)
        for name in list(self._peers):
            self.send(name, message)

    def update_peers(self, peers: Iterable[PeerInfo]) -> None:
        """Replace the approved set. Our own entry (by name or key) is ignored. Connections to
        removed peers and to peers whose key changed are closed; new peers are dialed."""
        wanted: dict[str, PeerInfo] = {}
        keys: set[bytes] = set()
        for info in peers:
            if not isinstance(info, PeerInfo):
                raise TypeError("peers must be PeerInfo objects")
            if info.name == self._self_name or info.public_key == self._own_key:
                continue
            if info.name in wanted or info.public_key in keys:
                raise ValueError(f"duplicate peer name or key: {info.name}")
            wanted[info.name] = info
            keys.add(info.public_key)
        for name in list(self._peers):
            if name not in wanted:
                self._remove_peer(name, "removed from the approved set")
        for name, info in wanted.items():
            peer = self._peers.get(name)
            if peer is None:
                peer = _Peer(info, self._limits)
                self._peers[name] = peer
                if self._nursery is not None:
                    self._start_dialer(peer)
                continue
            old = peer.info
            peer.info = info  # the dialer reads the address afresh on every attempt
            if old.public_key != info.public_key and peer.connection is not None:
                peer.connection.close("peer key rotated")
        self._names_by_key = {info.public_key: name for name, info in wanted.items()}

    def connected_peers(self) -> frozenset[str]:
        return frozenset(name for name, peer in self._peers.items() if peer.connection)

    def heard_peers(self, within_ms: int) -> frozenset[str]:
        """Peers heard from in the last `within_ms` (`Connection.heard_since`: frames,
        keepalives included, or part of one; or our own backpressure). An open connection
        alone says little: a silent peer's is only closed after `peer_dead_after_ms`. Every
        idle sender emits a keepalive each `keepalive_interval_ms`, so twice that is a fair
        window."""
        since = trio.current_time() - within_ms / 1000
        return frozenset(
            name
            for name, peer in self._peers.items()
            if peer.connection is not None and peer.connection.heard_since(since)
        )

    def stats(self) -> dict[str, PeerStats]:
        return {name: peer.stats.snapshot() for name, peer in self._peers.items()}

    def network_stats(self) -> NetworkStats:
        return self._network_stats.snapshot()

    def queued_messages(self, peer_name: str) -> int:
        peer = self._peers.get(peer_name)
        return len(peer.queue) if peer else 0

    # ----- internals --------------------------------------------------------------------

    def _log(self, level: int, message: str) -> None:
        if self._log_function is not None:
            self._log_function(message)
        else:
            self._logger.log(level, "p2p[%s] %s", self._self_name, message)

    def _remove_peer(self, name: str, reason: str) -> None:
        peer = self._peers.pop(name)
        if peer.dialer_scope is not None:
            peer.dialer_scope.cancel()
        if peer.connection is not None:
            peer.connection.close(reason)
        peer.queue.close()
        self._log(logging.INFO, f"peer {name} {reason}")

    def _start_dialer(self, peer: _Peer) -> None:
        assert self._nursery is not None
        scope = trio.CancelScope()
        peer.dialer_scope = scope
        self._nursery.start_soon(self._dialer, peer, scope)

    def _preferred_dialer(self, peer_key: bytes) -> bytes:
        return min(self._own_key, peer_key)

    def _we_dial_first(self, peer: _Peer) -> bool:
        return self._own_key < peer.info.public_key

    def _install(self, peer: _Peer, connection: Connection) -> bool:
        """Make `connection` the peer's connection, or refuse it per the tie-break."""
        old = peer.connection
        if old is not None:
            preferred = self._preferred_dialer(peer.info.public_key)
            old_preferred = old.dialer_key == preferred
            new_preferred = connection.dialer_key == preferred
            if old_preferred and not new_preferred:
                return False
            old.close("replaced by the connection the tie-break keeps")
        else:
            peer.disconnected = trio.Event()
            if peer.ever_connected:
                peer.stats.reconnects += 1
        peer.ever_connected = True
        peer.connection = connection
        peer.stats.connects += 1
        return True

    def _uninstall(self, peer: _Peer, connection: Connection) -> None:
        if peer.connection is connection:
            peer.connection = None
            peer.stats.disconnects += 1
            peer.disconnected.set()

    async def _serve_connection(
        self, stream: trio.abc.Stream, session: Session
    ) -> Connection | None:
        """Install and run an authenticated connection; closes the stream in every case.
        Returns the connection once it has ended, or None if it was never installed."""
        name = self._names_by_key.get(session.peer_key)
        peer = self._peers.get(name) if name is not None else None
        if peer is None or peer.info.public_key != session.peer_key:
            # The approved set changed while the handshake ran.
            self._log(logging.INFO, "closing a connection whose key is no longer approved")
            await trio.aclose_forcefully(stream)
            return None
        dialer_key = self._own_key if session.initiator else session.peer_key
        connection = Connection(
            peer_name=peer.info.name,
            stream=stream,
            session=session,
            dialer_key=dialer_key,
            limits=self._limits,
            timeouts=self._timeouts,
            queue=peer.queue,
            stats=peer.stats,
            incoming=self._incoming_send,
        )
        if not self._install(peer, connection):
            peer.stats.refusals += 1
            self._log(logging.DEBUG, f"peer {name}: duplicate connection lost the tie-break")
            await trio.aclose_forcefully(stream)
            return None
        direction = "outbound" if session.initiator else "inbound"
        self._log(logging.INFO, f"peer {name}: connected ({direction})")
        try:
            await connection.run()
        finally:
            self._uninstall(peer, connection)
            level = logging.WARNING if connection.protocol_error else logging.INFO
            self._log(level, f"peer {name}: disconnected ({connection.reason})")
        return connection

    async def _handle_inbound(self, stream: trio.abc.Stream) -> None:
        self._network_stats.inbound_accepted += 1
        if self._handshakes_inflight >= self._limits.handshakes_inflight_max:
            self._network_stats.refused_handshakes_full += 1
            await trio.aclose_forcefully(stream)
            return
        self._handshakes_inflight += 1
        session: Session | None = None
        try:
            with trio.move_on_after(self._timeouts.handshake_timeout_ms / 1000.0):
                session = await perform_responder(
                    stream,
                    chain_id=self._chain_id,
                    identity=self._identity,
                    # Looked up when HELLO arrives, against the approved set of that moment.
                    is_approved=lambda public_key: public_key in self._names_by_key,
                    read_bytes_max=self._limits.read_bytes_max,
                )
            if session is None:
                raise HandshakeError("timeout", "inbound handshake timed out")
        except HandshakeError as exc:
            if exc.reason == "unknown-key":
                self._network_stats.refused_unknown_key += 1
                count = self._network_stats.refused_unknown_key
                # A validator not approved yet redials for as long as it runs: log the 1st,
                # 2nd, 4th, 8th... refusal (the counter in stats() has them all).
                if count & (count - 1) == 0:
                    self._log(logging.WARNING, f"inbound handshake refused ({count} so far): {exc}")
            else:
                self._network_stats.handshake_failures_inbound += 1
                self._log(logging.WARNING, f"inbound handshake refused: {exc}")
            await trio.aclose_forcefully(stream)
            return
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self._network_stats.handshake_failures_inbound += 1
            self._log(logging.INFO, f"inbound handshake broken: {exc!r}")
            await trio.aclose_forcefully(stream)
            return
        finally:
            self._handshakes_inflight -= 1
        await self._serve_connection(stream, session)

    async def _dial_once(self, peer: _Peer) -> tuple[trio.abc.Stream, Session] | None:
        info = peer.info
        stream: trio.abc.Stream | None = None
        try:
            with trio.move_on_after(self._timeouts.handshake_timeout_ms / 1000.0):
                stream = await self._transport.connect(info.address)
                session = await perform_initiator(
                    stream,
                    chain_id=self._chain_id,
                    identity=self._identity,
                    expected_peer_key=info.public_key,
                    read_bytes_max=self._limits.read_bytes_max,
                )
                return stream, session
            failure = "timeout"
        except HandshakeError as exc:
            peer.stats.handshake_failures += 1
            failure = str(exc)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            failure = f"{type(exc).__name__}: {exc}"
        if stream is not None:
            await trio.aclose_forcefully(stream)
        peer.stats.dial_failures += 1
        self._log(logging.DEBUG, f"peer {info.name}: dial {info.address} failed ({failure})")
        return None

    async def _dialer(self, peer: _Peer, scope: trio.CancelScope) -> None:
        timeouts = self._timeouts
        backoff = Backoff(
            min_ms=timeouts.reconnect_backoff_min_ms,
            max_ms=timeouts.reconnect_backoff_max_ms,
            rng=self._rng,
        )
        stable_s = timeouts.connection_stable_after_ms / 1000.0
        head_start_s = timeouts.reconnect_backoff_min_ms / 1000.0
        with scope:
            first_attempt = True
            while True:
                while peer.connection is not None:
                    connection = peer.connection
                    await peer.disconnected.wait()
                    if trio.current_time() - connection.opened_at >= stable_s:
                        backoff.reset()
                if not first_attempt:
                    await trio.sleep(backoff.next_delay_s())
                if not self._we_dial_first(peer):
                    # Head start for the side whose connection the tie-break keeps: usually
                    # its dial lands first and ours is never made, so no connection (and no
                    # message written on it) is lost to a replacement.
                    await trio.sleep(head_start_s)
                first_attempt = False
                if peer.connection is not None:
                    continue
                dialed = await self._dial_once(peer)
                if dialed is None:
                    continue
                stream, session = dialed
                served = await self._serve_connection(stream, session)
                if served is not None and trio.current_time() - served.opened_at >= stable_s:
                    backoff.reset()
