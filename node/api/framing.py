"""Length-prefixed frames: 4-byte big-endian unsigned body length, then a canonical msgpack body.

`FrameDecoder` is sans-I/O (bytes in, bodies out) so partial reads, oversize prefixes and
garbage are tested without sockets; the server and the client each wrap it around a trio
stream. The length prefix is checked against the limit *before* any body byte is buffered, so a
peer announcing 4 GiB costs us 4 bytes, not 4 GiB.
"""

from __future__ import annotations

import struct
from typing import Any

from consensus.encoding import DecodeError, DecodeLimits, pack, unpack

PREFIX_BYTES = 4
FRAME_BYTES_MAX_DEFAULT = 1 << 20  # 1 MiB
FRAME_BYTES_MAX_LIMIT = (1 << 32) - 1  # what a 4-byte prefix can express
_PREFIX = struct.Struct(">I")


class FrameError(Exception):
    """The byte stream cannot be read as frames any more; the connection must close."""


class FrameTooLargeError(FrameError):
    """A length prefix (or a frame we were about to send) exceeds `frame_bytes_max`."""


class MalformedFrameError(FrameError):
    """A frame body is empty, not msgpack, not canonical, or exceeds a decode limit."""


def decode_limits_for(frame_bytes_max: int) -> DecodeLimits:
    """msgpack limits implied by the frame limit: no element can exceed the frame itself."""
    return DecodeLimits(
        buffer_bytes_max=frame_bytes_max,
        bin_bytes_max=frame_bytes_max,
        str_bytes_max=min(frame_bytes_max, 64 << 10),
        array_items_max=min(frame_bytes_max, 100_000),
        map_items_max=1_000,
    )


def validate_frame_bytes_max(frame_bytes_max: int) -> int:
    if not isinstance(frame_bytes_max, int) or not 16 <= frame_bytes_max <= FRAME_BYTES_MAX_LIMIT:
        raise ValueError(
            f"frame_bytes_max must be an integer in [16, {FRAME_BYTES_MAX_LIMIT}], got {frame_bytes_max!r}"
        )
    return frame_bytes_max


def encode_body(obj: Any, frame_bytes_max: int) -> bytes:
    """One frame (prefix + canonical body). Raises FrameTooLargeError if the body exceeds the limit."""
    body = pack(obj)
    if len(body) > frame_bytes_max:
        raise FrameTooLargeError(
            f"frame of {len(body)} bytes exceeds the limit of {frame_bytes_max}"
        )
    return _PREFIX.pack(len(body)) + body


def decode_body(body: bytes, limits: DecodeLimits) -> Any:
    if not body:
        raise MalformedFrameError("empty frame body")
    try:
        return unpack(body, limits)
    except DecodeError as exc:
        raise MalformedFrameError(str(exc)) from exc


class FrameDecoder:
    """Accumulates received bytes and yields complete frame bodies (still encoded).

    After a FrameError the decoder is poisoned: the stream has lost its framing and every later
    call raises again, so a caller cannot accidentally resynchronise on attacker-chosen bytes.
    """

    __slots__ = ("_buffer", "_error", "frame_bytes_max")

    def __init__(self, frame_bytes_max: int = FRAME_BYTES_MAX_DEFAULT) -> None:
        self.frame_bytes_max = validate_frame_bytes_max(frame_bytes_max)
        self._buffer = bytearray()
        self._error: FrameError | None = None

    @property
    def error(self) -> FrameError | None:
        """Set once the stream has lost its framing; every later `feed` raises it."""
        return self._error

    @property
    def buffered_bytes(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes | bytearray) -> list[bytes]:
        """Add received bytes; return every body completed by them, in order."""
        if self._error is not None:
            raise self._error
        self._buffer += data
        bodies: list[bytes] = []
        while len(self._buffer) >= PREFIX_BYTES:
            (length,) = _PREFIX.unpack_from(self._buffer)
            if length > self.frame_bytes_max:
                self._error = FrameTooLargeError(
                    f"frame of {length} bytes announced; the limit is {self.frame_bytes_max}"
                )
                self._buffer.clear()
                if not bodies:
                    raise self._error
                # Complete frames before the bad one are still delivered; `error` tells the
                # caller to stop after handling them.
                break
            end = PREFIX_BYTES + length
            if len(self._buffer) < end:
                break
            bodies.append(bytes(self._buffer[PREFIX_BYTES:end]))
            del self._buffer[:end]
        return bodies
