"""Domain separation: a signature is valid for one purpose, one chain and one payload only."""

from __future__ import annotations

import nacl.signing
import pytest

from consensus.encoding import pack
from consensus.signing import Purpose, sign, signing_bytes, verify

KEY = nacl.signing.SigningKey(b"\x01" * 32)
PUB = KEY.verify_key.encode()


def test_valid_signature_verifies() -> None:
    sig = sign(KEY, Purpose.TRANSACTION, "chain-a", b"payload")
    assert len(sig) == 64
    assert verify(PUB, sig, Purpose.TRANSACTION, "chain-a", b"payload")


@pytest.mark.parametrize(
    ("purpose", "chain", "payload"),
    [
        (Purpose.COMMIT, "chain-a", b"payload"),  # a tx signature is not a vote
        (Purpose.TRANSACTION, "chain-b", b"payload"),  # nor valid on another chain
        (Purpose.TRANSACTION, "chain-a", b"payloaD"),
    ],
)
def test_signature_is_bound_to_purpose_chain_and_payload(
    purpose: Purpose, chain: str, payload: bytes
) -> None:
    sig = sign(KEY, Purpose.TRANSACTION, "chain-a", b"payload")
    assert not verify(PUB, sig, purpose, chain, payload)


def test_wrong_key_and_malformed_inputs_are_simply_invalid() -> None:
    sig = sign(KEY, Purpose.TRANSACTION, "c", b"p")
    other = nacl.signing.SigningKey(b"\x02" * 32).verify_key.encode()
    assert not verify(other, sig, Purpose.TRANSACTION, "c", b"p")
    assert not verify(PUB[:31], sig, Purpose.TRANSACTION, "c", b"p")
    assert not verify(PUB, sig[:63], Purpose.TRANSACTION, "c", b"p")
    assert not verify(b"\xff" * 32, sig, Purpose.TRANSACTION, "c", b"p")  # not a curve point


def test_signed_bytes_are_prefix_free() -> None:
    # ("ab", "c") and ("a", "bc") must not collide: msgpack framing is self-delimiting.
    assert signing_bytes(Purpose.TRANSACTION, "ab", b"c") != signing_bytes(
        Purpose.TRANSACTION, "a", b"bc"
    )


@pytest.mark.parametrize("size", [0, 1, 31, 32, 255, 256, 65_535, 65_536])
@pytest.mark.parametrize("chain", ["c", "chain-a", "ü" * 40])
def test_signed_bytes_are_the_canonical_encoding(size: int, chain: str) -> None:
    # Built from a cached prefix for speed; must equal pack() byte for byte at every
    # header-size boundary of the payload, for every purpose.
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    for purpose in Purpose:
        assert signing_bytes(purpose, chain, payload) == pack([str(purpose), chain, payload])


def test_purpose_tags_are_distinct() -> None:
    assert len({str(p) for p in Purpose}) == len(Purpose)
