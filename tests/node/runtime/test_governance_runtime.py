"""Validator-set changes on real nodes (p2p, replica, LMDB) in one process: a fifth validator
started with an empty data directory follows as an observer, syncs once the regulator approves
it, votes from the epoch boundary on, and its votes are needed when an original one stops."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import nacl.signing
import trio

from config.keyfile import load_key_file, write_key_file
from consensus.certificate import verify_certificate
from consensus.epoch_replica import frame
from consensus.epochs import signing_domain
from consensus.events import MessageReceived
from consensus.messages import encode_message, make_prepare
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
            assert out.status == "committed", out
            assert out.receipt is not None and out.receipt.status == "applied", out
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


async def test_remove_and_rotate_take_effect_at_the_boundary(tmp_path: Path) -> None:
    async with running_cluster(tmp_path, nodes=5) as cluster, trio.open_nursery() as nursery:
        new_key = nacl.signing.SigningKey.generate()
        host, port = cluster.client_address("node-0")
        async with AsyncClient.connect(host, port) as client:
            for kind, args in (
                (Kind.REMOVE_VALIDATOR, {"name": "node-4"}),
                (
                    Kind.ROTATE_VALIDATOR_KEY,
                    {"name": "node-2", "public_key": bytes(new_key.verify_key)},
                ),
            ):
                out = await client.send(kind, args, key=cluster.regulator, wait=True)
                assert out.status == "committed", out
                assert out.receipt is not None and out.receipt.status == "applied", out
            await wait_until(
                lambda: all(n.replica.epoch.number == 1 for n in cluster.nodes.values()),
                timeout_s=30,
                what="every node in epoch 1",
            )
            node4, node2 = cluster.nodes["node-4"], cluster.nodes["node-2"]
            assert not node4.replica.member  # removed: it no longer votes
            assert "node-4" not in {p.name for p in cluster.nodes["node-0"].approved_peers()}
            # node-2 still holds only its old key: it follows but cannot vote...
            assert not node2.replica.member
            await _register(client, cluster.regulator)  # ...and node-0,1,3 are a quorum of 4
            # The operator restarts node-2 with its new key: it votes again.
            await stop_node(cluster, "node-2")
            node2.close()
            node2.config.key_file.unlink()
            write_key_file(node2.config.key_file, new_key)
            restarted = Node.open(node2.config)
            cluster.nodes["node-2"] = restarted
            await nursery.start(_run_node, restarted, cluster.scopes)
            assert restarted.replica.member
            await stop_node(cluster, "node-3")  # now node-2's new-key votes are needed
            await _register(client, cluster.regulator)
            live = [cluster.nodes[n] for n in ("node-0", "node-1", "node-2")]
            top = max(n.ledger.height for n in live)
            await wait_until(lambda: all(n.ledger.height == top for n in live), what="heights")
            assert len({n.ledger.state_digest for n in live}) == 1
        nursery.cancel_scope.cancel()


async def test_an_equivocation_seen_by_a_replica_is_recorded_on_the_ledger(
    tmp_path: Path,
) -> None:
    async with running_cluster(tmp_path) as cluster:
        liar = load_key_file(cluster.nodes["node-3"].config.key_file)
        witness = cluster.nodes["node-1"]
        seq = witness.ledger.height + 1
        domain = signing_domain(witness.genesis.chain_id, 0)
        votes = [
            make_prepare(liar, domain, "node-3", view=0, seq=seq, d=bytes([i]) * 32) for i in (1, 2)
        ]
        for vote in votes:  # as if they arrived from node-3 over p2p
            await witness.driver._inbox_send.send(
                MessageReceived(sender="node-3", data=frame(0, encode_message(vote)))
            )
        await wait_until(
            lambda: all(n.ledger.evidence() for n in cluster.nodes.values()),
            what="the evidence on every ledger",
        )
        host, port = cluster.client_address("node-0")
        async with AsyncClient.connect(host, port) as client:
            found = await client.evidence()
        (record,) = found.records
        assert (record.validator, record.message_kind, record.seq) == ("node-3", "prepare", seq)
        assert record.reporter == bytes(witness.key.verify_key)
