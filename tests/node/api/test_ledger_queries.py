"""The API's read side over a real LMDB Ledger, through the real server and client."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from config.genesis import AccountSpec, AssetSpec
from consensus.certificate import CommitCertificate
from consensus.encoding import digest
from consensus.messages import vote_body
from consensus.signing import Purpose, sign
from node.api.errors import UnavailableError
from node.api.ledger_queries import LedgerQueries, decode_cursor, encode_cursor
from node.api.results import BlockInfo, ReceiptInfo, StatusInfo
from node.api.server import ClientApiServer
from node.client import (
    ApiError,
    AsyncClient,
    FinalityError,
    block_tx_ids,
    verify_finality,
    verify_inclusion,
)
from node.client.connection import connection_over
from node.finality import FinalityRecord, Proposal
from node.ledger import Block
from node.tx import Kind, public_key
from tests.node.api.helpers import connect_stream
from tests.node.ledger.world import World, key, kyc, make_genesis

BOND = "BOND-2036"
ISSUER, ALICE, BOB = key("issuer"), key("alice"), key("bob")


class ReadOnlyBackend(LedgerQueries):
    """LedgerQueries plus refusals for what needs a running node."""

    async def submit(self, tx: bytes) -> bytes:
        raise UnavailableError("read-only")

    async def wait_receipt(self, tx_id: bytes) -> ReceiptInfo:
        raise UnavailableError("read-only")

    async def wait_block(self, height: int) -> BlockInfo:
        return await self.block(height)

    async def status(self) -> StatusInfo:
        raise UnavailableError("read-only")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    genesis = make_genesis(
        accounts=[
            AccountSpec(
                public_key=public_key(ISSUER),
                category="entity",
                kyc_hash=kyc("issuer"),
                roles=frozenset({"issuer"}),
            ),
            *(
                AccountSpec(public_key=public_key(k), category="individual", kyc_hash=kyc(n))
                for n, k in (("alice", ALICE), ("bob", BOB))
            ),
        ],
        assets=[
            AssetSpec(
                asset_id=BOND,
                name="State bond 2036",
                decimals=2,
                cap=10**6,
                issuer=public_key(ISSUER),
            )
        ],
    )
    w = World(tmp_path / "ledger", genesis)
    assert w.one(
        ISSUER, Kind.MINT, asset_id=BOND, to_account=public_key(ALICE), amount=1000
    ).applied
    for amount in (10, 20, 10**9):
        w.one(ALICE, Kind.TRANSFER, asset_id=BOND, to_account=public_key(BOB), amount=amount)
    w.one(
        ISSUER,
        Kind.FREEZE,
        account=public_key(BOB),
        asset_id=BOND,
        reason_code="COURT",
        order_ref="O-1",
    )
    yield w
    w.close()


@asynccontextmanager
async def client_for(world: World) -> AsyncIterator[AsyncClient]:
    server = ClientApiServer(ReadOnlyBackend(world.ledger))
    async with trio.open_nursery() as nursery:
        stream = connect_stream(nursery, server)
        async with connection_over(stream) as connection:
            yield AsyncClient(connection, chain_id=world.genesis.chain_id)
        await stream.aclose()


async def test_balances_accounts_assets(world: World) -> None:
    async with client_for(world) as client:
        assert await client.balance(BOND, public_key(ALICE)) == 970
        assert await client.balance(BOND, public_key(BOB)) == 30
        with pytest.raises(ApiError, match="not_found"):
            await client.balance("NOPE", public_key(ALICE))
        asset = await client.asset(BOND)
        assert (asset.supply, asset.cap, asset.decimals, asset.issuer) == (
            1000,
            10**6,
            2,
            public_key(ISSUER),
        )
        bob = await client.account(public_key(BOB))
        assert bob.registered and not bob.frozen and bob.frozen_assets == (BOND,)
        issuer = await client.account(public_key(ISSUER))
        assert issuer.roles == ("issuer",)
        alice = await client.account(public_key(ALICE))
        assert alice.next_nonce == 3 == await client.next_nonce(public_key(ALICE))
        with pytest.raises(ApiError, match="not_found"):
            await client.account(bytes(32))


async def test_receipts_and_blocks(world: World) -> None:
    record = world.ledger.block(4)
    assert record is not None
    tx_id = record.txs[0]
    async with client_for(world) as client:
        block = await client.block(4)
        assert block.height == 4 and len(block.tx_ids) == 1
        receipt = await client.receipt(block.tx_ids[0])
        assert (receipt.status, receipt.reason, receipt.height) == (
            "rejected",
            "insufficient_balance",
            4,
        )
        assert receipt.proof is None  # World applies blocks without certificates
        assert block.block_hash == record.block_hash
        assert tx_id  # raw bytes present
        with pytest.raises(ApiError, match="not_found"):
            await client.block(99)
        with pytest.raises(ApiError, match="not_found"):
            await client.receipt(bytes(32))


def _apply_certified(world: World, *txs: bytes) -> CommitCertificate:
    """Apply a block as the node does: the payload certified by the genesis validator's
    COMMIT, stored with its certificate as the block's finality record."""
    ledger = world.ledger
    height, timestamp_ms = ledger.height + 1, world.time_ms + 1
    payload = Proposal(timestamp_ms=timestamp_ms, txs=txs).encode()
    vote = vote_body(0, height, digest(payload))
    certificate = CommitCertificate(
        view=0,
        seq=height,
        digest=digest(payload),
        commits=(("v0", sign(key("validator-0"), Purpose.COMMIT, ledger.chain_id, vote)),),
    )
    record = FinalityRecord(payload=payload, certificate=certificate)
    ledger.apply_block(
        Block(height=height, timestamp_ms=timestamp_ms, txs=txs), certificate=record.encode()
    )
    world.time_ms = timestamp_ms
    return certificate


