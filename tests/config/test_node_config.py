from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

import pytest

from config.errors import ConfigError
from config.genesis import CONSENSUS_BOUNDS, PROPOSAL_LIMITS, ConsensusParams
from config.node_config import (
    FRAME_OVERHEAD_BYTES,
    LIMIT_BOUNDS,
    MOVED_TO_GENESIS,
    TIMEOUT_BOUNDS_MS,
    Limits,
    NodeConfig,
    PeerAddress,
    Timeouts,
    load_node_config,
    node_config_to_toml,
    parse_node_config,
)
from tests.config.samples import DELETE, mutate, node_dict

BASE = Path("/srv/node-0")


def test_defaults(node_data: dict[str, Any]) -> None:
    cfg = parse_node_config(node_data, base_dir=BASE)
    assert cfg.limits == Limits()
    assert cfg.timeouts == Timeouts()
    assert cfg.metrics_listen is None
    assert cfg.peers == ()
    assert (cfg.log_level, cfg.log_format) == ("info", "json")
    assert cfg.peer_listen == ("127.0.0.1", 7000)
    assert cfg.client_listen == ("127.0.0.1", 7100)


def test_default_values_are_the_documented_ones() -> None:
    limits = Limits()
    assert limits.frame_bytes_max == 1 << 20
    assert limits.peer_frame_bytes_max == 16 << 20
    assert limits.mempool_txs_max == 50_000
    assert limits.future_view_messages_per_peer_max == 64
    assert limits.verify_threads == 2
    assert Timeouts().view_change_timeout_ms == 2_000
    assert Timeouts().clock_skew_max_ms == 30_000
    # The defaults can run a chain with the default genesis [consensus], with room to spare.
    chain = ConsensusParams()
    assert 2 * chain.batch_bytes_max + FRAME_OVERHEAD_BYTES == 589_824 <= limits.frame_bytes_max
    assert chain.view_change_bytes_max() == 32 * (262_144 + 1024) + 65_536 == 8_486_912
    assert chain.view_change_bytes_max() + FRAME_OVERHEAD_BYTES <= limits.peer_frame_bytes_max
    assert chain.batch_txs_max == 1000 <= limits.mempool_txs_max
    limits.check_chain(chain)
    # Every field has bounds, and every default lies inside them.
    assert set(LIMIT_BOUNDS) == {f.name for f in dataclasses.fields(Limits)}
    assert set(TIMEOUT_BOUNDS_MS) == {f.name for f in dataclasses.fields(Timeouts)}
    for obj, bounds in ((limits, LIMIT_BOUNDS), (Timeouts(), TIMEOUT_BOUNDS_MS)):
        for name, (lo, hi) in bounds.items():
            assert lo <= getattr(obj, name) <= hi, name


def test_relative_paths_resolve_against_base_dir(node_data: dict[str, Any]) -> None:
    node_data["node"]["key_file"] = "/etc/assetledger/node.key"
    cfg = parse_node_config(node_data, base_dir=BASE)
    assert cfg.data_dir == BASE / "data"
    assert cfg.key_file == Path("/etc/assetledger/node.key")  # absolute stays as written
    assert cfg.genesis_file == BASE / "../genesis.toml"


