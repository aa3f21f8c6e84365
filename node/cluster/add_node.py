"""Add one more validator to a local cluster: its key, its config and its place in the manifest.

The new node gets the same genesis file, limits and timeouts as the cluster's first node, three
fresh ports, and the addresses of the nodes already in the cluster as peer entries. It may be
started at once: until the regulator approves it (`assetledger tx add-validator`), the
validators refuse its connections; once approved it connects, syncs from an empty data
directory, and votes from the next epoch boundary on (consensus/epochs.py).
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path

from config.errors import ConfigError
from config.keyfile import KeyFileError, generate_key_file
from config.node_config import NodeConfig, PeerAddress, load_node_config, node_config_to_toml
from node.cluster.init import NODES_MAX, PORTS_PER_NODE
from node.cluster.layout import ClusterError, ClusterLayout, NodeEntry
from node.cluster.ports import NoFreePortsError, block_is_free, free_port_block

NAME_CHARS_MAX = 32
NAME_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
PORT_MAX = 65_535


@dataclass(frozen=True, slots=True, kw_only=True)
class AddedNode:
    """What `add_node` created; `layout` is the cluster's manifest including the new node."""

    layout: ClusterLayout
    entry: NodeEntry

    @property
    def address(self) -> str:
        """The peer address the regulator approves (`tx add-validator --address`)."""
        return f"{self.entry.host}:{self.entry.peer_port}"


def _check_name(layout: ClusterLayout, name: str) -> None:
    if not 1 <= len(name) <= NAME_CHARS_MAX or not set(name) <= NAME_ALPHABET:
        raise ClusterError(
            f"--name {name!r}: use 1..{NAME_CHARS_MAX} characters of a-z, 0-9 and '-'"
            " (like the genesis validator names)"
        )
    if any(n.name == name for n in layout.nodes):
        raise ClusterError(f"--name {name!r} is taken: {layout.root} already has a node {name}")
    if layout.node_dir(name).exists():
        raise ClusterError(
            f"--name {name!r}: {layout.node_dir(name)} already exists (not in the manifest);"
            " remove it or pick another name"
        )


def next_node_name(layout: ClusterLayout) -> str:
    """node-<i> for the smallest i >= the node count that is not taken (names stay stable
    when nodes are added one after another)."""
    taken = {n.name for n in layout.nodes}
    index = len(layout.nodes)
    while f"node-{index}" in taken or layout.node_dir(f"node-{index}").exists():
        index += 1
    return f"node-{index}"


def _used_ports(layout: ClusterLayout) -> set[int]:
    used = {link.port for link in layout.links}
    for n in layout.nodes:
        used |= {n.peer_port, n.client_port, n.metrics_port}
    return used


def pick_ports(layout: ClusterLayout, host: str) -> int:
    """Base of PORTS_PER_NODE consecutive ports for a new node: right after the cluster's
    highest port when those are free (predictable: node-4 of `init --base-port 7100` gets
    7112..7114), else a free block from the port picker. Never a port the manifest assigns
    to another node, even one that is stopped and so not bound right now."""
    used = _used_ports(layout)
    candidate = max(used, default=1023) + 1
    if candidate + PORTS_PER_NODE - 1 <= PORT_MAX and block_is_free(
        host, candidate, PORTS_PER_NODE
    ):
        return candidate
    for _ in range(10):
        try:
            base = free_port_block(PORTS_PER_NODE, host)
        except NoFreePortsError as exc:
            raise ClusterError(f"no free ports for a new node: {exc}") from exc
        if not used & set(range(base, base + PORTS_PER_NODE)):
            return base
    raise ClusterError(f"no free ports for a new node on {host} outside the cluster's own")


def _reference_config(layout: ClusterLayout) -> NodeConfig:
    """The config of the cluster's first node: the new one copies its settings."""
    if not layout.nodes:
        raise ClusterError(f"{layout.root}: the manifest lists no node to copy settings from")
    path = layout.config_file(layout.nodes[0].name)
    try:
        return load_node_config(path)
    except (ConfigError, OSError) as exc:
        raise ClusterError(f"cannot read {path} to copy its settings: {exc}") from exc


def add_node(root: Path, *, name: str | None = None) -> AddedNode:
    """Create key, config and data folder of one more validator and record it in the manifest.

    Does not start it and does not approve it. Raises ClusterError (nothing written) if
    `root` is not a cluster, the name is taken or invalid, or the cluster uses link proxies
    (a proxied cluster's links are fixed when it is created)."""
    layout = ClusterLayout.load(root)  # "not a cluster directory" before anything else
    with ClusterLayout.locked(layout.root):
        layout = ClusterLayout.load(root)  # again, under the lock: another add-node may have run
        if layout.links:
            raise ClusterError(
                f"{layout.root} routes its peers through link proxies (`init --proxies`), whose"
                " links are fixed at init; add-node supports clusters without --proxies"
            )
        if len(layout.nodes) >= NODES_MAX:
            raise ClusterError(f"{layout.root} already has {NODES_MAX} nodes, the maximum")
        name = next_node_name(layout) if name is None else name
        _check_name(layout, name)
        reference = _reference_config(layout)
        host = reference.peer_listen[0]
        base = pick_ports(layout, host)
        node_dir = layout.node_dir(name)
        node_dir.mkdir()
        try:
            key = generate_key_file(layout.key_file(name))
            entry = NodeEntry(
                name=name,
                host=host,
                peer_port=base,
                client_port=base + 1,
                metrics_port=base + 2,
                public_key=bytes(key.verify_key).hex(),
            )
            config = dataclasses.replace(
                reference,
                name=name,
                data_dir=node_dir / "data",
                key_file=layout.key_file(name),
                peer_listen=(host, entry.peer_port),
                client_listen=(host, entry.client_port),
                metrics_listen=(host, entry.metrics_port),
                # Where the others listen. The node trusts only the ledger for *who* is a
                # validator; these entries only say where to find them.
                peers=tuple(
                    PeerAddress(name=n.name, address=f"{n.host}:{n.peer_port}")
                    for n in layout.nodes
                ),
            )
            layout.config_file(name).write_text(node_config_to_toml(config, relative_to=node_dir))
            grown = dataclasses.replace(layout, nodes=(*layout.nodes, entry))
            grown.save()
        except (ConfigError, KeyFileError, OSError) as exc:
            shutil.rmtree(node_dir, ignore_errors=True)
            raise ClusterError(f"cannot create {name}: {exc}") from exc
        except BaseException:
            shutil.rmtree(node_dir, ignore_errors=True)
            raise
    return AddedNode(layout=grown, entry=entry)
