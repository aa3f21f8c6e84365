from __future__ import annotations

import dataclasses
import hashlib
import tomllib
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.errors import ConfigError
from config.genesis import (
    ASSET_ID_PATTERN,
    BATCH_FRAMING_BYTES,
    CATEGORIES,
    CHAIN_ID_PATTERN,
    CONSENSUS_BOUNDS,
    CONSENSUS_STATE_BYTES_MAX,
    PROPOSAL_LIMITS,
    ROLES,
    AccountSpec,
    AssetSpec,
    ConsensusParams,
    Genesis,
    ValidatorSpec,
    genesis_to_toml,
    load_genesis,
    parse_genesis,
)
from tests.config.samples import DELETE, genesis_dict, hexkey, mutate

K = [bytes([i]) * 32 for i in range(256)]


def test_parse_valid_example(genesis_data: dict[str, Any]) -> None:
    g = parse_genesis(genesis_data)
    assert g.chain_id == "national-assets-1"
    assert g.regulator_keys == (K[1], K[2])
    assert g.regulator_threshold == 1
    assert [v.name for v in g.validators] == ["node-0", "node-1", "node-2", "node-3"]
    assert g.validators[2] == ValidatorSpec(
        name="node-2", public_key=K[0x12], address="127.0.0.1:7002"
    )
    assert g.accounts[0].roles == frozenset({"issuer"})
    assert g.accounts[0].expires_at_ms is None
    assert g.accounts[1].roles == frozenset()
    assert g.accounts[1].expires_at_ms == 1893456000000
    assert g.assets[0].document_hash == K[0x40]


def test_defaults(genesis_data: dict[str, Any]) -> None:
    del genesis_data["regulator"]["threshold"]
    del genesis_data["accounts"]
    del genesis_data["assets"]
    g = parse_genesis(genesis_data)
    assert g.regulator_threshold == 1
    assert g.accounts == ()
    assert g.assets == ()
    assert g.consensus == ConsensusParams()
    assert (g.consensus.checkpoint_interval_seqs, g.consensus.log_window_seqs) == (16, 32)
    # The documented defaults of the proposal limits (docs/configuration.md), the values
    # node.toml [limits] had before they became chain parameters.
    assert g.consensus.tx_bytes_max == 16 << 10 == 16_384
    assert g.consensus.memo_bytes_max == 256
    assert g.consensus.batch_txs_max == 1000
    assert g.consensus.batch_bytes_max == 256 << 10 == 262_144
    assert g.consensus.consensus_state_bytes_max() == 2 * 32 * (262_144 + 1024) + (1 << 20)
    assert g.consensus.consensus_state_bytes_max() == 17_891_328 <= CONSENSUS_STATE_BYTES_MAX


def test_consensus_table_is_read(genesis_data: dict[str, Any]) -> None:
    genesis_data["consensus"] = {"checkpoint_interval_seqs": 8, "log_window_seqs": 64}
    g = parse_genesis(genesis_data)
    assert g.consensus == ConsensusParams(checkpoint_interval_seqs=8, log_window_seqs=64)
    genesis_data["consensus"] = {"log_window_seqs": 48}  # K keeps its default, 16
    assert parse_genesis(genesis_data).consensus.checkpoint_interval_seqs == 16
    limits = {"tx_bytes_max": 8192, "memo_bytes_max": 64, "batch_txs_max": 500}
    genesis_data["consensus"] = limits | {"batch_bytes_max": 100_000}
    assert parse_genesis(genesis_data).consensus == ConsensusParams(
        tx_bytes_max=8192, memo_bytes_max=64, batch_txs_max=500, batch_bytes_max=100_000
    )
    genesis_data["consensus"] = {"batch_txs_max": 7}  # the others keep their defaults
    assert parse_genesis(genesis_data).consensus == ConsensusParams(batch_txs_max=7)


def test_consensus_defaults_lie_within_the_bounds() -> None:
    defaults = ConsensusParams()
    assert set(CONSENSUS_BOUNDS) == {f.name for f in dataclasses.fields(ConsensusParams)}
    for name, (lo, hi) in CONSENSUS_BOUNDS.items():
        assert lo <= getattr(defaults, name) <= hi, name
    # The same ranges the node config had for these keys, and what the replica and the
    # ledger accept (checked by building them with the extremes).
    assert CONSENSUS_BOUNDS == {
        "checkpoint_interval_seqs": (1, 500_000),
        "log_window_seqs": (2, 1_000_000),
        "tx_bytes_max": (256, 1 << 20),
        "memo_bytes_max": (1, 4096),
        "batch_txs_max": (1, 100_000),
        "batch_bytes_max": (1, 64 << 20),
    }
    assert PROPOSAL_LIMITS == ("tx_bytes_max", "memo_bytes_max", "batch_txs_max", "batch_bytes_max")
    # The digest and genesis_to_toml rely on this order (ConsensusParams.canonical).
    assert list(CONSENSUS_BOUNDS) == [
        "checkpoint_interval_seqs",
        "log_window_seqs",
        *PROPOSAL_LIMITS,
    ]
    from consensus.config import ReplicaLimits

    for k, w in ((1, 2), (500_000, 1_000_000)):
        for batch in (1, 64 << 20):
            ReplicaLimits(
                checkpoint_interval_seqs=k,
                log_window_seqs=w,
                batch_bytes_max=batch,
                message_bytes_max=w * (batch + 1024) + (64 << 10),
            )
    # The upper ends are bounds on each value alone: the persisted consensus state rule makes
    # the widest window 24484 (with the smallest batch) and the largest batch 16514048 (with
    # the smallest window); see test_consensus_on_the_edge_of_a_rule_is_accepted.
    for k, w in ((1, 2), (1, 24_484)):
        ConsensusParams(
            checkpoint_interval_seqs=k,
            log_window_seqs=w,
            tx_bytes_max=256,
            memo_bytes_max=1,
            batch_txs_max=1,
            batch_bytes_max=256 + BATCH_FRAMING_BYTES,
        )