def test_relative_base_dir_is_made_absolute(
    node_data: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = parse_node_config(node_data, base_dir=Path("conf"))
    assert cfg.data_dir == tmp_path / "conf" / "data"


def test_load_resolves_against_the_files_folder(
    node_data: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "node-0"
    folder.mkdir()
    cfg = parse_node_config(node_data, base_dir=folder)
    (folder / "node.toml").write_text(node_config_to_toml(cfg, relative_to=folder))
    monkeypatch.chdir(tmp_path)  # the working directory must not matter
    loaded = load_node_config(Path("node-0/node.toml"))
    assert loaded == cfg
    assert loaded.key_file == folder / "node.key"


def _full_config() -> NodeConfig:
    return NodeConfig(
        name="node-3",
        data_dir=Path("/var/lib/assetledger/node-3"),
        key_file=Path("/etc/assetledger/node-3.key"),
        genesis_file=Path('/etc/assetledger/genesis "x".toml'),
        peer_listen=("0.0.0.0", 7003),
        client_listen=("::", 7103),
        metrics_listen=("127.0.0.1", 9103),
        peers=(
            PeerAddress(name="node-0", address="10.0.0.1:7000"),
            PeerAddress(name="node-1", address="[fd00::1]:7001"),
        ),
        limits=Limits(
            mempool_txs_max=1000,
            peer_frame_bytes_max=32 << 20,
            future_view_messages_per_peer_max=128,
            verify_threads=4,
        ),
        timeouts=Timeouts(view_change_timeout_ms=500, tick_interval_ms=10, clock_skew_max_ms=5000),
        log_level="debug",
        log_format="text",
    )


@pytest.mark.parametrize("relative_to", [None, Path("/etc/assetledger"), Path("/elsewhere")])
def test_round_trip_through_toml(relative_to: Path | None) -> None:
    cfg = _full_config()
    text = node_config_to_toml(cfg, relative_to=relative_to)
    assert parse_node_config(tomllib.loads(text), base_dir=relative_to or Path("/x")) == cfg


def test_round_trip_writes_only_non_default_limits() -> None:
    text = node_config_to_toml(_full_config())
    data = tomllib.loads(text)
    assert data["limits"] == {
        "peer_frame_bytes_max": 32 << 20,
        "mempool_txs_max": 1000,
        "future_view_messages_per_peer_max": 128,
        "verify_threads": 4,
    }
    assert data["timeouts"] == {
        "tick_interval_ms": 10,
        "view_change_timeout_ms": 500,
        "clock_skew_max_ms": 5000,
    }
    assert "limits" not in tomllib.loads(
        node_config_to_toml(parse_node_config(node_dict(), base_dir=BASE))
    )


def test_relative_to_writes_relative_paths() -> None:
    data = tomllib.loads(node_config_to_toml(_full_config(), relative_to=Path("/etc/assetledger")))
    assert data["node"]["key_file"] == "node-3.key"
    assert data["node"]["data_dir"] == "/var/lib/assetledger/node-3"


INVALID = [
    (("node",), DELETE, "node", "missing"),
    (("node", "name"), "Node 0", "node.name", "is not [a-z0-9-]{1,32}"),
    (("node", "name"), DELETE, "node.name", "missing"),
    (("node", "data_dir"), 5, "node.data_dir", "expected a string, got integer 5"),
    (("node", "data_dir"), "", "node.data_dir", "0 characters"),
    (("node", "data_dir"), "a\0b", "node.data_dir", "NUL"),
    (("node", "key_file"), DELETE, "node.key_file", "missing"),
    (
        ("node", "genesis"),
        "g.toml",
        "node.genesis",
        "unknown key (allowed: data_dir, genesis_file, key_file, name)",
    ),
    (("listen",), DELETE, "listen", "missing"),
    (("listen", "peer"), "localhost", "listen.peer", 'not "host:port"'),
    (("listen", "peer"), 7000, "listen.peer", 'expected a "host:port" string, got integer 7000'),
    (("listen", "peer"), "[::1]7000", "listen.peer", "[ipv6]:port"),
    (("listen", "client"), "a b:7100", "listen.client", "not an IP address or host name"),
    (
        ("listen", "client"),
        "127.0.0.1:7000",
        "listen.client",
        "127.0.0.1:7000 clashes with listen.peer",
    ),
    (("listen", "client"), "0.0.0.0:7000", "listen.client", "clashes with listen.peer"),
    (("listen", "metrics"), "[::]:7100", "listen.metrics", "[::]:7100 clashes with listen.client"),
    (("listen", "client"), "999.1.1.1:7100", "listen.client", "not an IP address or host name"),
    (
        ("listen", "metrics"),
        "127.0.0.1:70000",
        "listen.metrics",
        "out of range (expected 0..65535)",
    ),
    (
        ("listen", "admin"),
        "127.0.0.1:1",
        "listen.admin",
        "unknown key (allowed: client, metrics, peer)",
    ),
    (("peers",), {"name": "x"}, "peers", "expected an array"),
    (
        ("peers",),
        [{"name": "node-1", "address": "h:1"}, {"name": "node-1", "address": "h:2"}],
        "peers[1].name",
        "duplicate name 'node-1'",
    ),
    (
        ("peers",),
        [{"name": "node-1", "address": "h:0"}],
        "peers[0].address",
        "port 0 is out of range (expected 1..65535)",
    ),
    (("peers",), [{"name": "node-1"}], "peers[0].address", "missing"),
    (
        ("peers",),
        [{"name": "node-0", "address": "h:1"}],
        "peers[0].name",
        "'node-0' is this node itself",
    ),
    (("peers",), [{"name": "node-1", "address": "h:1", "port": 1}], "peers[0].port", "unknown key"),
    (("peers",), [{"name": "n"}] * 257, "peers", "257 items exceeds the maximum of 256"),
    (("limits",), 5, "limits", "expected a table, got integer 5"),
    (
        ("limits", "peer_frame_bytes_max"),
        (1 << 20) - 1,
        "limits.peer_frame_bytes_max",
        "1048575 is out of range (expected 1048576..268435456)",
    ),
    (
        ("limits", "peer_frame_bytes_max"),
        (256 << 20) + 1,
        "limits.peer_frame_bytes_max",
        "out of range (expected 1048576..268435456)",
    ),
    (
        ("limits", "frame_bytes_max"),
        0,
        "limits.frame_bytes_max",
        "0 is out of range (expected 131072..67108864)",
    ),
    (("limits", "frame_bytes_max"), 1 << 30, "limits.frame_bytes_max", "out of range"),
    # K, W and the proposal limits are chain parameters now (genesis [consensus]): a node.toml
    # that still sets one is refused with a pointer to where it went, whatever the value (see
    # also test_every_moved_key_is_refused_with_a_pointer_to_genesis).
    (
        ("limits", "checkpoint_interval_seqs"),
        16,
        "limits.checkpoint_interval_seqs",
        "is no longer a node setting",
    ),
    (
        ("limits", "log_window_seqs"),
        64,
        "limits.log_window_seqs",
        "they moved to the genesis file's [consensus] table (consensus.log_window_seqs)",
    ),
    (
        ("limits", "log_window_seqs"),
        "x",
        "limits.log_window_seqs",
        "Remove this line from node.toml",
    ),
    (
        ("limits", "tx_bytes_max"),
        1 << 20,
        "limits.tx_bytes_max",
        "they moved to the genesis file's [consensus] table (consensus.tx_bytes_max)",
    ),
    (
        ("limits", "memo_bytes_max"),
        4097,  # out of range once, but the move is the error that helps
        "limits.memo_bytes_max",
        "they moved to the genesis file's [consensus] table (consensus.memo_bytes_max)",
    ),
    (
        ("limits", "batch_txs_max"),
        60_000,
        "limits.batch_txs_max",
        "they moved to the genesis file's [consensus] table (consensus.batch_txs_max)",
    ),
    (
        ("limits", "batch_bytes_max"),
        2_000_000,
        "limits.batch_bytes_max",
        "they moved to the genesis file's [consensus] table (consensus.batch_bytes_max)",
    ),
    (
        ("limits", "future_view_messages_per_peer_max"),
        0,
        "limits.future_view_messages_per_peer_max",
        "0 is out of range (expected 1..10000)",
    ),
    (
        ("limits", "future_view_messages_per_peer_max"),
        10_001,
        "limits.future_view_messages_per_peer_max",
        "10001 is out of range (expected 1..10000)",
    ),
    (
        ("limits", "future_view_messages_max"),
        64,
        "limits.future_view_messages_max",
        "unknown key (allowed: ",
    ),
    (
        ("limits", "verify_threads"),
        0,
        "limits.verify_threads",
        "0 is out of range (expected 1..64)",
    ),
    (("limits", "verify_threads"), 65, "limits.verify_threads", "65 is out of range"),
    (
        ("limits", "state_cache_entries_max"),
        -1,
        "limits.state_cache_entries_max",
        "-1 is out of range (expected 0..100000000)",
    ),
    (("limits", "verify_threads"), 2.0, "limits.verify_threads", "got float 2.0"),
    (
        ("limits", "mempool_txs_max"),
        True,
        "limits.mempool_txs_max",
        "expected an integer, got boolean true",
    ),
    (("limits", "mempool_txs_max"), 1000.0, "limits.mempool_txs_max", "got float 1000.0"),
    (("limits", "mempool_txs_max"), -1, "limits.mempool_txs_max", "out of range"),
    (
        ("limits", "frame_byte_max"),
        1,
        "limits.frame_byte_max",
        "unknown key (allowed: balance_log_buckets, balance_log_from_entries,"
        " client_connections_max, client_connections_per_address_max,",
    ),
    (
        ("timeouts", "tick_interval_ms"),
        0,
        "timeouts.tick_interval_ms",
        "0 is out of range (expected 1..60000)",
    ),
    (
        ("timeouts", "view_change_timeout_ms"),
        50,
        "timeouts.view_change_timeout_ms",
        "not above timeouts.tick_interval_ms (50)",
    ),
    (
        ("timeouts", "request_timeout_ms"),
        1000,
        "timeouts.request_timeout_ms",
        "below timeouts.view_change_timeout_ms (2000)",
    ),
    (
        ("timeouts", "peer_dead_after_ms"),
        500,
        "timeouts.peer_dead_after_ms",
        "not above timeouts.keepalive_interval_ms (500)",
    ),
    (
        ("timeouts", "reconnect_backoff_max_ms"),
        50,
        "timeouts.reconnect_backoff_max_ms",
        "below timeouts.reconnect_backoff_min_ms (100)",
    ),
    (
        ("timeouts", "clock_skew_max_ms"),
        99,
        "timeouts.clock_skew_max_ms",
        "99 is out of range (expected 100..3600000)",
    ),
    (
        ("timeouts", "clock_skew_max_ms"),
        3_600_001,
        "timeouts.clock_skew_max_ms",
        "3600001 is out of range (expected 100..3600000)",
    ),
    (
        ("timeouts", "client_wait_max_ms"),
        "60s",
        "timeouts.client_wait_max_ms",
        "expected an integer, got string '60s'",
    ),
    (("timeouts", "timeout_ms"), 1, "timeouts.timeout_ms", "unknown key"),
    (
        ("log", "level"),
        "verbose",
        "log.level",
        "'verbose' is not one of debug, error, info, warning",
    ),
    (("log", "format"), "xml", "log.format", "'xml' is not one of json, text"),
    (("log", "format"), 1, "log.format", "expected a string"),
    (("log", "file"), "x", "log.file", "unknown key (allowed: format, level)"),
    (
        ("logging",),
        {},
        "logging",
        "unknown key (allowed: limits, listen, log, node, peers, timeouts)",
    ),
]


@pytest.mark.parametrize(
    ("path", "value", "field", "fragment"), INVALID, ids=[f"{c[2]}:{c[3]}" for c in INVALID]
)
def test_invalid_input_names_the_field(
    path: tuple[Any, ...], value: Any, field: str, fragment: str
) -> None:
    data = mutate(node_dict(), path, value)
    with pytest.raises(ConfigError) as info:
        parse_node_config(data, base_dir=BASE)
    assert info.value.field == field
    assert fragment in info.value.reason
    assert str(info.value).startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Limits(frame_bytes_max=131_071), "frame_bytes_max: 131071 is out of range"),
        (lambda: Limits(mempool_txs_max=0), "mempool_txs_max: 0 is out of range"),
        (
            lambda: Limits(peer_frame_bytes_max=(1 << 20) - 1),
            "peer_frame_bytes_max: 1048575 is out of range",
        ),
        (lambda: Limits(verify_threads=True), "verify_threads: expected an integer, got boolean"),
        (lambda: Timeouts(clock_skew_max_ms=0), "clock_skew_max_ms: 0 is out of range"),
        (lambda: Timeouts(tick_interval_ms=0), "tick_interval_ms: 0 is out of range"),
        (lambda: PeerAddress(name="n", address="n"), "address: 'n' is not \"host:port\""),
        (
            lambda: dataclasses.replace(_full_config(), data_dir=Path("rel")),
            "node.data_dir: 'rel' is not absolute",
        ),
        (
            lambda: dataclasses.replace(_full_config(), key_file="/k"),  # type: ignore[arg-type]  # wrong type on purpose: it must be refused
            "node.key_file: expected a Path, got str",
        ),
        (
            lambda: dataclasses.replace(_full_config(), peer_listen=["h", 1]),  # type: ignore[arg-type]  # wrong type on purpose: it must be refused
            "listen.peer: expected a (host, port) tuple",
        ),
        (
            lambda: dataclasses.replace(_full_config(), client_listen=("h", 65536)),
            "listen.client: port 65536 is out of range",
        ),
        (
            lambda: dataclasses.replace(_full_config(), peers=[]),  # type: ignore[arg-type]  # wrong type on purpose: it must be refused
            "peers: expected a tuple, got list",
        ),
        (
            lambda: dataclasses.replace(_full_config(), limits={}),  # type: ignore[arg-type]  # wrong type on purpose: it must be refused
            "limits: expected Limits, got dict",
        ),
        (
            lambda: dataclasses.replace(_full_config(), log_level="INFO"),
            "log.level: 'INFO' is not one of",
        ),
    ],
)
def test_invalid_objects_cannot_be_built(build: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        build()
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(
    "values",
    [
        # The smallest frames and mempool: node.toml alone cannot know the chain's window and
        # proposal limits, so only the bounds apply (the rest is check_chain, at start).
        {"frame_bytes_max": 131_072},
        {"peer_frame_bytes_max": 1 << 20},
        {"mempool_txs_max": 1},
        {"frame_bytes_max": 64 << 20, "peer_frame_bytes_max": 256 << 20},
        {"future_view_messages_per_peer_max": 10_000, "verify_threads": 64},
        {"future_view_messages_per_peer_max": 1, "verify_threads": 1},
    ],
)
def test_limits_on_the_edge_of_a_rule_are_accepted(
    node_data: dict[str, Any], values: dict[str, int]
) -> None:
    node_data["limits"] = dict(values)
    limits = parse_node_config(node_data, base_dir=BASE).limits
    assert limits == Limits(**values)
    assert {name: getattr(limits, name) for name in values} == values


@pytest.mark.parametrize("skew_ms", [100, 30_000, 3_600_000])
def test_clock_skew_bounds_are_inclusive(node_data: dict[str, Any], skew_ms: int) -> None:
    node_data["timeouts"] = {"clock_skew_max_ms": skew_ms}
    assert parse_node_config(node_data, base_dir=BASE).timeouts.clock_skew_max_ms == skew_ms


@pytest.mark.parametrize(
    ("view_change_ms", "request_ms"),
    [(2_000, 10_000), (10_000, 10_000), (20_000, 20_000)],
)
def test_an_unset_request_timeout_follows_a_longer_view_change_timeout(
    node_data: dict[str, Any], view_change_ms: int, request_ms: int
) -> None:
    """A config written before request_timeout_ms existed, with a view-change timeout above
    its 10 s default, still loads: the request timeout may not be shorter, so it follows."""
    node_data["timeouts"] = {"view_change_timeout_ms": view_change_ms}
    cfg = parse_node_config(node_data, base_dir=BASE)
    assert cfg.timeouts.request_timeout_ms == request_ms
    text = node_config_to_toml(cfg)
    assert parse_node_config(tomllib.loads(text), base_dir=BASE) == cfg


def test_a_request_timeout_set_below_the_view_change_timeout_is_refused(
    node_data: dict[str, Any],
) -> None:
    # Set explicitly, even to the default, it is taken as written: no silent change.
    node_data["timeouts"] = {"view_change_timeout_ms": 20_000, "request_timeout_ms": 10_000}
    with pytest.raises(ConfigError, match=r"10000 is below timeouts\.view_change_timeout_ms"):
        parse_node_config(node_data, base_dir=BASE)


def test_chain_parameters_are_not_node_limits() -> None:
    # They are chain parameters (config/genesis.py ConsensusParams); see MOVED_TO_GENESIS.
    assert list(MOVED_TO_GENESIS) == [
        "checkpoint_interval_seqs",
        "log_window_seqs",
        *PROPOSAL_LIMITS,
    ]
    assert set(MOVED_TO_GENESIS) == set(CONSENSUS_BOUNDS)
    names = {f.name for f in dataclasses.fields(Limits)}
    assert not names & set(MOVED_TO_GENESIS)
    assert not set(LIMIT_BOUNDS) & set(MOVED_TO_GENESIS)
    for name in MOVED_TO_GENESIS:
        with pytest.raises(TypeError):
            Limits(**{name: getattr(ConsensusParams(), name)})


@pytest.mark.parametrize("name", MOVED_TO_GENESIS)
@pytest.mark.parametrize("kind", ["default", "other", "out of range", "wrong type"])
def test_every_moved_key_is_refused_with_a_pointer_to_genesis(
    node_data: dict[str, Any], name: str, kind: str
) -> None:
    default = getattr(ConsensusParams(), name)
    value = {
        "default": default,
        "other": default * 2,
        "out of range": CONSENSUS_BOUNDS[name][1] + 1,
        "wrong type": "x",
    }[kind]
    node_data["limits"] = {name: value, "mempool_txs_max": 1000}
    with pytest.raises(ConfigError) as info:
        parse_node_config(node_data, base_dir=BASE)
    assert info.value.field == f"limits.{name}"
    assert info.value.reason == (
        "is no longer a node setting: the checkpoint interval, the log window and the proposal"
        " limits are chain parameters that every validator must share; they moved to the"
        f" genesis file's [consensus] table (consensus.{name}). Remove this line from node.toml;"
        " the node then uses the genesis value (a chain that needs another value sets it in"
        " genesis: docs/configuration.md, [consensus])"
    )


@pytest.mark.parametrize("name", MOVED_TO_GENESIS)
def test_moved_key_error_names_the_file_and_field(
    tmp_path: Path, node_data: dict[str, Any], name: str
) -> None:
    path = tmp_path / "node.toml"
    cfg = parse_node_config(node_data, base_dir=tmp_path)
    value = getattr(ConsensusParams(), name)
    path.write_text(node_config_to_toml(cfg) + f"[limits]\n{name} = {value}\n")
    with pytest.raises(ConfigError) as info:
        load_node_config(path)
    assert str(info.value).startswith(f"{path}: limits.{name}: is no longer a node setting")
    assert f"genesis file's [consensus] table (consensus.{name})" in str(info.value)


# (node limits, genesis [consensus], field, fragment): the checks that need the chain's
# parameters, which the node runs at start against genesis (node/runtime/node.py). The
# rules among the chain parameters alone are genesis' own (tests/config/test_genesis.py).
CHAIN_INVALID = [
    # Defaults need 32 x (262144 + 1024) + 65536 + 65536 = 8552448 bytes.
    (
        {"peer_frame_bytes_max": 8_552_447},
        {},
        "peer_frame_bytes_max",
        "8552447 cannot carry a VIEW-CHANGE for a full log window: genesis"
        " consensus.log_window_seqs (32) x (consensus.batch_bytes_max (262144) + 1024) + 65536"
        " + 65536 bytes of frame overhead (expected at least 8552448)",
    ),
    (
        {},
        {"log_window_seqs": 64},
        "peer_frame_bytes_max",
        "genesis consensus.log_window_seqs (64) x (consensus.batch_bytes_max (262144) + 1024)",
    ),
    ({}, {"log_window_seqs": 64}, "peer_frame_bytes_max", "(expected at least 16973824)"),
    (
        {"frame_bytes_max": 2 << 20, "peer_frame_bytes_max": 15_892_479},
        {"batch_bytes_max": 491_520},
        "peer_frame_bytes_max",
        "consensus.batch_bytes_max (491520) + 1024) + 65536 + 65536 bytes of frame overhead"
        " (expected at least 15892480)",
    ),
    # A block response carries twice a batch plus the overhead in one client frame:
    # (1048576 - 65536) / 2 = 491520 is the largest batch the default frame takes.
    (
        {},
        {"batch_bytes_max": 491_521},
        "frame_bytes_max",
        "1048576 cannot carry a block: 2 x genesis consensus.batch_bytes_max (491521) + 65536"
        " bytes of frame overhead must fit in one client frame, because a block response"
        " carries the block's transactions and the ordered payload with its certificate"
        " (expected at least 1048578)",
    ),
    (
        {"frame_bytes_max": 200_000},
        {"batch_bytes_max": 100_000},
        "frame_bytes_max",
        "200000 cannot carry a block: 2 x genesis consensus.batch_bytes_max (100000)",
    ),
    ({"frame_bytes_max": 131_072}, {}, "frame_bytes_max", "(expected at least 589824)"),
    (
        {"mempool_txs_max": 999},
        {},
        "mempool_txs_max",
        "999 is below genesis consensus.batch_txs_max (1000); the mempool must hold a full"
        " proposal",
    ),
    (
        {},
        {"batch_txs_max": 60_000},
        "mempool_txs_max",
        "50000 is below genesis consensus.batch_txs_max (60000)",
    ),
]


@pytest.mark.parametrize(
    ("values", "chain", "field", "fragment"),
    CHAIN_INVALID,
    ids=[f"{c[1]}:{c[2]}:{c[3][:40]}" for c in CHAIN_INVALID],
)
def test_limits_that_cannot_carry_the_chain_are_refused(
    node_data: dict[str, Any],
    values: dict[str, int],
    chain: dict[str, int],
    field: str,
    fragment: str,
) -> None:
    node_data["limits"] = dict(values)
    limits = parse_node_config(node_data, base_dir=BASE).limits  # fine without genesis
    params = ConsensusParams(**chain)  # a valid chain on its own
    with pytest.raises(ConfigError) as info:
        limits.check_chain(params)
    assert info.value.field == field
    assert fragment in info.value.reason
    assert str(info.value.under("limits")).startswith(f"limits.{field}: ")


@pytest.mark.parametrize(
    ("values", "chain"),
    [
        # 64 x (262144 + 1024) + 65536 + 65536 == 16973824: the VIEW-CHANGE fills the frame.
        ({"peer_frame_bytes_max": 16_973_824}, {"log_window_seqs": 64}),
        ({"peer_frame_bytes_max": 8_552_448}, {}),
        ({"peer_frame_bytes_max": 1 << 20}, {"checkpoint_interval_seqs": 1, "log_window_seqs": 2}),
        # 2 x 128 x (257024 + 1024) + 1 MiB == 64 MiB: the largest batch genesis allows for
        # W = 128; its VIEW-CHANGE is 128 x (257024 + 1024) + 2 x 65536 = 33161216 bytes.
        (
            {"peer_frame_bytes_max": 33_161_216},
            {"log_window_seqs": 128, "batch_bytes_max": 257_024},
        ),
        # 2 x 491520 + 65536 == 1048576: twice a batch fills the client frame exactly.
        ({}, {"batch_bytes_max": 491_520}),
        ({"frame_bytes_max": 131_072}, {"batch_bytes_max": 32_768, "tx_bytes_max": 16_384}),
        ({"mempool_txs_max": 1000}, {}),
        ({"mempool_txs_max": 1}, {"batch_txs_max": 1}),
        ({"mempool_txs_max": 100_000}, {"batch_txs_max": 100_000}),
    ],
)
def test_limits_on_the_edge_of_the_chain_rules_are_accepted(
    node_data: dict[str, Any], values: dict[str, int], chain: dict[str, int]
) -> None:
    node_data["limits"] = dict(values)
    parse_node_config(node_data, base_dir=BASE).limits.check_chain(ConsensusParams(**chain))


@pytest.mark.parametrize(
    "chain",
    [
        # The largest batch any chain may have (W = 2: 2 x 2 x (16514048 + 1024) + 1 MiB
        # == 64 MiB), with the largest transactions, memos and proposals.
        {
            "checkpoint_interval_seqs": 1,
            "log_window_seqs": 2,
            "batch_bytes_max": 16_514_048,
            "tx_bytes_max": 1 << 20,
            "memo_bytes_max": 4096,
            "batch_txs_max": 100_000,
        },
        # The widest window any chain may have: the smallest batch that holds the smallest
        # transaction, 2 x 24484 x (325 + 1024) + 1 MiB <= 64 MiB.
        {
            "checkpoint_interval_seqs": 1,
            "log_window_seqs": 24_484,
            "batch_bytes_max": 325,
            "tx_bytes_max": 256,
            "memo_bytes_max": 128,
        },
        {"log_window_seqs": 128, "batch_bytes_max": 257_024},
    ],
)
def test_every_chain_genesis_accepts_can_be_run_by_some_node(chain: dict[str, int]) -> None:
    # The genesis rules must not admit a chain that no node.toml within LIMIT_BOUNDS can run.
    widest = Limits(
        **{name: LIMIT_BOUNDS[name][1] for name in ("frame_bytes_max", "peer_frame_bytes_max")},
        mempool_txs_max=LIMIT_BOUNDS["mempool_txs_max"][1],
    )
    widest.check_chain(ConsensusParams(**chain))


def test_same_port_on_different_hosts_is_fine(node_data: dict[str, Any]) -> None:
    node_data["listen"] = {"peer": "10.0.0.1:7000", "client": "127.0.0.1:7000"}
    assert parse_node_config(node_data, base_dir=BASE).client_listen == ("127.0.0.1", 7000)


def test_port_zero_listen_is_allowed_twice(node_data: dict[str, Any]) -> None:
    # Tests bind port 0 (any free port) on several sockets; that is not a clash.
    node_data["listen"] = {"peer": "127.0.0.1:0", "client": "127.0.0.1:0", "metrics": "127.0.0.1:0"}
    cfg = parse_node_config(node_data, base_dir=BASE)
    assert cfg.metrics_listen == ("127.0.0.1", 0)


# ---------------------------------------------------------------- files


def test_load_reports_toml_line(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text('[node]\nname = "node-0"\ndata_dir = data\n')
    with pytest.raises(ConfigError) as info:
        load_node_config(path)
    assert str(info.value) == f"{path}: line 3: invalid TOML: Invalid value"


def test_load_reports_file_and_field(tmp_path: Path, node_data: dict[str, Any]) -> None:
    path = tmp_path / "node.toml"
    cfg = parse_node_config(node_data, base_dir=tmp_path)
    path.write_text(node_config_to_toml(cfg) + "[limits]\nframe_bytes_max = 2000\n")
    with pytest.raises(ConfigError) as info:
        load_node_config(path)
    assert str(info.value) == (
        f"{path}: limits.frame_bytes_max: 2000 is out of range (expected 131072..67108864)"
    )


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"node\.toml: no such file$"):
        load_node_config(tmp_path / "node.toml")


def test_load_rejects_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_bytes(b'[node]\nname = "\xff"\n')
    with pytest.raises(ConfigError, match=r"node\.toml: not UTF-8 \(byte 15\)$"):
        load_node_config(path)


def test_read_toml_bounds_the_file_size(tmp_path: Path) -> None:
    from config._toml import read_toml

    path = tmp_path / "big.toml"
    path.write_text("# " + "x" * 1000 + "\n")
    with pytest.raises(ConfigError, match=r"big\.toml: larger than 1000 bytes$"):
        read_toml(path, 1000)
    assert read_toml(path, 1003) == {}
