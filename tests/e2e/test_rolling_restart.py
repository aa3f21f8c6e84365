"""Drill: every validator in turn is killed with kill -9 under load and restarted; the cluster
keeps finalising without it, it catches up, and nothing acknowledged is lost."""

from __future__ import annotations

import nacl.signing
import pytest
import trio

from node.cluster.bootstrap import bring_up
from node.cluster.processes import ClusterProcesses
from node.cluster.status import wait_heights, wait_ready
from tests.e2e.helpers import Acked, assert_everything_everywhere, setup_holders, transfer_load

pytestmark = pytest.mark.e2e

PROGRESS_TXS = 5
PROGRESS_TIMEOUT_S = 30.0


async def _progress(acked: Acked, after: int, what: str) -> None:
    with trio.move_on_after(PROGRESS_TIMEOUT_S) as scope:
        while len(acked.txs) < after + PROGRESS_TXS:
            await trio.sleep(0.05)
    if scope.cancelled_caught:
        raise AssertionError(
            f"no progress {what}: {len(acked.txs) - after} transfers in {PROGRESS_TIMEOUT_S:g} s"
        )


async def test_each_node_killed_and_restarted_in_turn_under_load(procs: ClusterProcesses) -> None:
    await bring_up(procs)
    holders = [nacl.signing.SigningKey.generate() for _ in range(6)]
    acked = await setup_holders(procs, holders, each=1_000, via="node-0")
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            lambda: transfer_load(procs, holders, via=list(procs.names), acked=acked, stop=stop)
        )
        for name in procs.names:
            procs.kill(name)
            await _progress(acked, len(acked.txs), f"with {name} killed")
            procs.start(name)
            await wait_ready(procs, [name])
            await wait_heights(procs, max(acked.txs.values()), names=[name])
            await _progress(acked, len(acked.txs), f"after {name} restarted")
        stop.set()
    await assert_everything_everywhere(procs, acked, holders, supply=6_000)
