"""The metrics endpoint serves Prometheus text; logs are one structured event per line."""

from __future__ import annotations

import io
import json

import trio

from node.ledger.pipeline import PipelineStats
from node.runtime.logs import configure_logging
from node.runtime.metrics import NodeMetrics, serve_metrics


async def _get(port: int, path: bytes) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    return data


async def test_metrics_endpoint_serves_current_values() -> None:
    metrics = NodeMetrics()
    metrics.height.set(42)
    metrics.txs_rejected.labels(reason="bad_nonce").inc(3)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_metrics, metrics, "127.0.0.1", 0)
        body = await _get(port, b"/metrics")
        missing = await _get(port, b"/nope")
        nursery.cancel_scope.cancel()
    assert body.startswith(b"HTTP/1.1 200 OK")
    assert b"assetledger_height 42.0" in body
    assert b'assetledger_txs_rejected_total{reason="bad_nonce"} 3.0' in body
    assert missing.startswith(b"HTTP/1.1 404")


def test_pipeline_counters_follow_the_totals_and_survive_a_new_pipeline() -> None:
    metrics = NodeMetrics()

    def values() -> tuple[float, ...]:
        text = metrics.render().decode()
        names = (
            "assetledger_ledger_blocks_written_total",
            "assetledger_ledger_commits_total",
            'assetledger_ledger_phase_seconds_total{phase="evaluate"}',
            'assetledger_ledger_phase_seconds_total{phase="puts"}',
            'assetledger_ledger_phase_seconds_total{phase="commit"}',
        )
        lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if line[:1] != "#")
        return tuple(float(lines[name]) for name in names)

    metrics.observe_pipeline(PipelineStats(3, 2, 0.5, 0.25, 0.125))
    metrics.observe_pipeline(PipelineStats(5, 3, 0.75, 0.375, 0.25))
    assert values() == (5, 3, 0.75, 0.375, 0.25)
    # The node ran again with a fresh pipeline: its totals restart and are added on top.
    metrics.observe_pipeline(PipelineStats(1, 1, 0.125, 0.125, 0.125))
    assert values() == (6, 4, 0.875, 0.5, 0.375)


def test_json_logs_carry_node_view_and_height() -> None:
    out = io.StringIO()
    log = configure_logging(
        node="node-1",
        level="info",
        fmt="json",
        context=lambda: {"view": 3, "height": 17},
        stream=out,
    )
    log.info("block applied", extra={"txs": 5, "block_hash": b"\xab\xcd"})
    log.debug("not shown at info")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["event"] == "block applied"
    assert (event["node"], event["view"], event["height"], event["txs"]) == ("node-1", 3, 17, 5)
    assert event["block_hash"] == "abcd"
