"""Nonces and tx ids: authentic txs consume their nonce (even when rejected), others never."""

from __future__ import annotations

from node.ledger import ReasonCode
from node.tx import Kind, SignedTransaction, build_transfer
from tests.node.ledger.conftest import ALICE, BOB, BOND, MALLORY, pk
from tests.node.ledger.world import World


def _t(w: World, nonce: int, amount: int = 1, chain: str | None = None) -> SignedTransaction:
    return build_transfer(ALICE, chain or w.genesis.chain_id, nonce, BOND, pk(BOB), amount)


def test_nonces_are_strictly_sequential(world: World) -> None:
    led = world.ledger
    assert led.nonce(pk(ALICE)) == 0
    r_gap, r0, r0_again, r1 = world.apply(_t(world, 1), _t(world, 0), _t(world, 0, 2), _t(world, 1))
    assert r_gap.reason is ReasonCode.BAD_NONCE  # gap: nonce 1 before 0
    assert r0.applied
    assert r0_again.reason is ReasonCode.BAD_NONCE  # reuse
    assert r1.applied
    assert led.nonce(pk(ALICE)) == 2


def test_rejected_authentic_tx_consumes_its_nonce_and_claims_its_id(world: World) -> None:
    r = world.apply(_t(world, 0, amount=10**6))[0]
    assert r.reason is ReasonCode.INSUFFICIENT_BALANCE
    led = world.ledger
    assert led.nonce(pk(ALICE)) == 1
    assert led.receipt(r.tx_id) == r._replace(detail="")
    assert led.history(pk(ALICE))[0].tx_id == r.tx_id
    # The rejected tx joins only the signer's history, not the would-be recipient's.
    assert r.tx_id not in [e.tx_id for e in led.history(pk(BOB))]


def test_replayed_tx_cannot_apply_twice_or_overwrite_its_receipt(world: World) -> None:
    stx = _t(world, 0)
    first = world.apply(stx)[0]
    again = world.apply(stx)[0]
    assert first.applied and again.reason is ReasonCode.BAD_NONCE
    assert again.tx_id == first.tx_id
    assert world.ledger.receipt(first.tx_id).applied  # type: ignore[union-attr]
    assert world.ledger.tx_location(first.tx_id) == (first.height, first.index)
    assert world.ledger.balance(BOND, pk(BOB)) == 1


def test_bad_signature_does_not_burn_the_nonce_or_claim_the_id(world: World) -> None:
    real = _t(world, 0)
    forged = SignedTransaction(body=real.body, signatures=((pk(ALICE), bytes(64)),))
    r = world.apply(forged)[0]
    assert r.reason is ReasonCode.BAD_SIGNATURE and r.signer is None
    led = world.ledger
    assert led.nonce(pk(ALICE)) == 0
    assert led.receipt(real.tx_id) is None and led.tx_location(real.tx_id) is None
    assert led.history(pk(ALICE))[0].tx_id != real.tx_id
    # The real transaction (same id) still applies afterwards.
    assert world.apply(real)[0].applied
    assert led.receipt(real.tx_id).applied  # type: ignore[union-attr]


def test_someone_elses_signature_is_a_bad_signature(world: World) -> None:
    real = _t(world, 0)
    mallory_signed = build_transfer(MALLORY, world.genesis.chain_id, 0, BOND, pk(BOB), 1)
    forged = SignedTransaction(body=real.body, signatures=mallory_signed.signatures)
    assert world.apply(forged)[0].reason is ReasonCode.BAD_SIGNATURE


def test_wrong_chain_and_malformed_change_nothing(world: World) -> None:
    digest_before = world.ledger.state_digest
    wrong = _t(world, 0, chain="other-chain")
    r_wrong, r_junk = world.apply(wrong, b"\x93junk")
    assert r_wrong.reason is ReasonCode.WRONG_CHAIN
    assert r_junk.reason is ReasonCode.MALFORMED and r_junk.detail
    assert world.ledger.nonce(pk(ALICE)) == 0
    assert world.ledger.receipt(wrong.tx_id) is None
    # Only the block record and tip moved; the state digest still advanced by the rule
    # (an empty write set), so compare the state itself.
    assert world.ledger.state_digest != digest_before
    assert world.ledger.balance(BOND, pk(ALICE)) == 1000
    blk = world.ledger.block(world.ledger.height)
    assert blk is not None and blk.outcomes == ("wrong_chain", "malformed")


def test_precomputed_signature_results_are_used(world: World) -> None:
    stx = _t(world, 0)
    block_txs = (stx.encode(),)
    from node.ledger import Block

    led = world.ledger
    receipts = led.apply_block(
        Block(height=led.height + 1, timestamp_ms=world.time_ms + 1, txs=block_txs),
        signatures_ok=[False],
    )
    assert receipts[0].reason is ReasonCode.BAD_SIGNATURE
    assert led.nonce(pk(ALICE)) == 0


def test_regulator_nonce_sequence_is_its_own(world: World) -> None:
    reg = world.regulators[0]
    assert world.reg(Kind.SET_SUPPLY_CAP, asset_id=BOND, cap=5000).applied
    assert world.ledger.nonce(pk(reg)) == 1
