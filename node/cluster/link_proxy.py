"""The link proxies of a cluster made with `init --proxies`: real sockets that can be cut.

One listener per directed link src -> dst (node src's config names dst at this port); every
accepted connection is forwarded to dst's real peer port. Applying a partition plan
(node/cluster/partition.py) closes the live connections of every cut link and makes it
close new ones at once; healing lets them through again, and the nodes' p2p layer redials
by itself with its backoff. Nothing is simulated inside the nodes: they see real EOFs and
failed handshakes.

Runs as its own process (`python -m node.cluster.link_proxy --dir DIR`), started and stopped
with the nodes by ClusterProcesses, so drills work from any terminal and from the tests.
Memory is bounded: at most CONNECTIONS_PER_LINK_MAX connections per link, each moving one
chunk of at most CHUNK_BYTES per direction at a time (TCP backpressure does the rest).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import trio

from node.cluster.layout import ClusterError, ClusterLayout, LinkEntry
from node.cluster.partition import (
    PartitionError,
    PartitionPlan,
    read_plan,
    write_applied_generation,
)

CHUNK_BYTES = 64 << 10
CONNECTIONS_PER_LINK_MAX = 8  # p2p keeps one per pair; a few more cover redials
CONNECT_TIMEOUT_S = 2.0
PLAN_POLL_INTERVAL_S = 0.05


def _log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} link-proxy: {message}", flush=True)


@dataclass(slots=True, kw_only=True)
class LinkProxy:
    link: LinkEntry
    host: str
    target: tuple[str, int]
    open: bool = True
    connections: set[trio.CancelScope] = field(default_factory=set)

    def set_open(self, allowed: bool) -> None:
        self.open = allowed
        if not allowed:
            for scope in self.connections:
                scope.cancel()  # leaving the scope closes both sockets

    async def handle(self, downstream: trio.SocketStream) -> None:
        async with downstream:
            if not self.open or len(self.connections) >= CONNECTIONS_PER_LINK_MAX:
                return  # cut (or over the bound): the dialer sees the connection close
            scope = trio.CancelScope()
            self.connections.add(scope)
            try:
                with scope:
                    with trio.fail_after(CONNECT_TIMEOUT_S):
                        upstream = await trio.open_tcp_stream(*self.target)
                    async with upstream, trio.open_nursery() as nursery:
                        nursery.start_soon(_pump, downstream, upstream, nursery.cancel_scope)
                        nursery.start_soon(_pump, upstream, downstream, nursery.cancel_scope)
            except (OSError, trio.TooSlowError):
                pass  # dst is down: the dialer sees the connection close, as without a proxy
            finally:
                self.connections.discard(scope)


async def _pump(source: trio.SocketStream, sink: trio.SocketStream, both: trio.CancelScope) -> None:
    """Copy one direction until EOF or an error, then end the whole connection."""
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        while data := await source.receive_some(CHUNK_BYTES):
            await sink.send_all(data)
    both.cancel()


def build_proxies(layout: ClusterLayout) -> list[LinkProxy]:
    if not layout.links:
        raise ClusterError(f"{layout.root} has no link proxies (made without `init --proxies`)")
    return [
        LinkProxy(
            link=link,
            host=layout.node(link.src).host,
            target=(layout.node(link.dst).host, layout.node(link.dst).peer_port),
        )
        for link in layout.links
    ]


def apply_plan(proxies: list[LinkProxy], plan: PartitionPlan) -> list[str]:
    """Open or cut every link as the plan says; the links now cut, as `src->dst`."""
    for proxy in proxies:
        proxy.set_open(plan.allows(proxy.link.src, proxy.link.dst))
    return [f"{p.link.src}->{p.link.dst}" for p in proxies if not p.open]


async def run_link_proxies(
    layout: ClusterLayout,
    *,
    poll_interval_s: float = PLAN_POLL_INTERVAL_S,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on every link port and follow the plan file until cancelled."""
    proxies = build_proxies(layout)
    applied = -1
    # Bind every port before serving: a taken port is one plain OSError, not a half-up proxy.
    bound = [
        (proxy, await trio.open_tcp_listeners(proxy.link.port, host=proxy.host))
        for proxy in proxies
    ]
    async with trio.open_nursery() as nursery:
        for proxy, listeners in bound:
            nursery.start_soon(trio.serve_listeners, proxy.handle, listeners)
        task_status.started()
        while True:
            try:
                plan = read_plan(layout)
            except PartitionError as exc:
                _log(f"keeping the previous plan: {exc}")
                plan = None
            if plan is not None and plan.generation != applied:
                cut = apply_plan(proxies, plan)
                applied = plan.generation
                write_applied_generation(layout, applied)
                _log(
                    f"plan {applied}: {plan.describe()}; {len(cut)} links cut"
                    + (f" ({' '.join(cut)})" if cut else "")
                )
            await trio.sleep(poll_interval_s)


def proxy_command(layout: ClusterLayout) -> list[str]:
    return [sys.executable, "-m", "node.cluster.link_proxy", "--dir", str(layout.root.resolve())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        layout = ClusterLayout.load(args.dir)
        _log(f"{len(layout.links)} links for {layout.root}")
        trio.run(run_link_proxies, layout)
    except (ClusterError, OSError) as exc:
        print(f"link-proxy: error: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
