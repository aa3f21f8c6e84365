"""Create a local cluster: keys, genesis, one config per node. Refuses to overwrite one."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from config.errors import ConfigError
from config.genesis import AccountSpec, ConsensusParams, Genesis, ValidatorSpec, genesis_to_toml
from config.keyfile import generate_key_file
from config.node_config import Limits, NodeConfig, PeerAddress, Timeouts, node_config_to_toml
from node.cluster.layout import MANIFEST, ClusterError, ClusterLayout, LinkEntry, NodeEntry

PORTS_PER_NODE = 3  # peer, client, metrics
DEFAULT_BASE_PORT = 7100
DEFAULT_CHAIN_ID = "assetledger-local"
NODES_MAX = 64
# Test/demo profile: a dead primary is replaced within about a second on loopback.
FAST_TIMEOUTS = Timeouts(
    tick_interval_ms=20,
    batch_timeout_ms=10,
    view_change_timeout_ms=1_000,
    request_timeout_ms=5_000,
    keepalive_interval_ms=200,
    peer_dead_after_ms=1_500,
    reconnect_backoff_min_ms=50,
    reconnect_backoff_max_ms=500,
)


def ports_needed(nodes: int, *, proxies: bool = False) -> int:
    """Consecutive ports a cluster uses from its base port: 3 per node, and with `proxies`
    one per directed link (n x (n - 1)) after them."""
    return nodes * PORTS_PER_NODE + (nodes * (nodes - 1) if proxies else 0)


def init_cluster(
    root: Path,
    *,
    nodes: int,
    base_port: int = DEFAULT_BASE_PORT,
    chain_id: str = DEFAULT_CHAIN_ID,
    host: str = "127.0.0.1",
    limits: Limits | None = None,
    timeouts: Timeouts | None = None,
    log_format: str = "json",
    proxies: bool = False,
    consensus: ConsensusParams | None = None,
) -> ClusterLayout:
    """With `proxies`, every node reaches every peer through a link proxy (a port of its
    own per direction), so `cluster partition` can cut links between real processes.

    `consensus` (K, W and the proposal limits) goes into genesis, where every validator reads it; genesis.toml
    gets a [consensus] table only when it differs from the defaults. Without `limits`, the
    nodes get the default [limits] raised where the chain needs more (`Limits.fitted_to`)."""
    root = root.absolute()  # configs name absolute paths; `--dir ./c` must work too
    consensus = consensus or ConsensusParams()
    try:
        limits = Limits().fitted_to(consensus) if limits is None else limits
        # Checked here too so a cluster whose nodes could never start is not created.
        limits.check_chain(consensus)
    except ConfigError as exc:
        raise ClusterError(
            f"{exc.under('limits')} (for this chain's genesis [consensus])"
        ) from None
    if not 1 <= nodes <= NODES_MAX:
        raise ClusterError(
            f"--nodes must be 1..{NODES_MAX}, got {nodes} (PBFT tolerates f faults with 3f+1 nodes: use 4 or 7)"
        )
    count = ports_needed(nodes, proxies=proxies)
    top = base_port + count - 1
    if not base_port >= 1024 or top > 65535:
        raise ClusterError(
            f"--base-port {base_port} leaves ports {base_port}..{top}; pick 1024..{65535 - count + 1}"
        )
    if (root / MANIFEST).exists():
        raise ClusterError(
            f"{root} already holds a cluster; refusing to overwrite it (remove it or pick another --dir)"
        )
    if root.exists() and any(root.iterdir()):
        raise ClusterError(f"{root} exists and is not empty; refusing to overwrite it")
    root.mkdir(parents=True, exist_ok=True)

    regulator = generate_key_file(root / "regulator.key")
    issuer = generate_key_file(root / "issuer.key")
    entries = []
    for i in range(nodes):
        name = f"node-{i}"
        (root / name).mkdir()
        key = generate_key_file(root / name / "validator.key")
        port = base_port + i * PORTS_PER_NODE
        entries.append(
            NodeEntry(
                name=name,
                host=host,
                peer_port=port,
                client_port=port + 1,
                metrics_port=port + 2,
                public_key=bytes(key.verify_key).hex(),
            )
        )
    links: list[LinkEntry] = []
    if proxies:
        port = base_port + nodes * PORTS_PER_NODE
        for src in entries:
            for dst in entries:
                if src is not dst:
                    links.append(LinkEntry(src=src.name, dst=dst.name, port=port))
                    port += 1
    issuer_public = bytes(issuer.verify_key)
    genesis = Genesis(
        chain_id=chain_id,
        genesis_time_ms=time.time_ns() // 1_000_000,
        regulator_keys=(bytes(regulator.verify_key),),
        regulator_threshold=1,
        validators=tuple(
            ValidatorSpec(
                name=e.name, public_key=bytes.fromhex(e.public_key), address=f"{host}:{e.peer_port}"
            )
            for e in entries
        ),
        accounts=(
            AccountSpec(
                public_key=issuer_public,
                category="entity",
                kyc_hash=hashlib.sha256(b"local-cluster issuer KYC record").digest(),
                roles=frozenset({"issuer"}),
            ),
        ),
        assets=(),
        consensus=consensus,
    )
    layout = ClusterLayout(
        root=root,
        chain_id=chain_id,
        nodes=tuple(entries),
        regulator_public_key=bytes(regulator.verify_key).hex(),
        issuer_public_key=issuer_public.hex(),
        links=tuple(links),
    )
    layout.genesis_file.write_text(genesis_to_toml(genesis))
    for entry in entries:
        config = NodeConfig(
            name=entry.name,
            data_dir=layout.node_dir(entry.name) / "data",
            key_file=layout.key_file(entry.name),
            genesis_file=layout.genesis_file,
            peer_listen=(host, entry.peer_port),
            client_listen=(host, entry.client_port),
            metrics_listen=(host, entry.metrics_port),
            limits=limits,
            timeouts=timeouts or Timeouts(),
            log_format=log_format,
            peers=tuple(
                PeerAddress(name=link.dst, address=f"{host}:{link.port}")
                for link in links
                if link.src == entry.name
            ),
        )
        text = node_config_to_toml(config, relative_to=layout.node_dir(entry.name))
        layout.config_file(entry.name).write_text(text)
    layout.save()
    return layout
