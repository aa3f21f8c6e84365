"""A small buffered reader over a trio Stream, so the handshake can read exact sizes and
hand any bytes that arrived early (the first frames) on to the frame decoder."""

from __future__ import annotations

import trio

from p2p.errors import HandshakeError


class StreamReader:
    def __init__(self, stream: trio.abc.ReceiveStream, *, read_bytes_max: int) -> None:
        self._stream = stream
        self._buffer = bytearray()
        self._read_bytes_max = read_bytes_max

    async def read_exactly(self, size: int) -> bytes:
        """Exactly `size` bytes; HandshakeError("eof") if the peer closes first."""
        while len(self._buffer) < size:
            # Never ask for more than is missing: the handshake must not over-read frames
            # into a buffer it does not bound (the leftover is still handed on, see take()).
            chunk = await self._stream.receive_some(
                min(size - len(self._buffer), self._read_bytes_max)
            )
            if not chunk:
                raise HandshakeError("eof", f"peer closed after {len(self._buffer)} bytes")
            self._buffer += chunk
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def take_buffered(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data