def _validators(world: World) -> list[tuple[str, bytes]]:
    return [(v.name, v.public_key) for v in world.genesis.validators]


async def test_certificate_becomes_a_verifiable_proof_of_inclusion(world: World) -> None:
    args = {"asset_id": BOND, "to_account": public_key(ISSUER), "amount": 1}
    first, second = (world.tx(ALICE, Kind.TRANSFER, args) for _ in range(2))
    _apply_certified(world, b"junk", first.encode(), second.encode())
    chain_id = world.genesis.chain_id
    async with client_for(world) as client:
        receipt = await client.receipt(second.tx_id)
        assert receipt.proof is not None and receipt.index == 2
        verify_finality(receipt, _validators(world), chain_id)
        block = await client.block(receipt.height)
        assert block_tx_ids(block, chain_id) == (None, first.tx_id, second.tx_id)
        verify_inclusion(receipt, _validators(world), chain_id, block=block)
        # Each link of the chain is checked.
        moved = dataclasses.replace(receipt, index=1)
        with pytest.raises(FinalityError, match="not at index 1"):
            verify_inclusion(moved, _validators(world), chain_id)
        tampered = dataclasses.replace(block, block=block.block.replace(b"junk", b"JUNK"))
        with pytest.raises(FinalityError, match="tx_root"):
            verify_inclusion(receipt, _validators(world), chain_id, block=tampered)
        with pytest.raises(FinalityError):
            verify_inclusion(receipt, _validators(world), "other-chain")
        assert receipt.proof is not None
        swapped = dataclasses.replace(
            receipt.proof, certificate=receipt.proof.certificate.replace(b"junk", b"JUNK")
        )
        with pytest.raises(FinalityError, match="different payload"):
            verify_inclusion(
                dataclasses.replace(receipt, proof=swapped), _validators(world), chain_id
            )
        older = await client.block(receipt.height - 1)  # no certificate (World applied it)
        with pytest.raises(FinalityError):
            verify_inclusion(
                dataclasses.replace(receipt, height=older.height),
                _validators(world),
                chain_id,
                block=older,
            )


async def test_history_pages(world: World) -> None:
    async with client_for(world) as client:
        first = await client.history(public_key(ALICE), limit=2)
        assert len(first.tx_ids) == 2 and first.next_cursor is not None
        rest = await client.history(public_key(ALICE), limit=2, cursor=first.next_cursor)
        # mint to alice + her three transfers, newest first, no overlap between pages
        assert len(rest.tx_ids) == 2 and rest.next_cursor is None
        assert len(set(first.tx_ids + rest.tx_ids)) == 4
        with pytest.raises(ApiError, match="bad_request"):
            await client.history(public_key(ALICE), limit=2, cursor=b"short")
        # A cursor of the right size that names no entry of this account's history.
        with pytest.raises(ApiError, match=r"bad_request.*not in the history of account"):
            await client.history(public_key(ALICE), limit=2, cursor=encode_cursor(10**6, 0))
    assert decode_cursor(encode_cursor(5, 7)) == (5, 7)


async def test_check_uses_the_ledger_rules(world: World) -> None:
    ok = world.tx(
        ALICE,
        Kind.TRANSFER,
        {"asset_id": BOND, "to_account": public_key(ISSUER), "amount": 1},
        nonce=3,
    )
    broke = world.tx(
        ALICE,
        Kind.TRANSFER,
        {"asset_id": BOND, "to_account": public_key(ISSUER), "amount": 10**6},
        nonce=3,
    )
    frozen = world.tx(
        ALICE,
        Kind.TRANSFER,
        {"asset_id": BOND, "to_account": public_key(BOB), "amount": 1},
        nonce=3,
    )
    async with client_for(world) as client:
        verdict = await client.check(frozen)
        assert (verdict.accepted, verdict.reason) == (False, "account_frozen")
        verdict = await client.check(ok)
        assert verdict.accepted, verdict
        verdict = await client.check(broke)
        assert (verdict.accepted, verdict.reason) == (False, "insufficient_balance")
        verdict = await client.check(b"garbage")
        assert (verdict.accepted, verdict.reason) == (False, "malformed")
    assert world.ledger.nonce(public_key(ALICE)) == 3  # check changed nothing


async def test_receipt_stream_from_the_ledger(world: World) -> None:
    async with client_for(world) as client, client.subscribe_receipts(2) as receipts:
        seen = []
        async for receipt in receipts:
            seen.append((receipt.height, receipt.status))
            if receipt.height == 4:
                break
    assert seen == [(2, "applied"), (3, "applied"), (4, "rejected")]


async def test_an_undecodable_transaction_has_no_id_and_no_receipt(world: World) -> None:
    world.apply(b"garbage")
    async with client_for(world) as client:
        block = await client.block(world.ledger.height)
        assert block.tx_ids == ()
        assert block_tx_ids(block, world.genesis.chain_id) == (None,)
        with pytest.raises(ApiError, match="not_found"):
            await client.receipt(digest(b"garbage"))
