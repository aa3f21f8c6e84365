"""K, W and the proposal limits reach the node from genesis [consensus], never from node.toml."""

from __future__ import annotations

import dataclasses
import io
import tomllib
from pathlib import Path

import pytest
import trio
from click.testing import CliRunner

from config.errors import ConfigError
from config.genesis import ConsensusParams, genesis_to_toml, load_genesis
from config.node_config import Limits
from node.cli.main import cli
from node.cluster.init import init_cluster
from node.cluster.layout import ClusterError, ClusterLayout
from node.ledger import LedgerLimits
from node.runtime.backend import NodeBackend
from node.runtime.node import LOCAL_LEDGER_LIMITS, Node, NodeStartupError

BASE_PORT = 41_000  # nothing is bound: the nodes are opened, never run


def _cluster(tmp_path: Path, consensus: ConsensusParams | None = None) -> ClusterLayout:
    return init_cluster(tmp_path / "c", nodes=4, base_port=BASE_PORT, consensus=consensus)


def _open(layout: ClusterLayout, name: str = "node-0") -> Node:
    return Node.from_file(layout.config_file(name))


def test_k_and_w_come_from_genesis(tmp_path: Path) -> None:
    chain = ConsensusParams(checkpoint_interval_seqs=4, log_window_seqs=12)
    layout = _cluster(tmp_path, chain)
    genesis_text = layout.genesis_file.read_text()
    assert tomllib.loads(genesis_text)["consensus"] == {
        "checkpoint_interval_seqs": 4,
        "log_window_seqs": 12,
    }
    for entry in layout.nodes:
        node_toml = tomllib.loads(layout.config_file(entry.name).read_text())
        assert "limits" not in node_toml  # nothing about K or W per node
    node = _open(layout)
    try:
        assert node.genesis.consensus == chain
        replica_limits = node.replica.replica.config.limits
        assert (replica_limits.checkpoint_interval_seqs, replica_limits.log_window_seqs) == (4, 12)
        assert replica_limits.message_bytes_max == chain.view_change_bytes_max()
        ledger_limits = node.ledger.limits
        assert (ledger_limits.checkpoint_interval_seqs, ledger_limits.log_window_seqs) == (4, 12)
        assert ledger_limits.consensus_state_bytes_max == chain.consensus_state_bytes_max()
    finally:
        node.close()


def test_default_chain_has_no_consensus_table_and_uses_16_and_32(tmp_path: Path) -> None:
    layout = _cluster(tmp_path)
    assert "consensus" not in tomllib.loads(layout.genesis_file.read_text())
    node = _open(layout)
    try:
        limits = node.replica.replica.config.limits
        assert (limits.checkpoint_interval_seqs, limits.log_window_seqs) == (16, 32)
        assert (
            node.ledger.limits.checkpoint_interval_seqs,
            node.ledger.limits.log_window_seqs,
        ) == (
            16,
            32,
        )
    finally:
        node.close()


