"""Admission: each refusal has a stable reason and changes nothing; resubmits are idempotent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from config.genesis import AccountSpec
from node.mempool import Mempool, PendingTx
from node.runtime.admission import Admission
from node.runtime.verifier import BatchVerifier, VerifiedCache
from node.tx import Kind, TxLimits, make_tx, public_key
from tests.node.ledger.world import World, key, kyc, make_genesis

ALICE = key("alice")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    genesis = make_genesis(
        accounts=[
            AccountSpec(public_key=public_key(ALICE), category="individual", kyc_hash=kyc("alice"))
        ]
    )
    w = World(tmp_path / "ledger", genesis)
    yield w
    w.close()


def _admission(
    world: World, *, capacity: int = 10
) -> tuple[Admission, BatchVerifier, Mempool, list[tuple[list[PendingTx], bool]]]:
    mempool = Mempool(capacity_txs=capacity, gap_wait_ms=1000)
    admitted: list[tuple[list[PendingTx], bool]] = []
    verifier = BatchVerifier(threads=2)
    admission = Admission(
        chain_id=world.genesis.chain_id,
        tx_limits=TxLimits(),
        ledger=world.ledger,
        mempool=mempool,
        verifier=verifier,
        cache=VerifiedCache(entries_max=100),
        clock_ms=lambda: 0,
        on_admitted=lambda txs, from_client: admitted.append((txs, from_client)),
    )
    return admission, verifier, mempool, admitted


def _transfer(world: World, nonce: int, *, chain_id: str | None = None) -> bytes:
    args = {"asset_id": "BOND", "to_account": public_key(key("bob")), "amount": 1}
    return make_tx(
        Kind.TRANSFER,
        args,
        signer_key=ALICE,
        nonce=nonce,
        chain_id=chain_id or world.genesis.chain_id,
    ).encode()


async def test_refusals_carry_reasons_and_change_nothing(world: World) -> None:
    admission, verifier, mempool, admitted = _admission(world)
    good = _transfer(world, 0)
    tampered = bytearray(good)
    tampered[-1] ^= 1  # flips a signature bit
    async with trio.open_nursery() as nursery:
        await nursery.start(verifier.run)
        outcomes = await admission.admit(
            [
                b"garbage",
                bytes(tampered),
                _transfer(world, 0, chain_id="other-chain"),
                b"x" * 20_000,
            ],
            from_client=True,
        )
        assert [o.reason for o in outcomes] == [
            "malformed",
            "bad_signature",
            "wrong_chain",
            "oversize",
        ]
        assert len(mempool) == 0 and admitted == []

        (ok,) = await admission.admit([good], from_client=True)
        assert ok.admitted and len(mempool) == 1
        (again,) = await admission.admit([good], from_client=False)
        assert again.admitted and again.tx_id == ok.tx_id and len(mempool) == 1  # idempotent
        (taken,) = await admission.admit([_transfer(world, 0) + b""], from_client=True)
        assert taken.admitted  # same bytes, same id

        # A different transaction with an already pending nonce is refused.
        other = make_tx(
            Kind.TRANSFER,
            {"asset_id": "BOND", "to_account": public_key(key("carol")), "amount": 1},
            signer_key=ALICE,
            nonce=0,
            chain_id=world.genesis.chain_id,
        ).encode()
        (clash,) = await admission.admit([other], from_client=True)
        assert clash.reason == "nonce_taken"
        nursery.cancel_scope.cancel()
    assert [from_client for _, from_client in admitted] == [True]


async def test_full_mempool_refuses_new_transactions(world: World) -> None:
    admission, verifier, mempool, _ = _admission(world, capacity=1)
    async with trio.open_nursery() as nursery:
        await nursery.start(verifier.run)
        first, second = await admission.admit(
            [_transfer(world, 0), _transfer(world, 1)], from_client=True
        )
        assert first.admitted and second.reason == "mempool_full"
        nursery.cancel_scope.cancel()
    assert len(mempool) == 1


async def test_a_cached_transaction_is_still_checked_for_its_chain(world: World) -> None:
    """A faulty primary's proposal can put a foreign-chain tx in the verified cache; admission
    must not take the cache hit as admissible (it would be re-proposed forever)."""
    admission, verifier, mempool, _ = _admission(world)
    foreign = make_tx(
        Kind.TRANSFER,
        {"asset_id": "BOND", "to_account": public_key(key("bob")), "amount": 1},
        signer_key=ALICE,
        nonce=0,
        chain_id="other-chain",
    )
    admission._cache.put(foreign.encode(), foreign, True)
    async with trio.open_nursery() as nursery:
        await nursery.start(verifier.run)
        (outcome,) = await admission.admit([foreign.encode()], from_client=True)
        nursery.cancel_scope.cancel()
    assert outcome.reason == "wrong_chain" and len(mempool) == 0


async def test_unregistered_signers_are_refused(world: World) -> None:
    admission, verifier, mempool, _ = _admission(world)
    stranger = make_tx(
        Kind.TRANSFER,
        {"asset_id": "BOND", "to_account": public_key(ALICE), "amount": 1},
        signer_key=key("stranger"),
        nonce=0,
        chain_id=world.genesis.chain_id,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(verifier.run)
        (outcome,) = await admission.admit([stranger.encode()], from_client=True)
        nursery.cancel_scope.cancel()
    assert outcome.reason == "account_not_registered" and len(mempool) == 0


async def test_an_under_signed_regulator_act_is_refused(tmp_path: Path) -> None:
    world = World(tmp_path / "two-of-two", make_genesis(regulators=2, threshold=2))
    try:
        admission, verifier, mempool, _ = _admission(world)
        lone = world.tx(
            world.regulators[0],
            Kind.REGISTER_ACCOUNT,
            {"account": public_key(key("dave")), "category": "individual", "kyc_hash": kyc("d")},
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(verifier.run)
            (outcome,) = await admission.admit([lone.encode()], from_client=True)
            nursery.cancel_scope.cancel()
        assert outcome.reason == "regulator_threshold_not_met" and len(mempool) == 0
    finally:
        world.close()
