"""Signature verification: every signature must verify, and the signer's must be present."""

from __future__ import annotations

import hashlib

import nacl.signing

from node.tx import (
    SignedTransaction,
    add_signatures,
    build_transfer,
    decode_signed_transaction,
    verify_batch,
    verify_parallel,
    verify_transaction,
)

KEY = nacl.signing.SigningKey(hashlib.sha256(b"verify-signer").digest())
OTHER = nacl.signing.SigningKey(hashlib.sha256(b"verify-other").digest())


def _tx(nonce: int = 0, chain: str = "test-chain") -> SignedTransaction:
    return build_transfer(KEY, chain, nonce, "BOND-2036", b"\x02" * 32, 10)


def test_valid_transaction_verifies_after_a_round_trip() -> None:
    stx = decode_signed_transaction(_tx().encode())
    assert verify_transaction(stx)


def test_flipped_signature_bit_fails() -> None:
    stx = _tx()
    pk, sig = stx.signatures[0]
    bad = bytes([sig[0] ^ 1]) + sig[1:]
    assert not verify_transaction(SignedTransaction(body=stx.body, signatures=((pk, bad),)))


def test_signature_for_another_body_fails() -> None:
    stx, other = _tx(0), _tx(1)
    assert not verify_transaction(SignedTransaction(body=stx.body, signatures=other.signatures))


def test_signature_for_another_chain_fails() -> None:
    stx = _tx(chain="test-chain")
    other = _tx(chain="other-chain")
    assert not verify_transaction(SignedTransaction(body=stx.body, signatures=other.signatures))


def test_signer_signature_is_required() -> None:
    stx = _tx()
    only_other = add_signatures(SignedTransaction(body=stx.body, signatures=()), [OTHER])
    assert not verify_transaction(only_other)


def test_valid_co_signature_is_accepted_and_an_invalid_one_rejects() -> None:
    stx = add_signatures(_tx(), [OTHER])
    assert verify_transaction(stx)
    pk, _ = stx.signatures[1]
    broken = SignedTransaction(body=stx.body, signatures=(stx.signatures[0], (pk, bytes(64))))
    assert not verify_transaction(broken)


def test_batch_and_parallel_agree() -> None:
    good = [_tx(n) for n in range(40)]
    bad = SignedTransaction(body=good[3].body, signatures=good[4].signatures)
    txs = [*good[:20], bad, *good[20:]]
    expected = [True] * 20 + [False] + [True] * 20
    assert verify_batch(txs) == expected
    assert verify_parallel(txs, 2) == expected
    assert verify_parallel(txs, 1) == expected
    assert verify_parallel([], 2) == []
