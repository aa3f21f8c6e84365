"""Genesis: the chain's founding document, from TOML to a validated, frozen `Genesis`.

Every validator must load the same genesis; `Genesis.digest()` is the hash they compare
(and that the node binds into its chain state), so it is computed from a canonical encoding:
a msgpack array with a fixed field order, bytes as msgpack bin, optional values as nil,
roles sorted. Order of `validators`, `accounts` and `assets` is significant (validator order
fixes the primary rotation) and is kept exactly as written in the file.

Error paths are TOML paths (``genesis.regulator.public_keys[1]``), also for errors raised
when the objects are built directly in Python.

The ``[consensus]`` table holds the chain parameters every validator must share: the
checkpoint interval K and the log window W, which fix where checkpoints and epoch boundaries
fall (consensus/epochs.py), and the proposal limits (largest transaction and memo, most
transactions and bytes per proposal), which decide what a validator admits and which
proposals it votes for. Were they per-node settings, a validator that admits a transaction
the primary refuses would blame the primary for leaving it out and change view alone. They
are digested only when they differ from the defaults, so a genesis without a ``[consensus]``
table keeps the digest it had before the table existed (existing chains and data
directories keep their identity).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack

from config._fields import (
    HASH_BYTES,
    INT64_MAX,
    KEY_BYTES,
    NAME_PATTERN,
    TableReader,
    check_address,
    check_bytes,
    check_choice,
    check_int,
    check_str,
    check_tuple,
    check_unique,
    hex_to_bytes,
)
from config._toml import read_toml, toml_pairs
from config.errors import ConfigError

GENESIS_FORMAT = "assetledger-genesis-v1"  # first element of the digested array
GENESIS_FILE_BYTES_MAX = 64 << 20
REGULATOR_KEYS_MAX = 64
VALIDATORS_MAX = 256
ACCOUNTS_MAX = 100_000
ASSETS_MAX = 10_000
ASSET_NAME_CHARS_MAX = 128
DECIMALS_MAX = 18
CATEGORIES = frozenset({"individual", "entity", "intermediary"})
ROLES = frozenset({"issuer", "registrar"})
_MIB = 1 << 20
# (lowest, highest) accepted value of each [consensus] parameter; units in the names.
CONSENSUS_BOUNDS: dict[str, tuple[int, int]] = {
    "checkpoint_interval_seqs": (1, 500_000),
    "log_window_seqs": (2, 1_000_000),
    "tx_bytes_max": (256, 1 * _MIB),
    "memo_bytes_max": (1, 4096),
    "batch_txs_max": (1, 100_000),
    "batch_bytes_max": (1, 64 * _MIB),
}
# The proposal limits, digested after K and W (see Genesis.canonical).
PROPOSAL_LIMITS = ("tx_bytes_max", "memo_bytes_max", "batch_txs_max", "batch_bytes_max")
# A proposal's header plus one transaction's framing (node/finality.py: PAYLOAD_HEADER_BYTES +
# PAYLOAD_TX_OVERHEAD_BYTES; tests/config pins the two equal). Without room for it, a
# transaction of the maximum size is admitted but never fits in a block.
BATCH_FRAMING_BYTES = 64 + 5
# What consensus/state.py's STATE_LIMITS accept when a node restarts (config imports none of
# ours; tests/config checks the two agree).
CONSENSUS_STATE_BYTES_MAX = 64 << 20
# A VIEW-CHANGE carries at most one proposal payload per sequence number in the log window,
# each with up to VIEW_CHANGE_SEQ_BYTES of proof around it, plus VIEW_CHANGE_BASE_BYTES for the
# checkpoint proof and envelope. Same formula as consensus.config.ReplicaLimits.message_bytes_max.
VIEW_CHANGE_SEQ_BYTES = 1024
VIEW_CHANGE_BASE_BYTES = 64 << 10
CHAIN_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
ASSET_ID_PATTERN = re.compile(r"[A-Z0-9][A-Z0-9._-]{0,31}")


def _check_key(field: str, value: Any) -> bytes:
    return check_bytes(field, value, KEY_BYTES)


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidatorSpec:
    name: str  # unique, [a-z0-9-]{1,32}
    public_key: bytes  # Ed25519, 32 bytes
    address: str  # "host:port" of its peer (p2p) port

    def __post_init__(self) -> None:
        check_str("name", self.name, pattern=NAME_PATTERN, expected="[a-z0-9-]{1,32}", chars_max=32)
        _check_key("public_key", self.public_key)
        check_address("address", self.address)


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountSpec:
    public_key: bytes  # Ed25519, 32 bytes
    category: str  # "individual" | "entity" | "intermediary"
    kyc_hash: bytes  # 32 bytes: hash of the off-ledger KYC record
    expires_at_ms: int | None = None  # unix ms; None = no expiry
    roles: frozenset[str] = frozenset()  # subset of {"issuer", "registrar"}

    def __post_init__(self) -> None:
        _check_key("public_key", self.public_key)
        check_choice("category", self.category, CATEGORIES)
        check_bytes("kyc_hash", self.kyc_hash, HASH_BYTES)
        if self.expires_at_ms is not None:
            check_int("expires_at_ms", self.expires_at_ms, 0, INT64_MAX)
        if type(self.roles) is not frozenset:
            raise ConfigError("roles", f"expected a frozenset, got {type(self.roles).__name__}")
        for role in sorted(self.roles, key=str):
            check_choice("roles", role, ROLES)


@dataclass(frozen=True, slots=True, kw_only=True)
class AssetSpec:
    asset_id: str  # [A-Z0-9][A-Z0-9._-]{0,31}
    name: str  # 1..128 printable characters, no surrounding whitespace
    decimals: int  # 0..18
    cap: int  # authorised cap in base units, 1..2**63-1
    issuer: bytes  # public key of an account with role "issuer"
    document_hash: bytes | None = None  # 32 bytes, e.g. hash of the prospectus

    def __post_init__(self) -> None:
        check_str(
            "asset_id",
            self.asset_id,
            pattern=ASSET_ID_PATTERN,
            expected="[A-Z0-9][A-Z0-9._-]{0,31}",
            chars_max=32,
        )
        check_str("name", self.name, chars_max=ASSET_NAME_CHARS_MAX)
        if not self.name.isprintable() or self.name.strip() != self.name:
            raise ConfigError(
                "name",
                f"{self.name!r} has control characters or leading/trailing whitespace",
            )
        check_int("decimals", self.decimals, 0, DECIMALS_MAX)
        check_int("cap", self.cap, 1, INT64_MAX)
        _check_key("issuer", self.issuer)
        if self.document_hash is not None:
            check_bytes("document_hash", self.document_hash, HASH_BYTES)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsensusParams:
    """Chain-wide consensus parameters. Section ``[consensus]`` of genesis.

    Every validator derives checkpoint sequence numbers and epoch boundaries from K and W, and
    admits transactions and votes for proposals by the proposal limits, so they are part of
    the chain's identity, never a per-node setting.
    """

    checkpoint_interval_seqs: int = 16  # K: a checkpoint every K sequence numbers
    log_window_seqs: int = 32  # W: PBFT high minus low watermark; a multiple of K, >= 2K
    tx_bytes_max: int = 16 << 10  # one encoded signed transaction
    memo_bytes_max: int = 256  # a transaction's memo
    batch_txs_max: int = 1000  # transactions per block proposal
    batch_bytes_max: int = 256 << 10  # encoded transactions per proposal

    def __post_init__(self) -> None:
        for name, (lo, hi) in CONSENSUS_BOUNDS.items():
            check_int(name, getattr(self, name), lo, hi)
        k, w = self.checkpoint_interval_seqs, self.log_window_seqs
        if w % k:
            raise ConfigError(
                "checkpoint_interval_seqs",
                f"{k} does not divide consensus.log_window_seqs ({w});"
                " checkpoints must fall on window boundaries",
            )
        if w < 2 * k:
            raise ConfigError(
                "checkpoint_interval_seqs",
                f"{k} is more than half of consensus.log_window_seqs ({w}); the window must hold"
                " two checkpoint intervals so the primary can keep proposing while the previous"
                f" checkpoint collects signatures (expected at most {w // 2})",
            )
        if self.tx_bytes_max + BATCH_FRAMING_BYTES > self.batch_bytes_max:
            raise ConfigError(
                "tx_bytes_max",
                f"{self.tx_bytes_max} plus {BATCH_FRAMING_BYTES} bytes of proposal framing"
                f" exceeds consensus.batch_bytes_max ({self.batch_bytes_max}); a transaction of"
                " the maximum size must fit in a batch (expected at most"
                f" {self.batch_bytes_max - BATCH_FRAMING_BYTES})",
            )
        if self.memo_bytes_max > self.tx_bytes_max // 2:
            raise ConfigError(
                "memo_bytes_max",
                f"{self.memo_bytes_max} exceeds half of consensus.tx_bytes_max"
                f" ({self.tx_bytes_max}); expected at most {self.tx_bytes_max // 2}, so the rest"
                " of a transaction fits",
            )
        state_bytes = self.consensus_state_bytes_max()
        if state_bytes > CONSENSUS_STATE_BYTES_MAX:
            room = CONSENSUS_STATE_BYTES_MAX - _MIB
            batch_fit = room // (2 * w) - VIEW_CHANGE_SEQ_BYTES
            window_fit = room // (2 * (self.batch_bytes_max + VIEW_CHANGE_SEQ_BYTES))
            # A batch must still hold one transaction of the maximum size.
            advice = (
                f"expected at most {batch_fit} for this window, or a log_window_seqs of at"
                f" most {window_fit} for this batch"
                if batch_fit >= self.tx_bytes_max + BATCH_FRAMING_BYTES
                else "no batch that holds a transaction of consensus.tx_bytes_max fits a window"
                " this wide; use a smaller log_window_seqs"
            )
            raise ConfigError(
                "batch_bytes_max",
                f"{self.batch_bytes_max} is too large for consensus.log_window_seqs ({w}):"
                f" {w} sequences of up to batch_bytes_max make a persisted consensus state of"
                f" {state_bytes} bytes, above {CONSENSUS_STATE_BYTES_MAX}; {advice}",
            )

    def view_change_bytes_max(self) -> int:
        """Largest VIEW-CHANGE a full log window can produce (without frame overhead)."""
        return (
            self.log_window_seqs * (self.batch_bytes_max + VIEW_CHANGE_SEQ_BYTES)
            + VIEW_CHANGE_BASE_BYTES
        )

    def consensus_state_bytes_max(self) -> int:
        """Largest persisted replica state: its own pre-prepares and its prepared payloads,
        at most one of each per sequence number in the log window."""
        return 2 * self.log_window_seqs * (self.batch_bytes_max + VIEW_CHANGE_SEQ_BYTES) + _MIB

    def is_default(self) -> bool:
        return self == ConsensusParams()

    def canonical(self) -> list[int]:
        """``[K, W]``, then the proposal limits only when one differs from its default: a
        genesis that set K or W before the limits were chain parameters keeps its digest."""
        out = [self.checkpoint_interval_seqs, self.log_window_seqs]
        defaults = ConsensusParams()
        if any(getattr(self, n) != getattr(defaults, n) for n in PROPOSAL_LIMITS):
            out += [getattr(self, n) for n in PROPOSAL_LIMITS]
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Genesis:
    chain_id: str  # [a-z0-9][a-z0-9-]{0,63}
    genesis_time_ms: int  # unix ms, >= 0
    regulator_keys: tuple[bytes, ...]  # 1..64 distinct 32-byte keys
    regulator_threshold: int = 1  # M of N: 1 <= M <= len(regulator_keys)
    validators: tuple[ValidatorSpec, ...]  # 1..256; names, keys, addresses unique
    accounts: tuple[AccountSpec, ...] = ()  # distinct keys
    assets: tuple[AssetSpec, ...] = ()  # distinct ids; issuers are accounts with role issuer
    consensus: ConsensusParams = field(default_factory=ConsensusParams)  # K, W, proposal limits

    def __post_init__(self) -> None:
        check_str(
            "chain_id",
            self.chain_id,
            pattern=CHAIN_ID_PATTERN,
            expected="[a-z0-9][a-z0-9-]{0,63}",
            chars_max=64,
        )
        check_int("genesis_time_ms", self.genesis_time_ms, 0, INT64_MAX)

        check_tuple("regulator.public_keys", self.regulator_keys, bytes, 1, REGULATOR_KEYS_MAX)
        for index, key in enumerate(self.regulator_keys):
            _check_key(f"regulator.public_keys[{index}]", key)
        check_unique("regulator.public_keys", self.regulator_keys, None, bytes.hex)
        check_int("regulator.threshold", self.regulator_threshold, 1, len(self.regulator_keys))

        check_tuple("validators", self.validators, ValidatorSpec, 1, VALIDATORS_MAX)
        check_unique("validators", [v.name for v in self.validators], "name", repr)
        check_unique("validators", [v.public_key for v in self.validators], "public_key", bytes.hex)
        check_unique("validators", [v.address for v in self.validators], "address", repr)

        check_tuple("accounts", self.accounts, AccountSpec, 0, ACCOUNTS_MAX)
        check_unique("accounts", [a.public_key for a in self.accounts], "public_key", bytes.hex)

        check_tuple("assets", self.assets, AssetSpec, 0, ASSETS_MAX)
        check_unique("assets", [a.asset_id for a in self.assets], "asset_id", repr)
        roles_by_key = {account.public_key: account.roles for account in self.accounts}
        for index, asset in enumerate(self.assets):
            roles = roles_by_key.get(asset.issuer)
            if roles is None:
                raise ConfigError(
                    f"assets[{index}].issuer",
                    f"{asset.issuer.hex()} is not a registered account (add it to [[accounts]])",
                )
            if "issuer" not in roles:
                raise ConfigError(
                    f"assets[{index}].issuer",
                    f'account {asset.issuer.hex()} lacks the role "issuer"',
                )
        if type(self.consensus) is not ConsensusParams:
            raise ConfigError(
                "consensus", f"expected ConsensusParams, got {type(self.consensus).__name__}"
            )

    def canonical(self) -> list[Any]:
        """The fixed-order array whose msgpack encoding `digest()` hashes.

        `consensus` is appended as a ninth element (`ConsensusParams.canonical`) only when it
        differs from the defaults: a genesis without ``[consensus]`` keeps its pre-existing
        digest, and the encoding stays unambiguous (an eight-element array always means the
        defaults; a two-element ninth one, the default proposal limits).
        """
        array: list[Any] = [
            GENESIS_FORMAT,
            self.chain_id,
            self.genesis_time_ms,
            list(self.regulator_keys),
            self.regulator_threshold,
            [[v.name, v.public_key, v.address] for v in self.validators],
            [
                [a.public_key, a.category, a.kyc_hash, a.expires_at_ms, sorted(a.roles)]
                for a in self.accounts
            ],
            [
                [a.asset_id, a.name, a.decimals, a.cap, a.issuer, a.document_hash]
                for a in self.assets
            ],
        ]
        if not self.consensus.is_default():
            array.append(self.consensus.canonical())
        return array

    def digest(self) -> bytes:
        """SHA-256 of the canonical encoding: equal for equal genesis objects, on every node."""
        return hashlib.sha256(msgpack.packb(self.canonical(), use_bin_type=True)).digest()


# ---------------------------------------------------------------- TOML -> Genesis

_ROOT = "genesis"


def _build(path: str, cls: type, **fields: Any) -> Any:
    try:
        return cls(**fields)
    except ConfigError as exc:
        raise exc.under(path) from None


def _validator(table: TableReader, path: str) -> ValidatorSpec:
    fields = {
        "name": table.raw("name"),
        "public_key": table.hex_bytes("public_key", KEY_BYTES),
        "address": table.raw("address"),
    }
    table.finish()
    return _build(path, ValidatorSpec, **fields)


def _roles(table: TableReader) -> frozenset[str]:
    items = table.array("roles", len(ROLES))
    for index, role in enumerate(items):
        check_choice(f"{table.field('roles')}[{index}]", role, ROLES)
    check_unique(table.field("roles"), items)
    return frozenset(items)


def _account(table: TableReader, path: str) -> AccountSpec:
    fields = {
        "public_key": table.hex_bytes("public_key", KEY_BYTES),
        "category": table.raw("category"),
        "kyc_hash": table.hex_bytes("kyc_hash", HASH_BYTES),
        "expires_at_ms": table.raw("expires_at_ms", required=False),
        "roles": _roles(table),
    }
    table.finish()
    return _build(path, AccountSpec, **fields)


def _asset(table: TableReader, path: str) -> AssetSpec:
    fields = {
        "asset_id": table.raw("asset_id"),
        "name": table.raw("name"),
        "decimals": table.raw("decimals"),
        "cap": table.raw("cap"),
        "issuer": table.hex_bytes("issuer", KEY_BYTES),
        "document_hash": table.hex_bytes("document_hash", HASH_BYTES, required=False),
    }
    table.finish()
    return _build(path, AssetSpec, **fields)


def _consensus(table: TableReader) -> ConsensusParams:
    defaults = ConsensusParams()
    values = {
        name: table.integer(name, lo, hi, default=getattr(defaults, name))
        for name, (lo, hi) in CONSENSUS_BOUNDS.items()
    }
    table.finish()
    return _build(table.path, ConsensusParams, **values)


def parse_genesis(data: Mapping[str, Any]) -> Genesis:
    """Build a Genesis from a TOML-parsed mapping; raises ConfigError at the first problem."""
    root = TableReader(data, _ROOT)
    chain_id = root.raw("chain_id")
    genesis_time_ms = root.raw("genesis_time_ms")

    regulator = root.table("regulator", required=True)
    keys_field = regulator.field("public_keys")
    key_items = regulator.array("public_keys", REGULATOR_KEYS_MAX, required=True)
    regulator_keys = tuple(
        hex_to_bytes(f"{keys_field}[{index}]", item, KEY_BYTES)
        for index, item in enumerate(key_items)
    )
    threshold = regulator.raw("threshold", required=False)
    regulator.finish()

    validators = tuple(
        _validator(table, table.path)
        for table in root.tables("validators", VALIDATORS_MAX, required=True)
    )
    accounts = tuple(_account(table, table.path) for table in root.tables("accounts", ACCOUNTS_MAX))
    assets = tuple(_asset(table, table.path) for table in root.tables("assets", ASSETS_MAX))
    consensus = _consensus(root.table("consensus"))
    root.finish()
    return _build(
        _ROOT,
        Genesis,
        chain_id=chain_id,
        genesis_time_ms=genesis_time_ms,
        regulator_keys=regulator_keys,
        regulator_threshold=1 if threshold is None else threshold,
        validators=validators,
        accounts=accounts,
        assets=assets,
        consensus=consensus,
    )


def load_genesis(path: Path) -> Genesis:
    """Read, parse and validate a genesis file. Errors are prefixed with the file's path."""
    data = read_toml(path, GENESIS_FILE_BYTES_MAX)
    try:
        return parse_genesis(data)
    except ConfigError as exc:
        raise exc.in_file(path) from None


