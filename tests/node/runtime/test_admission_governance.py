"""Admission with governance: regulator keys come from the ledger; validators may report."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from node.mempool import Mempool
from node.runtime.admission import Admission
from node.runtime.verifier import BatchVerifier, VerifiedCache
from node.tx import Kind, TxLimits, make_tx, public_key
from tests.node.ledger.gov_world import (
    ALICE,
    GovWorld,
    address,
    conflicting_votes,
    governance_genesis,
    vkey,
    vpub,
)
from tests.node.ledger.world import key


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[GovWorld]:
    w = GovWorld(tmp_path / "ledger", governance_genesis(4))
    yield w
    w.close()


def _admission(world: GovWorld) -> tuple[Admission, BatchVerifier]:
    verifier = BatchVerifier(threads=1)
    admission = Admission(
        chain_id=world.genesis.chain_id,
        tx_limits=TxLimits(),
        ledger=world.ledger,
        mempool=Mempool(capacity_txs=10, gap_wait_ms=1000),
        verifier=verifier,
        cache=VerifiedCache(entries_max=100),
        clock_ms=lambda: 0,
        on_admitted=lambda txs, from_client: None,
    )
    return admission, verifier


def _add(signer: object, nonce: int, chain_id: str) -> bytes:
    return make_tx(
        Kind.ADD_VALIDATOR,
        {"name": "v4", "public_key": vpub("v4"), "address": address("v4")},
        signer_key=signer,  # type: ignore[arg-type]
        nonce=nonce,
        chain_id=chain_id,
    ).encode()


async def test_validators_may_submit_evidence_and_nobody_else_unregistered(gw: GovWorld) -> None:
    admission, verifier = _admission(gw)
    first, second = conflicting_votes("prepare", vkey("v2"), "v2", epoch=0)
    args = {"epoch": 0, "first": first, "second": second}
    chain = gw.genesis.chain_id
    by_validator = make_tx(
        Kind.REPORT_EQUIVOCATION, args, signer_key=vkey("v0"), nonce=0, chain_id=chain
    )
    by_stranger = make_tx(
        Kind.REPORT_EQUIVOCATION, args, signer_key=key("stranger"), nonce=0, chain_id=chain
    )
    # A validator key is not an account: other kinds stay closed to it.
    transfer = make_tx(
        Kind.TRANSFER,
        {"asset_id": "BOND", "to_account": public_key(ALICE), "amount": 1},
        signer_key=vkey("v1"),
        nonce=0,
        chain_id=chain,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(verifier.run)
        outcomes = await admission.admit(
            [by_validator.encode(), by_stranger.encode(), transfer.encode()], from_client=True
        )
        nursery.cancel_scope.cancel()
    assert [o.reason for o in outcomes] == [
        None,
        "account_not_registered",
        "account_not_registered",
    ]


async def test_admission_follows_the_ledgers_regulator_keys(gw: GovWorld) -> None:
    admission, verifier = _admission(gw)
    new = key("new-regulator")
    chain = gw.genesis.chain_id
    async with trio.open_nursery() as nursery:
        await nursery.start(verifier.run)
        [before] = await admission.admit([_add(new, 0, chain)], from_client=True)
        assert before.reason == "account_not_registered"
        r = gw.gov(Kind.SET_REGULATOR_KEYS, public_keys=[public_key(new)], threshold=1)
        assert r.applied, r
        [after] = await admission.admit([_add(new, 0, chain)], from_client=True)
        assert after.admitted, after
        [old] = await admission.admit([_add(gw.regulators[0], 1, chain)], from_client=True)
        assert old.reason == "account_not_registered"  # no longer a regulator, no account
        nursery.cancel_scope.cancel()
