"""A validator whose store fills up stops with one line naming the limit; with a larger map it
restarts, catches up and has lost nothing the cluster acknowledged."""

from __future__ import annotations

import nacl.signing
import pytest
import trio

from node.cluster.bootstrap import bring_up
from node.cluster.processes import ClusterProcesses, ProcessState
from node.cluster.status import wait_ready
from node.tx import Kind
from tests.e2e.helpers import ASSET, assert_everything_everywhere, connect, setup_holders

pytestmark = pytest.mark.e2e

SMALL_MAP_BYTES = 1 << 20  # the smallest map node.toml accepts: fills within a few hundred txs
LARGE_MAP_BYTES = 64 << 20
TRANSFERS_MAX = 3_000  # a bound, so a store that never fills fails the test instead of hanging


def _set_map_size(procs: ClusterProcesses, name: str, size_bytes: int) -> None:
    path = procs.layout.config_file(name)
    text = path.read_text()
    text = text.split("\n[limits]\n")[0].rstrip("\n")
    path.write_text(f"{text}\n\n[limits]\nmap_size_bytes = {size_bytes}\n")


async def test_a_full_store_stops_its_node_which_restarts_with_a_larger_map(
    procs: ClusterProcesses,
) -> None:
    _set_map_size(procs, "node-3", SMALL_MAP_BYTES)
    await bring_up(procs)
    holders = [nacl.signing.SigningKey.generate() for _ in range(4)]
    pubs = [bytes(h.verify_key) for h in holders]
    acked = await setup_holders(procs, holders, each=1_000_000, via="node-1")
    sent = 0
    async with connect(procs, "node-1") as c:
        # The other three keep committing: a quorum without node-3.
        while procs.state("node-3") is ProcessState.RUNNING:
            assert sent < TRANSFERS_MAX, f"node-3's 1 MiB store took {sent} transfers unfilled"
            signer = sent % len(holders)
            to = pubs[(signer + 1) % len(pubs)]
            out = await c.send(
                Kind.TRANSFER,
                {"asset_id": ASSET, "to_account": to, "amount": 1},
                key=holders[signer],
                memo="x" * 200,  # fills the store sooner
                wait=True,
            )
            assert out.status == "committed", out
            acked.add(out.tx_id, out.height, (pubs[signer], to))
            sent += 1
        for _ in range(3):  # still committing after node-3 stopped
            out = await c.send(
                Kind.TRANSFER,
                {"asset_id": ASSET, "to_account": pubs[1], "amount": 1},
                key=holders[0],
                wait=True,
            )
            assert out.status == "committed", out
            acked.add(out.tx_id, out.height, (pubs[0], pubs[1]))
    with trio.fail_after(10):  # it stopped running: its exit status follows at once
        while procs.exit_code("node-3") is None:
            await trio.sleep(0.05)
    assert procs.exit_code("node-3") != 0
    log = procs.log_tail("node-3", 400)
    assert "Traceback" not in log, log
    assert f"map_size_bytes={SMALL_MAP_BYTES}" in log, log
    assert "Restart with a larger map_size_bytes (node.toml [limits])" in log, log

    _set_map_size(procs, "node-3", LARGE_MAP_BYTES)
    procs.start("node-3")
    await wait_ready(procs, ["node-3"])
    await assert_everything_everywhere(procs, acked, holders, supply=4 * 1_000_000)
