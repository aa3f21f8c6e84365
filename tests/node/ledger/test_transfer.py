"""Holder transfers: the happy path and every reason a transfer is refused."""

from __future__ import annotations

import nacl.signing

from node.ledger import ReasonCode, Receipt
from node.tx import Kind
from tests.node.ledger.conftest import ALICE, BOB, BOND, CAROL, MALLORY, pk
from tests.node.ledger.world import World, kyc


def _send(
    w: World, src: nacl.signing.SigningKey, dst: bytes, amount: int, asset: str = BOND
) -> Receipt:
    return w.one(src, Kind.TRANSFER, asset_id=asset, to_account=dst, amount=amount)


def test_transfer_moves_balance_and_records_history(world: World) -> None:
    r = _send(world, ALICE, pk(BOB), 300)
    assert r.applied and r.reason is None and r.kind == "transfer"
    led = world.ledger
    assert led.balance(BOND, pk(ALICE)) == 700
    assert led.balance(BOND, pk(BOB)) == 300
    assert led.asset(BOND).supply == 1000  # type: ignore[union-attr]
    assert led.receipt(r.tx_id) == r._replace(detail="")
    assert led.tx_location(r.tx_id) == (r.height, r.index)
    assert [e.tx_id for e in led.history(pk(BOB))] == [r.tx_id]
    assert led.history(pk(ALICE))[0].tx_id == r.tx_id
    assert BOND in led.account(pk(BOB)).assets  # type: ignore[union-attr]


def test_insufficient_balance(world: World) -> None:
    r = _send(world, ALICE, pk(BOB), 1001)
    assert r.reason is ReasonCode.INSUFFICIENT_BALANCE
    assert world.ledger.balance(BOND, pk(ALICE)) == 1000


def test_unknown_asset(world: World) -> None:
    assert _send(world, ALICE, pk(BOB), 1, "NOPE").reason is ReasonCode.UNKNOWN_ASSET


def test_self_transfer(world: World) -> None:
    assert _send(world, ALICE, pk(ALICE), 1).reason is ReasonCode.SELF_TRANSFER


def test_unregistered_sender_and_recipient(world: World) -> None:
    assert _send(world, MALLORY, pk(BOB), 1).reason is ReasonCode.ACCOUNT_NOT_REGISTERED
    assert _send(world, ALICE, pk(MALLORY), 1).reason is ReasonCode.ACCOUNT_NOT_REGISTERED
    # Mallory's authentic tx consumed her nonce even though she is not registered.
    assert world.ledger.nonce(pk(MALLORY)) == 1


def test_expired_accounts(world: World) -> None:
    expiry = world.time_ms + 5_000
    r = world.reg(
        Kind.REGISTER_ACCOUNT,
        account=pk(BOB),
        category="individual",
        kyc_hash=kyc("bob2"),
        expires_at_ms=expiry,
    )
    assert r.applied
    assert _send(world, ALICE, pk(BOB), 1).applied  # still valid
    world.time_ms = expiry  # the next block is past the expiry
    r = _send(world, ALICE, pk(BOB), 1)
    assert r.reason is ReasonCode.ACCOUNT_EXPIRED
    assert _send(world, BOB, pk(ALICE), 1).reason is ReasonCode.ACCOUNT_EXPIRED


def test_frozen_sender_and_recipient(world: World) -> None:
    assert world.reg(
        Kind.FREEZE, account=pk(BOB), asset_id=None, reason_code="aml", order_ref="O-1"
    ).applied
    assert _send(world, ALICE, pk(BOB), 1).reason is ReasonCode.ACCOUNT_FROZEN
    assert world.reg(
        Kind.FREEZE, account=pk(ALICE), asset_id=BOND, reason_code="aml", order_ref="O-2"
    ).applied
    assert _send(world, ALICE, pk(CAROL), 1).reason is ReasonCode.ACCOUNT_FROZEN


def test_paused_asset(world: World) -> None:
    from tests.node.ledger.conftest import ISSUER

    assert world.one(ISSUER, Kind.PAUSE, asset_id=BOND).applied
    assert _send(world, ALICE, pk(BOB), 1).reason is ReasonCode.ASSET_PAUSED
    assert world.one(ISSUER, Kind.UNPAUSE, asset_id=BOND).applied
    assert _send(world, ALICE, pk(BOB), 1).applied


def test_revoked_and_recovered_accounts_cannot_move(world: World) -> None:
    assert world.reg(Kind.REVOKE_ACCOUNT, account=pk(BOB)).applied
    assert _send(world, ALICE, pk(BOB), 1).reason is ReasonCode.ACCOUNT_REVOKED
    assert world.reg(
        Kind.RECOVER_ACCOUNT,
        lost_account=pk(ALICE),
        new_account=pk(CAROL),
        reason_code="key_lost",
        order_ref="T-1",
    ).applied
    assert _send(world, ALICE, pk(CAROL), 1).reason is ReasonCode.ACCOUNT_RECOVERED


def test_several_transfers_in_one_block_see_each_other(world: World) -> None:
    t1 = world.tx(ALICE, Kind.TRANSFER, {"asset_id": BOND, "to_account": pk(BOB), "amount": 600})
    t2 = world.tx(BOB, Kind.TRANSFER, {"asset_id": BOND, "to_account": pk(CAROL), "amount": 500})
    t3 = world.tx(ALICE, Kind.TRANSFER, {"asset_id": BOND, "to_account": pk(CAROL), "amount": 600})
    r1, r2, r3 = world.apply(t1, t2, t3)
    assert r1.applied and r2.applied
    assert r3.reason is ReasonCode.INSUFFICIENT_BALANCE
    led = world.ledger
    assert (
        led.balance(BOND, pk(ALICE)),
        led.balance(BOND, pk(BOB)),
        led.balance(BOND, pk(CAROL)),
    ) == (400, 100, 500)
