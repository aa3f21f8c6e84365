"""Byzantine drills with real processes.

- One of four validators withholds every vote (PREPARE and COMMIT). With f = 1 the three
  honest validators are a quorum on their own: the cluster must stay live, and every node
  (the withholder too, which still learns the commits) agrees.
- The primary censors half the signers while ordering the others' transfers: the backups
  replace it (R8a) and every transfer commits."""

from __future__ import annotations

import nacl.signing
import pytest
import trio

from node.cluster.bootstrap import bring_up
from node.cluster.processes import ClusterProcesses
from node.cluster.status import wait_ready
from node.finality import FinalityRecord
from node.runtime.byzantine import ByzantineMode, censored
from node.tx import Kind
from tests.e2e.helpers import (
    ASSET,
    Acked,
    assert_everything_everywhere,
    connect,
    converged,
    metric,
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


CENSOR = "node-0"  # the primary of view 0


def _holders_half_censored(count: int) -> list[nacl.signing.SigningKey]:
    """`count` holders, every other one a signer the censor leaves out."""
    want = [i % 2 == 0 for i in range(count)]
    found: list[nacl.signing.SigningKey] = []
    while len(found) < count:
        key = nacl.signing.SigningKey.generate()
        if censored(bytes(key.verify_key)) == want[len(found)]:
            found.append(key)
    return found


async def _all_connected(procs: ClusterProcesses) -> None:
    """Every node has a live link to every other (a restarted node redials with backoff)."""
    want = len(procs.names) - 1
    with trio.fail_after(PROGRESS_TIMEOUT_S):
        for name in procs.names:
            while (
                await trio.to_thread.run_sync(metric, procs, name, "assetledger_peers_connected")
                < want
            ):
                await trio.sleep(0.05)


async def test_a_censoring_primary_is_replaced_while_the_chain_moves(
    procs: ClusterProcesses,
) -> None:
    await bring_up(procs)
    holders = _holders_half_censored(HOLDERS)
    acked = await setup_holders(procs, holders, each=EACH, via="node-1")
    # Once every node has applied the setup, nothing is pending: a clean restart of the
    # primary changes no view, and it leads view 0 again. (Cut off by kill -9 before it
    # applied the last block, it would restart behind with that slot pending and time out.)
    await converged(procs)
    procs.restart(CENSOR, hard=False, byzantine=ByzantineMode.CENSOR.value)
    await wait_ready(procs, [CENSOR])
    # Not before it is linked to everyone: traffic while it cannot propose yet would make the
    # backups time out on no progress at all (R8), not on its censorship.
    await _all_connected(procs)
    async with connect(procs, "node-1") as c:
        status = await c.status()
    assert (status.view, status.primary) == (0, CENSOR), status
    left_out = [h for h in holders if censored(bytes(h.verify_key))]
    trading = [h for h in holders if not censored(bytes(h.verify_key))]
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        # The others keep trading, so the censor keeps ordering blocks all along: the
        # view-change timer (no progress) never fires; only the backups' wait can replace it.
        nursery.start_soon(
            lambda: transfer_load(
                procs, trading, via=["node-1", "node-2", "node-3"], acked=acked, stop=stop
            )
        )
        await _wait_acked(acked, len(acked.txs) + 30)  # blocks are flowing
        async with connect(procs, "node-2") as c:
            for i, holder in enumerate(left_out):
                receiver = bytes(trading[i].verify_key)
                out = await c.send(
                    Kind.TRANSFER,
                    {"asset_id": ASSET, "to_account": receiver, "amount": 7},
                    key=holder,
                    wait=True,
                    timeout_ms=int(PROGRESS_TIMEOUT_S * 1000),
                )
                assert out.status == "committed", out
                acked.add(out.tx_id, out.height)
        stop.set()
    await assert_everything_everywhere(procs, acked, holders, supply=HOLDERS * EACH)
    async with connect(procs, "node-1") as c:
        assert (await c.status()).view >= 1
    # Replaced for leaving transactions out (R8a), by at least f + 1 of the backups.
    blamed = [
        name
        for name in ("node-1", "node-2", "node-3")
        if await trio.to_thread.run_sync(
            metric, procs, name, 'assetledger_consensus_dropped{reason="request_timeout"}'
        )
        >= 1
    ]
    assert len(blamed) >= 2, blamed
