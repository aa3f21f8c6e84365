"""Checking a finality proof without trusting the node that sent it.

What consensus certifies is the ordered block payload (node.finality): a commit certificate
is 2f + 1 signed COMMITs for (view, seq, sha256(payload)), and a block's sequence number is its
height. A proof carries the FinalityRecord (payload + certificate), so a client checks:

1. the certificate decodes and a quorum of *the validators the caller trusts* (from genesis,
   not from the node's status) signed COMMIT for it on this chain, in the epoch the caller
   expects for that height (after a validator-set change: that epoch's set, see
   docs/governance.md);
2. its sequence number is the block height and its digest is sha256 of the carried payload;
3. (inclusion) the payload's transaction at the receipt's index has the receipt's tx id.
"""

from __future__ import annotations

from collections.abc import Iterable

from consensus.certificate import certificate_problem
from consensus.encoding import digest
from node.api.results import FinalityProof, ReceiptInfo, ValidatorInfo
from node.client.errors import FinalityError
from node.finality import FinalityRecord, FinalityRecordError, ProposalError, decode_proposal

Validators = Iterable[tuple[str, bytes]] | Iterable[ValidatorInfo]
PROOF_BYTES_MAX = 64 << 20
PROOF_TXS_MAX = 100_000


def _validator_pairs(validators: Validators) -> tuple[tuple[str, bytes], ...]:
    pairs: list[tuple[str, bytes]] = []
    for item in validators:
        if isinstance(item, ValidatorInfo):
            pairs.append((item.name, item.public_key))
        else:
            name, key = item
            pairs.append((name, key))
    if not pairs:
        raise FinalityError("no validators given; pass the genesis validator set")
    return tuple(pairs)


def verify_finality(
    proof: FinalityProof | ReceiptInfo, validators: Validators, chain_id: str, *, epoch: int = 0
) -> FinalityRecord:
    """Return the checked finality record, or raise FinalityError saying what does not hold.
    `validators` is the set of `epoch`, the epoch governing the block's height."""
    if isinstance(proof, ReceiptInfo):
        if proof.proof is None:
            raise FinalityError(f"receipt of {proof.tx_id.hex()} carries no finality proof")
        if proof.proof.height != proof.height:
            raise FinalityError(
                f"receipt says height {proof.height} but its proof is for height {proof.proof.height}"
            )
        proof = proof.proof
    try:
        record = FinalityRecord.decode(proof.certificate, bytes_max=PROOF_BYTES_MAX)
    except FinalityRecordError as exc:
        raise FinalityError(str(exc)) from exc
    certificate = record.certificate
    if certificate.seq != proof.height:
        raise FinalityError(
            f"certificate is for sequence {certificate.seq}, the block is at height {proof.height}"
        )
    if certificate.digest != digest(record.payload):
        raise FinalityError("certificate signs a different payload than the one in the proof")
    problem = certificate_problem(certificate, chain_id, _validator_pairs(validators), epoch=epoch)
    if problem is not None:
        raise FinalityError(f"certificate does not prove finality: {problem}")
    return record


def certified_transactions(record: FinalityRecord) -> tuple[bytes, ...]:
    """The raw transactions, in order, of a (checked) finality record's payload."""
    try:
        return decode_proposal(record.payload, txs_max=PROOF_TXS_MAX, bytes_max=PROOF_BYTES_MAX).txs
    except ProposalError as exc:
        raise FinalityError(f"certified payload does not decode: {exc}") from exc
