"""Transaction errors. Untrusted bytes fail with a `TxDecodeError` carrying a stable code."""

from __future__ import annotations

from enum import StrEnum


class DecodeReason(StrEnum):
    """Why untrusted transaction bytes were refused. Stable: clients and logs match on them."""

    OVERSIZE = "oversize"  # more than tx_bytes_max bytes
    MALFORMED = "malformed"  # not canonical msgpack within the decode limits
    BAD_SHAPE = "bad_shape"  # wrong envelope/body layout or field types
    UNKNOWN_KIND = "unknown_kind"
    BAD_ARGS = "bad_args"  # arguments do not fit the kind's typed schema
    MEMO_TOO_LONG = "memo_too_long"
    TOO_MANY_SIGNATURES = "too_many_signatures"


class TxError(Exception):
    """Base of every transaction-layer error."""


class ArgsError(TxError, ValueError):
    """A kind's arguments are invalid (raised when an args dataclass is built)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class TxDecodeError(TxError, ValueError):
    """Untrusted bytes are not a valid signed transaction."""

    def __init__(self, reason: DecodeReason, message: str) -> None:
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason
        self.message = message


class TxBuildError(TxError, ValueError):
    """A client tried to build a transaction that could never be valid (wrong limits, bad key)."""
