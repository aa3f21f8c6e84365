"""Node configuration: one validator process's settings, from TOML to a frozen `NodeConfig`.

Sections: ``[node]`` (identity and files), ``[listen]`` (sockets), ``[[peers]]`` (optional
overrides of genesis peer addresses), ``[limits]``, ``[timeouts]``, ``[log]``. Every limit and
timeout has a safe default and hard bounds (`LIMIT_BOUNDS`, `TIMEOUT_BOUNDS_MS`), plus the
cross-field rules checked in `Limits.__post_init__` / `Timeouts.__post_init__`. The rules that
involve the chain's parameters (genesis ``[consensus]``: the log window and the proposal
limits, which every validator must share) are in `Limits.check_chain`, which the node runs at
start against its genesis.

Error paths are TOML paths (``limits.frame_bytes_max``, ``listen.peer``), also for errors
raised when the objects are built directly in Python.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config._fields import (
    NAME_PATTERN,
    PATH_CHARS_MAX,
    TableReader,
    check_address,
    check_choice,
    check_host,
    check_int,
    check_port,
    check_str,
    check_tuple,
    check_unique,
    format_host_port,
    parse_host_port,
)
from config._toml import read_toml, toml_pairs
from config.errors import ConfigError
from config.genesis import VIEW_CHANGE_BASE_BYTES, VIEW_CHANGE_SEQ_BYTES, ConsensusParams

NODE_CONFIG_FILE_BYTES_MAX = 1 << 20
PEERS_MAX = 256
# Room a frame needs around the payloads it carries: message envelope, view and sequence
# numbers, signatures and the commit certificate, msgpack headers of up to batch_txs_max items.
FRAME_OVERHEAD_BYTES = 64 << 10
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::"})
LOG_LEVELS = frozenset({"debug", "info", "warning", "error"})
LOG_FORMATS = frozenset({"json", "text"})

_MIB = 1 << 20
# (lowest, highest) accepted value of every limit; the units are in the field names.
LIMIT_BOUNDS: dict[str, tuple[int, int]] = {
    "frame_bytes_max": (2 * FRAME_OVERHEAD_BYTES, 64 * _MIB),
    "peer_frame_bytes_max": (1 * _MIB, 256 * _MIB),
    "mempool_txs_max": (1, 10_000_000),
    "peer_send_queue_messages_max": (1, 1_000_000),
    "client_connections_per_address_max": (1, 65_536),
    "client_connections_max": (1, 65_536),
    "client_requests_in_flight_max": (1, 65_536),
    "pending_waits_max": (1, 1_000_000),
    "future_view_messages_per_peer_max": (1, 10_000),
    "subscriptions_max": (1, 65_536),
    "verify_threads": (1, 64),
    "state_cache_entries_max": (0, 100_000_000),
    "balance_log_buckets": (0, 256),  # and 0 or a power of two (LOG_BUCKETS_ALLOWED)
    "balance_log_from_entries": (0, 1 << 40),
    "history_heads_cache_entries_max": (0, 100_000_000),
    "history_heads_log_buckets": (0, 256),
    "history_heads_log_from_entries": (0, 1 << 40),
    "map_size_bytes": (_MIB, 1 << 44),
}
# A log's bucket is the high bits of an account's first byte (node/ledger/bucket_log.py).
LOG_BUCKETS_ALLOWED = (0, 2, 4, 8, 16, 32, 64, 128, 256)
# Former [limits] keys that are chain parameters now: every validator must use the same
# values, so they live in genesis [consensus] (config/genesis.py). A node.toml that still sets
# one is refused with a pointer there rather than silently ignored or compared.
MOVED_TO_GENESIS = (
    "checkpoint_interval_seqs",
    "log_window_seqs",
    "tx_bytes_max",
    "memo_bytes_max",
    "batch_txs_max",
    "batch_bytes_max",
)
_HOUR_MS = 3_600_000
TIMEOUT_BOUNDS_MS: dict[str, tuple[int, int]] = {
    "tick_interval_ms": (1, 60_000),
    "batch_timeout_ms": (1, 60_000),
    "view_change_timeout_ms": (1, _HOUR_MS),
    "request_timeout_ms": (1, _HOUR_MS),
    "clock_skew_max_ms": (100, _HOUR_MS),
    "handshake_timeout_ms": (1, 600_000),
    "keepalive_interval_ms": (1, 600_000),
    "peer_dead_after_ms": (1, _HOUR_MS),
    "reconnect_backoff_min_ms": (1, 600_000),
    "reconnect_backoff_max_ms": (1, _HOUR_MS),
    "nonce_gap_wait_ms": (1, _HOUR_MS),
    "client_wait_max_ms": (1, _HOUR_MS),
}


def _check_bounds(obj: Any, bounds: Mapping[str, tuple[int, int]]) -> None:
    for name, (lo, hi) in bounds.items():
        check_int(name, getattr(obj, name), lo, hi)


def _chain_minimums(chain: ConsensusParams) -> dict[str, int]:
    """The least value of each node limit that the chain's traffic needs (`check_chain`)."""
    return {
        # A VIEW-CHANGE carries up to one proposal payload per sequence number in the window.
        "peer_frame_bytes_max": chain.view_change_bytes_max() + FRAME_OVERHEAD_BYTES,
        # A client `block` response carries the block's transactions and the ordered payload
        # with its certificate: twice a batch, in one client frame.
        "frame_bytes_max": 2 * chain.batch_bytes_max + FRAME_OVERHEAD_BYTES,
        "mempool_txs_max": chain.batch_txs_max,  # the mempool must hold a full proposal
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Every size and count bound of the node. Section ``[limits]``."""

    frame_bytes_max: int = 1 << 20  # one client frame (request or response)
    peer_frame_bytes_max: int = 16 << 20  # one p2p frame between validators
    mempool_txs_max: int = 50_000
    peer_send_queue_messages_max: int = 10_000  # per peer
    client_connections_per_address_max: int = 64
    client_connections_max: int = 1024  # node-wide, every address together
    client_requests_in_flight_max: int = 256  # per client connection
    pending_waits_max: int = 20_000  # submit-and-wait waiters, node-wide
    future_view_messages_per_peer_max: int = 64  # buffered per peer for views ahead of ours
    subscriptions_max: int = 64  # block/receipt subscriptions per client connection
    verify_threads: int = 2  # worker threads for batch signature checks
    # Decoded accounts, balances and nonces kept between blocks and loaded at start when they
    # fit (~250 bytes each, so ~1 GB at the default: 1.3-2M accounts of one asset); 0: off.
    state_cache_entries_max: int = 4_000_000
    # While the balances tree holds at least `balance_log_from_entries`, a block's balance
    # writes go to a log of `balance_log_buckets` buckets, one bucket swept into the tree per
    # block (node/ledger/bucket_log.py); 0 or a power of two up to 256; 0: off. Layout only:
    # a change merges the log into the tree when the node starts.
    balance_log_buckets: int = 128
    balance_log_from_entries: int = 65_536
    # Accounts' history heads kept between blocks so that linking a block's history entries
    # reads no page (node/ledger/history.py; ~160 bytes each); 0: off. Speed and memory only.
    history_heads_cache_entries_max: int = 1_000_000
    # The same log in front of the history heads tree (one head per account that ever
    # transacted); 0: off. Layout only.
    history_heads_log_buckets: int = 128
    history_heads_log_from_entries: int = 65_536
    # The most the ledger's LMDB file may grow to (the map is sparse: only used pages take
    # disk). A full store stops applying blocks; raise this and restart.
    map_size_bytes: int = 8 << 30

    def check_chain(self, chain: ConsensusParams) -> None:
        """Raise ConfigError unless these limits can carry the chain's consensus traffic and
        blocks (genesis ``[consensus]``: the log window and the proposal limits). The node
        calls this at start; like every Limits error, the field is relative to ``[limits]``."""
        need = _chain_minimums(chain)
        peer_frame_min = need["peer_frame_bytes_max"]
        frame_min = need["frame_bytes_max"]
        mempool_min = need["mempool_txs_max"]
        if self.peer_frame_bytes_max < peer_frame_min:
            raise ConfigError(
                "peer_frame_bytes_max",
                f"{self.peer_frame_bytes_max} cannot carry a VIEW-CHANGE for a full log window:"
                f" genesis consensus.log_window_seqs ({chain.log_window_seqs}) x"
                f" (consensus.batch_bytes_max ({chain.batch_bytes_max}) + {VIEW_CHANGE_SEQ_BYTES})"
                f" + {VIEW_CHANGE_BASE_BYTES} + {FRAME_OVERHEAD_BYTES} bytes of frame overhead"
                f" (expected at least {peer_frame_min})",
            )
        if self.frame_bytes_max < frame_min:
            raise ConfigError(
                "frame_bytes_max",
                f"{self.frame_bytes_max} cannot carry a block: 2 x genesis"
                f" consensus.batch_bytes_max ({chain.batch_bytes_max}) + {FRAME_OVERHEAD_BYTES}"
                " bytes of frame overhead must fit in one client frame, because a block"
                " response carries the block's transactions and the ordered payload with its"
                f" certificate (expected at least {frame_min})",
            )
        if self.mempool_txs_max < mempool_min:
            raise ConfigError(
                "mempool_txs_max",
                f"{self.mempool_txs_max} is below genesis consensus.batch_txs_max"
                f" ({chain.batch_txs_max}); the mempool must hold a full proposal",
            )

    def fitted_to(self, chain: ConsensusParams) -> Limits:
        """These limits with each one `check_chain` tests raised just enough for `chain`, and
        the rest unchanged (what `cluster init` writes). ConfigError, naming the field, when
        a needed value is beyond that field's bound."""
        raised = {
            name: need
            for name, need in _chain_minimums(chain).items()
            if getattr(self, name) < need
        }
        return dataclasses.replace(self, **raised)  # __post_init__ checks the bounds

    def __post_init__(self) -> None:
        _check_bounds(self, LIMIT_BOUNDS)
        for name in ("balance_log_buckets", "history_heads_log_buckets"):
            if getattr(self, name) not in LOG_BUCKETS_ALLOWED:
                raise ConfigError(
                    name,
                    f"must be 0 (off) or a power of two from 2 to 256, got {getattr(self, name)}",
                )
        # The rules involving the chain's parameters (genesis [consensus]) need genesis: see
        # `check_chain`.


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """Every time interval of the node, in milliseconds. Section ``[timeouts]``."""

    tick_interval_ms: int = 50  # period of the tick event fed to the replica
    batch_timeout_ms: int = 20  # primary cuts a batch after this even if not full
    view_change_timeout_ms: int = 2_000  # base; doubled per consecutive view change
    # A transaction ready here that the primary leaves out this long, while it orders others,
    # makes this validator vote to replace it (censorship; doubled per timeout the wait had
    # already spanned when the view began). At half of it the transaction is resent to all.
    request_timeout_ms: int = 10_000
    # How far a proposal's timestamp may be from this validator's clock before it votes
    # against the proposal.
    clock_skew_max_ms: int = 30_000
    handshake_timeout_ms: int = 5_000
    # Also how soon a cut link shows (R8b: peers heard within 2 intervals count as reachable),
    # so twice it should stay below view_change_timeout_ms.
    keepalive_interval_ms: int = 500
    peer_dead_after_ms: int = 5_000  # silence after which a peer connection is dropped
    reconnect_backoff_min_ms: int = 100
    reconnect_backoff_max_ms: int = 5_000
    nonce_gap_wait_ms: int = 10_000  # how long a tx with a future nonce waits in the mempool
    client_wait_max_ms: int = 60_000  # longest submit-and-wait a client may ask for

    def __post_init__(self) -> None:
        _check_bounds(self, TIMEOUT_BOUNDS_MS)
        if self.tick_interval_ms >= self.view_change_timeout_ms:
            raise ConfigError(
                "view_change_timeout_ms",
                f"{self.view_change_timeout_ms} is not above timeouts.tick_interval_ms"
                f" ({self.tick_interval_ms}); the timer could never fire in time",
            )
        if self.request_timeout_ms < self.view_change_timeout_ms:
            raise ConfigError(
                "request_timeout_ms",
                f"{self.request_timeout_ms} is below timeouts.view_change_timeout_ms"
                f" ({self.view_change_timeout_ms}); it would blame the primary for a wait the"
                " view-change timer is still timing",
            )
        if self.keepalive_interval_ms >= self.peer_dead_after_ms:
            raise ConfigError(
                "peer_dead_after_ms",
                f"{self.peer_dead_after_ms} is not above timeouts.keepalive_interval_ms"
                f" ({self.keepalive_interval_ms}); live peers would be dropped",
            )
        if self.reconnect_backoff_min_ms > self.reconnect_backoff_max_ms:
            raise ConfigError(
                "reconnect_backoff_max_ms",
                f"{self.reconnect_backoff_max_ms} is below timeouts.reconnect_backoff_min_ms"
                f" ({self.reconnect_backoff_min_ms})",
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerAddress:
    """Where to reach validator `name`; overrides the address in genesis."""

    name: str  # [a-z0-9-]{1,32}, a validator name in genesis (checked by the node)
    address: str  # "host:port", port 1..65535

    def __post_init__(self) -> None:
        check_str("name", self.name, pattern=NAME_PATTERN, expected="[a-z0-9-]{1,32}", chars_max=32)
        check_address("address", self.address)


def _check_path(name: str, value: Any) -> None:
    if not isinstance(value, Path):
        raise ConfigError(name, f"expected a Path, got {type(value).__name__}")
    if not value.is_absolute():
        raise ConfigError(name, f"{str(value)!r} is not absolute")


def _check_listen(name: str, value: Any) -> None:
    if type(value) is not tuple or len(value) != 2:
        raise ConfigError(name, f"expected a (host, port) tuple, got {value!r}")
    check_host(name, value[0])
    check_port(name, value[1], 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeConfig:
    name: str  # must match a validator name in genesis (checked by the node, not here)
    data_dir: Path  # absolute
    key_file: Path  # absolute
    genesis_file: Path  # absolute
    peer_listen: tuple[str, int]  # port 0 = any free port (tests)
    client_listen: tuple[str, int]
    metrics_listen: tuple[str, int] | None = None  # None = no metrics endpoint
    peers: tuple[PeerAddress, ...] = ()  # optional overrides of genesis addresses
    limits: Limits = field(default_factory=Limits)
    timeouts: Timeouts = field(default_factory=Timeouts)
    log_level: str = "info"  # debug|info|warning|error
    log_format: str = "json"  # json|text

    def __post_init__(self) -> None:
        check_str(
            "node.name", self.name, pattern=NAME_PATTERN, expected="[a-z0-9-]{1,32}", chars_max=32
        )
        _check_path("node.data_dir", self.data_dir)
        _check_path("node.key_file", self.key_file)
        _check_path("node.genesis_file", self.genesis_file)
        _check_listen("listen.peer", self.peer_listen)
        _check_listen("listen.client", self.client_listen)
        if self.metrics_listen is not None:
            _check_listen("listen.metrics", self.metrics_listen)
        listens = [("listen.peer", self.peer_listen), ("listen.client", self.client_listen)]
        if self.metrics_listen is not None:
            listens.append(("listen.metrics", self.metrics_listen))
        for index, (name, (host, port)) in enumerate(listens):
            for other, (other_host, other_port) in listens[:index]:
                # A wildcard host binds every interface, so it clashes with any host.
                same_host = host == other_host or {host, other_host} & WILDCARD_HOSTS
                if port != 0 and port == other_port and same_host:
                    raise ConfigError(name, f"{format_host_port(host, port)} clashes with {other}")
        check_tuple("peers", self.peers, PeerAddress, 0, PEERS_MAX)
        check_unique("peers", [p.name for p in self.peers], "name", repr)
        for index, peer in enumerate(self.peers):
            if peer.name == self.name:
                raise ConfigError(f"peers[{index}].name", f"{peer.name!r} is this node itself")
        if type(self.limits) is not Limits:
            raise ConfigError("limits", f"expected Limits, got {type(self.limits).__name__}")
        if type(self.timeouts) is not Timeouts:
            raise ConfigError("timeouts", f"expected Timeouts, got {type(self.timeouts).__name__}")
        check_choice("log.level", self.log_level, LOG_LEVELS)
        check_choice("log.format", self.log_format, LOG_FORMATS)


# ---------------------------------------------------------------- TOML -> NodeConfig


def _build(path: str, cls: type, **fields: Any) -> Any:
    try:
        return cls(**fields)
    except ConfigError as exc:
        raise exc.under(path) from None


def _path(table: TableReader, key: str, base_dir: Path) -> Path:
    text = table.string(key)
    check_str(table.field(key), text, chars_max=PATH_CHARS_MAX)
    if "\0" in text:
        table.fail(key, "contains a NUL character")
    path = Path(text)
    # Relative to the config file's folder, not the process's working directory, so a
    # node started from anywhere finds the same files.
    return path if path.is_absolute() else base_dir / path


def _numbers(
    table: TableReader,
    cls: type,
    bounds: Mapping[str, tuple[int, int]],
    derived: Mapping[str, Callable[[dict[str, int]], int]] | None = None,
) -> Any:
    """`cls` from `table`'s integers; a field in `derived` that the table leaves out takes
    the value its function computes from the other fields, instead of the class default."""
    defaults = cls()
    derived = derived or {}
    values = {}
    for name, (lo, hi) in bounds.items():
        if name not in derived:
            values[name] = table.integer(name, lo, hi, default=getattr(defaults, name))
    for name, derive in derived.items():
        lo, hi = bounds[name]
        values[name] = table.integer(name, lo, hi, default=derive(values))
    table.finish()
    return _build(table.path, cls, **values)


def _request_timeout_ms(values: Mapping[str, int]) -> int:
    """Unless set: the default, or the view-change timeout if that is longer (it may not be
    shorter). So a config from before this setting existed, with a long view-change
    timeout, still loads."""
    return max(Timeouts().request_timeout_ms, values["view_change_timeout_ms"])


def parse_node_config(data: Mapping[str, Any], *, base_dir: Path) -> NodeConfig:
    """Build a NodeConfig from a TOML-parsed mapping; relative paths are resolved against
    `base_dir` (the config file's folder). Raises ConfigError at the first problem."""
    base_dir = base_dir if base_dir.is_absolute() else base_dir.absolute()
    root = TableReader(data, "")

    node = root.table("node", required=True)
    name = node.raw("name")
    data_dir = _path(node, "data_dir", base_dir)
    key_file = _path(node, "key_file", base_dir)
    genesis_file = _path(node, "genesis_file", base_dir)
    node.finish()

    listen = root.table("listen", required=True)
    peer_listen = parse_host_port(listen.field("peer"), listen.raw("peer"), port_min=0)
    client_listen = parse_host_port(listen.field("client"), listen.raw("client"), port_min=0)
    metrics_text = listen.raw("metrics", required=False)
    metrics_listen = (
        None
        if metrics_text is None
        else parse_host_port(listen.field("metrics"), metrics_text, port_min=0)
    )
    listen.finish()

    peers = []
    for table in root.tables("peers", PEERS_MAX):
        fields = {"name": table.raw("name"), "address": table.raw("address")}
        table.finish()
        peers.append(_build(table.path, PeerAddress, **fields))

    limits_table = root.table("limits")
    for moved in MOVED_TO_GENESIS:
        if limits_table.has(moved):
            limits_table.fail(
                moved,
                "is no longer a node setting: the checkpoint interval, the log window and the"
                " proposal limits are chain parameters that every validator must share; they"
                f" moved to the genesis file's [consensus] table (consensus.{moved}). Remove"
                " this line from node.toml; the node then uses the genesis value (a chain that"
                " needs another value sets it in genesis: docs/configuration.md, [consensus])",
            )
    limits = _numbers(limits_table, Limits, LIMIT_BOUNDS)
    timeouts = _numbers(
        root.table("timeouts"),
        Timeouts,
        TIMEOUT_BOUNDS_MS,
        derived={"request_timeout_ms": _request_timeout_ms},
    )

    log = root.table("log")
    log_level = log.string("level", default="info")
    log_format = log.string("format", default="json")
    log.finish()
    root.finish()

    return _build(
        "",
        NodeConfig,
        name=name,
        data_dir=data_dir,
        key_file=key_file,
        genesis_file=genesis_file,
        peer_listen=peer_listen,
        client_listen=client_listen,
        metrics_listen=metrics_listen,
        peers=tuple(peers),
        limits=limits,
        timeouts=timeouts,
        log_level=log_level,
        log_format=log_format,
    )


def load_node_config(path: Path) -> NodeConfig:
    """Read, parse and validate a node config file; relative paths are resolved against the
    file's folder. Errors are prefixed with the file's path."""
    data = read_toml(path, NODE_CONFIG_FILE_BYTES_MAX)
    try:
        return parse_node_config(data, base_dir=path.parent)
    except ConfigError as exc:
        raise exc.in_file(path) from None


# ---------------------------------------------------------------- NodeConfig -> TOML


def _path_text(path: Path, relative_to: Path | None) -> str:
    if relative_to is not None and path.is_relative_to(relative_to):
        return str(path.relative_to(relative_to))
    return str(path)


def _non_defaults(obj: Any) -> list[tuple[str, Any]]:
    defaults = type(obj)()
    return [
        (f.name, getattr(obj, f.name))
        for f in dataclasses.fields(obj)
        if getattr(obj, f.name) != getattr(defaults, f.name)
    ]


def node_config_to_toml(cfg: NodeConfig, *, relative_to: Path | None = None) -> str:
    """TOML text for `cfg`; `parse_node_config(tomllib.loads(text), base_dir=d)` gives `cfg`
    back when `d` is `relative_to` (paths under it are written relative to it; pass the
    folder the file will live in to keep a cluster directory relocatable).

    Limits and timeouts are written only where they differ from the defaults, so a
    generated file picks up improved defaults of later versions.
    """
    lines = [
        "[node]",
        *toml_pairs(
            [
                ("name", cfg.name),
                ("data_dir", _path_text(cfg.data_dir, relative_to)),
                ("key_file", _path_text(cfg.key_file, relative_to)),
                ("genesis_file", _path_text(cfg.genesis_file, relative_to)),
            ]
        ),
        "",
        "[listen]",
        *toml_pairs(
            [
                ("peer", format_host_port(*cfg.peer_listen)),
                ("client", format_host_port(*cfg.client_listen)),
                (
                    "metrics",
                    None if cfg.metrics_listen is None else format_host_port(*cfg.metrics_listen),
                ),
            ]
        ),
    ]
    for peer in cfg.peers:
        lines += ["", "[[peers]]", *toml_pairs([("name", peer.name), ("address", peer.address)])]
    for section, obj in (("limits", cfg.limits), ("timeouts", cfg.timeouts)):
        pairs = _non_defaults(obj)
        if pairs:
            lines += ["", f"[{section}]", *toml_pairs(pairs)]
    lines += ["", "[log]", *toml_pairs([("level", cfg.log_level), ("format", cfg.log_format)])]
    return "\n".join(lines) + "\n"
