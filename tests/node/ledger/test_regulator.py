"""Regulator and registrar kinds, and the M-of-N regulator threshold."""

from __future__ import annotations

import nacl.signing
import pytest

from node.ledger import ReasonCode, Receipt
from node.tx import Kind
from tests.node.ledger.conftest import (
    ALICE,
    BOB,
    BOND,
    CAP,
    CAROL,
    ISSUER,
    MALLORY,
    REGISTRAR,
    pk,
)
from tests.node.ledger.world import World, key, kyc

DAVE = key("dave")
ERIN = key("erin")


def _register(
    w: World, signer: nacl.signing.SigningKey, account: bytes, **extra: object
) -> Receipt:
    return w.one(
        signer,
        Kind.REGISTER_ACCOUNT,
        account=account,
        category="individual",
        kyc_hash=kyc("x"),
        **extra,
    )


def test_regulator_registers_and_revokes(world: World) -> None:
    assert world.reg(
        Kind.REGISTER_ACCOUNT, account=pk(DAVE), category="entity", kyc_hash=kyc("dave")
    ).applied
    info = world.ledger.account(pk(DAVE))
    assert info is not None and info.status == "registered" and info.category == "entity"
    assert info.kyc_hash == kyc("dave") and info.roles == frozenset()
    assert world.reg(Kind.REVOKE_ACCOUNT, account=pk(DAVE)).applied
    assert world.ledger.account(pk(DAVE)).status == "revoked"  # type: ignore[union-attr]
    r = world.reg(Kind.REVOKE_ACCOUNT, account=pk(DAVE))
    assert r.reason is ReasonCode.ACCOUNT_REVOKED
    r = world.reg(Kind.REVOKE_ACCOUNT, account=pk(MALLORY))
    assert r.reason is ReasonCode.ACCOUNT_NOT_REGISTERED
    # Re-registration reinstates (and renews KYC).
    assert world.reg(
        Kind.REGISTER_ACCOUNT, account=pk(DAVE), category="entity", kyc_hash=kyc("dave2")
    ).applied
    assert world.ledger.account(pk(DAVE)).kyc_hash == kyc("dave2")  # type: ignore[union-attr]


def test_registrar_registers_and_revokes(world: World) -> None:
    assert _register(world, REGISTRAR, pk(DAVE)).applied
    assert world.one(REGISTRAR, Kind.REVOKE_ACCOUNT, account=pk(DAVE)).applied
    assert _register(world, ALICE, pk(ERIN)).reason is ReasonCode.NOT_AUTHORIZED
    assert (
        world.one(ALICE, Kind.REVOKE_ACCOUNT, account=pk(BOB)).reason is ReasonCode.NOT_AUTHORIZED
    )
    # A revoked registrar can no longer act.
    assert world.reg(Kind.REVOKE_ACCOUNT, account=pk(REGISTRAR)).applied
    assert _register(world, REGISTRAR, pk(ERIN)).reason is ReasonCode.ACCOUNT_REVOKED


def test_registrar_cannot_do_regulator_things(world: World) -> None:
    r = world.one(REGISTRAR, Kind.GRANT_ROLE, account=pk(ALICE), role="issuer")
    assert r.reason is ReasonCode.NOT_AUTHORIZED
    r = world.one(REGISTRAR, Kind.SET_SUPPLY_CAP, asset_id=BOND, cap=1)
    assert r.reason is ReasonCode.NOT_AUTHORIZED


def test_grant_and_revoke_roles(world: World) -> None:
    assert world.reg(Kind.GRANT_ROLE, account=pk(ALICE), role="registrar").applied
    assert world.ledger.account(pk(ALICE)).roles == frozenset({"registrar"})  # type: ignore[union-attr]
    r = world.reg(Kind.GRANT_ROLE, account=pk(ALICE), role="registrar")
    assert r.reason is ReasonCode.ROLE_ALREADY_GRANTED
    assert _register(world, ALICE, pk(DAVE)).applied
    assert world.reg(Kind.REVOKE_ROLE, account=pk(ALICE), role="registrar").applied
    r = world.reg(Kind.REVOKE_ROLE, account=pk(ALICE), role="registrar")
    assert r.reason is ReasonCode.ROLE_NOT_GRANTED
    r = world.reg(Kind.GRANT_ROLE, account=pk(MALLORY), role="issuer")
    assert r.reason is ReasonCode.ACCOUNT_NOT_REGISTERED


