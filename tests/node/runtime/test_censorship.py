"""R8a with four real validators in one process (docs/consensus.md): a primary that keeps the
chain moving but leaves one signer's transactions out of every block is replaced; a
transaction the primary never received is forwarded to it instead of blamed on it."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import nacl.signing
import pytest
import trio

from node.client import AsyncClient
from node.cluster.init import FAST_TIMEOUTS
from node.mempool import PendingTx
from node.runtime.node import Node
from node.tx import Kind, SignedTransaction
from tests.node.runtime.harness import RunningCluster, running_cluster, wait_until

KYC = hashlib.sha256(b"kyc").digest()
ASSET = "BOND-2036"
REQUEST_TIMEOUT_MS = 1_500
WAIT_S_MAX = 30


async def _registered_and_funded(
    client: AsyncClient, cluster: RunningCluster, holders: list[bytes]
) -> None:
    for account in holders:
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
    for holder in holders:
        out = await client.send(
            Kind.MINT,
            {"asset_id": ASSET, "to_account": holder, "amount": 1_000_000},
            key=cluster.issuer,
            wait=True,
        )
        assert out.status == "committed", out


async def _unsent_transfers(
    cluster: RunningCluster, senders: list[nacl.signing.SigningKey]
) -> list[SignedTransaction]:
    """Each sender's transfer of 3 to bob, a fresh account: all registered and funded, the
    transfers signed and sent nowhere."""
    bob = bytes(nacl.signing.SigningKey.generate().verify_key)
    host, port = cluster.client_address("node-1")
    async with AsyncClient.connect(host, port) as client:
        await _registered_and_funded(
            client, cluster, [*(bytes(k.verify_key) for k in senders), bob]
        )
        return [
            await client.build(
                Kind.TRANSFER, {"asset_id": ASSET, "to_account": bob, "amount": 3}, key=k
            )
            for k in senders
        ]


async def _admit_only_at(node: Node, stx: SignedTransaction) -> None:
    """`stx` in `node`'s pool as if gossiped to it alone (not its client's: it never resends
    it on its own account)."""
    (outcome,) = await node.driver._admission.admit([stx.encode()], from_client=False)
    assert outcome.admitted, outcome


@pytest.mark.parametrize(
    "request_timeout_ms", [REQUEST_TIMEOUT_MS, FAST_TIMEOUTS.request_timeout_ms]
)
async def test_a_transaction_the_primary_never_got_is_forwarded_not_blamed(
    tmp_path: Path, request_timeout_ms: int
) -> None:
    """Only node-2 holds alice's transfer (as if the gossip to the others was lost, and it is
    not node-2's client's, so node-2 would never resend it): before either timer could blame
    the primary, node-2 forwards it, the primary orders it, and nobody changes view. With
    the cluster's request timeout (5 s) the chain is otherwise idle, so the view-change
    timer (1 s without progress while work is pending, R8) is the one to beat: forwarding at
    half the request timeout came too late, and the primary was replaced (seen in CI as
    test_partition's "stays in the view of the others", after a heal lost one gossip)."""
    timeouts = dataclasses.replace(FAST_TIMEOUTS, request_timeout_ms=request_timeout_ms)
    async with running_cluster(tmp_path, timeouts=timeouts) as cluster:
        (stx,) = await _unsent_transfers(cluster, [nacl.signing.SigningKey.generate()])
        lonely = cluster.nodes["node-2"]
        await _admit_only_at(lonely, stx)
        assert all(
            stx.tx_id not in node.mempool
            for name, node in cluster.nodes.items()
            if name != "node-2"
        )
        await wait_until(
            lambda: lonely.ledger.receipt(stx.tx_id) is not None,
            timeout_s=WAIT_S_MAX,
            what="the forwarded transfer committed",
        )
        assert all(node.replica.view == 0 for node in cluster.nodes.values())
        assert lonely.replica.counters.get("request_timeout", 0) == 0


async def test_a_second_lost_transaction_is_forwarded_in_time_too(tmp_path: Path) -> None:
    """Two transfers only node-2 holds, the second arriving 0.4 s after the first, on an
    otherwise idle chain with the cluster's timeouts: the first is forwarded at 0.5 s and
    committed, which restarts node-2's view-change timer (1 s) for the second. The second
    waited half that timeout at 0.9 s; forwarding passes were once at most one per
    regossip interval (2 s), so it went out after the timer had moved node-2 alone into
    view 1. Now a pass may come every quarter of the view-change timeout."""
    async with running_cluster(tmp_path, timeouts=FAST_TIMEOUTS) as cluster:
        senders = [nacl.signing.SigningKey.generate() for _ in range(2)]
        first, second = await _unsent_transfers(cluster, senders)
        lonely = cluster.nodes["node-2"]
        for stx in (first, second):
            await _admit_only_at(lonely, stx)
            await trio.sleep(0.4)  # the scenario's input: the second arrives later
        await wait_until(
            lambda: all(lonely.ledger.receipt(s.tx_id) is not None for s in (first, second)),
            timeout_s=WAIT_S_MAX,
            what="both forwarded transfers committed",
        )
        assert all(node.replica.view == 0 for node in cluster.nodes.values())
        assert lonely.replica.counters.get("view_change_timeout", 0) == 0


async def test_a_backup_alone_in_a_view_change_still_forwards(tmp_path: Path) -> None:
    """If a backup does time out alone (here: its forwarding made slower than its timer, as
    it was before ff96a5a), it sits in view 1 while the others stay in view 0, which they
    leave only when they time out themselves. It must still hand the transaction on: the
    primary of view 0 orders it. (It used to forward only in an active view, and the
    transfer was still pending after 30 s.)"""
    async with running_cluster(tmp_path, timeouts=FAST_TIMEOUTS) as cluster:
        (stx,) = await _unsent_transfers(cluster, [nacl.signing.SigningKey.generate()])
        lonely = cluster.nodes["node-2"]
        late = FAST_TIMEOUTS.view_change_timeout_ms * 5 // 2  # after its timer runs out
        lonely.driver._settings = dataclasses.replace(
            lonely.driver._settings, forward_waiting_after_ms=late
        )
        await _admit_only_at(lonely, stx)
        await wait_until(
            lambda: lonely.ledger.receipt(stx.tx_id) is not None,
            timeout_s=WAIT_S_MAX,
            what="the transfer forwarded from a view change committed",
        )
        assert lonely.replica.counters.get("view_change_timeout", 0) >= 1  # it did go alone
        others = [node for name, node in cluster.nodes.items() if name != "node-2"]
        assert all(node.replica.view == 0 for node in others)


async def test_a_primary_that_censors_one_signer_is_replaced(tmp_path: Path) -> None:
    alice, carol, bob = (nacl.signing.SigningKey.generate() for _ in range(3))
    alice_pub, carol_pub, bob_pub = (bytes(k.verify_key) for k in (alice, carol, bob))
    timeouts = dataclasses.replace(FAST_TIMEOUTS, request_timeout_ms=REQUEST_TIMEOUT_MS)
    async with running_cluster(tmp_path, timeouts=timeouts) as cluster:
        host, port = cluster.client_address("node-1")
        async with AsyncClient.connect(host, port) as client:
            await _registered_and_funded(client, cluster, [alice_pub, carol_pub, bob_pub])

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
        assert cluster.nodes["node-1"].ledger.balance(ASSET, bob_pub) == 1_000_010 + carol_commits
