from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from config.genesis import AccountSpec, AssetSpec, Genesis
from node.tx import Kind, public_key
from tests.node.ledger.world import World, key, kyc, make_genesis

BOND = "BOND-2036"
CAP = 1_000_000

ISSUER = key("issuer")
REGISTRAR = key("registrar")
ALICE = key("alice")
BOB = key("bob")
CAROL = key("carol")
MALLORY = key("mallory")  # never registered


def pk(k: object) -> bytes:
    return public_key(k)  # type: ignore[arg-type]


def standard_genesis(**kw: object) -> Genesis:
    return make_genesis(
        accounts=[
            AccountSpec(
                public_key=pk(ISSUER),
                category="entity",
                kyc_hash=kyc("issuer"),
                roles=frozenset({"issuer"}),
            ),
            AccountSpec(
                public_key=pk(REGISTRAR),
                category="intermediary",
                kyc_hash=kyc("registrar"),
                roles=frozenset({"registrar"}),
            ),
            *(
                AccountSpec(public_key=pk(k), category="individual", kyc_hash=kyc(n))
                for n, k in (("alice", ALICE), ("bob", BOB), ("carol", CAROL))
            ),
        ],
        assets=[
            AssetSpec(asset_id=BOND, name="State bond 2036", decimals=2, cap=CAP, issuer=pk(ISSUER))
        ],
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """Standard chain: 1-of-1 regulator, issuer of BOND-2036, registrar, alice holding 1000."""
    w = World(tmp_path / "ledger", standard_genesis())
    r = w.one(ISSUER, Kind.MINT, asset_id=BOND, to_account=pk(ALICE), amount=1000)
    assert r.applied, r
    yield w
    w.close()


@pytest.fixture
def world3(tmp_path: Path) -> Iterator[World]:
    """Same accounts, but a 2-of-3 regulator."""
    w = World(tmp_path / "ledger", standard_genesis(regulators=3, threshold=2))
    r = w.one(ISSUER, Kind.MINT, asset_id=BOND, to_account=pk(ALICE), amount=1000)
    assert r.applied, r
    yield w
    w.close()