def test_set_supply_cap(world: World) -> None:
    assert world.reg(Kind.SET_SUPPLY_CAP, asset_id=BOND, cap=2 * CAP).applied
    assert world.ledger.asset(BOND).cap == 2 * CAP  # type: ignore[union-attr]
    r = world.reg(Kind.SET_SUPPLY_CAP, asset_id=BOND, cap=999)
    assert r.reason is ReasonCode.CAP_BELOW_SUPPLY
    assert world.reg(Kind.SET_SUPPLY_CAP, asset_id=BOND, cap=1000).applied
    r = world.one(ISSUER, Kind.MINT, asset_id=BOND, to_account=pk(BOB), amount=1)
    assert r.reason is ReasonCode.SUPPLY_CAP_EXCEEDED
    assert world.reg(Kind.SET_SUPPLY_CAP, asset_id="NOPE", cap=5).reason is ReasonCode.UNKNOWN_ASSET


def test_force_transfer_seizes_from_a_frozen_account_of_a_paused_asset(world: World) -> None:
    assert world.reg(
        Kind.FREEZE, account=pk(ALICE), asset_id=None, reason_code="aml", order_ref="F-1"
    ).applied
    assert world.one(ISSUER, Kind.PAUSE, asset_id=BOND).applied
    r = world.reg(
        Kind.FORCE_TRANSFER,
        asset_id=BOND,
        from_account=pk(ALICE),
        to_account=pk(BOB),
        amount=400,
        reason_code="court_order",
        order_ref="CASE-17",
    )
    assert r.applied and (r.reason_code, r.order_ref) == ("court_order", "CASE-17")
    led = world.ledger
    assert (led.balance(BOND, pk(ALICE)), led.balance(BOND, pk(BOB))) == (600, 400)
    for who in (ALICE, BOB):
        assert r.tx_id in [e.tx_id for e in led.history(pk(who))]
    stored = led.receipt(r.tx_id)
    assert stored is not None and stored.order_ref == "CASE-17"


def test_force_transfer_rejections(world: World) -> None:
    def force(src: bytes, dst: bytes, amount: int = 1, asset: str = BOND) -> Receipt:
        return world.reg(
            Kind.FORCE_TRANSFER,
            asset_id=asset,
            from_account=src,
            to_account=dst,
            amount=amount,
            reason_code="r",
            order_ref="o",
        )

    assert force(pk(ALICE), pk(BOB), 1001).reason is ReasonCode.INSUFFICIENT_BALANCE
    assert force(pk(ALICE), pk(ALICE)).reason is ReasonCode.SELF_TRANSFER
    assert force(pk(ALICE), pk(MALLORY)).reason is ReasonCode.ACCOUNT_NOT_REGISTERED
    assert force(pk(MALLORY), pk(BOB)).reason is ReasonCode.ACCOUNT_NOT_REGISTERED
    assert force(pk(ALICE), pk(BOB), asset="NOPE").reason is ReasonCode.UNKNOWN_ASSET
    assert world.reg(
        Kind.FREEZE, account=pk(BOB), asset_id=BOND, reason_code="r", order_ref="o"
    ).applied
    assert force(pk(ALICE), pk(BOB)).reason is ReasonCode.ACCOUNT_FROZEN
    r = world.one(
        ALICE,
        Kind.FORCE_TRANSFER,
        asset_id=BOND,
        from_account=pk(BOB),
        to_account=pk(ALICE),
        amount=1,
        reason_code="r",
        order_ref="o",
    )
    assert r.reason is ReasonCode.NOT_AUTHORIZED


