"""What consensus orders: the block proposal payload, and the finality record kept per block.

Payload (canonical msgpack): ["assetledger/block/v1", timestamp_ms, [raw signed tx, ...]].
A null request (PBFT's filler after a view change) is the empty payload b"" and becomes an
empty block. The commit certificate signs sha256(payload), so the exact payload bytes are
kept with the certificate (the FinalityRecord): a peer catching up, or a client checking
finality, recomputes the digest from them and checks the block's transactions against them.

The proposer's timestamp is only advisory: executing a block uses
max(proposal timestamp, previous block's timestamp), which every node computes identically,
so a faulty primary's clock can never make an honest node fail to apply a committed block.
"""

from __future__ import annotations

from dataclasses import dataclass

from consensus.certificate import CertificateError, CommitCertificate
from consensus.encoding import DecodeError, DecodeLimits, pack, unpack

PAYLOAD_TAG = "assetledger/block/v1"
NULL_PAYLOAD = b""
# Encoded size of a payload <= PAYLOAD_HEADER_BYTES + sum(len(tx) + PAYLOAD_TX_OVERHEAD_BYTES):
# the tag, timestamp and array headers fit in 64 bytes, and a msgpack bin header is <= 5.
PAYLOAD_HEADER_BYTES = 64
PAYLOAD_TX_OVERHEAD_BYTES = 5
TIMESTAMP_MS_MAX = 2**63 - 1
# Protocol-wide bounds used when EXECUTING a committed payload. Local settings decide what a
# node admits and votes for; they must never change how a committed block is applied, or two
# honest nodes with different configs would diverge.
EXECUTION_PAYLOAD_BYTES_MAX = 32 << 20
EXECUTION_PAYLOAD_TXS_MAX = 100_000


class ProposalError(ValueError):
    """A payload is not a well-formed block proposal (evidence against its proposer)."""


class FinalityRecordError(ValueError):
    """Stored or received finality bytes are malformed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Proposal:
    timestamp_ms: int
    txs: tuple[bytes, ...]

    def encode(self) -> bytes:
        return pack([PAYLOAD_TAG, self.timestamp_ms, list(self.txs)])


def decode_proposal(payload: bytes, *, txs_max: int, bytes_max: int) -> Proposal:
    if payload == NULL_PAYLOAD:
        return Proposal(timestamp_ms=0, txs=())
    if len(payload) > bytes_max:
        raise ProposalError(f"payload of {len(payload)} bytes exceeds {bytes_max}")
    limits = DecodeLimits(
        buffer_bytes_max=bytes_max, bin_bytes_max=bytes_max, array_items_max=max(txs_max, 3)
    )
    try:
        obj = unpack(payload, limits)
    except DecodeError as exc:
        raise ProposalError(f"payload: {exc}") from exc
    match obj:
        case [str(tag), int(ts), list(txs)] if (
            tag == PAYLOAD_TAG and type(ts) is int and 0 <= ts <= TIMESTAMP_MS_MAX
        ):
            if len(txs) > txs_max:
                raise ProposalError(f"{len(txs)} transactions exceeds {txs_max}")
            if not all(isinstance(tx, bytes) for tx in txs):
                raise ProposalError("transactions must be byte strings")
            return Proposal(timestamp_ms=ts, txs=tuple(txs))
        case _:
            raise ProposalError("payload is not [tag, timestamp_ms, [tx, ...]]")


@dataclass(frozen=True, slots=True, kw_only=True)
class FinalityRecord:
    """Stored with each block: the ordered payload and the 2f+1 COMMITs that finalised it."""

    payload: bytes
    certificate: CommitCertificate

    def encode(self) -> bytes:
        return pack([self.payload, self.certificate.encode()])

    @staticmethod
    def decode(data: bytes, *, bytes_max: int) -> FinalityRecord:
        limits = DecodeLimits(buffer_bytes_max=bytes_max, bin_bytes_max=bytes_max)
        try:
            obj = unpack(data, limits)
        except DecodeError as exc:
            raise FinalityRecordError(f"finality record: {exc}") from exc
        match obj:
            case [bytes(payload), bytes(cert)]:
                try:
                    certificate = CommitCertificate.decode(cert)
                except CertificateError as exc:
                    raise FinalityRecordError(str(exc)) from exc
                return FinalityRecord(payload=payload, certificate=certificate)
            case _:
                raise FinalityRecordError("finality record is not [payload, certificate]")