CONSENSUS_EDGES: list[dict[str, int]] = [
    {"checkpoint_interval_seqs": 1, "log_window_seqs": 2},
    {"checkpoint_interval_seqs": 16, "log_window_seqs": 32},
    {"checkpoint_interval_seqs": 16, "log_window_seqs": 48},
    {"checkpoint_interval_seqs": 8, "log_window_seqs": 32},
    # The widest window for the default batch: 2 x 125 x (262144 + 1024) + 1 MiB <= 64 MiB.
    {"checkpoint_interval_seqs": 25, "log_window_seqs": 125},
    # 2 x 128 x (257024 + 1024) + 1 MiB == 64 MiB: the persisted state fills the bound exactly.
    {"log_window_seqs": 128, "batch_bytes_max": 257_024},
    # The largest batch of all (W = 2): 2 x 2 x (16514048 + 1024) + 1 MiB == 64 MiB.
    {"checkpoint_interval_seqs": 1, "log_window_seqs": 2, "batch_bytes_max": 16_514_048},
    # The widest window of all: the smallest batch that holds the smallest transaction.
    {
        "checkpoint_interval_seqs": 1,
        "log_window_seqs": 24_484,
        "batch_bytes_max": 325,
        "tx_bytes_max": 256,
        "memo_bytes_max": 128,
    },
    # 262075 + 69 == 262144: a transaction of the maximum size fills a batch exactly.
    {"tx_bytes_max": 262_075},
    {"tx_bytes_max": 256, "memo_bytes_max": 128, "batch_bytes_max": 325},
    # The largest transaction in the smallest batch that holds it; the default W = 32 is too
    # wide for that batch (its state would be 68227392 bytes), W = 31 is the widest.
    {
        "checkpoint_interval_seqs": 1,
        "log_window_seqs": 31,
        "tx_bytes_max": 1 << 20,
        "memo_bytes_max": 4096,
        "batch_bytes_max": (1 << 20) + 69,
    },
    {"tx_bytes_max": 8192, "memo_bytes_max": 4096},
    {"memo_bytes_max": 1},
    {"batch_txs_max": 1},
    {"batch_txs_max": 100_000},
]


@pytest.mark.parametrize("values", CONSENSUS_EDGES)
def test_consensus_on_the_edge_of_a_rule_is_accepted(
    genesis_data: dict[str, Any], values: dict[str, int]
) -> None:
    genesis_data["consensus"] = dict(values)
    params = parse_genesis(genesis_data).consensus
    assert params == ConsensusParams(**values)
    assert {name: getattr(params, name) for name in values} == values
    assert params.consensus_state_bytes_max() <= CONSENSUS_STATE_BYTES_MAX


def test_round_trip_through_toml(genesis_data: dict[str, Any]) -> None:
    g = parse_genesis(genesis_data)
    text = genesis_to_toml(g)
    again = parse_genesis(tomllib.loads(text))
    assert again == g
    assert again.digest() == g.digest()
    assert g.digest().hex() in text  # the header comment names the digest


@pytest.mark.parametrize(
    "values",
    [
        {"checkpoint_interval_seqs": 8, "log_window_seqs": 64},
        {"tx_bytes_max": 8192},
        {"checkpoint_interval_seqs": 8, "log_window_seqs": 64, "batch_txs_max": 10},
        *CONSENSUS_EDGES,
    ],
)
def test_round_trip_with_consensus_table(
    genesis_data: dict[str, Any], values: dict[str, int]
) -> None:
    genesis_data["consensus"] = dict(values)
    g = parse_genesis(genesis_data)
    text = genesis_to_toml(g)
    if g.consensus.is_default():
        assert "consensus" not in tomllib.loads(text)
    else:
        # Written like the digest covers it: K and W, plus all the proposal limits when one
        # of them is not the default; in the documented order.
        defaults = ConsensusParams()
        limits_differ = any(
            getattr(g.consensus, n) != getattr(defaults, n) for n in PROPOSAL_LIMITS
        )
        names = (
            [*CONSENSUS_BOUNDS]
            if limits_differ
            else ["checkpoint_interval_seqs", "log_window_seqs"]
        )
        written = tomllib.loads(text)["consensus"]
        assert list(written) == names
        assert written == {name: getattr(g.consensus, name) for name in names}
        assert {
            n: v for n, v in values.items() if v != getattr(defaults, n)
        }.items() <= written.items()
    again = parse_genesis(tomllib.loads(text))
    assert again == g
    assert again.digest() == g.digest()


def test_default_consensus_is_not_written(genesis_data: dict[str, Any]) -> None:
    # Like the digest: a chain with the default K and W has the genesis file it always had.
    assert "consensus" not in genesis_to_toml(parse_genesis(genesis_data))
    genesis_data["consensus"] = {"checkpoint_interval_seqs": 16, "log_window_seqs": 32}
    assert "consensus" not in genesis_to_toml(parse_genesis(genesis_data))
    defaults = ConsensusParams()
    genesis_data["consensus"] = {name: getattr(defaults, name) for name in CONSENSUS_BOUNDS}
    assert "consensus" not in genesis_to_toml(parse_genesis(genesis_data))


def test_digest_is_pinned(genesis_data: dict[str, Any]) -> None:
    # Changing the canonical encoding changes every chain's identity; this must be deliberate.
    g = parse_genesis(genesis_data)
    assert g.digest().hex() == "501e8611f957c622887ac77e5818b2c0059245849f149bb239a30de8bc587d82"
    # ...and it is exactly the documented layout (docs/configuration.md), built by hand here.
    expected = [
        "assetledger-genesis-v1",
        "national-assets-1",
        1767225600000,
        [K[1], K[2]],
        1,
        [[f"node-{i}", K[0x10 + i], f"127.0.0.1:{7000 + i}"] for i in range(4)],
        [
            [K[0x20], "entity", K[0x21], None, ["issuer"]],
            [K[0x30], "intermediary", K[0x31], 1893456000000, []],
        ],
        [["BOND-2036", "Treasury bond 2036", 2, 1_000_000_000_00, K[0x20], K[0x40]]],
    ]
    assert g.digest() == hashlib.sha256(msgpack.packb(expected, use_bin_type=True)).digest()
    # An explicit [consensus] table with the default values is the same chain.
    genesis_data["consensus"] = {"checkpoint_interval_seqs": 16, "log_window_seqs": 32}
    assert parse_genesis(genesis_data).digest() == g.digest()
    # Non-default K and W are appended as a ninth element [K, W] (docs/configuration.md).
    genesis_data["consensus"] = {"checkpoint_interval_seqs": 8, "log_window_seqs": 64}
    custom = parse_genesis(genesis_data)
    assert custom.canonical() == [*expected, [8, 64]]
    assert (
        custom.digest()
        == hashlib.sha256(msgpack.packb([*expected, [8, 64]], use_bin_type=True)).digest()
    )
    assert custom.digest().hex() == (
        "e9b7cf36106f5699f2859af2fd018296d53a21cb06de4ecf5c5e67439803dcc3"
    )


