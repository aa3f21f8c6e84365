"""Batches fit their limit once encoded, and executing a committed block never depends on the
executing node's own settings."""

from __future__ import annotations

from pathlib import Path

import trio
from hypothesis import given
from hypothesis import strategies as st

from config.genesis import AccountSpec, AssetSpec
from consensus.certificate import CommitCertificate
from node.finality import (
    PAYLOAD_HEADER_BYTES,
    PAYLOAD_TX_OVERHEAD_BYTES,
    FinalityRecord,
    Proposal,
)
from node.ledger.pipeline import BlockPipeline
from node.mempool import Mempool, PendingTx
from node.runtime.execution import ProposalRules, prepare_block, submit_block
from node.runtime.verifier import BatchVerifier, VerifiedCache
from node.tx import Kind, TxLimits, make_tx, public_key
from tests.node.ledger.world import World, key, kyc, make_genesis


@given(st.lists(st.integers(1, 70_000), min_size=1, max_size=60), st.integers(1_000, 400_000))
def test_a_cut_batch_never_exceeds_the_byte_limit_once_encoded(
    sizes: list[int], limit: int
) -> None:
    pool = Mempool(capacity_txs=1000, gap_wait_ms=1000)
    for i, size in enumerate(sizes):
        signer = i.to_bytes(32, "big")
        pool.add(
            PendingTx(tx_id=signer, signer=signer, nonce=0, raw=b"x" * size, received_ms=0),
            next_nonce=0,
        )
    batch = pool.take_batch(
        txs_max=1000,
        bytes_max=limit - PAYLOAD_HEADER_BYTES,
        tx_overhead_bytes=PAYLOAD_TX_OVERHEAD_BYTES,
    )
    payload = Proposal(timestamp_ms=2**62, txs=tuple(t.raw for t in batch)).encode()
    assert len(payload) <= limit


ISSUER = key("issuer")
ALICE = key("alice")


def _world(path: Path) -> World:
    genesis = make_genesis(
        accounts=[
            AccountSpec(
                public_key=public_key(ISSUER),
                category="entity",
                kyc_hash=kyc("i"),
                roles=frozenset({"issuer"}),
            ),
            AccountSpec(public_key=public_key(ALICE), category="individual", kyc_hash=kyc("a")),
        ],
        assets=[
            AssetSpec(
                asset_id="BOND", name="Bond", decimals=2, cap=10**9, issuer=public_key(ISSUER)
            )
        ],
    )
    return World(path, genesis)


async def test_a_committed_block_applies_whatever_the_local_limits(tmp_path: Path) -> None:
    """Execution takes no local limits at all: a memo longer than a strict node's
    memo_bytes_max still applies, with the protocol-wide EXECUTION_TX_LIMITS."""
    world = _world(tmp_path / "w")
    strict = TxLimits(tx_bytes_max=256, memo_bytes_max=8)
    mint = make_tx(
        Kind.MINT,
        {"asset_id": "BOND", "to_account": public_key(ALICE), "amount": 500},
        signer_key=ISSUER,
        nonce=0,
        chain_id=world.genesis.chain_id,
        memo="a memo longer than the strict node's local memo limit",
    )
    assert len(mint.body.memo or b"") > strict.memo_bytes_max
    payload = Proposal(timestamp_ms=world.time_ms + 1, txs=(mint.encode(),)).encode()
    record = FinalityRecord(
        payload=payload,
        certificate=CommitCertificate(view=0, seq=1, digest=bytes(32), commits=()),
    )
    verifier = BatchVerifier(threads=1)
    async with trio.open_nursery() as nursery:
        await nursery.start(verifier.run)
        prepared = await prepare_block(
            1,
            record,
            cache=VerifiedCache(entries_max=10),
            verifier=verifier,
            on_undecodable=lambda seq, why: None,
        )
        with BlockPipeline(world.ledger) as pipeline:
            pending = submit_block(pipeline, prepared)
            pending.wait()
        applied = prepared.applied(pending)
        nursery.cancel_scope.cancel()
    assert [r.applied for r in applied.receipts] == [True]
    assert world.ledger.balance("BOND", public_key(ALICE)) == 500
    assert applied.state_digest == world.ledger.state_digest
    world.close()


async def test_only_a_timestamp_ahead_of_our_clock_is_voted_against() -> None:
    from node.runtime.execution import validate_proposal

    rules = ProposalRules(
        chain_id="c", txs_max=10, bytes_max=10_000, clock_skew_max_ms=1_000, tx_limits=TxLimits()
    )
    verifier = BatchVerifier(threads=1)
    cache = VerifiedCache(entries_max=10)
    now = 1_767_225_600_000

    async def verdict(ts: int) -> bool:
        payload = Proposal(timestamp_ms=ts, txs=()).encode()
        return (
            await validate_proposal(
                payload, rules=rules, cache=cache, verifier=verifier, now_ms=now
            )
        ).valid

    assert await verdict(now - 3_600_000)  # re-proposed after a long view change: fine
    assert await verdict(now + 1_000)
    assert not await verdict(now + 1_001)
