"""Closed set of wire error codes, and the exceptions a backend raises to produce them.

A backend never builds an error frame itself: it raises one of the `BackendError` subclasses
below and the server maps it to exactly one `ErrorCode`. Anything else a backend raises is our
bug; the server answers `internal` (without the exception text, which may leak internals) and
logs it.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Every error code the server can send. Never rename one: clients match on the string."""

    BAD_REQUEST = "bad_request"  # well-formed frame, invalid arguments for the op
    MALFORMED_FRAME = "malformed_frame"  # body is not a canonical [id, op, args]; connection closes
    FRAME_TOO_LARGE = "frame_too_large"  # length prefix above frame_bytes_max; connection closes
    FRAME_TIMEOUT = "frame_timeout"  # a frame begun but not finished in frame_timeout_ms; closes
    UNKNOWN_OP = "unknown_op"
    TOO_MANY_REQUESTS = "too_many_requests"  # in-flight limit of this connection; it stays up
    TOO_MANY_CONNECTIONS = "too_many_connections"  # per-address limit; connection closes
    TOO_MANY_WAITS = "too_many_waits"  # node-wide pending submit_wait limit
    TOO_MANY_SUBSCRIPTIONS = "too_many_subscriptions"  # node-wide subscription limit
    TIMEOUT = "timeout"  # submit_wait deadline passed; the tx may still commit later
    NOT_FOUND = "not_found"
    REJECTED = "rejected"  # admission/check refusal; the error map carries `reason`
    UNAVAILABLE = "unavailable"  # node cannot serve now (starting, syncing, shutting down)
    INTERNAL = "internal"  # our bug; details are in the node's log


class BackendError(Exception):
    """Base of the exceptions a `ClientBackend` raises for a refusal the client should see."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(BackendError):
    code = ErrorCode.NOT_FOUND


class UnavailableError(BackendError):
    code = ErrorCode.UNAVAILABLE


class WaitTimeoutError(BackendError):
    code = ErrorCode.TIMEOUT


class TooManyWaitsError(BackendError):
    code = ErrorCode.TOO_MANY_WAITS


class InvalidArgumentError(BackendError):
    """The arguments are well-typed but make no sense to the ledger (e.g. height 0)."""

    code = ErrorCode.BAD_REQUEST


class RejectedError(BackendError):
    """A transaction refused at admission; `reason` is the ledger/mempool reason code."""

    code = ErrorCode.REJECTED

    def __init__(self, reason: str, message: str | None = None) -> None:
        super().__init__(message or f"transaction rejected: {reason}")
        self.reason = reason