def _canonical_without_consensus(genesis_data: dict[str, Any]) -> list[Any]:
    eight = parse_genesis(genesis_data).canonical()
    assert len(eight) == 8  # the sample has the default consensus parameters
    return eight


def _sha(array: list[Any]) -> bytes:
    return hashlib.sha256(msgpack.packb(array, use_bin_type=True)).digest()


def test_digest_keeps_the_k_w_encoding_when_only_k_and_w_differ(
    genesis_data: dict[str, Any],
) -> None:
    # A chain that set K and W before the proposal limits were chain parameters keeps its
    # identity, also when its file now spells out the default proposal limits.
    expected = _canonical_without_consensus(genesis_data)
    defaults = ConsensusParams()
    limits = {name: getattr(defaults, name) for name in PROPOSAL_LIMITS}
    for table in (
        {"checkpoint_interval_seqs": 8, "log_window_seqs": 64},
        {"checkpoint_interval_seqs": 8, "log_window_seqs": 64} | limits,
    ):
        genesis_data["consensus"] = table
        g = parse_genesis(genesis_data)
        assert g.consensus.canonical() == [8, 64]
        assert g.canonical() == [*expected, [8, 64]]
        assert g.digest() == _sha([*expected, [8, 64]])
        assert g.digest().hex() == (
            "e9b7cf36106f5699f2859af2fd018296d53a21cb06de4ecf5c5e67439803dcc3"
        )


@pytest.mark.parametrize(
    ("table", "ninth", "digest_hex"),
    [
        (
            {"tx_bytes_max": 8192},
            [16, 32, 8192, 256, 1000, 262_144],
            "6d680ca9bfa7c637f70e6f3c8bdabe06a608609c0eff26a7abae57b70ed91cef",
        ),
        (
            {"checkpoint_interval_seqs": 8, "log_window_seqs": 64, "batch_txs_max": 10},
            [8, 64, 16_384, 256, 10, 262_144],
            "b9b73c4fac1113476ec183e9ce7164675f69e82fac1f2b3e5623cb1ffd2fbe2b",
        ),
    ],
)
def test_digest_appends_every_proposal_limit_when_one_differs(
    genesis_data: dict[str, Any], table: dict[str, int], ninth: list[int], digest_hex: str
) -> None:
    # [K, W, tx_bytes_max, memo_bytes_max, batch_txs_max, batch_bytes_max] (docs/configuration.md).
    default_digest = parse_genesis(genesis_dict()).digest()
    expected = _canonical_without_consensus(genesis_data)
    genesis_data["consensus"] = dict(table)
    g = parse_genesis(genesis_data)
    assert g.consensus.canonical() == ninth
    assert g.canonical() == [*expected, ninth]
    assert g.digest() == _sha([*expected, ninth])
    assert g.digest().hex() == digest_hex
    assert g.digest() != default_digest
    # ...and the file written for it names the same chain.
    text = genesis_to_toml(g)
    again = parse_genesis(tomllib.loads(text))
    assert again == g
    assert again.digest() == g.digest()
    assert f"digest {digest_hex}" in text


def test_each_proposal_limit_has_its_own_place_in_the_digest(genesis_data: dict[str, Any]) -> None:
    # Changing different limits by the same amount never gives the same chain, and a limit's
    # place in the encoding is fixed, not taken from the table's key order.
    digests = set()
    for name in PROPOSAL_LIMITS:
        genesis_data["consensus"] = {name: getattr(ConsensusParams(), name) // 2}
        digests.add(parse_genesis(genesis_data).digest())
    assert len(digests) == len(PROPOSAL_LIMITS)
    genesis_data["consensus"] = {"batch_txs_max": 10, "tx_bytes_max": 8192}
    forward = parse_genesis(genesis_data).digest()
    genesis_data["consensus"] = {"tx_bytes_max": 8192, "batch_txs_max": 10}
    assert parse_genesis(genesis_data).digest() == forward


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("chain_id",), "national-assets-2"),
        (("genesis_time_ms",), 1),
        (("regulator", "threshold"), 2),
        (("validators", 1, "address"), "127.0.0.1:7999"),
        (("accounts", 1, "expires_at_ms"), 1),
        (("accounts", 1, "roles"), ["registrar"]),
        (("assets", 0, "cap"), 7),
        (("assets", 0, "document_hash"), DELETE),
        (("consensus", "checkpoint_interval_seqs"), 8),
        (("consensus", "log_window_seqs"), 64),
        (("consensus",), {"checkpoint_interval_seqs": 32, "log_window_seqs": 64}),
        (("consensus", "tx_bytes_max"), 8192),
        (("consensus", "memo_bytes_max"), 255),
        (("consensus", "batch_txs_max"), 1001),
        (("consensus", "batch_bytes_max"), 262_143),
    ],
)
def test_digest_covers_every_field(path: tuple[Any, ...], value: Any) -> None:
    base = parse_genesis(genesis_dict()).digest()
    assert parse_genesis(mutate(genesis_dict(), path, value)).digest() != base


def test_digest_depends_on_validator_order(genesis_data: dict[str, Any]) -> None:
    base = parse_genesis(genesis_data)
    swapped = dataclasses.replace(base, validators=base.validators[::-1])
    assert swapped.digest() != base.digest()


