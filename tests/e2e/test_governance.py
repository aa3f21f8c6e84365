"""Drill: the regulator changes the validator set of a running cluster under load.

One story on real processes, driven through the operator's commands (`assetledger cluster
add-node|rotate-key|restart --switch-key`, `tx add-validator|remove-validator|
rotate-validator-key`, `query validators|governance|evidence`) as from another terminal:

  4 -> 5 validators   node-4 starts with an empty data directory, is approved, syncs, and
                      votes: with node-1 down the 5-set (quorum 4) still finalises
  5 -> 7              node-5 and node-6 in one epoch (5 continuing >= quorum(7) = 5); an
                      8th in the same epoch is refused (quorum_at_risk); with two original
                      validators down, 5 of 7 still finalise, so all three new nodes vote
  remove node-3       7 -> 6; node-3 loses its peers at the boundary
  rotate node-1       new key approved; after the boundary the validators refuse the old key
                      and accept the new one; node-1 restarts with it and its votes count

A background load of transfers runs throughout; every acknowledged receipt is applied, and at
the end every current validator has the same blocks and state, every certificate verifies
against the validator set of its own epoch, and supply == the sum of balances. Finally the
grown cluster is stopped and brought up again from its data directories.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Iterable
from typing import Any

import nacl.signing
import pytest
import trio

from config.keyfile import load_key_file
from consensus.certificate import certificate_problem
from node.api.governance_results import ValidatorSetInfo
from node.api.results import FinalityProof, ReceiptInfo
from node.client import ApiError, AsyncClient, ClientError, verify_finality
from node.client.errors import ConnectionLostError, FinalityError
from node.cluster.bootstrap import bring_up
from node.cluster.layout import NodeEntry
from node.cluster.processes import ClusterProcesses
from node.cluster.status import fetch_peers, wait_ready
from node.finality import FinalityRecord, decode_proposal
from node.tx import Kind, decode_signed_transaction, verify_transaction
from p2p.handshake import WELCOME_BYTES, Hello, chain_tag, encode_hello
from tests.e2e.helpers import (
    ASSET,
    Acked,
    assert_everything_everywhere,
    connect,
    converged,
    setup_holders,
)

pytestmark = pytest.mark.e2e

HOLDERS = 6
EACH = 1_000
PROGRESS_TXS = 5
PROGRESS_TIMEOUT_S = 30.0
EPOCH_TIMEOUT_S = 40.0
CLI_TIMEOUT_S = 60.0
PROBE_TIMEOUT_S = 5.0
PEERS_SWITCH_TIMEOUT_S = 5.0
BYTES_MAX = 64 << 20


# ---------------------------------------------------------------- the operator's terminal


async def cli(*args: str) -> str:
    """Run `assetledger ARGS` as its own process (an operator's terminal); its stdout."""
    with trio.fail_after(CLI_TIMEOUT_S):
        done = await trio.run_process(
            [sys.executable, "-m", "node.cli", *args],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env={**os.environ, "COLUMNS": "200"},
        )
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, f"assetledger {' '.join(args)} -> {done.returncode}\n{out}{err}"
    return out


async def cli_json(*args: str) -> dict[str, Any]:
    return json.loads(await cli(*args, "--json"))


# ---------------------------------------------------------------- load with a pause


class Load:
    """Holder i sends 1-unit transfers to holder i+1 through node via[i % len(via)], one at
    a time, until stopped; only committed receipts are acknowledged. `quiet()` pauses it
    (waits for the transfers in flight) so the chain can be compared at rest."""

    def __init__(
        self, procs: ClusterProcesses, holders: list[nacl.signing.SigningKey], via: list[str]
    ) -> None:
        self.procs, self.holders, self.via = procs, holders, via
        self.acked = Acked()
        self.stop = trio.Event()
        self._running = trio.Event()
        self._running.set()
        self._in_flight = 0

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            for i in range(len(self.holders)):
                nursery.start_soon(self._sender, i)

    async def _sender(self, i: int) -> None:
        while not self.stop.is_set():
            try:
                async with connect(self.procs, self.via[i % len(self.via)]) as c:
                    await self._send_until_stopped(c, i)
            except (ConnectionLostError, OSError, ClientError):
                await trio.sleep(0.1)  # our node is down or refused us: try again

    async def _send_until_stopped(self, c: AsyncClient, i: int) -> None:
        to = bytes(self.holders[(i + 1) % len(self.holders)].verify_key)
        while not self.stop.is_set():
            await self._running.wait()
            self._in_flight += 1
            try:
                out = await c.send(
                    Kind.TRANSFER,
                    {"asset_id": ASSET, "to_account": to, "amount": 1},
                    key=self.holders[i],
                    wait=True,
                    timeout_ms=5_000,
                )
            except ConnectionLostError:
                raise
            except ClientError:
                c._nonces.clear()  # ask the node for the nonce again
                await trio.sleep(0.05)
                continue
            finally:
                self._in_flight -= 1
            if out.status == "committed":
                self.acked.add(out.tx_id, out.height)
            elif out.status == "rejected" and out.height is None:
                c._nonces.clear()

    async def progress(self, what: str) -> None:
        """PROGRESS_TXS more acknowledged transfers, or fail saying `what` was going on."""
        before = len(self.acked.txs)
        with trio.move_on_after(PROGRESS_TIMEOUT_S) as scope:
            while len(self.acked.txs) < before + PROGRESS_TXS:
                await trio.sleep(0.05)
        if scope.cancelled_caught:
            raise AssertionError(
                f"no progress {what}: {len(self.acked.txs) - before} transfers"
                f" in {PROGRESS_TIMEOUT_S:g} s"
            )

    async def quiet(self) -> None:
        self._running = trio.Event()
        with trio.fail_after(PROGRESS_TIMEOUT_S):
            while self._in_flight:
                await trio.sleep(0.02)

    def resume(self) -> None:
        self._running.set()


async def submit_together(
    procs: ClusterProcesses, approvals: list[dict[str, Any]]
) -> list[ReceiptInfo]:
    """The regulator submits one add_validator per entry back to back (consecutive nonces,
    so they apply in this order, within a block or two); their receipts once committed."""
    regulator = load_key_file(procs.layout.regulator_key)
    async with connect(procs, "node-0") as c:
        ids = []
        for args in approvals:
            out = await c.send(Kind.ADD_VALIDATOR, args, key=regulator)
            assert out.status == "pending", out
            ids.append(out.tx_id)
        receipts = []
        with trio.fail_after(PROGRESS_TIMEOUT_S):
            for tx_id in ids:
                while True:
                    try:
                        receipts.append(await c.receipt(tx_id))
                        break
                    except ApiError as exc:
                        assert exc.code == "not_found", exc
                        await trio.sleep(0.05)
    return receipts


# ---------------------------------------------------------------- checks


def view(procs: ClusterProcesses, names: Iterable[str]) -> ClusterProcesses:
    """The same cluster seen through `names` only (e.g. the current validators)."""
    wanted = set(names)
    layout = dataclasses.replace(
        procs.layout, nodes=tuple(n for n in procs.layout.nodes if n.name in wanted)
    )
    return ClusterProcesses(layout)


async def validators_of(procs: ClusterProcesses, name: str) -> ValidatorSetInfo:
    async with connect(procs, name) as c:
        return await c.validators()


async def wait_epoch(
    procs: ClusterProcesses, epoch: int, names: list[str], on: Iterable[str]
) -> ValidatorSetInfo:
    """Wait until every node in `on` governs the next block with epoch `epoch`, whose set is
    exactly `names` (in order); that answer."""
    nodes = list(on)
    with trio.move_on_after(EPOCH_TIMEOUT_S):
        while True:
            answers = []
            for name in nodes:
                try:
                    answers.append(await validators_of(procs, name))
                except (ClientError, OSError):
                    break
            if len(answers) == len(nodes) and all(a.epoch >= epoch for a in answers):
                info = answers[0]
                assert info.epoch == epoch, info
                assert [v.name for v in info.validators] == names, info
                assert info.pending_validators is None and info.pending_last_seq is None, info
                assert all(a == dataclasses.replace(info, height=a.height) for a in answers)
                return info
            await trio.sleep(0.1)
    raise AssertionError(f"epoch {epoch} did not begin on {', '.join(nodes)}")


async def peer_accepts(entry: NodeEntry, chain_id: str, public_key: bytes) -> bool:
    """Whether `entry`'s p2p listener approves a HELLO from `public_key` (it answers with its
    WELCOME) or refuses it (closes the connection). No handshake is completed, so the real
    connection of that key's node is not disturbed."""
    hello = encode_hello(
        Hello(chain_tag=chain_tag(chain_id.encode()), identity=public_key, ephemeral=os.urandom(32))
    )
    got = b""
    with trio.fail_after(PROBE_TIMEOUT_S):
        stream = await trio.open_tcp_stream(entry.host, entry.peer_port)
        async with stream:
            await stream.send_all(hello)
            try:
                while len(got) < WELCOME_BYTES:
                    chunk = await stream.receive_some(WELCOME_BYTES - len(got))
                    if not chunk:
                        break
                    got += chunk
            except trio.BrokenResourceError:
                pass  # reset: refused
    return len(got) == WELCOME_BYTES


async def until_accepts(
    entry: NodeEntry, chain_id: str, public_key: bytes, *, accepted: bool
) -> None:
    with trio.move_on_after(PEERS_SWITCH_TIMEOUT_S):
        while await peer_accepts(entry, chain_id, public_key) != accepted:
            await trio.sleep(0.05)
        return
    raise AssertionError(
        f"{entry.name} still {'refuses' if accepted else 'accepts'} key {public_key.hex()[:16]}"
        f" {PEERS_SWITCH_TIMEOUT_S:g} s after the boundary"
    )


async def votes_count(procs: ClusterProcesses, load: Load, down: list[str], what: str) -> None:
    """Stop `down` (the set still has exactly a quorum without them, so every remaining
    validator's vote is needed), see the cluster finalise, start them again."""
    for name in down:
        procs.kill(name)
    await load.progress(f"with {', '.join(down)} down ({what})")
    for name in down:
        procs.start(name)
    await wait_ready(procs, down)


async def assert_at_rest_identical(procs: ClusterProcesses, load: Load, names: list[str]) -> int:
    """Pause the load; every node in `names` has the same height and state digest."""
    await load.quiet()
    try:
        status = await converged(view(procs, names))
    finally:
        load.resume()
    return status.height


async def assert_certificates_verify_per_epoch(
    procs: ClusterProcesses, name: str, top: int, chain_id: str
) -> set[int]:
    """Every block 1..top served by `name` has a certificate that verifies, with the client
    library, against the set of the epoch that governs it (`query validators --height H`);
    the epochs seen."""
    genesis: tuple[tuple[str, bytes], ...] = ()
    seen: set[int] = set()
    async with connect(procs, name) as c:
        info = await c.validators(1)
        genesis = tuple((v.name, v.public_key) for v in info.validators)
        for h in range(1, top + 1):
            if info.last_seq is not None and h > info.last_seq:
                info = await c.validators(h)
            block = await c.block(h)
            proof = FinalityProof(
                height=h, block_hash=block.block_hash, certificate=block.certificate
            )
            validators = tuple((v.name, v.public_key) for v in info.validators)
            verify_finality(proof, validators, chain_id, epoch=info.epoch)
            seen.add(info.epoch)
            if info.epoch > 0:
                # Never as a block of epoch 0, not even by validators of both sets: their
                # signatures are bound to their epoch (consensus/epochs.py signing_domain).
                with pytest.raises(FinalityError, match="epoch"):
                    verify_finality(proof, genesis, chain_id)
                cert = FinalityRecord.decode(block.certificate, bytes_max=BYTES_MAX).certificate
                relabelled = dataclasses.replace(cert, epoch=0)
                problem = certificate_problem(relabelled, chain_id, validators, epoch=0)
                assert problem is not None and "bad COMMIT signature" in problem, problem
    return seen


async def assert_governance_audited(
    procs: ClusterProcesses, name: str, regulator: bytes, chain_id: str
) -> list[dict[str, Any]]:
    """`query governance` lists every change with the regulator's approving signature; each
    is the signature of a transaction in a block certified by the validators of its epoch."""
    node = procs.layout.node(name).client
    records = (await cli_json("query", "governance", "--node", node))["records"]
    async with connect(procs, name) as c:
        for r in records:
            assert [s["public_key"] for s in r["signatures"]] == [regulator.hex()], r
            block = await c.block(r["height"])
            info = await c.validators(r["height"])
            record = FinalityRecord.decode(block.certificate, bytes_max=BYTES_MAX)
            validators = tuple((v.name, v.public_key) for v in info.validators)
            assert (
                certificate_problem(record.certificate, chain_id, validators, epoch=info.epoch)
                is None
            )
            txs = decode_proposal(record.payload, txs_max=100_000, bytes_max=BYTES_MAX).txs
            signed = [decode_signed_transaction(tx, tx_bytes_max=BYTES_MAX) for tx in txs]
            (stx,) = [s for s in signed if s.tx_id.hex() == r["tx_id"]]
            assert verify_transaction(stx)
            assert [[k.hex(), s.hex()] for k, s in stx.signatures] == [
                [s["public_key"], s["signature"]] for s in r["signatures"]
            ]
    return records


# ---------------------------------------------------------------- the story


async def test_grow_shrink_and_rotate_a_running_cluster_under_load(
    procs: ClusterProcesses,
) -> None:
    root = str(procs.layout.root)
    chain_id = procs.layout.chain_id
    regulator_key = str(procs.layout.regulator_key)
    regulator = bytes(load_key_file(procs.layout.regulator_key).verify_key)
    api = procs.layout.node("node-0").client

    async def regulator_tx(*args: str) -> None:
        out = await cli("tx", *args, "--key", regulator_key, "--node", api, "--wait")
        assert "committed" in out, out

    async def add_node() -> dict[str, Any]:
        added = await cli_json("cluster", "add-node", "--dir", root)
        procs.reload()  # the manifest now lists it
        assert procs.pid(added["name"]) is not None, added  # started at once
        return added

    async def approve(added: dict[str, Any]) -> None:
        await regulator_tx(
            "add-validator",
            "--name",
            added["name"],
            "--public-key",
            added["public_key"],
            "--address",
            added["address"],
        )

    def validator_args(added: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": added["name"],
            "public_key": bytes.fromhex(added["public_key"]),
            "address": added["address"],
        }

    await bring_up(procs)
    holders = [nacl.signing.SigningKey.generate() for _ in range(HOLDERS)]
    setup = await setup_holders(procs, holders, each=EACH, via="node-0")
    load = Load(procs, holders, via=["node-0", "node-1", "node-2"])
    load.acked.txs.update(setup.txs)
    original = ["node-0", "node-1", "node-2", "node-3"]

    async with trio.open_nursery() as nursery:
        nursery.start_soon(load.run)
        await load.progress("at the start")

        # ---- 4 -> 5: a new node syncs from an empty data directory and votes at the boundary
        node4 = await add_node()
        assert node4["name"] == "node-4" and node4["height"] == 0
        await approve(node4)
        five = [*original, "node-4"]
        epoch1 = await wait_epoch(procs, 1, five, on=five)
        assert epoch1.validators[-1].public_key.hex() == node4["public_key"]
        shown = await cli_json("query", "validators", "--node", node4["client"])
        assert shown["epoch"] == 1 and [v["name"] for v in shown["validators"]] == five
        await assert_at_rest_identical(procs, load, five)
        await votes_count(procs, load, ["node-1"], "5 validators, quorum 4: node-4 votes")

        # ---- 5 -> 7 in one epoch; an 8th would leave the continuing 5 below quorum(8) = 6.
        # Blocks come fast (an epoch ends 32-48 blocks after its first change), so the
        # regulator submits the three approvals at once, in this order (nonces).
        node5, node6 = await add_node(), await add_node()
        assert node5["height"] == node6["height"] == 0  # empty data directories
        stranger = {
            "name": "node-99",
            "public_key": bytes(nacl.signing.SigningKey.generate().verify_key),
            "address": "127.0.0.1:9",
        }
        receipts = await submit_together(
            procs, [validator_args(node5), validator_args(node6), stranger]
        )
        assert [(r.status, r.reason) for r in receipts] == [
            ("applied", None),
            ("applied", None),
            ("rejected", "quorum_at_risk"),
        ], receipts
        seven = [*five, "node-5", "node-6"]
        await wait_epoch(procs, 2, seven, on=seven)
        await assert_at_rest_identical(procs, load, seven)
        await votes_count(
            procs, load, ["node-1", "node-2"], "7 validators, quorum 5: the 3 new ones vote"
        )

        # ---- remove node-3: 7 -> 6, and its connections close at the boundary
        node0, node3 = procs.layout.node("node-0"), procs.layout.node("node-3")
        node3_key = bytes.fromhex(node3.public_key)
        assert await peer_accepts(node0, chain_id, node3_key)  # a validator of epoch 2
        await regulator_tx("remove-validator", "--name", "node-3")
        six = ["node-0", "node-1", "node-2", "node-4", "node-5", "node-6"]
        epoch3 = await wait_epoch(procs, 3, six, on=six)
        with trio.fail_after(EPOCH_TIMEOUT_S):
            while await fetch_peers(node3) != 0:
                await trio.sleep(0.2)
        assert not await peer_accepts(node0, chain_id, node3_key)
        procs.stop("node-3")  # no longer a validator: the operator retires it

        # ---- rotate node-1's key
        rotation = await cli_json("cluster", "rotate-key", "--dir", root, "node-1")
        old_key = bytes.fromhex(rotation["old_public_key"])
        new_key = bytes.fromhex(rotation["public_key"])
        assert await peer_accepts(node0, chain_id, old_key)  # still the key of epoch 3
        assert not await peer_accepts(node0, chain_id, new_key)  # not approved yet
        await regulator_tx(
            "rotate-validator-key", "--name", "node-1", "--public-key", new_key.hex()
        )
        epoch4 = await wait_epoch(procs, 4, six, on=[n for n in six if n != "node-1"])
        assert epoch4.validators[1].public_key == new_key
        for name in ("node-0", "node-4"):
            # The overlap is over: the old key is refused, the new one accepted (the
            # transport follows the ledger's epoch switch within moments).
            validator = procs.layout.node(name)
            await until_accepts(validator, chain_id, old_key, accepted=False)
            await until_accepts(validator, chain_id, new_key, accepted=True)
        switched = await cli("cluster", "restart", "--dir", root, "node-1", "--switch-key")
        assert f"now {new_key.hex()}" in switched, switched
        procs.reload()
        assert procs.layout.node("node-1").public_key == new_key.hex()
        await wait_epoch(procs, 4, six, on=six)
        await votes_count(
            procs, load, ["node-2", "node-5"], "6 validators, quorum 4: node-1's new key votes"
        )
        await load.progress("at the end")
        load.stop.set()
        load.resume()

    current = view(procs, six)
    await assert_everything_everywhere(current, load.acked, holders, supply=HOLDERS * EACH)
    top = (await converged(current)).height
    assert await assert_certificates_verify_per_epoch(procs, "node-1", top, chain_id) == {
        0,
        1,
        2,
        3,
        4,
    }
    records = await assert_governance_audited(procs, "node-5", regulator, chain_id)
    assert [r["kind"] for r in records] == [
        "rotate_validator_key",
        "remove_validator",
        "add_validator",
        "add_validator",
        "add_validator",
    ]
    assert records[0]["effective_from_seq"] == epoch4.first_seq
    receipt = await cli_json(
        "query",
        "tx",
        "--tx-id",
        records[0]["tx_id"],
        "--genesis",
        str(procs.layout.genesis_file),
        "--node",
        procs.layout.node("node-4").client,
    )
    assert receipt["verified"] is True and receipt["height"] == records[0]["height"]
    assert records[1]["effective_from_seq"] == epoch3.first_seq
    assert records[-1]["effective_from_seq"] == epoch1.first_seq
    evidence = await cli_json("query", "evidence", "--node", procs.layout.node("node-6").client)
    assert evidence == {"records": [], "next_before_height": None}

    # The whole grown cluster restarts from its data directories (`cluster up` after `down`):
    # the validators resume in epoch 4; the removed node-3 starts too but is not waited for.
    procs.stop_all()
    height = await bring_up(procs)
    assert height > top
    await converged(current)
    await wait_epoch(procs, 4, six, on=six)
