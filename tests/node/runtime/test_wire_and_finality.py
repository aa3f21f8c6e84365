"""The payload consensus orders, the finality record, and the envelope between validators:
untrusted bytes are refused with a specific error, never any other exception."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.certificate import CommitCertificate
from consensus.encoding import pack
from node.finality import (
    NULL_PAYLOAD,
    FinalityRecord,
    FinalityRecordError,
    Proposal,
    ProposalError,
    decode_proposal,
)
from node.runtime.peer_wire import PeerKind, PeerWireError, decode_envelope, encode_envelope

CERT = CommitCertificate(view=0, seq=1, digest=bytes(32), commits=(("node-0", bytes(64)),))


def test_proposal_round_trip_and_null_payload() -> None:
    proposal = Proposal(timestamp_ms=1234, txs=(b"a", b"bc"))
    assert decode_proposal(proposal.encode(), txs_max=10, bytes_max=1000) == proposal
    assert decode_proposal(NULL_PAYLOAD, txs_max=10, bytes_max=1000).txs == ()


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (pack(["assetledger/block/v1", 1, [b"x"] * 11]), "11 exceeds"),
        (pack(["other/v1", 1, []]), "not \\[tag"),
        (pack(["assetledger/block/v1", -1, []]), "not \\[tag"),
        (pack(["assetledger/block/v1", 1, ["text"]]), "byte strings"),
        (b"\x93\x01", "payload"),
        (b"x" * 2000, "exceeds 1000"),
    ],
)
def test_bad_payloads_are_refused(payload: bytes, why: str) -> None:
    with pytest.raises(ProposalError, match=why):
        decode_proposal(payload, txs_max=10, bytes_max=1000)


def test_finality_record_round_trip_and_refusals() -> None:
    record = FinalityRecord(payload=b"p", certificate=CERT)
    assert FinalityRecord.decode(record.encode(), bytes_max=1 << 16) == record
    for bad in (b"", pack([b"p"]), pack([b"p", b"not a certificate"])):
        with pytest.raises(FinalityRecordError):
            FinalityRecord.decode(bad, bytes_max=1 << 16)


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        (PeerKind.PBFT, b"vote"),
        (PeerKind.TXS, [b"tx1", b"tx2"]),
        (PeerKind.FETCH, [3, 9]),
        (PeerKind.BLOCKS, [[3, b"record"]]),
    ],
)
def test_envelopes_round_trip(kind: PeerKind, body: object) -> None:
    envelope = decode_envelope(encode_envelope(kind, body), bytes_max=1 << 16, items_max=100)
    assert (envelope.kind, envelope.body) == (kind, body)


@pytest.mark.parametrize(
    "data",
    [
        pack([9, b""]),  # unknown kind
        pack([0, [b"x"]]),  # PBFT body must be bytes
        pack([1, [1, 2]]),  # TXS of non-bytes
        pack([2, [9, 3]]),  # FETCH range backwards
        pack([2, [-1, 3]]),
        pack([3, [[1]]]),  # BLOCKS entry of the wrong shape
        b"\xc1",
    ],
)
def test_bad_envelopes_are_refused(data: bytes) -> None:
    with pytest.raises(PeerWireError):
        decode_envelope(data, bytes_max=1 << 16, items_max=100)


@given(st.binary(max_size=256))
def test_envelope_decoder_never_raises_anything_else(data: bytes) -> None:
    with contextlib.suppress(PeerWireError):
        decode_envelope(data, bytes_max=1 << 16, items_max=100)


@given(st.binary(max_size=256))
def test_payload_decoder_never_raises_anything_else(data: bytes) -> None:
    with contextlib.suppress(ProposalError):
        decode_proposal(data, txs_max=10, bytes_max=1000)