SHORT = "ab" * 31
INVALID = [
    # (path, value, expected field, fragment of the reason)
    (("chain_id",), "Bad_Id", "genesis.chain_id", "is not [a-z0-9]"),
    (("chain_id",), "-x", "genesis.chain_id", "is not"),
    (("chain_id",), "a" * 65, "genesis.chain_id", "65 characters"),
    (("chain_id",), DELETE, "genesis.chain_id", "missing"),
    (("chain_id",), 7, "genesis.chain_id", "expected a string, got integer 7"),
    (("chain_idd",), "x", "genesis.chain_idd", "unknown key (allowed: accounts, assets, chain_id"),
    (("genesis_time_ms",), -1, "genesis.genesis_time_ms", "out of range"),
    (("genesis_time_ms",), True, "genesis.genesis_time_ms", "got boolean true"),
    (("genesis_time_ms",), 1.5, "genesis.genesis_time_ms", "got float 1.5"),
    (("genesis_time_ms",), "0", "genesis.genesis_time_ms", "got string '0'"),
    (("regulator",), DELETE, "genesis.regulator", "missing"),
    (("regulator",), "k", "genesis.regulator", "expected a table"),
    (("regulator", "public_keys"), [], "genesis.regulator.public_keys", "0 items (expected 1..64)"),
    (("regulator", "public_keys"), hexkey(1), "genesis.regulator.public_keys", "expected an array"),
    (("regulator", "public_keys"), [hexkey(1)] * 65, "genesis.regulator.public_keys", "65 items"),
    (
        ("regulator", "public_keys", 1),
        SHORT,
        "genesis.regulator.public_keys[1]",
        "not 32 bytes of hex (got 31 bytes)",
    ),
    (("regulator", "public_keys", 1), hexkey(1), "genesis.regulator.public_keys[1]", "duplicate"),
    (
        ("regulator", "public_keys", 0),
        5,
        "genesis.regulator.public_keys[0]",
        "expected 64 hex digits",
    ),
    (
        ("regulator", "threshold"),
        3,
        "genesis.regulator.threshold",
        "3 is out of range (expected 1..2)",
    ),
    (("regulator", "threshold"), 0, "genesis.regulator.threshold", "out of range"),
    (
        ("regulator", "treshold"),
        1,
        "genesis.regulator.treshold",
        "unknown key (allowed: public_keys, threshold)",
    ),
    (("validators",), DELETE, "genesis.validators", "missing"),
    (("validators",), [], "genesis.validators", "0 items (expected 1..256)"),
    (("validators",), "node-0", "genesis.validators", "expected an array"),
    (("validators", 0), "node-0", "genesis.validators[0]", "expected a table"),
    (
        ("validators", 2, "public_key"),
        SHORT,
        "genesis.validators[2].public_key",
        "not 32 bytes of hex (got 31 bytes)",
    ),
    (("validators", 2, "public_key"), "zz" * 32, "genesis.validators[2].public_key", "not hex"),
    (
        ("validators", 2, "public_key"),
        "0x" + "ab" * 31,
        "genesis.validators[2].public_key",
        "no 0x prefix",
    ),
    (("validators", 2, "public_key"), "abc", "genesis.validators[2].public_key", "odd number"),
    (
        ("validators", 3, "public_key"),
        hexkey(0x10),
        "genesis.validators[3].public_key",
        "same as validators[0]",
    ),
    (("validators", 1, "name"), "Node_1", "genesis.validators[1].name", "is not [a-z0-9-]{1,32}"),
    (("validators", 1, "name"), "", "genesis.validators[1].name", "0 characters"),
    (("validators", 3, "name"), "node-0", "genesis.validators[3].name", "duplicate name 'node-0'"),
    (("validators", 1, "name"), DELETE, "genesis.validators[1].name", "missing"),
    (("validators", 1, "address"), "127.0.0.1", "genesis.validators[1].address", 'not "host:port"'),
    (
        ("validators", 1, "address"),
        "127.0.0.1:70000",
        "genesis.validators[1].address",
        "port 70000 is out of range",
    ),
    (
        ("validators", 1, "address"),
        "127.0.0.1:0",
        "genesis.validators[1].address",
        "port 0 is out of range",
    ),
    (
        ("validators", 1, "address"),
        "bad host:7000",
        "genesis.validators[1].address",
        "not an IP address or host name",
    ),
    (("validators", 1, "address"), "::1:7000", "genesis.validators[1].address", "[addr]:port"),
    (("validators", 1, "address"), "[::1]7000", "genesis.validators[1].address", "[ipv6]:port"),
    (("validators", 1, "address"), "h:+70", "genesis.validators[1].address", "no numeric port"),
    (
        ("validators", 2, "address"),
        "127.0.0.1:7000",
        "genesis.validators[2].address",
        "duplicate address",
    ),
    (
        ("validators", 1, "adress"),
        "x:1",
        "genesis.validators[1].adress",
        "unknown key (allowed: address, name, public_key)",
    ),
    (("accounts",), {"a": 1}, "genesis.accounts", "expected an array"),
    (
        ("accounts", 0, "category"),
        "bank",
        "genesis.accounts[0].category",
        "'bank' is not one of entity, individual, intermediary",
    ),
    (("accounts", 0, "kyc_hash"), DELETE, "genesis.accounts[0].kyc_hash", "missing"),
    (("accounts", 1, "kyc_hash"), SHORT, "genesis.accounts[1].kyc_hash", "got 31 bytes"),
    (
        ("accounts", 0, "roles"),
        ["admin"],
        "genesis.accounts[0].roles[0]",
        "'admin' is not one of issuer, registrar",
    ),
    (("accounts", 0, "roles"), ["issuer", "issuer"], "genesis.accounts[0].roles[1]", "duplicate"),
    (("accounts", 0, "roles"), "issuer", "genesis.accounts[0].roles", "expected an array"),
    (("accounts", 0, "roles"), [1], "genesis.accounts[0].roles[0]", "expected a string"),
    (("accounts", 1, "expires_at_ms"), -5, "genesis.accounts[1].expires_at_ms", "out of range"),
    (("accounts", 1, "expires_at_ms"), 2**63, "genesis.accounts[1].expires_at_ms", "out of range"),
    (
        ("accounts", 1, "public_key"),
        hexkey(0x20),
        "genesis.accounts[1].public_key",
        "same as accounts[0]",
    ),
    (("accounts", 1, "kyc"), "x", "genesis.accounts[1].kyc", "unknown key"),
    (("assets", 0, "asset_id"), "bond", "genesis.assets[0].asset_id", "is not [A-Z0-9]"),
    (("assets", 0, "asset_id"), "B" * 33, "genesis.assets[0].asset_id", "33 characters"),
    (("assets", 0, "name"), "", "genesis.assets[0].name", "0 characters (expected 1..128)"),
    (("assets", 0, "name"), "x" * 129, "genesis.assets[0].name", "129 characters"),
    (("assets", 0, "name"), " padded", "genesis.assets[0].name", "whitespace"),
    (("assets", 0, "name"), "two\nlines", "genesis.assets[0].name", "control characters"),
    (
        ("assets", 0, "decimals"),
        19,
        "genesis.assets[0].decimals",
        "19 is out of range (expected 0..18)",
    ),
    (("assets", 0, "decimals"), DELETE, "genesis.assets[0].decimals", "missing"),
    (
        ("assets", 0, "cap"),
        0,
        "genesis.assets[0].cap",
        "out of range (expected 1..9223372036854775807)",
    ),
    (("assets", 0, "cap"), 2**63, "genesis.assets[0].cap", "out of range"),
    (("assets", 0, "cap"), "100", "genesis.assets[0].cap", "expected an integer, got string '100'"),
    (("assets", 0, "cap"), 1e6, "genesis.assets[0].cap", "got float"),
    (("assets", 0, "issuer"), hexkey(0x99), "genesis.assets[0].issuer", "not a registered account"),
    (("assets", 0, "issuer"), hexkey(0x30), "genesis.assets[0].issuer", 'lacks the role "issuer"'),
    (("assets", 0, "document_hash"), SHORT, "genesis.assets[0].document_hash", "got 31 bytes"),
    (
        ("assets", 1),
        {"asset_id": "BOND-2036", "name": "x", "decimals": 0, "cap": 1, "issuer": hexkey(0x20)},
        "genesis.assets[1].asset_id",
        "duplicate asset_id 'BOND-2036'",
    ),
    (("assets", 0, "ticker"), "x", "genesis.assets[0].ticker", "unknown key"),
    (("consensus",), 16, "genesis.consensus", "expected a table, got integer 16"),
    (
        ("consensus", "checkpoint_interval_seqs"),
        0,
        "genesis.consensus.checkpoint_interval_seqs",
        "0 is out of range (expected 1..500000)",
    ),
    (
        ("consensus", "checkpoint_interval_seqs"),
        500_001,
        "genesis.consensus.checkpoint_interval_seqs",
        "out of range (expected 1..500000)",
    ),
    (
        ("consensus", "checkpoint_interval_seqs"),
        True,
        "genesis.consensus.checkpoint_interval_seqs",
        "expected an integer, got boolean true",
    ),
    (
        ("consensus", "checkpoint_interval_seqs"),
        16.0,
        "genesis.consensus.checkpoint_interval_seqs",
        "got float 16.0",
    ),
    (
        ("consensus", "log_window_seqs"),
        1,
        "genesis.consensus.log_window_seqs",
        "1 is out of range (expected 2..1000000)",
    ),
    (
        ("consensus", "log_window_seqs"),
        1_000_001,
        "genesis.consensus.log_window_seqs",
        "out of range (expected 2..1000000)",
    ),
    (
        ("consensus", "log_window_seqs"),
        "32",
        "genesis.consensus.log_window_seqs",
        "expected an integer, got string '32'",
    ),
    (
        ("consensus", "checkpoint_interval_seqs"),
        12,
        "genesis.consensus.checkpoint_interval_seqs",
        "12 does not divide consensus.log_window_seqs (32); checkpoints must fall on window"
        " boundaries",
    ),
    (
        ("consensus", "log_window_seqs"),
        24,
        "genesis.consensus.checkpoint_interval_seqs",
        "16 does not divide consensus.log_window_seqs (24)",
    ),
    (
        ("consensus", "checkpoint_interval_seqs"),
        32,
        "genesis.consensus.checkpoint_interval_seqs",
        "32 is more than half of consensus.log_window_seqs (32)",
    ),
    (
        ("consensus", "log_window_seqs"),
        16,
        "genesis.consensus.checkpoint_interval_seqs",
        "the window must hold two checkpoint intervals so the primary can keep proposing"
        " while the previous checkpoint collects signatures (expected at most 8)",
    ),
    (
        ("consensus", "window_seqs"),
        32,
        "genesis.consensus.window_seqs",
        "unknown key (allowed: batch_bytes_max, batch_txs_max, checkpoint_interval_seqs,"
        " log_window_seqs, memo_bytes_max, tx_bytes_max)",
    ),
    # The proposal limits (they were node.toml [limits] keys, with the same bounds and rules).
    (
        ("consensus", "tx_bytes_max"),
        255,
        "genesis.consensus.tx_bytes_max",
        "255 is out of range (expected 256..1048576)",
    ),
    (
        ("consensus", "tx_bytes_max"),
        (1 << 20) + 1,
        "genesis.consensus.tx_bytes_max",
        "out of range (expected 256..1048576)",
    ),
    (
        ("consensus", "tx_bytes_max"),
        1 << 20,
        "genesis.consensus.tx_bytes_max",
        "exceeds consensus.batch_bytes_max (262144)",
    ),
    (
        ("consensus", "tx_bytes_max"),
        262_076,
        "genesis.consensus.tx_bytes_max",
        "262076 plus 69 bytes of proposal framing exceeds consensus.batch_bytes_max (262144);"
        " a transaction of the maximum size must fit in a batch (expected at most 262075)",
    ),
    (
        ("consensus", "tx_bytes_max"),
        16_384.0,
        "genesis.consensus.tx_bytes_max",
        "got float 16384.0",
    ),
    (
        ("consensus", "memo_bytes_max"),
        0,
        "genesis.consensus.memo_bytes_max",
        "0 is out of range (expected 1..4096)",
    ),
    (("consensus", "memo_bytes_max"), 4097, "genesis.consensus.memo_bytes_max", "out of range"),
    (
        ("consensus", "tx_bytes_max"),
        256,
        "genesis.consensus.memo_bytes_max",
        "256 exceeds half of consensus.tx_bytes_max (256); expected at most 128, so the rest of"
        " a transaction fits",
    ),
    (
        ("consensus",),
        {"tx_bytes_max": 1000, "memo_bytes_max": 501},
        "genesis.consensus.memo_bytes_max",
        "501 exceeds half of consensus.tx_bytes_max (1000); expected at most 500",
    ),
    (
        ("consensus", "batch_txs_max"),
        0,
        "genesis.consensus.batch_txs_max",
        "0 is out of range (expected 1..100000)",
    ),
    (
        ("consensus", "batch_txs_max"),
        100_001,
        "genesis.consensus.batch_txs_max",
        "100001 is out of range (expected 1..100000)",
    ),
    (
        ("consensus", "batch_txs_max"),
        True,
        "genesis.consensus.batch_txs_max",
        "expected an integer, got boolean true",
    ),
    (
        ("consensus", "batch_bytes_max"),
        0,
        "genesis.consensus.batch_bytes_max",
        "0 is out of range (expected 1..67108864)",
    ),
    (
        ("consensus", "batch_bytes_max"),
        (64 << 20) + 1,
        "genesis.consensus.batch_bytes_max",
        "out of range (expected 1..67108864)",
    ),
    (
        ("consensus", "batch_bytes_max"),
        "256KiB",
        "genesis.consensus.batch_bytes_max",
        "expected an integer, got string '256KiB'",
    ),
    (
        ("consensus", "batch_bytes_max"),
        16_452,
        "genesis.consensus.tx_bytes_max",
        "16384 plus 69 bytes of proposal framing exceeds consensus.batch_bytes_max (16452)",
    ),
    # 2 x 128 x (262144 + 1024) + 1 MiB > 64 MiB: the persisted consensus state would not fit.
    (
        ("consensus", "log_window_seqs"),
        128,
        "genesis.consensus.batch_bytes_max",
        "262144 is too large for consensus.log_window_seqs (128): 128 sequences of up to"
        " batch_bytes_max make a persisted consensus state of 68419584 bytes, above 67108864;"
        " expected at most 257024 for this window, or a log_window_seqs of at most 125 for"
        " this batch",
    ),
    (
        ("consensus", "batch_bytes_max"),
        2_000_000,
        "genesis.consensus.batch_bytes_max",
        "2000000 is too large for consensus.log_window_seqs (32): 32 sequences of up to"
        " batch_bytes_max make a persisted consensus state of 129114112 bytes, above 67108864;"
        " expected at most 1031168 for this window",
    ),
    (
        ("consensus",),
        {"checkpoint_interval_seqs": 1, "log_window_seqs": 2, "batch_bytes_max": 16_514_049},
        "genesis.consensus.batch_bytes_max",
        "above 67108864; expected at most 16514048 for this window",
    ),
    # Even the smallest batch that holds a 256-byte transaction gives
    # 2 x 40000 x (325 + 1024) + 1 MiB > 64 MiB of consensus state.
    (
        ("consensus",),
        {
            "log_window_seqs": 40_000,
            "batch_bytes_max": 325,
            "tx_bytes_max": 256,
            "memo_bytes_max": 128,
        },
        "genesis.consensus.batch_bytes_max",
        "no batch that holds a transaction of consensus.tx_bytes_max fits a window this wide;"
        " use a smaller log_window_seqs",
    ),
    # One sequence wider than the widest that fits: the room left (324 bytes) is a batch, but
    # not one that holds a 256-byte transaction, so no "at most" figure is offered.
    (
        ("consensus",),
        {
            "checkpoint_interval_seqs": 5,
            "log_window_seqs": 24_485,
            "batch_bytes_max": 325,
            "tx_bytes_max": 256,
            "memo_bytes_max": 128,
        },
        "genesis.consensus.batch_bytes_max",
        "above 67108864; no batch that holds a transaction of consensus.tx_bytes_max fits",
    ),
    (
        ("consensus", "log_window_seqs"),
        1_000_000,
        "genesis.consensus.batch_bytes_max",
        "persisted consensus state of 526337048576 bytes, above 67108864; no batch that holds",
    ),
]


