"""Fixtures for end-to-end tests: a fresh cluster of real node processes per test.

Nodes run as separate OS processes (`python -m node.cli node`) on loopback ports, with the
fast test timeouts (1 s view change). Whatever a test does, teardown stops every process.
When a test fails, the tail of each node's log is printed to help find out why.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from node.cluster.init import FAST_TIMEOUTS, PORTS_PER_NODE, init_cluster, ports_needed
from node.cluster.ports import free_port_block
from node.cluster.processes import ClusterProcesses

E2E_NODES = 4


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" and report.failed:
        procs = getattr(item, "e2e_procs", None)
        if procs is not None:
            tails = [
                f"--- {name} ({procs.layout.log_file(name)})\n{procs.log_tail(name, 40)}"
                for name in procs.names
            ]
            if procs.layout.links:
                log = procs.layout.links_log_file
                tails.append(f"--- link proxies ({log})\n{log.read_text(errors='replace')[-4000:]}")
            report.sections.append(("node logs", "\n".join(tails)))
    return report


@pytest.fixture
def procs(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ClusterProcesses]:
    """A new 4-validator cluster (not yet started: tests call bring_up)."""
    base = free_port_block(E2E_NODES * PORTS_PER_NODE)
    layout = init_cluster(
        tmp_path / "cluster",
        nodes=E2E_NODES,
        base_port=base,
        timeouts=FAST_TIMEOUTS,
        log_format="text",
    )
    cluster = ClusterProcesses(layout)
    request.node.e2e_procs = cluster
    try:
        yield cluster
    finally:
        cluster.stop_all(timeout_s=5.0)
        cluster.kill_all()


@pytest.fixture
def proxied_procs(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ClusterProcesses]:
    """A new 4-validator cluster whose peer links go through link proxies (partitionable)."""
    base = free_port_block(ports_needed(E2E_NODES, proxies=True))
    layout = init_cluster(
        tmp_path / "cluster",
        nodes=E2E_NODES,
        base_port=base,
        timeouts=FAST_TIMEOUTS,
        log_format="text",
        proxies=True,
    )
    cluster = ClusterProcesses(layout)
    request.node.e2e_procs = cluster
    try:
        yield cluster
    finally:
        cluster.stop_all(timeout_s=5.0)
        cluster.kill_all()
        assert cluster.links_pid() is None, "the link proxy process outlived the cluster"
