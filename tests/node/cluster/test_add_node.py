"""`cluster add-node`: key, config, ports and manifest entry of one more validator."""

from __future__ import annotations

import json
import socket
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from config.keyfile import load_key_file
from config.node_config import load_node_config
from node.cli.main import cli
from node.cluster.add_node import add_node, next_node_name, pick_ports
from node.cluster.init import FAST_TIMEOUTS, PORTS_PER_NODE, init_cluster
from node.cluster.layout import MANIFEST, ClusterError, ClusterLayout
from node.cluster.ports import free_port_block
from node.cluster.processes import ClusterProcesses, ProcessState


@pytest.fixture
def layout(tmp_path: Path) -> ClusterLayout:
    base = free_port_block(5 * PORTS_PER_NODE)  # room for node-4 right after the four
    return init_cluster(tmp_path / "c", nodes=4, base_port=base, timeouts=FAST_TIMEOUTS)


def test_the_new_node_copies_the_cluster_settings_and_takes_the_next_ports(
    layout: ClusterLayout,
) -> None:
    base = layout.nodes[0].peer_port
    added = add_node(layout.root)
    entry = added.entry
    assert entry.name == "node-4"
    assert (entry.peer_port, entry.client_port, entry.metrics_port) == (
        base + 12,
        base + 13,
        base + 14,
    )
    assert added.address == f"127.0.0.1:{base + 12}"

    key_file = layout.key_file("node-4")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert bytes(load_key_file(key_file).verify_key).hex() == entry.public_key

    config = load_node_config(layout.config_file("node-4"))
    reference = load_node_config(layout.config_file("node-0"))
    assert config.name == "node-4"
    assert config.genesis_file == reference.genesis_file
    assert config.key_file == key_file
    assert config.data_dir == layout.node_dir("node-4") / "data"
    assert config.timeouts == FAST_TIMEOUTS and config.limits == reference.limits
    assert config.peer_listen == ("127.0.0.1", base + 12)
    assert {p.name: p.address for p in config.peers} == {
        n.name: f"127.0.0.1:{n.peer_port}" for n in layout.nodes
    }

    reloaded = ClusterLayout.load(layout.root)
    assert reloaded.nodes[:4] == layout.nodes
    assert reloaded.nodes[4] == entry == added.layout.nodes[4]
    assert next_node_name(reloaded) == "node-5"
    assert add_node(layout.root).entry.name == "node-5"


def test_names_are_checked_and_a_refusal_writes_nothing(layout: ClusterLayout) -> None:
    manifest = (layout.root / MANIFEST).read_text()
    with pytest.raises(ClusterError, match="'node-2' is taken"):
        add_node(layout.root, name="node-2")
    with pytest.raises(ClusterError, match="a-z, 0-9"):
        add_node(layout.root, name="Bank_A")
    with pytest.raises(ClusterError, match="a-z, 0-9"):
        add_node(layout.root, name="x" * 33)
    (layout.root / "stray").mkdir()
    with pytest.raises(ClusterError, match="already exists"):
        add_node(layout.root, name="stray")
    assert (layout.root / MANIFEST).read_text() == manifest
    assert sorted(p.name for p in layout.root.iterdir() if p.name.startswith("node-")) == [
        f"node-{i}" for i in range(4)
    ]
    assert add_node(layout.root, name="bank-a").entry.name == "bank-a"


def test_not_a_cluster_and_proxied_clusters_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="cluster init"):
        add_node(tmp_path / "nothing")
    proxied = init_cluster(tmp_path / "p", nodes=4, base_port=30400, proxies=True)
    with pytest.raises(ClusterError, match="--proxies"):
        add_node(proxied.root)


def test_ports_skip_a_busy_block_and_every_port_of_the_manifest(layout: ClusterLayout) -> None:
    top = max(n.metrics_port for n in layout.nodes)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", top + 2))  # the next block is not free
        base = pick_ports(layout, "127.0.0.1")
    used = {p for n in layout.nodes for p in (n.peer_port, n.client_port, n.metrics_port)}
    assert base != top + 1
    assert not used & set(range(base, base + PORTS_PER_NODE))


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_the_command_starts_the_node_and_the_cluster_knows_it(layout: ClusterLayout) -> None:
    # The cluster itself is not running: the new node starts anyway and serves its client
    # port (it follows as an observer until approved and reachable).
    procs = ClusterProcesses(layout)  # opened before the node existed, like `cluster up`
    try:
        code, out = _cli("cluster", "add-node", "--dir", str(layout.root), "--json")
        assert code == 0, out
        shown = json.loads(out)
        assert shown["name"] == "node-4" and shown["height"] == 0
        assert {"public_key", "address", "client", "key_file", "config", "pid"} <= set(shown)
        assert f"--address {shown['address']}" in shown["approve_command"]
        code, out = _cli("cluster", "status", "--dir", str(layout.root), "--json")
        rows = {n["name"]: n for n in json.loads(out)["nodes"]}
        assert rows["node-4"]["process"] == "running" and rows["node-4"]["height"] == 0
        procs.stop_all(timeout_s=5.0)  # re-reads the manifest: node-4 is stopped too
        assert procs.state("node-4") is ProcessState.STOPPED
        code, out = _cli("cluster", "add-node", "--dir", str(layout.root), "--name", "node-4")
        assert code != 0 and "is taken" in out
    finally:
        procs.kill_all()
