"""Encrypted frames after the handshake (sans-I/O), byte layout in docs/p2p.md.

    frame      = length:u32be | ciphertext            (length = len(ciphertext), tag included)
    ciphertext = ChaCha20-Poly1305-IETF(key_dir, nonce = 0^4 | counter:u64be,
                                        aad = the 4 length bytes, plaintext)
    plaintext  = type:u8 | body
        MESSAGES (1): body = one or more records  length:u32be | message bytes
        KEEPALIVE(2): body empty

The counter is implicit (never on the wire): it starts at 0 in each direction and goes up
by one per frame, so a dropped, replayed, reordered or altered frame fails authentication.
The decoder buffers at most one partial frame plus one read, and raises only FrameError.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

import nacl.bindings
import nacl.exceptions

from p2p.config import AEAD_TAG_BYTES
from p2p.errors import FrameError

FRAME_MESSAGES = 1
FRAME_KEEPALIVE = 2
LENGTH_BYTES = 4
COUNTER_MAX = (1 << 64) - 1
_NONCE_PREFIX = bytes(4)
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_encrypt = nacl.bindings.crypto_aead_chacha20poly1305_ietf_encrypt
_decrypt = nacl.bindings.crypto_aead_chacha20poly1305_ietf_decrypt


def nonce(counter: int) -> bytes:
    return _NONCE_PREFIX + _U64.pack(counter)


def encode_messages_plaintext(messages: Iterable[bytes]) -> bytes:
    parts = [b"\x01"]
    pack = _U32.pack
    for message in messages:
        parts.append(pack(len(message)))
        parts.append(message)
    return b"".join(parts)


KEEPALIVE_PLAINTEXT = b"\x02"


@dataclass(frozen=True, slots=True, kw_only=True)
class Frame:
    kind: int
    messages: list[bytes]


def parse_plaintext(plaintext: bytes) -> Frame:
    """Split a decrypted frame into its messages. Raises FrameError("malformed") only."""
    if not plaintext:
        raise FrameError("malformed", "empty frame plaintext")
    kind = plaintext[0]
    if kind == FRAME_KEEPALIVE:
        if len(plaintext) != 1:
            raise FrameError("malformed", "keepalive frame with a body")
        return Frame(kind=kind, messages=[])
    if kind != FRAME_MESSAGES:
        raise FrameError("malformed", f"unknown frame type {kind}")
    messages: list[bytes] = []
    end = len(plaintext)
    offset = 1
    unpack_from = _U32.unpack_from
    while offset < end:
        if end - offset < LENGTH_BYTES:
            raise FrameError("malformed", "truncated record header")
        (size,) = unpack_from(plaintext, offset)
        offset += LENGTH_BYTES
        if size > end - offset:
            raise FrameError("malformed", "record longer than its frame")
        messages.append(plaintext[offset : offset + size])
        offset += size
    if not messages:
        raise FrameError("malformed", "messages frame without records")
    return Frame(kind=kind, messages=messages)


class FrameEncoder:
    """Seals plaintexts for one direction; owns that direction's counter."""

    def __init__(self, key: bytes, *, frame_bytes_max: int) -> None:
        self._key = key
        self._counter = 0
        self._frame_bytes_max = frame_bytes_max

    def seal(self, plaintext: bytes) -> bytes:
        size = len(plaintext) + AEAD_TAG_BYTES
        if size > self._frame_bytes_max:
            raise FrameError("oversize", f"outgoing frame of {size} bytes (our bug)")
        if self._counter > COUNTER_MAX:
            # Never reuse a nonce: the connection must be re-established with fresh keys.
            raise FrameError("counter-exhausted", "send counter wrapped")
        header = _U32.pack(size)
        sealed = _encrypt(plaintext, header, nonce(self._counter), self._key)
        self._counter += 1
        return header + sealed


class FrameDecoder:
    """Feed received bytes, then pull authenticated frames one by one."""

    def __init__(self, key: bytes, *, frame_bytes_max: int) -> None:
        self._key = key
        self._counter = 0
        self._frame_bytes_max = frame_bytes_max
        self._buffer = bytearray()
        self._offset = 0
        self.broken = False

    @property
    def buffered_bytes(self) -> int:
        return len(self._buffer) - self._offset

    def feed(self, data: bytes | bytearray) -> None:
        if self.broken:
            raise FrameError("closed", "decoder already failed")
        if self._offset:
            # Compact lazily: dropping consumed bytes once per feed keeps it O(n) overall.
            del self._buffer[: self._offset]
            self._offset = 0
        self._buffer += data

    def next_frame(self) -> Frame | None:
        """The next complete frame, or None if more bytes are needed."""
        if self.broken:
            raise FrameError("closed", "decoder already failed")
        try:
            return self._next_frame()
        except FrameError:
            self.broken = True
            raise

    def _next_frame(self) -> Frame | None:
        buffer = self._buffer
        start = self._offset
        available = len(buffer) - start
        if available < LENGTH_BYTES:
            return None
        (size,) = _U32.unpack_from(buffer, start)
        if size > self._frame_bytes_max:
            raise FrameError("oversize", f"frame of {size} bytes > {self._frame_bytes_max}")
        if size <= AEAD_TAG_BYTES:
            raise FrameError("malformed", f"frame of {size} bytes cannot hold a tag and type")
        if available < LENGTH_BYTES + size:
            return None
        if self._counter > COUNTER_MAX:
            raise FrameError("counter-exhausted", "receive counter wrapped")
        end = start + LENGTH_BYTES + size
        header = bytes(buffer[start : start + LENGTH_BYTES])
        sealed = bytes(buffer[start + LENGTH_BYTES : end])
        try:
            plaintext = _decrypt(sealed, header, nonce(self._counter), self._key)
        except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError, ValueError) as exc:
            raise FrameError("auth-failed", f"frame {self._counter} failed authentication") from exc
        self._counter += 1
        self._offset = end
        return parse_plaintext(plaintext)
