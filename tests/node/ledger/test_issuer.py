"""Issuer kinds: create_asset, mint, burn, pause/unpause, freeze/unfreeze of its holders."""

from __future__ import annotations

import nacl.signing

from node.ledger import ReasonCode, Receipt
from node.tx import Kind
from tests.node.ledger.conftest import ALICE, BOB, BOND, CAP, ISSUER, MALLORY, REGISTRAR, pk
from tests.node.ledger.world import World

DOC = b"\x07" * 32


def _create(
    w: World,
    signer: nacl.signing.SigningKey = ISSUER,
    asset_id: str = "GILT-2030",
    cap: int = 500,
) -> Receipt:
    return w.one(
        signer,
        Kind.CREATE_ASSET,
        asset_id=asset_id,
        name="Gilt 2030",
        decimals=0,
        cap=cap,
        document_hash=DOC,
    )


def test_create_asset(world: World) -> None:
    assert _create(world).applied
    asset = world.ledger.asset("GILT-2030")
    assert asset is not None
    assert (asset.issuer, asset.cap, asset.supply, asset.paused, asset.decimals) == (
        pk(ISSUER),
        500,
        0,
        False,
        0,
    )
    assert asset.document_hash == DOC
    assert _create(world).reason is ReasonCode.ASSET_EXISTS


def test_only_issuers_create_assets(world: World) -> None:
    assert _create(world, ALICE).reason is ReasonCode.NOT_AUTHORIZED
    assert _create(world, REGISTRAR).reason is ReasonCode.NOT_AUTHORIZED
    assert world.reg(Kind.REVOKE_ROLE, account=pk(ISSUER), role="issuer").applied
    assert _create(world).reason is ReasonCode.NOT_AUTHORIZED


def test_mint_up_to_the_cap_and_never_beyond(world: World) -> None:
    r = world.one(ISSUER, Kind.MINT, asset_id=BOND, to_account=pk(BOB), amount=CAP - 1000)
    assert r.applied
    assert world.ledger.asset(BOND).supply == CAP  # type: ignore[union-attr]
    r = world.one(ISSUER, Kind.MINT, asset_id=BOND, to_account=pk(BOB), amount=1)
    assert r.reason is ReasonCode.SUPPLY_CAP_EXCEEDED
    assert world.ledger.balance(BOND, pk(BOB)) == CAP - 1000


def test_mint_rejections(world: World) -> None:
    def mint(signer: nacl.signing.SigningKey, to: bytes, asset: str = BOND) -> Receipt:
        return world.one(signer, Kind.MINT, asset_id=asset, to_account=to, amount=1)

    assert mint(ISSUER, pk(MALLORY)).reason is ReasonCode.ACCOUNT_NOT_REGISTERED
    assert mint(ISSUER, pk(BOB), "NOPE").reason is ReasonCode.UNKNOWN_ASSET
    assert mint(ALICE, pk(BOB)).reason is ReasonCode.NOT_AUTHORIZED
    # Another issuer may not mint somebody else's asset.
    assert world.reg(Kind.GRANT_ROLE, account=pk(BOB), role="issuer").applied
    assert mint(BOB, pk(BOB)).reason is ReasonCode.NOT_AUTHORIZED
    assert world.one(ISSUER, Kind.PAUSE, asset_id=BOND).applied
    assert mint(ISSUER, pk(BOB)).reason is ReasonCode.ASSET_PAUSED


def test_burn_from_own_holding_only(world: World) -> None:
    assert world.one(ISSUER, Kind.MINT, asset_id=BOND, to_account=pk(ISSUER), amount=50).applied
    assert world.one(ISSUER, Kind.BURN, asset_id=BOND, amount=20).applied
    led = world.ledger
    assert led.balance(BOND, pk(ISSUER)) == 30
    assert led.asset(BOND).supply == 1030  # type: ignore[union-attr]
    r = world.one(ISSUER, Kind.BURN, asset_id=BOND, amount=31)
    assert r.reason is ReasonCode.INSUFFICIENT_BALANCE
    assert world.one(ALICE, Kind.BURN, asset_id=BOND, amount=1).reason is ReasonCode.NOT_AUTHORIZED


def test_pause_unpause(world: World) -> None:
    assert world.one(ALICE, Kind.PAUSE, asset_id=BOND).reason is ReasonCode.NOT_AUTHORIZED
    assert world.one(ISSUER, Kind.UNPAUSE, asset_id=BOND).reason is ReasonCode.ASSET_NOT_PAUSED
    assert world.one(ISSUER, Kind.PAUSE, asset_id=BOND).applied
    assert world.ledger.asset(BOND).paused  # type: ignore[union-attr]
    assert world.one(ISSUER, Kind.PAUSE, asset_id=BOND).reason is ReasonCode.ASSET_PAUSED
    assert world.one(ISSUER, Kind.BURN, asset_id=BOND, amount=1).reason is ReasonCode.ASSET_PAUSED
    assert world.one(ISSUER, Kind.UNPAUSE, asset_id=BOND).applied
    assert world.one(ISSUER, Kind.PAUSE, asset_id="NOPE").reason is ReasonCode.UNKNOWN_ASSET


def test_issuer_freezes_holders_of_its_own_asset(world: World) -> None:
    def fr(kind: Kind, asset: str | None, signer: nacl.signing.SigningKey = ISSUER) -> Receipt:
        return world.one(
            signer,
            kind,
            account=pk(ALICE),
            asset_id=asset,
            reason_code="suspicious",
            order_ref="ISS-1",
        )

    assert (
        fr(Kind.FREEZE, None).reason is ReasonCode.NOT_AUTHORIZED
    )  # whole account: regulator only
    assert fr(Kind.FREEZE, BOND, BOB).reason is ReasonCode.NOT_AUTHORIZED
    r = fr(Kind.FREEZE, BOND)
    assert r.applied and (r.reason_code, r.order_ref) == ("suspicious", "ISS-1")
    assert r.tx_id in [e.tx_id for e in world.ledger.history(pk(ALICE))]
    freezes = world.ledger.account(pk(ALICE)).freezes  # type: ignore[union-attr]
    assert [(f.asset_id, f.by, f.order_ref) for f in freezes] == [(BOND, "issuer", "ISS-1")]
    assert fr(Kind.FREEZE, BOND).reason is ReasonCode.ALREADY_FROZEN
    assert fr(Kind.UNFREEZE, BOND).applied
    assert fr(Kind.UNFREEZE, BOND).reason is ReasonCode.NOT_FROZEN
    assert world.ledger.account(pk(ALICE)).freezes == ()  # type: ignore[union-attr]


def test_issuer_cannot_lift_a_regulator_freeze(world: World) -> None:
    assert world.reg(
        Kind.FREEZE, account=pk(ALICE), asset_id=BOND, reason_code="court", order_ref="C-1"
    ).applied
    r = world.one(
        ISSUER, Kind.UNFREEZE, account=pk(ALICE), asset_id=BOND, reason_code="x", order_ref="y"
    )
    assert r.reason is ReasonCode.NOT_AUTHORIZED
