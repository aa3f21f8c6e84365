"""Checking a finality proof without trusting the node that sent it.

A proof is (height, block_hash, certificate bytes). It proves the block final iff the
certificate decodes, its sequence number is the block height, its digest is the block hash,
and a quorum of *the validators the caller trusts* (from genesis, not from the node's status)
signed COMMIT for it on this chain. Contract with the node runtime: a block's PBFT sequence
number is its height and the digest ordered by consensus is its block hash.
"""

from __future__ import annotations

from collections.abc import Iterable

from consensus.certificate import CertificateError, CommitCertificate, certificate_problem
from node.api.results import FinalityProof, ReceiptInfo, ValidatorInfo
from node.client.errors import FinalityError

Validators = Iterable[tuple[str, bytes]] | Iterable[ValidatorInfo]


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
    proof: FinalityProof | ReceiptInfo, validators: Validators, chain_id: str
) -> CommitCertificate:
    """Return the checked certificate, or raise FinalityError saying what does not hold."""
    if isinstance(proof, ReceiptInfo):
        if proof.proof is None:
            raise FinalityError(f"receipt of {proof.tx_id.hex()} carries no finality proof")
        if proof.proof.height != proof.height:
            raise FinalityError(
                f"receipt says height {proof.height} but its proof is for height {proof.proof.height}"
            )
        proof = proof.proof
    try:
        certificate = CommitCertificate.decode(proof.certificate)
    except CertificateError as exc:
        raise FinalityError(str(exc)) from exc
    if certificate.seq != proof.height:
        raise FinalityError(
            f"certificate is for sequence {certificate.seq}, the block is at height {proof.height}"
        )
    if certificate.digest != proof.block_hash:
        raise FinalityError("certificate signs a different block hash than the proof's")
    problem = certificate_problem(certificate, chain_id, _validator_pairs(validators))
    if problem is not None:
        raise FinalityError(f"certificate does not prove finality: {problem}")
    return certificate
