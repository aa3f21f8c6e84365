"""A Byzantine drill: one of four validators withholds every vote (PREPARE and COMMIT).

With f = 1 the three honest validators are a quorum on their own: the cluster must stay
live, and every node (the withholder too, which still learns the commits) agrees."""

from __future__ import annotations

import nacl.signing
import pytest
import trio

from node.cluster.bootstrap import bring_up
from node.cluster.processes import ClusterProcesses
from node.cluster.status import wait_ready
from node.finality import FinalityRecord
from node.runtime.byzantine import ByzantineMode
from tests.e2e.helpers import (
    Acked,
    assert_everything_everywhere,
    connect,
    setup_holders,
    transfer_load,
)

pytestmark = pytest.mark.e2e
HOLDERS = 6
EACH = 100_000
BYZANTINE = "node-3"
PROGRESS_TIMEOUT_S = 20.0
RECORD_BYTES_MAX = 64 << 20


async def _wait_acked(acked: Acked, count: int, timeout_s: float = PROGRESS_TIMEOUT_S) -> None:
    with trio.fail_after(timeout_s):
        while len(acked.txs) < count:
            await trio.sleep(0.02)


async def test_a_vote_withholding_validator_does_not_stop_the_others(
    procs: ClusterProcesses,
) -> None:
    await bring_up(procs)
    procs.restart(BYZANTINE, hard=True, byzantine=ByzantineMode.WITHHOLD_VOTES.value)
    await wait_ready(procs, [BYZANTINE])
    holders = [nacl.signing.SigningKey.generate() for _ in range(HOLDERS)]
    # Transactions also enter through the withholder: it still gossips them.
    acked = await setup_holders(procs, holders, each=EACH, via=BYZANTINE)
    start = max(acked.txs.values())
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            lambda: transfer_load(
                procs, holders, via=["node-1", "node-2", BYZANTINE], acked=acked, stop=stop
            )
        )
        await _wait_acked(acked, len(acked.txs) + 150)
        stop.set()
    await assert_everything_everywhere(procs, acked, holders, supply=HOLDERS * EACH)
    # The drill is real: no certificate formed by an honest node holds a COMMIT of node-3.
    top = max(acked.txs.values())
    async with connect(procs, "node-1") as c:
        signers: set[str] = set()
        for height in range(start, top + 1):
            block = await c.block(height)
            record = FinalityRecord.decode(block.certificate, bytes_max=RECORD_BYTES_MAX)
            signers.update(name for name, _ in record.certificate.commits)
    assert BYZANTINE not in signers, signers
    assert signers == {"node-0", "node-1", "node-2"}
