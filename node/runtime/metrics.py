"""Prometheus metrics of one node and a small trio HTTP endpoint that serves them.

prometheus_client renders the exposition format; the endpoint is trio-native so it lives in the
node's nursery and stops with it (the library's own server would start a thread we do not own).
"""

from __future__ import annotations

import contextlib
from functools import partial

import trio
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from node.ledger.pipeline import PipelineStats

NO_PIPELINE_YET = PipelineStats(0, 0, 0.0, 0.0, 0.0)
REQUEST_BYTES_MAX = 8 << 10
REQUEST_TIMEOUT_S = 5.0


class NodeMetrics:
    """Every metric of a node, in its own registry (several nodes may share one process in tests)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.height = Gauge("assetledger_height", "Height of the last applied block", registry=r)
        self.view = Gauge("assetledger_view", "Current PBFT view", registry=r)
        self.epoch = Gauge(
            "assetledger_epoch", "Current epoch (validator-set generation)", registry=r
        )
        self.view_changes = Counter(
            "assetledger_view_changes", "View changes this node entered", registry=r
        )
        self.commit_latency = Histogram(
            "assetledger_commit_latency_seconds",
            "Time from a transaction's admission to its block being applied",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.mempool_size = Gauge(
            "assetledger_mempool_txs", "Transactions in the mempool", registry=r
        )
        self.txs_applied = Counter("assetledger_txs_applied", "Transactions applied", registry=r)
        self.txs_rejected = Counter(
            "assetledger_txs_rejected", "Transactions rejected in blocks", ["reason"], registry=r
        )
        self.admission_refused = Counter(
            "assetledger_admission_refused",
            "Transactions refused at admission",
            ["reason"],
            registry=r,
        )
        self.peers_connected = Gauge(
            "assetledger_peers_connected",
            "Validators this node has a live session with",
            registry=r,
        )
        self.peer_bytes_in = Gauge(
            "assetledger_peer_bytes_in", "Bytes received from a peer", ["peer"], registry=r
        )
        self.peer_bytes_out = Gauge(
            "assetledger_peer_bytes_out", "Bytes sent to a peer", ["peer"], registry=r
        )
        self.client_errors = Gauge(
            "assetledger_client_errors",
            "Error frames sent to clients, by code",
            ["code"],
            registry=r,
        )
        self.client_connections = Gauge(
            "assetledger_client_connections", "Open client connections", registry=r
        )
        self.consensus_dropped = Gauge(
            "assetledger_consensus_dropped",
            "The replica's counters by reason: dropped messages, and events such as"
            " view_change_timeout or request_timeout",
            ["reason"],
            registry=r,
        )

        self.state_cache_entries = Gauge(
            "assetledger_state_cache_entries",
            "Decoded accounts, balances and nonces kept between blocks",
            registry=r,
        )
        self.state_cache_loads = Gauge(
            "assetledger_state_cache_loads",
            "Keys blocks had to read into the state cache (its misses), since the node started",
            registry=r,
        )
        self.state_cache_cuts = Gauge(
            "assetledger_state_cache_cuts",
            "Times the state cache was cut to half its bound, since the node started",
            registry=r,
        )
        self.history_heads_cached = Gauge(
            "assetledger_history_heads_cached",
            "Accounts' history heads the ledger's writer keeps between blocks",
            registry=r,
        )
        # Counters mirrored from the block pipeline's totals (`observe_pipeline`).
        self.ledger_blocks_written = Counter(
            "assetledger_ledger_blocks_written",
            "Blocks the block pipeline wrote and committed durably, since the node started",
            registry=r,
        )
        self.ledger_commits = Counter(
            "assetledger_ledger_commits",
            "LMDB write transactions the block pipeline committed (a group commit holds"
            " several blocks), since the node started",
            registry=r,
        )
        self.ledger_phase_seconds = Counter(
            "assetledger_ledger_phase_seconds",
            "Wall seconds the block pipeline spent per phase, since the node started:"
            " evaluate (rules), puts (writing records; evaluation waits) and commit"
            " (write-back and fsync, overlapping evaluation)",
            ["phase"],
            registry=r,
        )
        self._pipeline_seen = NO_PIPELINE_YET
        # The process: CPU seconds, resident memory, open files (from /proc), and the
        # collector's work per generation (node/runtime/gc_policy.py explains its settings).
        # Process-wide: nodes sharing a process (tests) all report the same figures.
        ProcessCollector(registry=r)
        GCCollector(registry=r)

    def observe_pipeline(self, stats: PipelineStats) -> None:
        """Advance the pipeline counters to `stats` (totals that only grow)."""
        seen, self._pipeline_seen = self._pipeline_seen, stats
        if any(now < before for now, before in zip(stats, seen, strict=True)):
            seen = NO_PIPELINE_YET  # a new pipeline (the node ran again): its totals restart
        self.ledger_blocks_written.inc(stats.blocks - seen.blocks)
        self.ledger_commits.inc(stats.commits - seen.commits)
        for phase, now, before in (
            ("evaluate", stats.evaluate_s, seen.evaluate_s),
            ("puts", stats.puts_s, seen.puts_s),
            ("commit", stats.commit_s, seen.commit_s),
        ):
            self.ledger_phase_seconds.labels(phase=phase).inc(now - before)

    def render(self) -> bytes:
        return generate_latest(self.registry)


async def _handle(metrics: NodeMetrics, stream: trio.abc.Stream) -> None:
    async with stream:
        request = b""
        with trio.move_on_after(REQUEST_TIMEOUT_S):
            while b"\r\n\r\n" not in request and len(request) < REQUEST_BYTES_MAX:
                chunk = await stream.receive_some(4096)
                if not chunk:
                    break
                request += chunk
        line = request.split(b"\r\n", 1)[0].split()
        if len(line) >= 2 and line[0] == b"GET" and line[1].split(b"?")[0] in (b"/metrics", b"/"):
            status, ctype, body = b"200 OK", CONTENT_TYPE_LATEST.encode(), metrics.render()
        else:
            status, ctype, body = b"404 Not Found", b"text/plain", b"only GET /metrics\n"
        head = b"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
        with contextlib.suppress(trio.BrokenResourceError):
            await stream.send_all(head % (status, ctype, len(body)) + body)


async def serve_metrics(
    metrics: NodeMetrics,
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `GET /metrics` until cancelled; reports the bound port through task_status."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(partial(_handle, metrics), listeners)
