"""LMDB key layouts. Fixed-width parts are big-endian so byte order is numeric order."""

from __future__ import annotations

HEIGHT_BYTES = 8
INDEX_BYTES = 4
KEY_BYTES = 32
POSITION_BYTES = HEIGHT_BYTES + INDEX_BYTES  # position_key: a transaction's place in the chain

# Named databases. STATE_DBS are the ledger state; their writes (plus receipts) feed the
# state digest. The others are the chain itself and indices derived from it.
ACCOUNTS = "accounts"
ROLES = "roles"
ASSETS = "assets"
BALANCES = "balances"
NONCES = "nonces"
RECEIPTS = "receipts"
BLOCKS = "blocks"
CERTIFICATES = "certificates"
TX_INDEX = "tx_index"
# An account's history as back-linked chains (node/ledger/history.py): the newest entry per
# account, and every entry keyed by position first, so a block's entries are appended.
HISTORY_HEADS = "history_heads"  # account -> position of its newest entry
HISTORY_LINKS = "history_links"  # position ‖ account -> previous position ‖ tx id
# Schema 2's history (account ‖ position -> tx id): read once, to upgrade, then dropped.
LEGACY_HISTORY = "history"
META = "meta"
CONSENSUS = "consensus"  # the replica's persisted protocol state (opaque bytes), not ledger state
# Recent balance and head writes, in front of BALANCES and HISTORY_HEADS while those trees
# are large: part of the trees, not databases of their own (node/ledger/bucket_log.py).
BALANCES_LOG = "balances_log"
HISTORY_HEADS_LOG = "history_heads_log"
# Schemas 2-4's journals in front of the same trees: merged into them once, to upgrade.
LEGACY_BALANCES_RECENT = "balances_recent"
LEGACY_HISTORY_HEADS_RECENT = "history_heads_recent"
LEGACY_DBS = (LEGACY_HISTORY, LEGACY_BALANCES_RECENT, LEGACY_HISTORY_HEADS_RECENT)
# Governance (node/ledger/governance_state.py). Ledger state, digested like receipts, but
# written through their own overlay (not the StateView): only governance blocks touch them.
GOVERNANCE = "governance"  # singletons: validator set, regulator keys, pending epoch end
EPOCHS = "epochs"  # epoch number (4 bytes) -> the epoch's first seq and validator set
GOVERNANCE_HISTORY = "governance_history"  # position_key -> applied governance tx record
EVIDENCE = "evidence"  # position_key -> recorded equivocation
EVIDENCE_INDEX = "evidence_index"  # evidence_key(...) -> position_key (duplicate detection)
GOVERNANCE_DBS = (GOVERNANCE, EPOCHS, GOVERNANCE_HISTORY, EVIDENCE, EVIDENCE_INDEX)
STATE_DBS = (ACCOUNTS, ROLES, ASSETS, BALANCES, NONCES)
ALL_DBS = (
    *STATE_DBS,
    RECEIPTS,
    BLOCKS,
    CERTIFICATES,
    TX_INDEX,
    HISTORY_HEADS,
    HISTORY_LINKS,
    META,
    CONSENSUS,
    BALANCES_LOG,
    HISTORY_HEADS_LOG,
    *GOVERNANCE_DBS,
)
CONSENSUS_STATE = b"state"

META_CHAIN_ID = b"chain_id"
META_GENESIS_DIGEST = b"genesis_digest"
META_HEIGHT = b"height"
META_STATE_DIGEST = b"state_digest"
META_BLOCK_HASH = b"block_hash"
META_TIMESTAMP_MS = b"timestamp_ms"
META_SCHEMA = b"schema"
META_BALANCE_LOG_BUCKETS = b"balance_log_buckets"  # the balance log's bucket count
META_HEADS_LOG_BUCKETS = b"heads_log_buckets"  # the history heads log's bucket count
# Schemas 2-4's sweep positions (their journals): deleted by the upgrade to 5.
LEGACY_META_SWEEPS = (b"balance_sweep", b"heads_sweep")
# 2: balances may wait in a journal. A build refuses a data directory of a later schema: an
# earlier build would read stale balances past it.
# 3: the history is HISTORY_HEADS + HISTORY_LINKS; a schema 2 store's LEGACY_HISTORY is
# converted when it is opened (node/ledger/history.py).
# 4: heads may wait in a journal too: an earlier build would link new entries to stale heads.
# 5: the journals are bucketed logs (node/ledger/bucket_log.py): an earlier build would
# read neither. A schema 2-4 store's journals are merged into their trees when it is opened.
SCHEMA_VERSION = 5

GOV_VALIDATORS = b"validators"
GOV_REGULATORS = b"regulators"
GOV_PENDING_LAST_SEQ = b"pending_last_seq"
EPOCH_BYTES = 4


def height_key(height: int) -> bytes:
    return height.to_bytes(HEIGHT_BYTES, "big")


def balance_key(asset_id: str, account: bytes) -> bytes:
    # Asset ids never contain NUL, so "asset\0" is an unambiguous prefix of its holders.
    return asset_id.encode() + b"\x00" + account


def balance_prefix(asset_id: str) -> bytes:
    return asset_id.encode() + b"\x00"


def role_key(account: bytes, role: str) -> bytes:
    return account + role.encode()


def position_key(height: int, index: int) -> bytes:
    """A transaction's place in the chain: receipts are stored in chain order (appends)."""
    return height.to_bytes(HEIGHT_BYTES, "big") + index.to_bytes(INDEX_BYTES, "big")


def epoch_key(number: int) -> bytes:
    return number.to_bytes(EPOCH_BYTES, "big")


def evidence_key(epoch: int, message_kind: int, view: int, seq: int, validator: str) -> bytes:
    """One equivocation: (epoch, validator, kind, view, seq); the name (no NUL) goes last."""
    return (
        epoch.to_bytes(EPOCH_BYTES, "big")
        + message_kind.to_bytes(1, "big")
        + view.to_bytes(HEIGHT_BYTES, "big")
        + seq.to_bytes(HEIGHT_BYTES, "big")
        + validator.encode()
    )
