"""Hypothesis: decoders of untrusted bytes raise only our error types and stay bounded."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from p2p.errors import FrameError, HandshakeError
from p2p.frames import FrameDecoder, FrameEncoder, parse_plaintext
from p2p.handshake import (
    CONFIRM_BYTES,
    HELLO_BYTES,
    MAGIC,
    WELCOME_BYTES,
    parse_confirm,
    parse_hello,
    parse_welcome,
    verify_signature,
)

KEY = bytes(range(32))
MAX = 2048
fuzz = settings(max_examples=300, deadline=None)


@fuzz
@given(st.lists(st.binary(max_size=600), max_size=20))
def test_frame_decoder_random_chunks(chunks: list[bytes]) -> None:
    decoder = FrameDecoder(KEY, frame_bytes_max=MAX)
    try:
        for chunk in chunks:
            decoder.feed(chunk)
            while decoder.next_frame() is not None:
                pass
            # Bounded: at most one partial frame plus the last chunk is buffered.
            assert decoder.buffered_bytes <= 4 + MAX + len(chunk)
    except FrameError:
        pass


@fuzz
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=8), st.data())
def test_frame_decoder_authentic_frames_with_fuzzed_plaintext(
    plaintexts: list[bytes], data: st.DataObject
) -> None:
    encoder = FrameEncoder(KEY, frame_bytes_max=MAX)
    decoder = FrameDecoder(KEY, frame_bytes_max=MAX)
    wire = b"".join(encoder.seal(p) for p in plaintexts if p is not None)
    cut = data.draw(st.integers(min_value=0, max_value=len(wire)))
    try:
        for part in (wire[:cut], wire[cut:]):
            decoder.feed(part)
            while decoder.next_frame() is not None:
                pass
    except FrameError:
        pass


@fuzz
@given(st.binary(max_size=400))
def test_parse_plaintext(data: bytes) -> None:
    try:
        frame = parse_plaintext(data)
    except FrameError:
        return
    assert sum(len(m) + 4 for m in frame.messages) + 1 == len(data) or frame.messages == []


@fuzz
@given(st.binary(max_size=200), st.sampled_from([0, 1, 2, 3]))
def test_handshake_parsers(data: bytes, prefix: int) -> None:
    if prefix:
        # Push some inputs past the magic/version checks into the type and length checks.
        data = MAGIC + bytes([1, prefix]) + data
    for parse, size in ((parse_hello, HELLO_BYTES), (parse_welcome, WELCOME_BYTES)):
        try:
            parse(data)
        except HandshakeError:
            pass
        else:
            assert len(data) == size
    try:
        parse_confirm(data)
    except HandshakeError:
        pass
    else:
        assert len(data) == CONFIRM_BYTES


@fuzz
@given(st.binary(max_size=40), st.binary(max_size=80), st.binary(max_size=100))
def test_signature_check_never_raises(public_key: bytes, signature: bytes, message: bytes) -> None:
    assert verify_signature(public_key, signature, message) in {True, False}
