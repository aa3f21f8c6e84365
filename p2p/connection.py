"""One authenticated connection: a reader, a sender and a watchdog, closed as a unit.

A connection is owned by the task that produced it (the dialer or the inbound handler);
`close(reason)` may be called from anywhere (tie-break, update_peers, a failing task) and
cancels all three tasks. The peer's send queue outlives the connection.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from p2p.config import TransportLimits, TransportTimeouts
from p2p.errors import FrameError
from p2p.frames import (
    KEEPALIVE_PLAINTEXT,
    FrameDecoder,
    FrameEncoder,
    encode_messages_plaintext,
)
from p2p.handshake import Session
from p2p.send_queue import SendQueue
from p2p.stats import PeerStats


class Connection:
    def __init__(
        self,
        *,
        peer_name: str,
        stream: trio.abc.Stream,
        session: Session,
        dialer_key: bytes,
        limits: TransportLimits,
        timeouts: TransportTimeouts,
        queue: SendQueue,
        stats: PeerStats,
        incoming: trio.MemorySendChannel[tuple[str, bytes]],
    ) -> None:
        self.peer_name = peer_name
        self.stream = stream
        self.session = session
        self.dialer_key = dialer_key  # who dialed: input of the tie-break
        self._limits = limits
        self._timeouts = timeouts
        self._queue = queue
        self._stats = stats
        self._incoming = incoming
        self.scope = trio.CancelScope()
        self.reason: str | None = None
        self.protocol_error = False
        self.opened_at = trio.current_time()
        self.last_receive_at = self.opened_at  # last whole frame (the watchdog's clock)
        self._last_bytes_at = self.opened_at  # last bytes of any frame, even unfinished
        self._delivering = False
        self._in_flight = 0
        self._encoder = FrameEncoder(session.send_key, frame_bytes_max=limits.frame_bytes_max)
        self._decoder = FrameDecoder(session.receive_key, frame_bytes_max=limits.frame_bytes_max)

    def heard_since(self, since: float) -> bool:
        """The peer was heard from at or after `since` (trio time): a frame, or part of one
        (a large VIEW-CHANGE takes a while on a slow link), or we are the ones not reading
        (a slow consumer pushes back; the watchdog counts that as alive too)."""
        return self._delivering or max(self.last_receive_at, self._last_bytes_at) >= since

    def close(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self.scope.cancel()

    async def run(self) -> None:
        """Serve until closed or broken; `self.reason` says why. Never raises for peer faults."""
        try:
            with self.scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._guard, self._reader)
                    nursery.start_soon(self._guard, self._sender)
                    nursery.start_soon(self._guard, self._watchdog)
        finally:
            if self._in_flight:
                self._stats.drops_in_flight += self._in_flight
                self._in_flight = 0
            if self.reason is None:
                self.reason = "shutdown"
            await trio.aclose_forcefully(self.stream)

    async def _guard(self, task: Callable[[], Awaitable[None]]) -> None:
        try:
            await task()
        except FrameError as exc:
            self.protocol_error = True
            self._stats.protocol_errors += 1
            self.close(f"protocol error {exc}")
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self.close(f"stream broken: {type(exc).__name__} {exc}".rstrip())

    async def _reader(self) -> None:
        decoder = self._decoder
        stats = self._stats
        stream = self.stream
        name = self.peer_name
        send_nowait = self._incoming.send_nowait
        read_bytes_max = self._limits.read_bytes_max
        data: bytes | bytearray = self.session.leftover
        while True:
            if data:
                stats.bytes_in += len(data)
                self._last_bytes_at = trio.current_time()
                decoder.feed(data)
                while (frame := decoder.next_frame()) is not None:
                    stats.frames_in += 1
                    self.last_receive_at = trio.current_time()
                    for message in frame.messages:
                        try:
                            send_nowait((name, message))
                        except trio.WouldBlock:
                            # Slow consumer: stop reading this socket (TCP pushes back on the
                            # peer) instead of buffering; the watchdog knows we are waiting.
                            self._delivering = True
                            try:
                                await self._incoming.send((name, message))
                            finally:
                                self._delivering = False
                                self.last_receive_at = trio.current_time()
                    stats.messages_in += len(frame.messages)
            data = await stream.receive_some(read_bytes_max)
            if not data:
                self.close("eof: peer closed the connection")
                return

    async def _sender(self) -> None:
        queue = self._queue
        stats = self._stats
        stream = self.stream
        seal = self._encoder.seal
        keepalive_s = self._timeouts.keepalive_interval_ms / 1000.0
        # -1: the frame type byte shares the frame with the coalesced records.
        batch_bytes_max = self._limits.coalesce_bytes_max - 1
        while True:
            if not len(queue):
                with trio.move_on_after(keepalive_s):
                    await queue.wait_nonempty()
                if not len(queue):
                    data = seal(KEEPALIVE_PLAINTEXT)
                    await stream.send_all(data)
                    stats.frames_out += 1
                    stats.bytes_out += len(data)
                    continue
            batch = queue.take_batch(batch_bytes_max)
            self._in_flight = len(batch)
            data = seal(encode_messages_plaintext(batch))
            await stream.send_all(data)
            self._in_flight = 0
            stats.frames_out += 1
            stats.bytes_out += len(data)
            stats.messages_out += len(batch)

    async def _watchdog(self) -> None:
        dead_after_s = self._timeouts.peer_dead_after_ms / 1000.0
        while True:
            await trio.sleep_until(self.last_receive_at + dead_after_s)
            if self._delivering:
                # Our consumer is slow, not the peer: silence is our own backpressure.
                self.last_receive_at = trio.current_time()
                continue
            if trio.current_time() >= self.last_receive_at + dead_after_s:
                self._stats.keepalive_timeouts += 1
                self.close(f"dead: nothing received for {self._timeouts.peer_dead_after_ms} ms")
                return
