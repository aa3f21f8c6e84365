"""Request envelope and per-op arguments.

Frame bodies (all canonical msgpack arrays):

    request   [request_id: uint, op: str, args: map]
    response  [request_id, "ok", result]  |  [request_id, "error", {"code", "message"[, "reason"]}]
    stream    [request_id, "event", payload] ... [request_id, "end", {"reason": str}]

A body that is not such an array is a *malformed frame*: the server answers with request id nil
and closes the connection, because it can no longer trust where the client's requests begin.
A well-formed envelope with bad arguments is only a `bad_request` for that id.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from node.api.framing import MalformedFrameError
from node.api.results import HASH_BYTES, KEY_BYTES, NAME_BYTES_MAX
from node.api.schema import I64_MAX, Fields

REQUEST_ID_MAX = I64_MAX
OP_BYTES_MAX = 32
HISTORY_LIMIT_MAX = 1_000
CURSOR_BYTES_MAX = 256
# A governance record is about one transaction (tx_bytes_max, 16 KiB by default), an evidence
# record two consensus messages of at most 1 KiB each: a full page fits the default 1 MiB frame.
GOVERNANCE_LIMIT_MAX = 50
EVIDENCE_LIMIT_MAX = 100


class Op(StrEnum):
    SUBMIT = "submit"
    SUBMIT_WAIT = "submit_wait"
    RECEIPT = "receipt"
    BALANCE = "balance"
    ACCOUNT = "account"
    NONCE = "nonce"
    ASSET = "asset"
    BLOCK = "block"
    STATUS = "status"
    CHECK = "check"
    SUBSCRIBE = "subscribe"
    CANCEL = "cancel"
    HISTORY = "history"
    VALIDATORS = "validators"
    GOVERNANCE = "governance"
    EVIDENCE = "evidence"


class FrameKind(StrEnum):
    OK = "ok"
    ERROR = "error"
    EVENT = "event"
    END = "end"


class SubscriptionKind(StrEnum):
    BLOCKS = "blocks"
    RECEIPTS = "receipts"


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    request_id: int
    op: str
    args: dict[str, Any]


def parse_envelope(obj: Any) -> Envelope:
    """Shape check of a decoded request body. Raises MalformedFrameError."""
    if not isinstance(obj, list) or len(obj) != 3:
        raise MalformedFrameError("request must be an array [request_id, op, args]")
    request_id, op, args = obj
    if isinstance(request_id, bool) or not isinstance(request_id, int):
        raise MalformedFrameError("request_id must be an unsigned integer")
    if not 0 <= request_id <= REQUEST_ID_MAX:
        raise MalformedFrameError(f"request_id must be in [0, {REQUEST_ID_MAX}]")
    if not isinstance(op, str) or len(op) > OP_BYTES_MAX:
        raise MalformedFrameError(f"op must be a string of at most {OP_BYTES_MAX} bytes")
    if not isinstance(args, dict):
        raise MalformedFrameError("args must be a map")
    return Envelope(request_id=request_id, op=op, args=args)


# --- per-op arguments ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TxArgs:
    """`submit` and `check`."""

    tx: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitWaitArgs:
    tx: bytes
    timeout_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TxIdArgs:
    tx_id: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class BalanceArgs:
    asset: str
    account: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountArgs:
    """`account`, `nonce`."""

    account: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class AssetArgs:
    asset: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockArgs:
    height: int


@dataclass(frozen=True, slots=True, kw_only=True)
class NoArgs:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscribeArgs:
    kind: SubscriptionKind
    from_height: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelArgs:
    """End the subscription opened by request `target`; it ends with reason "cancelled"."""

    target: int


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryArgs:
    account: bytes
    limit: int
    cursor: bytes | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidatorsArgs:
    """`height`: the block whose epoch to describe; None for the epoch of the next block."""

    height: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class GovernanceArgs:
    """Records with height < `before_height` (all when None), newest first, at most `limit`."""

    limit: int
    before_height: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class EvidenceArgs:
    """Records with height < `before_height` (all when None), newest first, at most `limit`."""

    limit: int
    before_height: int | None


OpArgs = (
    TxArgs
    | SubmitWaitArgs
    | TxIdArgs
    | BalanceArgs
    | AccountArgs
    | AssetArgs
    | BlockArgs
    | NoArgs
    | SubscribeArgs
    | CancelArgs
    | HistoryArgs
    | ValidatorsArgs
    | GovernanceArgs
    | EvidenceArgs
)


def parse_args(op: Op, args: dict[str, Any], *, tx_bytes_max: int, wait_ms_max: int) -> OpArgs:
    """Validate `args` for `op`. Raises SchemaError (-> bad_request) naming the field."""
    f = Fields(args, str(op))
    out: OpArgs
    match op:
        case Op.SUBMIT | Op.CHECK:
            out = TxArgs(tx=f.binary("tx", size_max=tx_bytes_max))
        case Op.SUBMIT_WAIT:
            out = SubmitWaitArgs(
                tx=f.binary("tx", size_max=tx_bytes_max),
                timeout_ms=f.integer("timeout_ms", 1, wait_ms_max),
            )
        case Op.RECEIPT:
            out = TxIdArgs(tx_id=f.binary("tx_id", HASH_BYTES))
        case Op.BALANCE:
            out = BalanceArgs(
                asset=f.text("asset", size_max=NAME_BYTES_MAX),
                account=f.binary("account", KEY_BYTES),
            )
        case Op.ACCOUNT | Op.NONCE:
            out = AccountArgs(account=f.binary("account", KEY_BYTES))
        case Op.ASSET:
            out = AssetArgs(asset=f.text("asset", size_max=NAME_BYTES_MAX))
        case Op.BLOCK:
            out = BlockArgs(height=f.integer("height", 1))
        case Op.STATUS:
            out = NoArgs()
        case Op.SUBSCRIBE:
            kinds = tuple(k.value for k in SubscriptionKind)
            out = SubscribeArgs(
                kind=SubscriptionKind(f.text("kind", choices=kinds)),
                from_height=f.integer("from_height", 1),
            )
        case Op.CANCEL:
            out = CancelArgs(target=f.integer("target", 0, REQUEST_ID_MAX))
        case Op.HISTORY:
            out = HistoryArgs(
                account=f.binary("account", KEY_BYTES),
                limit=f.integer("limit", 1, HISTORY_LIMIT_MAX),
                cursor=f.opt_binary("cursor", size_max=CURSOR_BYTES_MAX),
            )
        case Op.VALIDATORS:
            out = ValidatorsArgs(height=f.opt_integer("height", 1))
        case Op.GOVERNANCE:
            out = GovernanceArgs(
                limit=f.integer("limit", 1, GOVERNANCE_LIMIT_MAX),
                before_height=f.opt_integer("before_height", 1),
            )
        case Op.EVIDENCE:
            out = EvidenceArgs(
                limit=f.integer("limit", 1, EVIDENCE_LIMIT_MAX),
                before_height=f.opt_integer("before_height", 1),
            )
    f.done()
    return out


def request_body(request_id: int, op: Op | str, args: dict[str, Any]) -> list[Any]:
    return [request_id, str(op), args]


def ok_body(request_id: int, result: Any) -> list[Any]:
    return [request_id, FrameKind.OK.value, result]


def error_body(
    request_id: int | None, code: str, message: str, reason: str | None = None
) -> list[Any]:
    payload: dict[str, Any] = {"code": code, "message": message}
    if reason is not None:
        payload["reason"] = reason
    return [request_id, FrameKind.ERROR.value, payload]


def event_body(request_id: int, payload: Any) -> list[Any]:
    return [request_id, FrameKind.EVENT.value, payload]


def end_body(request_id: int, reason: str) -> list[Any]:
    return [request_id, FrameKind.END.value, {"reason": reason}]
