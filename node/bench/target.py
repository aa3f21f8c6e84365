"""The cluster under test: an already running one (`--dir`), or a temporary one started here.

Either way the benchmark talks to it only over the client API, like any client would, and
reads the node processes' pids (for memory sampling) from their pid files, or from the
processes it started itself.
"""

from __future__ import annotations

import socket
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import trio

from node.bench.errors import BenchError
from node.client import ClientError
from node.cluster.bootstrap import bring_up
from node.cluster.init import PORTS_PER_NODE, init_cluster
from node.cluster.layout import ClusterError, ClusterLayout, NodeEntry
from node.cluster.processes import ClusterProcesses
from node.cluster.status import fetch_status

REACH_TIMEOUT_S = 3.0
READY_TIMEOUT_S_DEFAULT = 60.0
PORT_SEARCH_TRIES = 200
PORT_TOP = 65_000
PORT_ATTEMPTS = 3
PORT_TAKEN = "already in use"  # node's one-line error for a busy listen port


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    layout: ClusterLayout
    reachable: tuple[NodeEntry, ...]  # nodes that answered `status`, in manifest order
    pids: dict[str, int]  # node name -> pid of its live process (when known)
    started_here: bool

    @property
    def validators(self) -> int:
        return len(self.layout.nodes)


def free_port_block(count: int) -> int:
    """A base port with `count` consecutive ports free right now (best effort: another
    process may take one before the nodes bind it; the node then fails with a clear line)."""
    for _ in range(PORT_SEARCH_TRIES):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count >= PORT_TOP:
            continue
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return base
    raise BenchError(f"no block of {count} free TCP ports on 127.0.0.1 for a local cluster")


async def _reachable(layout: ClusterLayout) -> tuple[list[NodeEntry], dict[str, str]]:
    ok: dict[str, NodeEntry] = {}
    errors: dict[str, str] = {}

    async def one(entry: NodeEntry) -> None:
        try:
            status = await fetch_status(entry, timeout_s=REACH_TIMEOUT_S)
        except (ClientError, OSError, trio.TooSlowError) as exc:
            errors[entry.name] = str(exc) or type(exc).__name__
            return
        if status.chain_id != layout.chain_id:
            errors[entry.name] = (
                f"{entry.client} serves chain {status.chain_id!r}, not {layout.chain_id!r}"
            )
            return
        ok[entry.name] = entry

    async with trio.open_nursery() as nursery:
        for entry in layout.nodes:
            nursery.start_soon(one, entry)
    return [e for e in layout.nodes if e.name in ok], errors


@asynccontextmanager
async def existing_cluster(
    root: Path, *, warn: Callable[[str], None] = lambda line: None
) -> AsyncIterator[Target]:
    """A cluster someone else runs (`assetledger cluster up --dir DIR`). Nodes that do not
    answer are left out (with a warning); none answering is a BenchError."""
    try:
        layout = ClusterLayout.load(root)
    except ClusterError as exc:
        raise BenchError(str(exc)) from None
    reachable, errors = await _reachable(layout)
    if not reachable:
        first = next(iter(errors.items()))
        raise BenchError(
            f"cluster at {root} is not reachable ({first[0]}: {first[1]});"
            f" start it with `assetledger cluster up --dir {root}`"
        )
    for name, error in errors.items():
        warn(f"{name} left out: {error}")
    procs = ClusterProcesses(layout)
    pids = {e.name: pid for e in layout.nodes if (pid := procs.pid(e.name)) is not None}
    yield Target(layout=layout, reachable=tuple(reachable), pids=pids, started_here=False)


@asynccontextmanager
async def local_cluster(
    nodes: int, *, ready_timeout_s: float = READY_TIMEOUT_S_DEFAULT
) -> AsyncIterator[Target]:
    """A fresh cluster of `nodes` validators in a temporary directory, each node its own
    process; stopped (SIGTERM, then SIGKILL) and removed on exit, killed at once on error."""
    for attempt in range(1, PORT_ATTEMPTS + 1):
        with tempfile.TemporaryDirectory(prefix="assetledger-bench-") as tmp:
            try:
                layout = init_cluster(
                    Path(tmp) / "cluster",
                    nodes=nodes,
                    base_port=free_port_block(nodes * PORTS_PER_NODE),
                )
            except ClusterError as exc:
                raise BenchError(str(exc)) from None
            procs = ClusterProcesses(layout)
            try:
                try:
                    await bring_up(procs, timeout_s=ready_timeout_s)
                except ClusterError as exc:
                    procs.kill_all()
                    # The free ports we picked lie in the ephemeral range, so another process's
                    # outgoing connection can take one before a node binds it: pick again.
                    if PORT_TAKEN in str(exc) and attempt < PORT_ATTEMPTS:
                        continue
                    raise BenchError(f"the local cluster did not come up: {exc}") from None
                pids = {e.name: pid for e in layout.nodes if (pid := procs.pid(e.name)) is not None}
                yield Target(layout=layout, reachable=layout.nodes, pids=pids, started_here=True)
            except BaseException:
                procs.kill_all()
                raise
            procs.stop_all()
            return
