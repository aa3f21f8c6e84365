"""The asset ledger on LMDB: rules per kind, atomic block application, state digest, queries."""

from node.ledger.block import Block
from node.ledger.errors import (
    BlockError,
    GenesisMismatchError,
    LedgerCorruptError,
    LedgerError,
    LedgerFullError,
    LedgerSchemaError,
)
from node.ledger.governance_records import (
    EpochInfo,
    EvidenceRecord,
    GovernanceRecord,
    ValidatorInfo,
)
from node.ledger.history import HistoryCursorError, HistoryEntry
from node.ledger.queries import AccountInfo
from node.ledger.reasons import UNAUTHENTIC, ReasonCode
from node.ledger.records import (
    AccountStatus,
    AssetRecord,
    BlockRecord,
    Freeze,
    Receipt,
    ReceiptStatus,
)
from node.ledger.store import Ledger, LedgerLimits, prepare_tx

__all__ = [
    "UNAUTHENTIC",
    "AccountInfo",
    "AccountStatus",
    "AssetRecord",
    "Block",
    "BlockError",
    "BlockRecord",
    "EpochInfo",
    "EvidenceRecord",
    "Freeze",
    "GenesisMismatchError",
    "GovernanceRecord",
    "HistoryCursorError",
    "HistoryEntry",
    "Ledger",
    "LedgerCorruptError",
    "LedgerError",
    "LedgerFullError",
    "LedgerLimits",
    "LedgerSchemaError",
    "ReasonCode",
    "Receipt",
    "ReceiptStatus",
    "ValidatorInfo",
    "prepare_tx",
]
