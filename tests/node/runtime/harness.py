"""In-process clusters: N real nodes (p2p, replica, LMDB, client API) in one trio loop.

Nodes talk over loopback sockets exactly as separate processes would; only the process
boundary is missing, which the end-to-end tests in tests/e2e/ cover. Waiting is always on
a condition with a deadline, never a bare sleep.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trio

from config.keyfile import load_key_file
from config.node_config import Timeouts
from node.cluster.init import FAST_TIMEOUTS, PORTS_PER_NODE, init_cluster
from node.cluster.layout import ClusterLayout
from node.cluster.ports import free_port_block
from node.runtime.node import BoundPorts, Node


@dataclass
class RunningCluster:
    layout: ClusterLayout
    nodes: dict[str, Node]
    logs: dict[str, io.StringIO]
    scopes: dict[str, trio.CancelScope] = field(default_factory=dict)

    @property
    def regulator(self):
        return load_key_file(self.layout.regulator_key)

    @property
    def issuer(self):
        return load_key_file(self.layout.issuer_key)

    def client_address(self, name: str = "node-0") -> tuple[str, int]:
        entry = self.layout.node(name)
        return entry.host, entry.client_port

    def heights(self) -> dict[str, int]:
        return {name: node.ledger.height for name, node in self.nodes.items()}


async def wait_until(
    predicate: Callable[[], bool], *, timeout_s: float = 20, what: str = ""
) -> None:
    with trio.move_on_after(timeout_s) as scope:
        while not predicate():
            await trio.sleep(0.01)
    if scope.cancelled_caught:
        raise AssertionError(f"timed out after {timeout_s} s waiting for {what or predicate}")


async def _run_node(
    node: Node,
    scope_out: dict[str, trio.CancelScope],
    task_status: trio.TaskStatus[BoundPorts],
) -> None:
    with trio.CancelScope() as scope:
        scope_out[node.name] = scope
        await node.run(task_status=task_status)


@asynccontextmanager
async def running_cluster(
    tmp_path: Path, *, nodes: int = 4, timeouts: Timeouts = FAST_TIMEOUTS
) -> AsyncIterator[RunningCluster]:
    base = free_port_block(nodes * PORTS_PER_NODE)
    layout = init_cluster(
        tmp_path / "cluster", nodes=nodes, base_port=base, timeouts=timeouts, log_format="text"
    )
    logs = {e.name: io.StringIO() for e in layout.nodes}
    started = {
        e.name: Node.from_file(layout.config_file(e.name), log_stream=logs[e.name])
        for e in layout.nodes
    }
    cluster = RunningCluster(layout=layout, nodes=started, logs=logs)
    try:
        async with trio.open_nursery() as nursery:
            for node in started.values():
                await nursery.start(_run_node, node, cluster.scopes)
            yield cluster
            nursery.cancel_scope.cancel()
    finally:
        for node in cluster.nodes.values():
            node.close()


async def stop_node(cluster: RunningCluster, name: str) -> None:
    cluster.scopes[name].cancel()
    await trio.sleep(0)  # let the node's tasks unwind


async def restart_node(cluster: RunningCluster, name: str, nursery: trio.Nursery) -> Node:
    old = cluster.nodes[name]
    old.close()
    node = Node.from_file(cluster.layout.config_file(name), log_stream=cluster.logs[name])
    cluster.nodes[name] = node
    await nursery.start(_run_node, node, cluster.scopes)
    return node