# ---------------------------------------------------------------- Genesis -> TOML


def genesis_to_toml(genesis: Genesis) -> str:
    """TOML text that `parse_genesis(tomllib.loads(text)) == genesis` holds for."""
    lines = [
        f"# assetledger genesis, digest {genesis.digest().hex()}",
        *toml_pairs([("chain_id", genesis.chain_id), ("genesis_time_ms", genesis.genesis_time_ms)]),
        "",
        "[regulator]",
        *toml_pairs(
            [
                ("public_keys", [key.hex() for key in genesis.regulator_keys]),
                ("threshold", genesis.regulator_threshold),
            ]
        ),
    ]
    if not genesis.consensus.is_default():
        # Written only when it differs from the defaults, like the digest (see canonical()).
        lines += ["", "[consensus]"]
        # The values the digest covers: K and W, and the proposal limits if one is not the
        # default (ConsensusParams.canonical lists them in CONSENSUS_BOUNDS order).
        lines += toml_pairs(
            list(zip(CONSENSUS_BOUNDS, genesis.consensus.canonical(), strict=False))
        )
    for v in genesis.validators:
        lines += ["", "[[validators]]"]
        lines += toml_pairs(
            [("name", v.name), ("public_key", v.public_key.hex()), ("address", v.address)]
        )
    for a in genesis.accounts:
        lines += ["", "[[accounts]]"]
        lines += toml_pairs(
            [
                ("public_key", a.public_key.hex()),
                ("category", a.category),
                ("kyc_hash", a.kyc_hash.hex()),
                ("roles", sorted(a.roles)),
                ("expires_at_ms", a.expires_at_ms),
            ]
        )
    for s in genesis.assets:
        lines += ["", "[[assets]]"]
        lines += toml_pairs(
            [
                ("asset_id", s.asset_id),
                ("name", s.name),
                ("decimals", s.decimals),
                ("cap", s.cap),
                ("issuer", s.issuer.hex()),
                ("document_hash", None if s.document_hash is None else s.document_hash.hex()),
            ]
        )
    return "\n".join(lines) + "\n"
