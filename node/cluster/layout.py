"""A local cluster directory: where every key, config, data dir and log lives.

DIR/cluster.json          manifest: chain id, nodes (name, ports, paths), role keys
DIR/genesis.toml
DIR/regulator.key         the regulator (threshold 1 of 1 in a local cluster)
DIR/issuer.key            registered in genesis with the issuer role
DIR/node-<i>/validator.key, node.toml, data/, node.log, node.pid
DIR/<name>/...            a node added later by `cluster add-node` (same files)
DIR/<name>/validator.next.key, validator.<hex>.retired.key   key rotation (key_rotation.py)
DIR/cluster.lock          held while add-node or a key switch rewrites the manifest
DIR/links.json, links.pid, links.log, links.state.json   only with `init --proxies`:
                          the partition plan, the link proxy process and its last applied plan
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MANIFEST = "cluster.json"
LOCK_FILE = "cluster.lock"
MANIFEST_FORMAT = "assetledger-cluster-v1"


class ClusterError(Exception):
    """A cluster directory is missing, incomplete, or would be overwritten."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeEntry:
    name: str
    host: str
    peer_port: int
    client_port: int
    metrics_port: int
    public_key: str  # hex

    @property
    def client(self) -> str:
        return f"{self.host}:{self.client_port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkEntry:
    """The proxied direction `src` -> `dst`: `src` dials `dst` at `port`, which forwards to
    `dst`'s real peer port. One TCP connection per pair carries both directions, so a pair
    is cut by cutting both of its links."""

    src: str
    dst: str
    port: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterLayout:
    root: Path
    chain_id: str
    nodes: tuple[NodeEntry, ...]
    regulator_public_key: str
    issuer_public_key: str
    links: tuple[LinkEntry, ...] = ()  # empty: nodes dial each other directly

    @property
    def genesis_file(self) -> Path:
        return self.root / "genesis.toml"

    @property
    def regulator_key(self) -> Path:
        return self.root / "regulator.key"

    @property
    def issuer_key(self) -> Path:
        return self.root / "issuer.key"

    def node_dir(self, name: str) -> Path:
        return self.root / name

    def config_file(self, name: str) -> Path:
        return self.node_dir(name) / "node.toml"

    def key_file(self, name: str) -> Path:
        return self.node_dir(name) / "validator.key"

    def log_file(self, name: str) -> Path:
        return self.node_dir(name) / "node.log"

    def pid_file(self, name: str) -> Path:
        return self.node_dir(name) / "node.pid"

    @property
    def links_file(self) -> Path:
        return self.root / "links.json"

    @property
    def links_state_file(self) -> Path:
        return self.root / "links.state.json"

    @property
    def links_pid_file(self) -> Path:
        return self.root / "links.pid"

    @property
    def links_log_file(self) -> Path:
        return self.root / "links.log"

    def node(self, name: str) -> NodeEntry:
        for entry in self.nodes:
            if entry.name == name:
                return entry
        raise ClusterError(
            f"no node {name!r} in {self.root} (nodes: {', '.join(n.name for n in self.nodes)})"
        )

    def save(self) -> None:
        data: dict[str, Any] = {
            "format": MANIFEST_FORMAT,
            "chain_id": self.chain_id,
            "regulator_public_key": self.regulator_public_key,
            "issuer_public_key": self.issuer_public_key,
            "nodes": [asdict(n) for n in self.nodes],
        }
        if self.links:
            data["links"] = [asdict(link) for link in self.links]
        # Replaced atomically: `cluster up` and `status` may read it while add-node writes.
        path = self.root / MANIFEST
        tmp = path.with_name(MANIFEST + ".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)

    @staticmethod
    @contextlib.contextmanager
    def locked(root: Path) -> Iterator[None]:
        """Hold the cluster's lock while changing its manifest (load, change, save), so two
        `cluster add-node` runs from different terminals cannot lose one another's node."""
        with (root / LOCK_FILE).open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @staticmethod
    def load(root: Path) -> ClusterLayout:
        root = root.absolute()  # node processes run in their own directories
        path = root / MANIFEST
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise ClusterError(
                f"{root} is not a cluster directory (no {MANIFEST}); create one with `assetledger cluster init`"
            ) from exc
        except (OSError, ValueError) as exc:
            raise ClusterError(f"{path}: unreadable manifest: {exc}") from exc
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
            raise ClusterError(f"{path}: not an {MANIFEST_FORMAT} manifest")
        try:
            return ClusterLayout(
                root=root,
                chain_id=data["chain_id"],
                regulator_public_key=data["regulator_public_key"],
                issuer_public_key=data["issuer_public_key"],
                nodes=tuple(NodeEntry(**n) for n in data["nodes"]),
                links=tuple(LinkEntry(**link) for link in data.get("links", ())),
            )
        except (KeyError, TypeError) as exc:
            raise ClusterError(f"{path}: malformed manifest: {exc}") from exc
