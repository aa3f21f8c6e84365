"""Four validator processes: commits reach every node; crashed and wiped nodes catch up."""

from __future__ import annotations

import shutil

import nacl.signing
import pytest
import trio

from node.cluster.bootstrap import bring_up
from node.cluster.processes import ClusterProcesses
from node.cluster.status import wait_heights, wait_ready
from node.tx import Kind
from tests.e2e.helpers import (
    ASSET,
    Acked,
    assert_everything_everywhere,
    connect,
    converged,
    first_fetch_from,
    setup_holders,
    transfer_load,
    verify_all_blocks,
)

pytestmark = pytest.mark.e2e


async def _transfers(
    procs: ClusterProcesses,
    holders: list[nacl.signing.SigningKey],
    acked: Acked,
    via: str,
    count: int,
) -> None:
    pubs = [bytes(h.verify_key) for h in holders]
    async with connect(procs, via) as c:
        for i in range(count):
            out = await c.send(
                Kind.TRANSFER,
                {"asset_id": ASSET, "to_account": pubs[(i + 1) % len(pubs)], "amount": 1},
                key=holders[i % len(holders)],
                wait=True,
            )
            assert out.status == "committed", out
            acked.add(out.tx_id, out.height)


async def test_transactions_submitted_to_any_node_commit_on_all(procs: ClusterProcesses) -> None:
    await bring_up(procs)
    holders = [nacl.signing.SigningKey.generate() for _ in range(4)]
    acked = await setup_holders(procs, holders, each=1_000, via="node-2")
    for name in procs.names:  # every node accepts, forwards and answers
        await _transfers(procs, holders, acked, via=name, count=3)
    await assert_everything_everywhere(procs, acked, holders, supply=4_000)


async def test_backup_killed_with_kill_9_restarts_and_catches_up(procs: ClusterProcesses) -> None:
    await bring_up(procs)
    holders = [nacl.signing.SigningKey.generate() for _ in range(3)]
    acked = await setup_holders(procs, holders, each=1_000, via="node-1")
    procs.kill("node-2")
    await _transfers(procs, holders, acked, via="node-1", count=10)
    behind = max(acked.txs.values())
    procs.start("node-2")
    await wait_ready(procs, ["node-2"])
    await wait_heights(procs, behind, names=["node-2"])
    # node-2 must now vote: with node-3 gone too, nothing commits without it.
    procs.kill("node-3")
    await _transfers(procs, holders, acked, via="node-2", count=3)
    procs.start("node-3")
    await wait_ready(procs, ["node-3"])
    await assert_everything_everywhere(procs, acked, holders, supply=3_000)


async def test_node_on_an_empty_data_directory_syncs_the_whole_chain(
    procs: ClusterProcesses,
) -> None:
    await bring_up(procs)
    holders = [nacl.signing.SigningKey.generate() for _ in range(4)]
    acked = await setup_holders(procs, holders, each=1_000, via="node-0")
    # More than two checkpoint intervals (16) of blocks, with load from several clients.
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            lambda: transfer_load(procs, holders, via=["node-1", "node-2"], acked=acked, stop=stop)
        )
        await wait_heights(procs, 40, names=["node-1"])
        stop.set()
    top = await converged(procs)
    await trio.to_thread.run_sync(procs.stop, "node-3")
    shutil.rmtree(procs.layout.node_dir("node-3") / "data")
    procs.start("node-3")
    await wait_ready(procs, ["node-3"])
    # The cluster is idle now: the fresh node must find out by itself that it is behind.
    await wait_heights(procs, top.height, names=["node-3"])
    assert first_fetch_from(procs, "node-3") == 1  # it started empty, and fetched it all
    await verify_all_blocks(procs, "node-3", top.height, top)
    # And it is a full member again: with node-0 down, commits need node-3's votes.
    procs.kill("node-0")
    await _transfers(procs, holders, acked, via="node-3", count=3)
    procs.start("node-0")
    await wait_ready(procs, ["node-0"])
    await assert_everything_everywhere(procs, acked, holders, supply=4_000)