def test_proposal_limits_come_from_genesis(tmp_path: Path) -> None:
    chain = ConsensusParams(
        tx_bytes_max=4096, memo_bytes_max=64, batch_txs_max=200, batch_bytes_max=128 << 10
    )
    layout = _cluster(tmp_path, chain)
    assert tomllib.loads(layout.genesis_file.read_text())["consensus"] == {
        "checkpoint_interval_seqs": 16,
        "log_window_seqs": 32,
        "tx_bytes_max": 4096,
        "memo_bytes_max": 64,
        "batch_txs_max": 200,
        "batch_bytes_max": 128 << 10,
    }
    node = _open(layout)
    try:
        assert node.genesis.consensus == chain
        assert node.replica.replica.config.limits.batch_bytes_max == 128 << 10
        driver = node.driver
        assert (driver.rules.txs_max, driver.rules.bytes_max) == (200, 128 << 10)
        assert (driver.rules.tx_limits.tx_bytes_max, driver.rules.tx_limits.memo_bytes_max) == (
            4096,
            64,
        )
        assert (driver._settings.batch_txs_max, driver._settings.batch_bytes_max) == (
            200,
            128 << 10,
        )
        assert driver._admission._tx_limits == driver.rules.tx_limits
        # Clients learn them from the status, and build within them (node/client).
        status = trio.run(NodeBackend(node=node).status)
        assert (status.tx_bytes_max, status.memo_bytes_max) == (4096, 64)
    finally:
        node.close()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("checkpoint_interval_seqs", 16),
        ("log_window_seqs", 32),
        ("tx_bytes_max", 16 << 10),
        ("memo_bytes_max", 256),
        ("batch_txs_max", 1000),
        ("batch_bytes_max", 256 << 10),
    ],
)
def test_node_toml_that_still_sets_a_chain_parameter_is_refused(
    tmp_path: Path, key: str, value: int
) -> None:
    layout = _cluster(tmp_path)
    path = layout.config_file("node-0")
    # Even the value genesis has: a second source of a chain parameter is not accepted.
    path.write_text(path.read_text() + f"\n[limits]\n{key} = {value}\n")
    with pytest.raises(ConfigError) as info:
        Node.from_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: limits.{key}: is no longer a node setting")
    assert f"genesis file's [consensus] table (consensus.{key})" in message
    assert not (layout.node_dir("node-0") / "data").exists()  # nothing was created
    # The operator sees the same single line from the command, no traceback.
    result = CliRunner().invoke(cli, ["node", "--config", str(path)])
    assert result.exit_code == 2, result.output
    assert f"limits.{key}: is no longer a node setting" in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_node_whose_limits_cannot_carry_the_genesis_window_does_not_start(
    tmp_path: Path,
) -> None:
    layout = _cluster(tmp_path)
    wide = ConsensusParams(checkpoint_interval_seqs=16, log_window_seqs=64)
    genesis = dataclasses.replace(load_genesis(layout.genesis_file), consensus=wide)
    layout.genesis_file.write_text(genesis_to_toml(genesis))
    with pytest.raises(NodeStartupError) as info:
        _open(layout)
    message = str(info.value)
    assert message.startswith(
        "limits.peer_frame_bytes_max: 16777216 cannot carry a VIEW-CHANGE for a full log window:"
        " genesis consensus.log_window_seqs (64)"
    )
    assert "(expected at least 16973824)" in message
    assert str(layout.genesis_file) in message
    assert not (layout.node_dir("node-0") / "data").exists()  # refused before the ledger


def test_cluster_init_refuses_given_limits_that_cannot_carry_the_window(tmp_path: Path) -> None:
    wide = ConsensusParams(checkpoint_interval_seqs=16, log_window_seqs=64)
    with pytest.raises(
        ClusterError,
        match=r"^limits\.peer_frame_bytes_max: .*consensus\.log_window_seqs \(64\) .* genesis \[consensus\]\)$",
    ):
        init_cluster(tmp_path / "c", nodes=4, base_port=BASE_PORT, consensus=wide, limits=Limits())
    assert not (tmp_path / "c").exists()


def test_cluster_init_fits_the_node_limits_to_the_chain(tmp_path: Path) -> None:
    """Without given limits, the defaults are raised where the chain needs more (here the
    peer frame, for a VIEW-CHANGE of a 64-wide window), and only there."""
    wide = ConsensusParams(checkpoint_interval_seqs=16, log_window_seqs=64, batch_txs_max=60_000)
    assert Limits().fitted_to(ConsensusParams()) == Limits()  # the default chain needs nothing
    layout = init_cluster(tmp_path / "ok", nodes=4, base_port=BASE_PORT, consensus=wide)
    node = _open(layout)
    try:
        assert node.replica.replica.config.limits.log_window_seqs == 64
        assert node.config.limits == Limits(peer_frame_bytes_max=16_973_824, mempool_txs_max=60_000)
    finally:
        node.close()


def test_the_state_cache_size_is_a_local_limit(tmp_path: Path) -> None:
    layout = _cluster(tmp_path)
    config_file = layout.config_file("node-0")
    config_file.write_text(config_file.read_text() + "\n[limits]\nstate_cache_entries_max = 0\n")
    node = _open(layout)
    try:
        assert node.ledger.limits.state_cache_entries_max == 0
        assert node.ledger._state_cache.entries_max == 0
    finally:
        node.close()
    node = _open(layout, "node-1")  # the others keep the default
    try:
        assert node.ledger.limits.state_cache_entries_max == Limits().state_cache_entries_max
    finally:
        node.close()


def test_the_ledgers_layout_limits_are_local(tmp_path: Path) -> None:
    layout = _cluster(tmp_path)
    config_file = layout.config_file("node-0")
    config_file.write_text(
        config_file.read_text()
        + "\n[limits]\nbalance_log_buckets = 0\nbalance_log_from_entries = 1000\n"
        + "history_heads_cache_entries_max = 7\nmap_size_bytes = 1073741824\n"
        + "history_heads_log_buckets = 16\nhistory_heads_log_from_entries = 11\n"
    )
    node = _open(layout)
    try:
        limits = node.ledger.limits
        assert (
            limits.balance_log_buckets,
            limits.balance_log_from_entries,
            limits.history_heads_cache_entries_max,
            limits.map_size_bytes,
            limits.history_heads_log_buckets,
            limits.history_heads_log_from_entries,
        ) == (0, 1000, 7, 1 << 30, 16, 11)
    finally:
        node.close()