def test_recover_account_moves_every_balance(world: World) -> None:
    assert world.one(
        ISSUER, Kind.CREATE_ASSET, asset_id="GILT", name="Gilt", decimals=0, cap=99
    ).applied
    assert world.one(ISSUER, Kind.MINT, asset_id="GILT", to_account=pk(ALICE), amount=9).applied
    assert world.reg(
        Kind.FREEZE, account=pk(ALICE), asset_id="GILT", reason_code="aml", order_ref="F-9"
    ).applied
    r = world.reg(
        Kind.RECOVER_ACCOUNT,
        lost_account=pk(ALICE),
        new_account=pk(CAROL),
        reason_code="key_lost",
        order_ref="T-1",
    )
    assert r.applied
    led = world.ledger
    assert (led.balance(BOND, pk(ALICE)), led.balance("GILT", pk(ALICE))) == (0, 0)
    assert (led.balance(BOND, pk(CAROL)), led.balance("GILT", pk(CAROL))) == (1000, 9)
    old = led.account(pk(ALICE))
    assert old is not None and old.status == "recovered" and old.recovered_to == pk(CAROL)
    # The freeze followed the funds.
    new = led.account(pk(CAROL))
    assert new is not None and [f.asset_id for f in new.freezes] == ["GILT"]
    for who in (ALICE, CAROL):
        assert r.tx_id in [e.tx_id for e in led.history(pk(who))]
    # A recovered key never comes back.
    r2 = world.reg(
        Kind.REGISTER_ACCOUNT, account=pk(ALICE), category="individual", kyc_hash=kyc("a")
    )
    assert r2.reason is ReasonCode.ACCOUNT_RECOVERED


def test_recover_account_rejections(world: World) -> None:
    def recover(lost: bytes, new: bytes) -> Receipt:
        return world.reg(
            Kind.RECOVER_ACCOUNT, lost_account=lost, new_account=new, reason_code="r", order_ref="o"
        )

    assert recover(pk(ALICE), pk(ALICE)).reason is ReasonCode.SELF_TRANSFER
    assert recover(pk(MALLORY), pk(BOB)).reason is ReasonCode.ACCOUNT_NOT_REGISTERED
    assert recover(pk(ALICE), pk(MALLORY)).reason is ReasonCode.ACCOUNT_NOT_REGISTERED
    assert recover(pk(ALICE), pk(BOB)).applied
    assert recover(pk(ALICE), pk(CAROL)).reason is ReasonCode.ACCOUNT_RECOVERED


def test_regulator_freeze_whole_account(world: World) -> None:
    def fr(kind: Kind, asset: str | None = None) -> Receipt:
        return world.reg(kind, account=pk(BOB), asset_id=asset, reason_code="aml", order_ref="R-1")

    assert fr(Kind.FREEZE).applied
    assert fr(Kind.FREEZE).reason is ReasonCode.ALREADY_FROZEN
    assert fr(Kind.FREEZE, "NOPE").reason is ReasonCode.UNKNOWN_ASSET
    info = world.ledger.account(pk(BOB))
    assert (
        info is not None and info.freezes[0].asset_id is None and info.freezes[0].by == "regulator"
    )
    assert fr(Kind.UNFREEZE).applied
    assert fr(Kind.UNFREEZE).reason is ReasonCode.NOT_FROZEN
    r = world.reg(Kind.FREEZE, account=pk(MALLORY), asset_id=None, reason_code="a", order_ref="b")
    assert r.reason is ReasonCode.ACCOUNT_NOT_REGISTERED


# ------------------------------------------------------------------ M of N


