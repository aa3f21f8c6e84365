"""Validator-set changes on real nodes (p2p, replica, LMDB) in one process: a fifth validator
started with an empty data directory follows as an observer, syncs once the regulator approves
it, votes from the epoch boundary on, and its votes are needed when an original one stops."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import nacl.signing
import trio

from config.keyfile import write_key_file
from consensus.certificate import verify_certificate
from node.client import AsyncClient
from node.cluster.ports import free_port_block
from node.finality import FinalityRecord
from node.runtime.node import Node
from node.tx import Kind
from tests.node.runtime.harness import _run_node, running_cluster, stop_node, wait_until

KYC = hashlib.sha256(b"kyc").digest()


async def _register(client: AsyncClient, regulator: nacl.signing.SigningKey) -> None:
    account = bytes(nacl.signing.SigningKey.generate().verify_key)
    out = await client.send(
        Kind.REGISTER_ACCOUNT,
        {"account": account, "category": "individual", "kyc_hash": KYC},
        key=regulator,
        wait=True,
    )
    assert out.status == "committed", out


async def test_an_added_validator_syncs_and_votes_from_the_boundary(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as cluster, trio.open_nursery() as nursery:
        key = nacl.signing.SigningKey.generate()
        key_file = tmp_path / "node-4.key"
        write_key_file(key_file, key)
        base = free_port_block(2)
        template = cluster.nodes["node-3"].config
        config = dataclasses.replace(
            template,
            name="node-4",
            data_dir=tmp_path / "node-4",
            key_file=key_file,
            peer_listen=("127.0.0.1", base),
            client_listen=("127.0.0.1", base + 1),
            metrics_listen=None,
        )
        newcomer = Node.open(config)
        cluster.nodes["node-4"] = newcomer
        await nursery.start(_run_node, newcomer, cluster.scopes)
        assert not newcomer.replica.member  # not approved yet: it only follows

        host, port = cluster.client_address("node-1")
        async with AsyncClient.connect(host, port) as client:
            await _register(client, cluster.regulator)
            out = await client.send(
                Kind.ADD_VALIDATOR,
                {
                    "name": "node-4",
                    "public_key": bytes(key.verify_key),
                    "address": f"127.0.0.1:{base}",
                },
                key=cluster.regulator,
                wait=True,
            )
            assert out.status == "committed" and out.receipt.status == "applied", out
            # No traffic needed: the primary closes the epoch with null requests.
            await wait_until(
                lambda: all(n.replica.epoch.number == 1 for n in cluster.nodes.values()),
                timeout_s=30,
                what="every node in epoch 1",
            )
            assert newcomer.replica.member
            await _register(client, cluster.regulator)
            # With node-0 stopped, 4 of 5 must vote (quorum 4): node-4 is one of them.
            await stop_node(cluster, "node-0")
            await _register(client, cluster.regulator)
            live = [n for name, n in cluster.nodes.items() if name != "node-0"]
            top = max(n.ledger.height for n in live)
            await wait_until(
                lambda: all(n.ledger.height == top for n in live), what="equal heights"
            )
            assert len({n.ledger.state_digest for n in live}) == 1
            # Every block the newcomer synced verifies against the set of its own epoch.
            ledger = newcomer.ledger
            chain_id = newcomer.genesis.chain_id
            sets = {e: ledger.consensus_epoch(1 if e == 0 else top) for e in (0, 1)}
            epochs_seen = set()
            for height in range(1, top + 1):
                record = ledger.block(height)
                assert record is not None and record.certificate is not None
                proof = FinalityRecord.decode(record.certificate, bytes_max=len(record.certificate))
                epoch = ledger.consensus_epoch(height)
                epochs_seen.add(epoch.number)
                cert = proof.certificate
                assert verify_certificate(cert, chain_id, epoch.validators, epoch=epoch.number)
                wrong = sets[1 - epoch.number]
                assert not verify_certificate(cert, chain_id, wrong.validators, epoch=wrong.number)
            assert epochs_seen == {0, 1}
        nursery.cancel_scope.cancel()
