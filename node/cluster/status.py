"""Ask every node of a local cluster how it is doing, and wait on cluster-wide conditions.

Everything here goes over the wire (the client API and the metrics endpoint), exactly as a
tester in another terminal would see it. Waiting is always on a condition with a deadline.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import trio

from node.api.results import StatusInfo
from node.client import AsyncClient, ClientError
from node.cluster.layout import ClusterError, NodeEntry
from node.cluster.processes import ClusterProcesses, NodeNotReadyError, ProcessState

STATUS_TIMEOUT_S = 2.0
METRICS_RESPONSE_BYTES_MAX = 1 << 20
POLL_INTERVAL_S = 0.05


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeStatus:
    name: str
    client: str
    pid: int | None
    process: ProcessState
    status: StatusInfo | None  # None if the node did not answer
    peers: int | None  # connected peers, from the metrics endpoint
    error: str | None = None

    @property
    def height(self) -> int | None:
        return None if self.status is None else self.status.height

    def to_json(self) -> dict[str, Any]:
        s = self.status
        return {
            "name": self.name,
            "client": self.client,
            "pid": self.pid,
            "process": self.process.value,
            "height": None if s is None else s.height,
            "view": None if s is None else s.view,
            "primary": None if s is None else s.primary,
            "state_digest": None if s is None else s.state_digest.hex(),
            "mempool_size": None if s is None else s.mempool_size,
            "peers": self.peers,
            "error": self.error,
        }


async def fetch_status(entry: NodeEntry, *, timeout_s: float = STATUS_TIMEOUT_S) -> StatusInfo:
    """One `status` request; raises ClientError or trio.TooSlowError."""
    with trio.fail_after(timeout_s):
        async with AsyncClient.connect(
            entry.host, entry.client_port, connect_timeout_s=timeout_s, request_timeout_s=timeout_s
        ) as client:
            return await client.status()


async def fetch_peers(entry: NodeEntry, *, timeout_s: float = STATUS_TIMEOUT_S) -> int | None:
    """`assetledger_peers_connected` from the node's Prometheus endpoint (None if unreadable)."""
    try:
        with trio.fail_after(timeout_s):
            stream = await trio.open_tcp_stream(entry.host, entry.metrics_port)
            async with stream:
                await stream.send_all(b"GET /metrics HTTP/1.0\r\nHost: local\r\n\r\n")
                data = bytearray()
                while len(data) < METRICS_RESPONSE_BYTES_MAX:
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        break
                    data += chunk
    except (OSError, trio.TooSlowError, trio.BrokenResourceError):
        return None
    for line in bytes(data).decode(errors="replace").splitlines():
        if line.startswith("assetledger_peers_connected "):
            try:
                return int(float(line.split()[1]))
            except (IndexError, ValueError):
                return None
    return None


async def node_status(
    procs: ClusterProcesses, entry: NodeEntry, *, timeout_s: float = STATUS_TIMEOUT_S
) -> NodeStatus:
    pid = procs.pid(entry.name)
    process = procs.state(entry.name)
    status = peers = error = None
    if process is ProcessState.RUNNING:
        try:
            status = await fetch_status(entry, timeout_s=timeout_s)
            peers = await fetch_peers(entry, timeout_s=timeout_s)
        except (ClientError, OSError, trio.TooSlowError) as exc:
            error = str(exc) or type(exc).__name__
    return NodeStatus(
        name=entry.name,
        client=entry.client,
        pid=pid,
        process=process,
        status=status,
        peers=peers,
        error=error,
    )


async def cluster_status(
    procs: ClusterProcesses, *, timeout_s: float = STATUS_TIMEOUT_S
) -> list[NodeStatus]:
    """Every node's status, asked concurrently; in manifest order."""
    results: dict[str, NodeStatus] = {}

    async def one(entry: NodeEntry) -> None:
        results[entry.name] = await node_status(procs, entry, timeout_s=timeout_s)

    async with trio.open_nursery() as nursery:
        for entry in procs.layout.nodes:
            nursery.start_soon(one, entry)
    return [results[e.name] for e in procs.layout.nodes]


async def wait_ready(
    procs: ClusterProcesses, names: Iterable[str] | None = None, *, timeout_s: float = 20.0
) -> dict[str, StatusInfo]:
    """Wait until each node answers `status` on its client port.

    Raises NodeNotReadyError naming the node (and showing its log tail) if its process exits
    or it does not answer within `timeout_s`."""
    pending = list(names or procs.names)
    ready: dict[str, StatusInfo] = {}
    last_error: dict[str, str] = {}
    with trio.move_on_after(timeout_s):
        while pending:
            for name in list(pending):
                procs.check_alive(name)
                try:
                    ready[name] = await fetch_status(procs.layout.node(name), timeout_s=1.0)
                    pending.remove(name)
                except (ClientError, OSError, trio.TooSlowError) as exc:
                    last_error[name] = str(exc) or type(exc).__name__
            if pending:
                await trio.sleep(POLL_INTERVAL_S)
    if pending:
        name = pending[0]
        raise NodeNotReadyError(
            f"{name} did not answer on {procs.layout.node(name).client} within {timeout_s:g} s"
            f" ({last_error.get(name, 'no answer')}); see {procs.layout.log_file(name)}:\n"
            f"{procs.log_tail(name)}"
        )
    return ready


async def wait_for(
    procs: ClusterProcesses,
    predicate: Callable[[dict[str, StatusInfo]], bool],
    *,
    names: Iterable[str] | None = None,
    timeout_s: float = 20.0,
    what: str,
) -> dict[str, StatusInfo]:
    """Poll the status of `names` until `predicate(statuses)` holds; ClusterError on timeout.

    Nodes that do not answer are left out of the dict handed to the predicate."""
    wanted = list(names or procs.names)
    statuses: dict[str, StatusInfo] = {}
    with trio.move_on_after(timeout_s):
        while True:
            statuses = {}

            async def one(name: str, into: dict[str, StatusInfo] = statuses) -> None:
                with contextlib.suppress(ClientError, OSError, trio.TooSlowError):
                    into[name] = await fetch_status(procs.layout.node(name), timeout_s=1.0)

            async with trio.open_nursery() as nursery:
                for name in wanted:
                    nursery.start_soon(one, name)
            if predicate(statuses):
                return statuses
            await trio.sleep(POLL_INTERVAL_S)
    seen = ", ".join(f"{n}: height {s.height} view {s.view}" for n, s in statuses.items())
    raise ClusterError(
        f"timed out after {timeout_s:g} s waiting for {what} ({seen or 'no answers'})"
    )


async def wait_heights(
    procs: ClusterProcesses,
    height: int,
    *,
    names: Iterable[str] | None = None,
    timeout_s: float = 20.0,
) -> dict[str, StatusInfo]:
    """Wait until every node in `names` has applied block `height`."""
    wanted = list(names or procs.names)
    return await wait_for(
        procs,
        lambda s: len(s) == len(wanted) and all(i.height >= height for i in s.values()),
        names=wanted,
        timeout_s=timeout_s,
        what=f"{', '.join(wanted)} to reach height {height}",
    )
