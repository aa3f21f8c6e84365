"""A primary that keeps the chain moving but leaves one signer's transactions out of every
block is replaced (R8a, docs/consensus.md): four real validators in one process."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import nacl.signing
import trio

from node.client import AsyncClient
from node.cluster.init import FAST_TIMEOUTS
from node.mempool import PendingTx
from node.tx import Kind
from tests.node.runtime.harness import running_cluster

KYC = hashlib.sha256(b"kyc").digest()
ASSET = "BOND-2036"
REQUEST_TIMEOUT_MS = 1_500
WAIT_S_MAX = 30


async def test_a_primary_that_censors_one_signer_is_replaced(tmp_path: Path) -> None:
    alice, carol, bob = (nacl.signing.SigningKey.generate() for _ in range(3))
    alice_pub, carol_pub, bob_pub = (bytes(k.verify_key) for k in (alice, carol, bob))
    timeouts = dataclasses.replace(FAST_TIMEOUTS, request_timeout_ms=REQUEST_TIMEOUT_MS)
    async with running_cluster(tmp_path, timeouts=timeouts) as cluster:
        host, port = cluster.client_address("node-1")
        async with AsyncClient.connect(host, port) as client:
            for account in (alice_pub, carol_pub, bob_pub):
                out = await client.send(
                    Kind.REGISTER_ACCOUNT,
                    {"account": account, "category": "individual", "kyc_hash": KYC},
                    key=cluster.regulator,
                    wait=True,
                )
                assert out.status == "committed", out
            out = await client.send(
                Kind.CREATE_ASSET,
                {"asset_id": ASSET, "name": "State bond 2036", "decimals": 2, "cap": 10**9},
                key=cluster.issuer,
                wait=True,
            )
            assert out.status == "committed", out
            for holder in (alice_pub, carol_pub):
                out = await client.send(
                    Kind.MINT,
                    {"asset_id": ASSET, "to_account": holder, "amount": 1_000_000},
                    key=cluster.issuer,
                    wait=True,
                )
                assert out.status == "committed", out

            primary = cluster.nodes["node-0"]
            assert primary.replica.view == 0 and primary.replica.is_primary
            take_batch = primary.mempool.take_batch

            def censoring_take_batch(**limits: int) -> list[PendingTx]:
                """node-0 leaves alice's transactions out of every block it proposes."""
                return [tx for tx in take_batch(**limits) if tx.signer != alice_pub]

            primary.mempool.take_batch = censoring_take_batch  # type: ignore[method-assign]
            censored = await client.send(
                Kind.TRANSFER,
                {"asset_id": ASSET, "to_account": bob_pub, "amount": 10},
                key=alice,
            )
            assert censored.status == "pending", censored
            follower = cluster.nodes["node-1"].ledger
            carol_commits = 0
            # Carol keeps trading, so node-0 keeps ordering blocks: the view-change timer
            # (no progress at all) never fires; only alice's wait can catch the primary.
            async with AsyncClient.connect(host, port) as other:
                with trio.move_on_after(WAIT_S_MAX):
                    while follower.receipt(censored.tx_id) is None:
                        out = await other.send(
                            Kind.TRANSFER,
                            {"asset_id": ASSET, "to_account": bob_pub, "amount": 1},
                            key=carol,
                            wait=True,
                        )
                        assert out.status == "committed", out
                        carol_commits += 1
            receipt = follower.receipt(censored.tx_id)
            assert receipt is not None and receipt.applied, (receipt, cluster.logs["node-1"])

        # node-0 kept ordering carol's transfers while alice's waited...
        assert carol_commits >= 5, carol_commits
        # ...and the backups replaced it for leaving hers out, not for a lack of progress.
        blamed = [
            name
            for name in ("node-1", "node-2", "node-3")
            if cluster.nodes[name].replica.counters.get("request_timeout", 0) >= 1
        ]
        assert len(blamed) >= 2, {n: node.replica.counters for n, node in cluster.nodes.items()}
        assert all(node.replica.view >= 1 for node in cluster.nodes.values())
        assert cluster.nodes["node-1"].ledger.balance(ASSET, bob_pub) == 10 + carol_commits
