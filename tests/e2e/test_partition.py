"""Network partitions between real node processes (link proxies cut real sockets), and a
frozen primary: the majority stays live, the cut-off node catches up, everyone agrees."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import nacl.signing
import pytest
import trio

from node.cluster.bootstrap import bring_up
from node.cluster.processes import ClusterProcesses
from node.cluster.status import fetch_status, wait_for, wait_heights, wait_ready
from node.tx import Kind
from tests.e2e.helpers import (
    ASSET,
    Acked,
    assert_everything_everywhere,
    connect,
    metric,
    setup_holders,
    transfer_load,
)

pytestmark = pytest.mark.e2e
HOLDERS = 6
EACH = 100_000
PROGRESS_TIMEOUT_S = 20.0


async def _wait_acked(acked: Acked, count: int, timeout_s: float = PROGRESS_TIMEOUT_S) -> None:
    with trio.fail_after(timeout_s):
        while len(acked.txs) < count:
            await trio.sleep(0.02)


async def _height(procs: ClusterProcesses, name: str) -> int:
    return (await fetch_status(procs.layout.node(name))).height


async def _partition(procs: ClusterProcesses, *groups: tuple[str, ...]) -> None:
    _, applied = await trio.to_thread.run_sync(lambda: procs.partition(groups))
    assert applied


async def test_minority_partitioned_away_majority_commits_then_it_catches_up(
    proxied_procs: ClusterProcesses,
) -> None:
    procs = proxied_procs
    await bring_up(procs)
    holders = [nacl.signing.SigningKey.generate() for _ in range(HOLDERS)]
    acked = await setup_holders(procs, holders, each=EACH, via="node-1")
    majority = ["node-0", "node-1", "node-2"]
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            lambda: transfer_load(procs, holders, via=majority[1:], acked=acked, stop=stop)
        )
        await _wait_acked(acked, len(acked.txs) + 20)
        await _partition(procs, ("node-3",), tuple(majority))
        cut_height = await _height(procs, "node-3")
        # The majority (2f+1 = 3) keeps finalising; node-3 cannot (it hears nobody).
        await _wait_acked(acked, len(acked.txs) + 100)
        top = await wait_heights(procs, cut_height + 5, names=majority)
        assert await _height(procs, "node-3") <= cut_height + 1  # at most a block in flight
        await _partition(procs)  # heal
        await wait_heights(procs, min(s.height for s in top.values()), names=["node-3"])
        stop.set()
    # node-3 is a full voting member again: with node-2 cut off, commits need its vote.
    await _partition(procs, ("node-2",))
    before = len(acked.txs)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            lambda: transfer_load(procs, holders, via=["node-3"], acked=acked, stop=stop)
        )
        await _wait_acked(acked, before + 10)
        stop.set()
    await _partition(procs)
    await assert_everything_everywhere(procs, acked, holders, supply=HOLDERS * EACH)


async def test_a_backup_cut_off_with_work_pending_stays_in_the_view_of_the_others(
    proxied_procs: ClusterProcesses,
) -> None:
    """R8b end to end: node-3 holds a transfer it cannot get ordered while it hears nobody.
    Its view-change timer expires again and again, and it stays in view 0, so after the heal
    it is a voting member of the others' view at once (before R8b it waited alone in view 1
    until the others changed view too)."""
    procs = proxied_procs
    await bring_up(procs)
    holders = [nacl.signing.SigningKey.generate() for _ in range(2)]
    acked = await setup_holders(procs, holders, each=EACH, via="node-1")
    lonely, others = "node-3", ("node-0", "node-1", "node-2")
    await _partition(procs, (lonely,), others)
    async with connect(procs, lonely) as c:
        pending = await c.send(
            Kind.TRANSFER,
            {"asset_id": ASSET, "to_account": bytes(holders[1].verify_key), "amount": 7},
            key=holders[0],
        )
    assert pending.status == "pending", pending
    series = 'assetledger_consensus_dropped{reason="view_change_timeout_isolated"}'
    with trio.fail_after(PROGRESS_TIMEOUT_S):
        while await trio.to_thread.run_sync(metric, procs, lonely, series) < 2:
            await trio.sleep(0.1)
    assert (await fetch_status(procs.layout.node(lonely))).view == 0
    await _partition(procs)  # heal
    top = await wait_heights(procs, max(acked.txs.values()) + 1, names=list(procs.names))
    assert {s.view for s in top.values()} == {0}, top
    # node-3 votes in view 0 now: with node-2 cut off, commits need it.
    await _partition(procs, ("node-2",))
    async with connect(procs, lonely) as c:
        out = await c.send(
            Kind.TRANSFER,
            {"asset_id": ASSET, "to_account": bytes(holders[0].verify_key), "amount": 1},
            key=holders[1],
            wait=True,
            timeout_ms=int(PROGRESS_TIMEOUT_S * 1000),
        )
    assert out.status == "committed", out
    assert (await fetch_status(procs.layout.node(lonely))).view == 0


async def _primary_isolated_under_load(
    procs: ClusterProcesses,
    isolate: Callable[[str], Awaitable[None]],
    restore: Callable[[str], Awaitable[None]],
) -> None:
    """Cut the primary off under load: a view change in the rest, progress resumes, the old
    primary comes back, and every node ends with the same chain and state."""
    await bring_up(procs)
    holders = [nacl.signing.SigningKey.generate() for _ in range(HOLDERS)]
    acked = await setup_holders(procs, holders, each=EACH, via="node-1")
    primary = (await wait_ready(procs, ["node-1"]))["node-1"].primary
    survivors = [n for n in procs.names if n != primary]
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            lambda: transfer_load(procs, holders, via=survivors, acked=acked, stop=stop)
        )
        await _wait_acked(acked, len(acked.txs) + 20)
        await isolate(primary)
        cut_at = len(acked.txs)
        await wait_for(
            procs,
            lambda s: len(s) == 3 and all(i.view > 0 and i.primary != primary for i in s.values()),
            names=survivors,
            timeout_s=PROGRESS_TIMEOUT_S,
            what="a view change away from the cut-off primary",
        )
        await _wait_acked(acked, cut_at + 100)  # progress under the new primary
        await restore(primary)
        # The old primary rejoins: it reaches the survivors' height and view while load flows.
        top = max(s.height for s in (await wait_heights(procs, 0, names=survivors)).values())
        await wait_heights(procs, top, names=[primary])
        stop.set()
    await assert_everything_everywhere(procs, acked, holders, supply=HOLDERS * EACH)
    views = await wait_for(
        procs,
        lambda s: len(s) == 4 and len({i.view for i in s.values()}) == 1,
        what="every node in the same view",
    )
    assert next(iter(views.values())).view > 0


async def test_primary_partitioned_away_view_change_then_heal(
    proxied_procs: ClusterProcesses,
) -> None:
    procs = proxied_procs

    async def isolate(name: str) -> None:
        await _partition(procs, (name,))

    async def heal(name: str) -> None:
        await _partition(procs)

    await _primary_isolated_under_load(procs, isolate, heal)


async def test_primary_paused_past_the_view_change_timeout_then_resumed(
    procs: ClusterProcesses,
) -> None:
    async def pause(name: str) -> None:
        await trio.to_thread.run_sync(procs.pause, name)

    async def resume(name: str) -> None:
        await trio.to_thread.run_sync(procs.resume, name)

    await _primary_isolated_under_load(procs, pause, resume)
