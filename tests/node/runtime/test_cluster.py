"""Four real validators in one process: transactions submitted to any node commit on all,
every node ends with the same blocks and state digest, and finality proofs verify."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import nacl.signing
import trio

from node.client import AsyncClient
from node.tx import Kind
from tests.node.runtime.harness import restart_node, running_cluster, stop_node, wait_until

KYC = hashlib.sha256(b"kyc").digest()


async def test_transactions_commit_on_every_node(tmp_path: Path) -> None:
    alice = nacl.signing.SigningKey.generate()
    bob = nacl.signing.SigningKey.generate()
    alice_pub, bob_pub = bytes(alice.verify_key), bytes(bob.verify_key)
    async with running_cluster(tmp_path) as cluster:
        regulator, issuer = cluster.regulator, cluster.issuer
        host, port = cluster.client_address("node-1")  # a backup: it must reach the primary
        async with AsyncClient.connect(host, port) as client:
            for account in (alice_pub, bob_pub):
                out = await client.send(
                    Kind.REGISTER_ACCOUNT,
                    {"account": account, "category": "individual", "kyc_hash": KYC},
                    key=regulator,
                    wait=True,
                )
                assert out.status == "committed", out
            out = await client.send(
                Kind.CREATE_ASSET,
                {
                    "asset_id": "BOND-2036",
                    "name": "State bond 2036",
                    "decimals": 2,
                    "cap": 1_000_000,
                },
                key=issuer,
                wait=True,
            )
            assert out.status == "committed", out
            out = await client.send(
                Kind.MINT,
                {"asset_id": "BOND-2036", "to_account": alice_pub, "amount": 5_000},
                key=issuer,
                wait=True,
            )
            assert out.status == "committed", out
            out = await client.send(
                Kind.TRANSFER,
                {"asset_id": "BOND-2036", "to_account": bob_pub, "amount": 1_250},
                key=alice,
                wait=True,
            )
            assert out.status == "committed", out
            assert out.receipt is not None and out.receipt.proof is not None
            status = await client.status()
            validators = tuple((v.name, v.public_key) for v in status.validators)
            assert client.verify_finality(
                out.receipt, validators=validators, chain_id=status.chain_id
            )

            rejected = await client.send(
                Kind.TRANSFER,
                {"asset_id": "BOND-2036", "to_account": bob_pub, "amount": 10_000},
                key=alice,
                wait=True,
            )
            assert (rejected.status, rejected.reason) == ("rejected", "insufficient_balance")
            top = out.height if rejected.height is None else rejected.height
            assert top is not None

        await wait_until(
            lambda: min(cluster.heights().values()) >= top, what="all nodes at the same height"
        )
        digests = set()
        for node in cluster.nodes.values():
            block = node.ledger.block(top)
            assert block is not None, node.name
            digests.add(block.state_digest)
        assert len(digests) == 1, "state digests diverged"
        for node in cluster.nodes.values():
            assert node.ledger.balance("BOND-2036", alice_pub) == 3_750
            assert node.ledger.balance("BOND-2036", bob_pub) == 1_250

        # Each node loaded its whole state (genesis accounts) into the state cache at start,
        # and said so.
        ready = next(x for x in cluster.logs["node-1"].getvalue().splitlines() if "node ready" in x)
        warmed = re.search(r"state_cache_warmed=(\d+)", ready)
        assert warmed is not None and int(warmed.group(1)) >= 1, ready  # the issuer's account

        # Operators see the state cache, the block pipeline and the process in the metrics
        # (refreshed each second).
        metrics = cluster.nodes["node-1"].metrics
        await wait_until(
            lambda: (
                _metric(metrics.render(), "assetledger_state_cache_loads") > 0
                and _metric(metrics.render(), "assetledger_ledger_blocks_written_total") >= top
                # alice, bob and the issuer (registrations and mints touched them)
                and _metric(metrics.render(), "assetledger_history_heads_cached") >= 3
            ),
            what="the state cache's, the history heads' and the block pipeline's metrics",
        )
        text = metrics.render()
        assert _metric(text, "assetledger_state_cache_entries") > 0
        assert _metric(text, "assetledger_state_cache_cuts") == 0
        # ... and where applying blocks spends its time.
        assert 0 < _metric(text, "assetledger_ledger_commits_total") <= top
        for phase in ("evaluate", "puts", "commit"):
            assert _metric(text, f'assetledger_ledger_phase_seconds_total{{phase="{phase}"}}') > 0
        assert b"python_gc_collections_total" in text
        assert b"process_resident_memory_bytes" in text


def _metric(text: bytes, name: str) -> float:
    prefix = name.encode() + b" "
    line = next((x for x in text.splitlines() if x.startswith(prefix)), None)
    assert line is not None, f"{name} missing from the metrics"
    return float(line[len(prefix) :])


async def test_the_driver_reports_whom_it_hears_to_the_replica(tmp_path: Path) -> None:
    """R8b's input, from real sockets, through the driver to the replica: every peer once the
    links are up, a stopped node gone (its connection closed), back once it runs again. That
    a silent peer drops out within the window while its connection is still open is tested
    on PeerNetwork itself (tests/p2p/test_network_memory.py)."""
    async with running_cluster(tmp_path) as cluster:

        def reported(name: str) -> frozenset[str] | None:
            return cluster.nodes[name].replica.replica._reachable

        everyone = frozenset(cluster.nodes)
        await wait_until(
            lambda: all(reported(name) == everyone - {name} for name in everyone),
            what="every node reporting every peer",
        )
        async with trio.open_nursery() as nursery:
            await stop_node(cluster, "node-3")
            await wait_until(
                lambda: reported("node-0") == frozenset({"node-1", "node-2"}),
                what="node-0 reporting node-3 gone",
            )
            await restart_node(cluster, "node-3", nursery)
            await wait_until(
                lambda: (
                    reported("node-0") == everyone - {"node-0"}
                    and reported("node-3") == everyone - {"node-3"}
                ),
                what="node-3 heard again, and hearing every peer",
            )
            nursery.cancel_scope.cancel()
