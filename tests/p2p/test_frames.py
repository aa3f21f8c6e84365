"""Frame encoder/decoder (sans-I/O): round trips, partial input, every close condition."""

from __future__ import annotations

import pytest

from p2p.errors import FrameError
from p2p.frames import (
    KEEPALIVE_PLAINTEXT,
    FrameDecoder,
    FrameEncoder,
    encode_messages_plaintext,
    parse_plaintext,
)

KEY = bytes(range(32))
MAX = 4096


def pair() -> tuple[FrameEncoder, FrameDecoder]:
    return FrameEncoder(KEY, frame_bytes_max=MAX), FrameDecoder(KEY, frame_bytes_max=MAX)


def drain(decoder: FrameDecoder) -> list[list[bytes]]:
    frames = []
    while (frame := decoder.next_frame()) is not None:
        frames.append(frame.messages)
    return frames


def test_round_trip_several_messages_and_keepalive() -> None:
    encoder, decoder = pair()
    wire = encoder.seal(encode_messages_plaintext([b"a", b"", b"x" * 300]))
    wire += encoder.seal(KEEPALIVE_PLAINTEXT)
    wire += encoder.seal(encode_messages_plaintext([b"last"]))
    decoder.feed(wire)
    assert drain(decoder) == [[b"a", b"", b"x" * 300], [], [b"last"]]
    assert decoder.buffered_bytes == 0


def test_one_byte_at_a_time() -> None:
    encoder, decoder = pair()
    messages = [bytes([i]) * i for i in range(1, 40)]
    wire = b"".join(encoder.seal(encode_messages_plaintext([m])) for m in messages)
    got: list[bytes] = []
    for i in range(len(wire)):
        decoder.feed(wire[i : i + 1])
        for frame in drain(decoder):
            got.extend(frame)
    assert got == messages


def test_truncated_frame_waits_for_more() -> None:
    encoder, decoder = pair()
    wire = encoder.seal(encode_messages_plaintext([b"hello"]))
    decoder.feed(wire[:-1])
    assert decoder.next_frame() is None
    decoder.feed(wire[-1:])
    assert drain(decoder) == [[b"hello"]]


@pytest.mark.parametrize("position", range(0, 4 + 1 + 4 + 5 + 16, 3))
def test_any_flipped_bit_closes(position: int) -> None:
    encoder, decoder = pair()
    wire = bytearray(encoder.seal(encode_messages_plaintext([b"hello"])))
    wire[position] ^= 0x80
    decoder.feed(bytes(wire) + bytes(MAX))  # enough bytes for any announced length
    with pytest.raises(FrameError) as info:
        drain(decoder)
    # A flipped length byte is caught by the size check or, as AAD, by authentication.
    assert info.value.reason in {"auth-failed", "oversize", "malformed"}


def test_replayed_frame_closes() -> None:
    encoder, decoder = pair()
    first = encoder.seal(encode_messages_plaintext([b"one"]))
    decoder.feed(first + first)
    with pytest.raises(FrameError) as info:
        drain(decoder)
    assert info.value.reason == "auth-failed"


def test_dropped_frame_closes() -> None:
    encoder, decoder = pair()
    encoder.seal(encode_messages_plaintext([b"lost"]))
    decoder.feed(encoder.seal(encode_messages_plaintext([b"two"])))
    with pytest.raises(FrameError, match="auth-failed"):
        decoder.next_frame()


def test_reordered_frames_close() -> None:
    encoder, decoder = pair()
    one = encoder.seal(encode_messages_plaintext([b"one"]))
    two = encoder.seal(encode_messages_plaintext([b"two"]))
    decoder.feed(two + one)
    with pytest.raises(FrameError, match="auth-failed"):
        decoder.next_frame()


def test_wrong_key_closes() -> None:
    encoder = FrameEncoder(bytes(32), frame_bytes_max=MAX)
    decoder = FrameDecoder(KEY, frame_bytes_max=MAX)
    decoder.feed(encoder.seal(KEEPALIVE_PLAINTEXT))
    with pytest.raises(FrameError, match="auth-failed"):
        decoder.next_frame()


def test_oversize_length_closes_before_the_body_arrives() -> None:
    _, decoder = pair()
    decoder.feed((MAX + 1).to_bytes(4, "big"))
    with pytest.raises(FrameError) as info:
        decoder.next_frame()
    assert info.value.reason == "oversize"
    assert decoder.buffered_bytes == 4  # nothing of the announced body was waited for


def test_too_short_length_closes() -> None:
    _, decoder = pair()
    decoder.feed((16).to_bytes(4, "big") + bytes(16))
    with pytest.raises(FrameError, match="malformed"):
        decoder.next_frame()


def test_decoder_stays_broken_after_an_error() -> None:
    _, decoder = pair()
    decoder.feed(b"\xff\xff\xff\xff")
    with pytest.raises(FrameError):
        decoder.next_frame()
    with pytest.raises(FrameError, match="closed"):
        decoder.feed(b"x")
    with pytest.raises(FrameError, match="closed"):
        decoder.next_frame()


def test_encoder_refuses_oversize() -> None:
    encoder, _ = pair()
    with pytest.raises(FrameError, match="oversize"):
        encoder.seal(bytes(MAX))


@pytest.mark.parametrize(
    "plaintext",
    [
        b"",
        b"\x00",
        b"\x03abc",
        b"\x02x",  # keepalive with a body
        b"\x01",  # messages frame with no record
        b"\x01\x00\x00",  # truncated record header
        b"\x01\x00\x00\x00\x05abc",  # record longer than the frame
    ],
)
def test_malformed_plaintext(plaintext: bytes) -> None:
    with pytest.raises(FrameError, match="malformed"):
        parse_plaintext(plaintext)
    # The same bytes, properly encrypted, close the connection too.
    encoder, decoder = pair()
    decoder.feed(encoder.seal(plaintext))
    with pytest.raises(FrameError, match="malformed"):
        decoder.next_frame()