def test_the_node_configs_ledger_defaults_are_the_ledgers() -> None:
    """config/ may not import node/, so the defaults are written twice: they must agree."""
    node, ledger = Limits(), LedgerLimits()
    for name in LOCAL_LEDGER_LIMITS:
        assert getattr(node, name) == getattr(ledger, name), name


def test_cluster_init_sets_k_and_w_in_genesis(tmp_path: Path) -> None:
    root = tmp_path / "c"
    args = ["cluster", "init", "--dir", str(root), "--base-port", "20300"]
    result = CliRunner().invoke(
        cli, [*args, "--checkpoint-interval-seqs", "4", "--log-window-seqs", "12"]
    )
    assert result.exit_code == 0, result.output
    genesis = tomllib.loads((root / "genesis.toml").read_text())
    assert genesis["consensus"] == {"checkpoint_interval_seqs": 4, "log_window_seqs": 12}
    node = Node.from_file(ClusterLayout.load(root).config_file("node-0"))
    try:
        limits = node.replica.replica.config.limits
        assert (limits.checkpoint_interval_seqs, limits.log_window_seqs) == (4, 12)
    finally:
        node.close()
    bad_root = tmp_path / "bad"
    bad_args = ["cluster", "init", "--dir", str(bad_root), "--log-window-seqs", "10"]
    bad = CliRunner().invoke(cli, [*bad_args, "--checkpoint-interval-seqs", "4"])
    assert bad.exit_code != 0
    assert "consensus.checkpoint_interval_seqs: 4 does not divide" in bad.output
    assert "(--checkpoint-interval-seqs)" in bad.output
    assert not bad_root.exists()


def test_cluster_init_sets_the_proposal_limits_in_genesis(tmp_path: Path) -> None:
    """Testers size blocks for a local cluster from the command line; the limits land in
    genesis, where every validator reads them, and a wide window can shrink its batches."""
    root = tmp_path / "c"
    args = ["cluster", "init", "--dir", str(root), "--base-port", "20400"]
    limits = ["--batch-txs-max", "250", "--batch-bytes-max", "64000", "--memo-bytes-max", "64"]
    result = CliRunner().invoke(cli, [*args, "--log-window-seqs", "160", *limits])
    assert result.exit_code == 0, result.output
    consensus = tomllib.loads((root / "genesis.toml").read_text())["consensus"]
    assert (consensus["log_window_seqs"], consensus["batch_txs_max"]) == (160, 250)
    assert (consensus["batch_bytes_max"], consensus["memo_bytes_max"]) == (64_000, 64)
    bad_root = tmp_path / "bad"
    bad = CliRunner().invoke(
        cli, ["cluster", "init", "--dir", str(bad_root), "--log-window-seqs", "160"]
    )
    assert bad.exit_code != 0
    message = " ".join(bad.output.split())
    assert "consensus.batch_bytes_max: 262144 is too large for consensus.log_window_seqs" in message
    assert "expected at most 205414" in message and "(--batch-bytes-max)" in message
    assert not bad_root.exists()


def test_a_keepalive_too_slow_for_the_view_change_timer_is_warned_about(tmp_path: Path) -> None:
    """R8b sees a cut link only after two keepalive intervals of silence: slower than the
    view-change timer, a cut-off validator could still change view alone."""
    layout = _cluster(tmp_path)
    path = layout.config_file("node-0")
    path.write_text(path.read_text() + "\n[timeouts]\nkeepalive_interval_ms = 1000\n")
    logs = io.StringIO()
    Node.from_file(path, log_stream=logs).close()
    assert "keepalive_interval_ms x 2 (2000 ms) is not below" in logs.getvalue()
    assert "view_change_timeout_ms (2000 ms)" in logs.getvalue()
    logs = io.StringIO()
    Node.from_file(layout.config_file("node-1"), log_stream=logs).close()  # 2 x 500 < 2000
    assert "keepalive_interval_ms x 2" not in logs.getvalue()


def test_cluster_init_from_the_cli_fits_the_node_limits_to_a_wide_window(
    tmp_path: Path,
) -> None:
    root = tmp_path / "c"
    args = [
        "cluster",
        "init",
        "--dir",
        str(root),
        "--log-window-seqs",
        "64",
        "--base-port",
        "20500",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    written = tomllib.loads((root / "node-0" / "node.toml").read_text())
    assert written["limits"]["peer_frame_bytes_max"] == 16_973_824  # 64 x 263168 + 2 x 65536
