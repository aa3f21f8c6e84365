"""The process supervisor's bookkeeping: pid files, stale pids, unknown nodes, failed starts."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from node.cluster.init import init_cluster
from node.cluster.layout import ClusterError
from node.cluster.processes import (
    ClusterProcesses,
    NodeNotReadyError,
    ProcessState,
    _proc_stat_state,
)

EXIT_TIMEOUT_S = 30.0


@pytest.fixture
def procs(tmp_path: Path) -> ClusterProcesses:
    return ClusterProcesses(init_cluster(tmp_path / "c", nodes=4, base_port=30100))


def test_no_pid_file_means_stopped(procs: ClusterProcesses) -> None:
    assert [i.state for i in procs.info()] == [ProcessState.STOPPED] * 4
    assert procs.pid("node-0") is None


def test_a_stale_or_foreign_pid_is_not_trusted(procs: ClusterProcesses) -> None:
    pid_file = procs.layout.pid_file("node-1")
    pid_file.write_text("999999999\n")  # no such process
    assert procs.state("node-1") is ProcessState.STOPPED
    pid_file.write_text(f"{os.getpid()}\n")  # alive, but not running node-1's config (reused)
    assert procs.pid("node-1") is None
    pid_file.write_text("not a pid\n")
    assert procs.pid("node-1") is None
    with pytest.raises(ClusterError, match="node-1 is not running"):
        procs.kill("node-1")
    assert procs.stop("node-1") is True  # stopping a stopped node is a no-op


def test_unknown_node_names_say_which_exist(procs: ClusterProcesses) -> None:
    with pytest.raises(ClusterError, match=r"no node 'node-9'.*node-0, node-1"):
        procs.pause("node-9")


def test_proc_stat_state_reads_our_own_process() -> None:
    assert _proc_stat_state(os.getpid()) in ("R", "S")
    assert _proc_stat_state(999_999_999) is None


def test_a_node_that_cannot_start_is_reported_with_its_log(procs: ClusterProcesses) -> None:
    config = procs.layout.config_file("node-2")
    config.write_text(config.read_text().replace('name = "node-2"', 'name = "node-x"'))
    procs.start("node-2")
    deadline = time.monotonic() + EXIT_TIMEOUT_S
    while procs.pid("node-2") is not None:  # the process checks its config and exits
        assert time.monotonic() < deadline, "node with a bad config did not exit"
        time.sleep(0.05)
    with pytest.raises(NodeNotReadyError) as caught:
        procs.check_alive("node-2")
    message = str(caught.value)
    assert "node-2 exited with exit code 2" in message
    assert str(procs.layout.log_file("node-2")) in message
    assert "holds the key of validator node-2" in message  # the tail of the node's own log
    assert procs.state("node-2") is ProcessState.STOPPED
