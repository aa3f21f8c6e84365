"""Per-peer bounded send queue.

Policy when full: the NEW message is refused (tail drop), send() returns False and the drop
is counted; nothing already accepted is discarded. `put_wait` is the backpressure form for
producers that would rather wait. The queue belongs to the peer, not to a connection, so a
short reconnect loses only the messages that were in flight on the broken connection.
"""

from __future__ import annotations

from collections import deque

import trio


class SendQueue:
    def __init__(self, *, messages_max: int, bytes_max: int) -> None:
        self._messages: deque[bytes] = deque()
        self._bytes = 0
        self._messages_max = messages_max
        self._bytes_max = bytes_max
        self._nonempty = trio.Event()
        self._space = trio.lowlevel.ParkingLot()
        self._closed = False

    def __len__(self) -> int:
        return len(self._messages)

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    def _fits(self, size: int) -> bool:
        # An empty queue always takes one message, so a message larger than bytes_max
        # (but within the frame limit) can still be sent.
        if not self._messages:
            return True
        return len(self._messages) < self._messages_max and self._bytes + size <= self._bytes_max

    def put_nowait(self, message: bytes) -> bool:
        if self._closed or not self._fits(len(message)):
            return False
        self._messages.append(message)
        self._bytes += len(message)
        if not self._nonempty.is_set():
            self._nonempty.set()
        return True

    async def put_wait(self, message: bytes) -> bool:
        """Wait for room, then enqueue. False only if the queue was closed (peer removed)."""
        while not self._closed and not self._fits(len(message)):
            await self._space.park()
        accepted = self.put_nowait(message)
        await trio.lowlevel.checkpoint()
        return accepted

    async def wait_nonempty(self) -> None:
        await self._nonempty.wait()

    def take_batch(self, bytes_max: int) -> list[bytes]:
        """Oldest messages totalling <= bytes_max plaintext (always at least one)."""
        messages = self._messages
        batch: list[bytes] = []
        total = 0
        # 4 = record header; mirrors the frame layout so the frame stays <= bytes_max.
        while messages:
            size = len(messages[0]) + 4
            if batch and total + size > bytes_max:
                break
            batch.append(messages.popleft())
            total += size
        self._bytes -= total - 4 * len(batch)
        if not messages:
            self._nonempty = trio.Event()
        if self._space.statistics().tasks_waiting:
            self._space.unpark_all()
        return batch

    def close(self) -> int:
        """Drop everything and refuse from now on (the peer left the approved set)."""
        self._closed = True
        dropped = len(self._messages)
        self._messages.clear()
        self._bytes = 0
        self._nonempty = trio.Event()
        self._space.unpark_all()
        return dropped