@pytest.mark.parametrize(
    ("path", "value", "field", "fragment"), INVALID, ids=[f"{c[2]}:{c[3]}" for c in INVALID]
)
def test_invalid_input_names_the_field(
    path: tuple[Any, ...], value: Any, field: str, fragment: str
) -> None:
    data = genesis_dict()
    if path[0] == "assets" and path[1] == 1:
        data["assets"].append(value)
    else:
        mutate(data, path, value)
    with pytest.raises(ConfigError) as info:
        parse_genesis(data)
    assert info.value.field == field
    assert fragment in info.value.reason
    assert str(info.value).startswith(f"{field}: ")


def test_not_a_mapping() -> None:
    with pytest.raises(ConfigError, match=r"^genesis: expected a table, got array$"):
        parse_genesis([])  # type: ignore[arg-type]


# ---------------------------------------------------------------- direct construction


def _validator(**changes: Any) -> ValidatorSpec:
    fields = {"name": "v", "public_key": K[1], "address": "h:1"} | changes
    return ValidatorSpec(**fields)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: _validator(public_key=bytearray(K[1])),
            "public_key: expected 32 bytes, got bytearray",
        ),
        (lambda: _validator(public_key=K[1][:31]), "public_key: not 32 bytes (got 31 bytes)"),
        (lambda: _validator(name=None), "name: expected a string, got NoneType"),
        (
            lambda: AccountSpec(
                public_key=K[1],
                category="entity",
                kyc_hash=K[2],
                roles={"issuer"},  # type: ignore[arg-type]  # wrong type on purpose: it must be refused
            ),
            "roles: expected a frozenset, got set",
        ),
        (
            lambda: AccountSpec(
                public_key=K[1], category="entity", kyc_hash=K[2], expires_at_ms=False
            ),
            "expires_at_ms: expected an integer, got boolean false",
        ),
        (
            lambda: AssetSpec(asset_id="A", name="a", decimals=0, cap=True, issuer=K[1]),
            "cap: expected an integer, got boolean true",
        ),
        (
            lambda: Genesis(
                chain_id="c",
                genesis_time_ms=0,
                regulator_keys=[K[1]],  # type: ignore[arg-type]  # wrong type on purpose: it must be refused
                validators=(_validator(),),
            ),
            "regulator.public_keys: expected a tuple, got list",
        ),
        (
            lambda: Genesis(
                chain_id="c",
                genesis_time_ms=0,
                regulator_keys=(K[1],),
                validators=("v",),  # type: ignore[arg-type]  # wrong type on purpose: it must be refused
            ),
            "validators[0]: expected ValidatorSpec, got str",
        ),
        (
            lambda: Genesis(
                chain_id="c",
                genesis_time_ms=0,
                regulator_keys=(K[1],),
                validators=(_validator(),),
                assets=(AssetSpec(asset_id="A", name="a", decimals=0, cap=1, issuer=K[9]),),
            ),
            "assets[0].issuer: " + K[9].hex() + " is not a registered account",
        ),
        (
            lambda: ConsensusParams(checkpoint_interval_seqs=12),
            "checkpoint_interval_seqs: 12 does not divide consensus.log_window_seqs (32)",
        ),
        (
            lambda: ConsensusParams(log_window_seqs=True),
            "log_window_seqs: expected an integer, got boolean true",
        ),
        # Built directly, the proposal limits' errors name the field relative to [consensus].
        (
            lambda: ConsensusParams(tx_bytes_max=255),
            "tx_bytes_max: 255 is out of range (expected 256..1048576)",
        ),
        (
            lambda: ConsensusParams(tx_bytes_max=262_076),
            "tx_bytes_max: 262076 plus 69 bytes of proposal framing exceeds"
            " consensus.batch_bytes_max (262144)",
        ),
        (
            lambda: ConsensusParams(batch_bytes_max=16_452),
            "tx_bytes_max: 16384 plus 69 bytes of proposal framing exceeds"
            " consensus.batch_bytes_max (16452); a transaction of the maximum size must fit in a"
            " batch (expected at most 16383)",
        ),
        (
            lambda: ConsensusParams(memo_bytes_max=8193, tx_bytes_max=16_384),
            "memo_bytes_max: 8193 is out of range (expected 1..4096)",
        ),
        (
            lambda: ConsensusParams(tx_bytes_max=300),
            "memo_bytes_max: 256 exceeds half of consensus.tx_bytes_max (300); expected at most"
            " 150",
        ),
        (
            lambda: ConsensusParams(batch_txs_max=1.0),  # type: ignore[arg-type]  # wrong type on purpose: it must be refused
            "batch_txs_max: expected an integer, got float 1.0",
        ),
        (
            lambda: ConsensusParams(batch_txs_max=0),
            "batch_txs_max: 0 is out of range (expected 1..100000)",
        ),
        (
            lambda: ConsensusParams(batch_bytes_max=False),
            "batch_bytes_max: expected an integer, got boolean false",
        ),
        (
            lambda: ConsensusParams(log_window_seqs=128),
            "batch_bytes_max: 262144 is too large for consensus.log_window_seqs (128): 128"
            " sequences of up to batch_bytes_max make a persisted consensus state of 68419584"
            " bytes, above 67108864; expected at most 257024 for this window",
        ),
        (
            lambda: ConsensusParams(
                log_window_seqs=40_000, batch_bytes_max=325, tx_bytes_max=256, memo_bytes_max=128
            ),
            "batch_bytes_max: 325 is too large for consensus.log_window_seqs (40000)",
        ),
        (
            lambda: Genesis(
                chain_id="c",
                genesis_time_ms=0,
                regulator_keys=(K[1],),
                validators=(_validator(),),
                consensus={"log_window_seqs": 32},  # type: ignore[arg-type]  # wrong type on purpose: it must be refused
            ),
            "consensus: expected ConsensusParams, got dict",
        ),
    ],
)
def test_invalid_objects_cannot_be_built(build: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        build()
    assert str(info.value).startswith(message)


def test_view_change_bytes_max_is_the_replica_formula() -> None:
    # node/ sizes consensus' message_bytes_max from this; it must be the replica's own formula.
    from consensus.config import ReplicaLimits

    for chain in (
        ConsensusParams(log_window_seqs=64),
        ConsensusParams(),
        ConsensusParams(checkpoint_interval_seqs=1, log_window_seqs=2, batch_bytes_max=16_514_048),
    ):
        needed = chain.view_change_bytes_max()
        assert needed == chain.log_window_seqs * (chain.batch_bytes_max + 1024) + (64 << 10)
        common = {
            "log_window_seqs": chain.log_window_seqs,
            "checkpoint_interval_seqs": chain.checkpoint_interval_seqs,
            "batch_bytes_max": chain.batch_bytes_max,
        }
        ReplicaLimits(message_bytes_max=needed, **common)
        with pytest.raises(ValueError):
            ReplicaLimits(message_bytes_max=needed - 1, **common)
    assert ConsensusParams(log_window_seqs=64).view_change_bytes_max() == 16_908_288


def test_consensus_state_bound_matches_what_a_restarting_replica_accepts() -> None:
    from consensus.state import STATE_LIMITS

    assert STATE_LIMITS.buffer_bytes_max == CONSENSUS_STATE_BYTES_MAX
    assert ConsensusParams().consensus_state_bytes_max() <= CONSENSUS_STATE_BYTES_MAX
    # The largest batch any accepted chain can have is one bin in the persisted state.
    largest = ConsensusParams(
        checkpoint_interval_seqs=1, log_window_seqs=2, batch_bytes_max=16_514_048
    )
    assert largest.consensus_state_bytes_max() == CONSENSUS_STATE_BYTES_MAX
    assert largest.batch_bytes_max <= STATE_LIMITS.bin_bytes_max
    with pytest.raises(
        ConfigError, match=r"^batch_bytes_max: .* persisted consensus state of 68419584 bytes"
    ):
        ConsensusParams(log_window_seqs=128)


def test_the_batch_framing_allowance_matches_the_proposal_encoding() -> None:
    from node.finality import PAYLOAD_HEADER_BYTES, PAYLOAD_TX_OVERHEAD_BYTES

    assert BATCH_FRAMING_BYTES == PAYLOAD_HEADER_BYTES + PAYLOAD_TX_OVERHEAD_BYTES


def test_objects_are_frozen(genesis_data: dict[str, Any]) -> None:
    g = parse_genesis(genesis_data)
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.chain_id = "other"  # type: ignore[misc]


# ---------------------------------------------------------------- files


def test_load_genesis_file(tmp_path: Path, genesis_data: dict[str, Any]) -> None:
    g = parse_genesis(genesis_data)
    path = tmp_path / "genesis.toml"
    path.write_text(genesis_to_toml(g))
    assert load_genesis(path) == g


def test_load_reports_file_and_field(tmp_path: Path, genesis_data: dict[str, Any]) -> None:
    genesis_data["chain_id"] = "BAD"
    text = genesis_to_toml(parse_genesis(genesis_dict())).replace("national-assets-1", "BAD")
    path = tmp_path / "genesis.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"genesis\.toml: genesis\.chain_id: 'BAD' is not"):
        load_genesis(path)


def test_load_reports_toml_line(tmp_path: Path) -> None:
    path = tmp_path / "genesis.toml"
    path.write_text('chain_id = "x"\n\ngenesis_time_ms = \n')
    with pytest.raises(ConfigError, match=r"genesis\.toml: line 3: invalid TOML: Invalid value$"):
        load_genesis(path)


# ---------------------------------------------------------------- property


@st.composite
def geneses(draw: st.DrawFn) -> Genesis:
    keys = st.binary(min_size=32, max_size=32)
    regulator_keys = draw(st.lists(keys, min_size=1, max_size=4, unique=True))
    n = draw(st.integers(1, 5))
    names = draw(
        st.lists(
            st.from_regex(r"[a-z0-9-]{1,32}", fullmatch=True), min_size=n, max_size=n, unique=True
        )
    )
    validator_keys = draw(st.lists(keys, min_size=n, max_size=n, unique=True))
    hosts = st.one_of(
        st.ip_addresses(v=4).map(str),
        st.ip_addresses(v=6).map(lambda ip: f"[{ip}]"),
        st.from_regex(r"[a-z]([a-z0-9-]{0,8}[a-z0-9])?(\.[a-z]{1,5}){0,2}", fullmatch=True),
    )
    addresses = draw(
        st.lists(
            st.tuples(hosts, st.integers(1, 65535)).map(lambda hp: f"{hp[0]}:{hp[1]}"),
            min_size=n,
            max_size=n,
            unique=True,
        )
    )
    validators = tuple(
        ValidatorSpec(name=name, public_key=key, address=address)
        for name, key, address in zip(names, validator_keys, addresses, strict=True)
    )
    account_keys = draw(st.lists(keys, max_size=5, unique=True))
    accounts = tuple(
        AccountSpec(
            public_key=key,
            category=draw(st.sampled_from(sorted(CATEGORIES))),
            kyc_hash=draw(keys),
            expires_at_ms=draw(st.none() | st.integers(0, 2**63 - 1)),
            roles=draw(st.frozensets(st.sampled_from(sorted(ROLES)))),
        )
        for key in account_keys
    )
    issuers = [a.public_key for a in accounts if "issuer" in a.roles]
    assets: tuple[AssetSpec, ...] = ()
    if issuers:
        ids = draw(
            st.lists(st.from_regex(ASSET_ID_PATTERN, fullmatch=True), max_size=4, unique=True)
        )
        names_alphabet = st.characters(categories=["L", "M", "N", "P", "S"]) | st.just(" ")
        assets = tuple(
            AssetSpec(
                asset_id=asset_id,
                name=draw(
                    st.text(names_alphabet, min_size=1, max_size=128).filter(
                        lambda s: s.strip() == s and s.isprintable()
                    )
                ),
                decimals=draw(st.integers(0, 18)),
                cap=draw(st.integers(1, 2**63 - 1)),
                issuer=draw(st.sampled_from(issuers)),
                document_hash=draw(st.none() | keys),
            )
            for asset_id in ids
        )
    return Genesis(
        consensus=draw(consensus_params()),
        chain_id=draw(st.from_regex(CHAIN_ID_PATTERN, fullmatch=True)),
        genesis_time_ms=draw(st.integers(0, 2**63 - 1)),
        regulator_keys=tuple(regulator_keys),
        regulator_threshold=draw(st.integers(1, len(regulator_keys))),
        validators=validators,
        accounts=accounts,
        assets=assets,
    )


@st.composite
def consensus_params(draw: st.DrawFn) -> ConsensusParams:
    """Any valid [consensus]: often the default proposal limits (the [K, W] encoding)."""
    defaults = ConsensusParams()
    if draw(st.booleans()):
        tx, memo, txs, batch = (getattr(defaults, name) for name in PROPOSAL_LIMITS)
    else:
        tx = draw(st.sampled_from([256, 16_384, 1 << 20]) | st.integers(256, 1 << 20))
        memo = draw(st.integers(1, min(4096, tx // 2)))
        txs = draw(st.integers(1, 100_000))
        # The largest batch the state rule allows for the narrowest window, W = 2.
        batch = draw(st.integers(tx + BATCH_FRAMING_BYTES, 16_514_048))
    # The widest window whose persisted state fits for this batch size.
    w_max = (CONSENSUS_STATE_BYTES_MAX - (1 << 20)) // (2 * (batch + 1024))
    k_max = w_max // 2
    typical = [k for k in (16, 1, 2, 7, k_max) if k <= k_max]
    k = draw(st.sampled_from(typical) | st.integers(1, k_max))
    return ConsensusParams(
        checkpoint_interval_seqs=k,
        log_window_seqs=k * draw(st.integers(2, w_max // k)),
        tx_bytes_max=tx,
        memo_bytes_max=memo,
        batch_txs_max=txs,
        batch_bytes_max=batch,
    )


@settings(max_examples=150, deadline=None)
@given(geneses())
def test_round_trip_property(genesis: Genesis) -> None:
    again = parse_genesis(tomllib.loads(genesis_to_toml(genesis)))
    assert again == genesis
    assert again.digest() == genesis.digest()
    # The [consensus] element is there exactly when a parameter differs from its default,
    # with the proposal limits exactly when one of them does.
    canonical = genesis.canonical()
    defaults = ConsensusParams()
    if genesis.consensus.is_default():
        assert len(canonical) == 8
    elif all(getattr(genesis.consensus, n) == getattr(defaults, n) for n in PROPOSAL_LIMITS):
        assert canonical[8] == [
            genesis.consensus.checkpoint_interval_seqs,
            genesis.consensus.log_window_seqs,
        ]
    else:
        assert canonical[8] == [getattr(genesis.consensus, n) for n in CONSENSUS_BOUNDS]