def test_threshold_counts_distinct_regulator_signatures(world3: World) -> None:
    regs = world3.regulators
    args = {"account": pk(DAVE), "category": "individual", "kyc_hash": kyc("dave")}

    def submit(
        signer: nacl.signing.SigningKey, cosigners: list[nacl.signing.SigningKey]
    ) -> Receipt:
        return world3.apply(world3.tx(signer, Kind.REGISTER_ACCOUNT, args, cosigners=cosigners))[0]

    # One regulator alone: below the threshold, so not the regulator's act at all: the
    # nonce is not consumed and the id is not claimed (a stripped copy of a real act).
    r = submit(regs[0], [])
    assert r.reason is ReasonCode.REGULATOR_THRESHOLD_NOT_MET
    assert world3.ledger.nonce(pk(regs[0])) == 0
    # A foreign co-signature (valid, but not a regulator key) does not count.
    assert submit(regs[0], [ALICE]).reason is ReasonCode.REGULATOR_THRESHOLD_NOT_MET
    # Two distinct regulators: applied.
    assert submit(regs[0], [regs[2]]).applied


def test_duplicate_regulator_signatures_count_once(world3: World) -> None:
    from node.tx import SignedTransaction

    regs = world3.regulators
    stx = world3.tx(
        regs[0],
        Kind.GRANT_ROLE,
        {"account": pk(ALICE), "role": "issuer"},
    )
    doubled = SignedTransaction(body=stx.body, signatures=stx.signatures * 2)
    r = world3.apply(doubled)[0]
    assert r.reason is ReasonCode.REGULATOR_THRESHOLD_NOT_MET


def test_non_regulator_signer_with_regulator_cosigners_is_not_the_regulator(world3: World) -> None:
    regs = world3.regulators
    r = world3.apply(
        world3.tx(
            ALICE,
            Kind.SET_SUPPLY_CAP,
            {"asset_id": BOND, "cap": 5000},
            cosigners=regs,
        )
    )[0]
    assert r.reason is ReasonCode.NOT_AUTHORIZED


def test_two_of_three_for_every_regulator_kind(world3: World) -> None:
    assert world3.reg(Kind.SET_SUPPLY_CAP, asset_id=BOND, cap=5000).applied
    assert world3.reg(
        Kind.FREEZE, account=pk(BOB), asset_id=None, reason_code="a", order_ref="b"
    ).applied


def test_asset_freezes_per_account_are_bounded(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from node.ledger import rules

    monkeypatch.setattr(rules, "ACCOUNT_FREEZES_MAX", 1)
    assert world.one(
        ISSUER, Kind.CREATE_ASSET, asset_id="GILT", name="Gilt", decimals=0, cap=9
    ).applied
    assert world.reg(
        Kind.FREEZE, account=pk(BOB), asset_id=BOND, reason_code="a", order_ref="b"
    ).applied
    r = world.reg(Kind.FREEZE, account=pk(BOB), asset_id="GILT", reason_code="a", order_ref="b")
    assert r.reason is ReasonCode.LIMIT_EXCEEDED


def test_expired_registrar_cannot_register(world: World) -> None:
    assert world.reg(
        Kind.REGISTER_ACCOUNT,
        account=pk(REGISTRAR),
        category="intermediary",
        kyc_hash=kyc("registrar"),
        expires_at_ms=world.time_ms + 1500,
    ).applied
    world.time_ms += 1000
    assert _register(world, REGISTRAR, pk(DAVE)).reason is ReasonCode.ACCOUNT_EXPIRED


def test_a_copy_with_stripped_cosignatures_cannot_block_the_real_act(world3: World) -> None:
    """The tx id covers the body only, so anyone relaying a 2-of-3 regulator act can drop a
    co-signature. That copy must neither consume the nonce nor claim the id."""
    from node.tx import SignedTransaction

    regs = world3.regulators
    real = world3.tx(
        regs[0],
        Kind.REGISTER_ACCOUNT,
        {"account": pk(DAVE), "category": "individual", "kyc_hash": kyc("dave")},
        cosigners=[regs[1]],
    )
    own = [s for s in real.signatures if s[0] == pk(regs[0])]
    stripped = SignedTransaction(body=real.body, signatures=tuple(own))
    assert stripped.tx_id == real.tx_id
    first, second = world3.apply(stripped, real)
    assert first.reason is ReasonCode.REGULATOR_THRESHOLD_NOT_MET
    assert second.applied
    receipt = world3.ledger.receipt(real.tx_id)
    assert receipt is not None and receipt.applied and receipt.index == 1
