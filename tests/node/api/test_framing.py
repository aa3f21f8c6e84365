"""Framing: partial reads, several frames per read, oversize prefixes, garbage, canonicality."""

from __future__ import annotations

import struct

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.encoding import pack
from node.api.framing import (
    FrameDecoder,
    FrameTooLargeError,
    MalformedFrameError,
    decode_body,
    decode_limits_for,
    encode_body,
    validate_frame_bytes_max,
)

LIMITS = decode_limits_for(1 << 20)


def frame(obj: object) -> bytes:
    return encode_body(obj, 1 << 20)


def test_frame_is_big_endian_length_then_canonical_body() -> None:
    data = frame([1, "status", {}])
    body = pack([1, "status", {}])
    assert data == struct.pack(">I", len(body)) + body
    assert data.hex() == "0000000a9301a673746174757380"


@given(
    st.lists(st.binary(max_size=40), min_size=1, max_size=6),
    st.lists(st.integers(1, 7), min_size=1, max_size=50),
)
def test_any_split_of_the_stream_yields_the_same_bodies(
    payloads: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(frame([i, "x", {"p": p}]) for i, p in enumerate(payloads))
    decoder = FrameDecoder()
    bodies: list[bytes] = []
    position = 0
    for cut in cuts * (len(stream) // len(cuts) + 1):
        if position >= len(stream):
            break
        bodies += decoder.feed(stream[position : position + cut])
        position += cut
    bodies += decoder.feed(stream[position:])
    assert [decode_body(b, LIMITS) for b in bodies] == [
        [i, "x", {"p": p}] for i, p in enumerate(payloads)
    ]
    assert decoder.buffered_bytes == 0


def test_byte_by_byte_keeps_partial_frames_buffered() -> None:
    data = frame([7, "status", {}])
    decoder = FrameDecoder()
    for byte in data[:-1]:
        assert decoder.feed(bytes([byte])) == []
    assert decoder.buffered_bytes == len(data) - 1
    assert len(decoder.feed(data[-1:])) == 1


def test_oversize_prefix_is_refused_before_the_body_arrives() -> None:
    decoder = FrameDecoder(1024)
    with pytest.raises(FrameTooLargeError, match="1025 bytes announced; the limit is 1024"):
        decoder.feed(struct.pack(">I", 1025))
    assert decoder.buffered_bytes == 0


def test_a_poisoned_decoder_stays_poisoned() -> None:
    decoder = FrameDecoder(1024)
    with pytest.raises(FrameTooLargeError):
        decoder.feed(b"\xff\xff\xff\xff")
    with pytest.raises(FrameTooLargeError):
        decoder.feed(frame([1, "status", {}]))


def test_frame_at_exactly_the_limit_is_accepted() -> None:
    body = pack(b"x" * 100)
    decoder = FrameDecoder(len(body))
    assert decoder.feed(struct.pack(">I", len(body)) + body) == [body]


def test_encoding_a_frame_above_the_limit_is_refused() -> None:
    with pytest.raises(FrameTooLargeError):
        encode_body(b"x" * 100, 64)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty frame body"),
        (b"\xc1", "malformed"),  # never-used msgpack byte
        (b"\x93\x01", "malformed"),  # truncated array
        (b"\x01\x02", "trailing bytes"),
        (msgpack.packb({"b": 1, "a": 2}), "not canonical"),  # unsorted keys
        (msgpack.packb(1.5), "not canonical"),  # floats have no canonical form
        (b"\xcd\x00\x01", "not canonical"),  # 1 encoded in 3 bytes
        (b"\xc7\x01\x05\x00", "malformed"),  # ext types are refused
    ],
)
def test_garbage_and_non_canonical_bodies_are_malformed(body: bytes, message: str) -> None:
    with pytest.raises(MalformedFrameError, match=message):
        decode_body(body, LIMITS)


def test_decode_limits_follow_the_frame_limit() -> None:
    limits = decode_limits_for(1000)
    with pytest.raises(MalformedFrameError):
        decode_body(pack(b"x" * 1001), limits)


@pytest.mark.parametrize("value", [0, 15, 2**32, True, "1"])
def test_frame_limit_is_validated(value: object) -> None:
    with pytest.raises(ValueError, match="frame_bytes_max"):
        validate_frame_bytes_max(value)  # type: ignore[arg-type]


def test_frames_before_an_oversize_prefix_are_delivered_then_the_error() -> None:
    good = frame([1, "status", {}])
    decoder = FrameDecoder(1024)
    assert len(decoder.feed(good + b"\xff\xff\xff\xff")) == 1
    assert isinstance(decoder.error, FrameTooLargeError)
    with pytest.raises(FrameTooLargeError):
        decoder.feed(b"")
