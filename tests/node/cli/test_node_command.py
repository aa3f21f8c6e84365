"""`assetledger node`: configuration mistakes, busy ports and a full store give one clear line,
no traceback."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import trio
from click.testing import CliRunner

from node.cli.main import cli
from node.cluster.init import PORTS_PER_NODE, init_cluster
from node.ledger import LedgerFullError
from node.ledger.pipeline import PipelineError
from node.runtime.node import Node
from tests.node.runtime.harness import free_port_block


def test_busy_port_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tuned: list[bool] = []  # the node's GC settings, recorded instead of applied to pytest
    monkeypatch.setattr("node.cli.node_cmd.tune_gc", lambda: tuned.append(True))
    layout = init_cluster(tmp_path / "c", nodes=1, base_port=free_port_block(PORTS_PER_NODE))
    entry = layout.nodes[0]
    with socket.socket() as busy:
        busy.bind((entry.host, entry.peer_port))
        busy.listen()
        result = CliRunner().invoke(cli, ["node", "--config", str(layout.config_file(entry.name))])
    assert result.exit_code == 2, result.output
    assert "already in use" in result.output
    assert "Traceback" not in result.output
    assert tuned == [True]  # applied once startup was done, before serving


def test_missing_or_wrong_config_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["node", "--config", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2 and "nope.toml" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text('[node]\nname = "n"\nbogus = 1\n')
    result = CliRunner().invoke(cli, ["node", "--config", str(bad)])
    assert result.exit_code == 2 and "node.data_dir: missing (required)" in result.output
    assert "Traceback" not in result.output


def test_a_full_store_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The block pipeline fails the commit with LedgerFullError (tests/node/ledger), which
    reaches the command inside the node's task group, the pipeline's later refusals citing
    it as their cause."""
    monkeypatch.setattr("node.cli.node_cmd.tune_gc", lambda: None)
    layout = init_cluster(tmp_path / "c", nodes=1, base_port=free_port_block(PORTS_PER_NODE))
    full = LedgerFullError("the store reached map_size_bytes=1048576; block 7 was not applied")

    async def run(self: Node, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        refused = PipelineError("the pipeline stopped")
        refused.__cause__ = full
        raise BaseExceptionGroup("node", [ExceptionGroup("driver", [refused])])

    monkeypatch.setattr(Node, "run", run)
    config = layout.config_file(layout.nodes[0].name)
    result = CliRunner().invoke(cli, ["node", "--config", str(config)])
    assert result.exit_code == 2, result.output
    assert "the node stopped: the store reached map_size_bytes=1048576" in result.output
    assert "Traceback" not in result.output
