"""Transaction kinds and their typed arguments.

Each kind has one frozen args dataclass; its field order is the wire order (a msgpack array),
and `__post_init__` validates types and ranges, so an args object that exists is well formed.
Who may submit which kind is a ledger rule (node/ledger/rules.py), not a decoding concern.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from config._fields import NAME_PATTERN, check_address
from config.errors import ConfigError
from config.genesis import ASSET_ID_PATTERN, ASSET_NAME_CHARS_MAX, DECIMALS_MAX, REGULATOR_KEYS_MAX
from consensus.epochs import EPOCH_MAX
from consensus.evidence import EVIDENCE_MESSAGE_BYTES_MAX
from node.tx.errors import ArgsError

KEY_BYTES = 32
HASH_BYTES = 32
AMOUNT_MAX = 2**63 - 1  # amounts and caps in base units: 1..AMOUNT_MAX
REASON_CODE_CHARS_MAX = 64
ORDER_REF_CHARS_MAX = 128
# One reported consensus message. Votes and checkpoints are ~200 bytes; a PRE-PREPARE must be
# reported with its payload stripped (the signature covers [view, seq, digest] only).


class Kind(StrEnum):
    REGISTER_ACCOUNT = "register_account"
    REVOKE_ACCOUNT = "revoke_account"
    GRANT_ROLE = "grant_role"
    REVOKE_ROLE = "revoke_role"
    SET_SUPPLY_CAP = "set_supply_cap"
    FORCE_TRANSFER = "force_transfer"
    RECOVER_ACCOUNT = "recover_account"
    FREEZE = "freeze"
    UNFREEZE = "unfreeze"
    CREATE_ASSET = "create_asset"
    MINT = "mint"
    BURN = "burn"
    PAUSE = "pause"
    UNPAUSE = "unpause"
    TRANSFER = "transfer"
    ADD_VALIDATOR = "add_validator"
    REMOVE_VALIDATOR = "remove_validator"
    ROTATE_VALIDATOR_KEY = "rotate_validator_key"
    SET_REGULATOR_KEYS = "set_regulator_keys"
    REPORT_EQUIVOCATION = "report_equivocation"


class Category(StrEnum):
    INDIVIDUAL = "individual"
    ENTITY = "entity"
    INTERMEDIARY = "intermediary"


class Role(StrEnum):
    ISSUER = "issuer"
    REGISTRAR = "registrar"


CATEGORIES = frozenset(c.value for c in Category)
ROLES = frozenset(r.value for r in Role)


# ------------------------------------------------------------------ field checks


def _key(field: str, value: Any) -> None:
    if type(value) is not bytes or len(value) != KEY_BYTES:
        raise ArgsError(field, f"expected {KEY_BYTES} bytes (a public key)")


def _hash(field: str, value: Any) -> None:
    if type(value) is not bytes or len(value) != HASH_BYTES:
        raise ArgsError(field, f"expected {HASH_BYTES} bytes (a SHA-256 hash)")


def _int(field: str, value: Any, low: int, high: int) -> None:
    # bool is an int subclass; it must never pass as an amount.
    if type(value) is not int or not low <= value <= high:
        raise ArgsError(field, f"expected an integer in {low}..{high}")


def _amount(field: str, value: Any) -> None:
    _int(field, value, 1, AMOUNT_MAX)


def _asset_id(field: str, value: Any) -> None:
    if type(value) is not str or ASSET_ID_PATTERN.fullmatch(value) is None:
        raise ArgsError(field, "expected an asset id matching [A-Z0-9][A-Z0-9._-]{0,31}")


# Characters refused in names and audit fields: C0/C1 controls and DEL, and the bidi
# overrides that can make an audit string display as something else. A fixed list, not
# str.isprintable(): that follows the interpreter's Unicode database, so validity (and
# therefore the outcome of a committed block) could differ between Python versions.
_FORBIDDEN_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _text(field: str, value: Any, chars_max: int) -> None:
    if (
        type(value) is not str
        or not 1 <= len(value) <= chars_max
        or _FORBIDDEN_TEXT.search(value) is not None
    ):
        raise ArgsError(
            field, f"expected 1..{chars_max} characters, no control or bidi-override characters"
        )


def _choice(field: str, value: Any, allowed: frozenset[str]) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ArgsError(field, f"expected one of {sorted(allowed)}")


def _audit(reason_code: Any, order_ref: Any) -> None:
    _text("reason_code", reason_code, REASON_CODE_CHARS_MAX)
    _text("order_ref", order_ref, ORDER_REF_CHARS_MAX)


# ------------------------------------------------------------------ args


@dataclass(frozen=True, slots=True, kw_only=True)
class Args:
    """Base: wire conversion shared by every kind's args."""

    KIND: ClassVar[Kind]

    def to_wire(self) -> list[Any]:
        # StrEnum members become plain str so the encoding never depends on the enum type.
        out: list[Any] = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out.append(str(value) if isinstance(value, StrEnum) else value)
        return out

    @classmethod
    def from_wire(cls, items: Any) -> Args:
        names = _FIELD_NAMES[cls]
        if type(items) is not list or len(items) != len(names):
            raise ArgsError("args", f"expected an array of {len(names)} items for {cls.KIND}")
        # Build without keyword-argument plumbing (this runs per decoded transaction), then
        # validate exactly as __init__ would: __post_init__ is the only validation.
        obj = object.__new__(cls)
        for set_field, value in zip(_FIELD_SETTERS[cls], items, strict=True):
            set_field(obj, value)
        obj.__post_init__()  # type: ignore[attr-defined]
        return obj

    def audit(self) -> tuple[str | None, str | None]:
        """(reason_code, order_ref) for kinds that carry an order; (None, None) otherwise."""
        return (None, None)


class _Audited:
    """Mixin for kinds that carry a regulator's or issuer's order."""

    __slots__ = ()
    reason_code: str
    order_ref: str

    def audit(self) -> tuple[str | None, str | None]:
        return (self.reason_code, self.order_ref)


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterAccountArgs(Args):
    KIND: ClassVar[Kind] = Kind.REGISTER_ACCOUNT
    account: bytes
    category: str
    kyc_hash: bytes
    expires_at_ms: int | None = None

    def __post_init__(self) -> None:
        _key("account", self.account)
        _choice("category", self.category, CATEGORIES)
        _hash("kyc_hash", self.kyc_hash)
        if self.expires_at_ms is not None:
            _int("expires_at_ms", self.expires_at_ms, 0, AMOUNT_MAX)


@dataclass(frozen=True, slots=True, kw_only=True)
class RevokeAccountArgs(Args):
    KIND: ClassVar[Kind] = Kind.REVOKE_ACCOUNT
    account: bytes

    def __post_init__(self) -> None:
        _key("account", self.account)


@dataclass(frozen=True, slots=True, kw_only=True)
class GrantRoleArgs(Args):
    KIND: ClassVar[Kind] = Kind.GRANT_ROLE
    account: bytes
    role: str

    def __post_init__(self) -> None:
        _key("account", self.account)
        _choice("role", self.role, ROLES)


@dataclass(frozen=True, slots=True, kw_only=True)
class RevokeRoleArgs(Args):
    KIND: ClassVar[Kind] = Kind.REVOKE_ROLE
    account: bytes
    role: str

    def __post_init__(self) -> None:
        _key("account", self.account)
        _choice("role", self.role, ROLES)


@dataclass(frozen=True, slots=True, kw_only=True)
class SetSupplyCapArgs(Args):
    KIND: ClassVar[Kind] = Kind.SET_SUPPLY_CAP
    asset_id: str
    cap: int

    def __post_init__(self) -> None:
        _asset_id("asset_id", self.asset_id)
        _amount("cap", self.cap)


@dataclass(frozen=True, slots=True, kw_only=True)
class ForceTransferArgs(_Audited, Args):
    KIND: ClassVar[Kind] = Kind.FORCE_TRANSFER
    asset_id: str
    from_account: bytes
    to_account: bytes
    amount: int
    reason_code: str
    order_ref: str

    def __post_init__(self) -> None:
        _asset_id("asset_id", self.asset_id)
        _key("from_account", self.from_account)
        _key("to_account", self.to_account)
        _amount("amount", self.amount)
        _audit(self.reason_code, self.order_ref)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoverAccountArgs(_Audited, Args):
    KIND: ClassVar[Kind] = Kind.RECOVER_ACCOUNT
    lost_account: bytes
    new_account: bytes
    reason_code: str
    order_ref: str

    def __post_init__(self) -> None:
        _key("lost_account", self.lost_account)
        _key("new_account", self.new_account)
        _audit(self.reason_code, self.order_ref)


@dataclass(frozen=True, slots=True, kw_only=True)
class FreezeArgs(_Audited, Args):
    KIND: ClassVar[Kind] = Kind.FREEZE
    account: bytes
    asset_id: str | None  # None: the whole account (regulator only)
    reason_code: str
    order_ref: str

    def __post_init__(self) -> None:
        _key("account", self.account)
        if self.asset_id is not None:
            _asset_id("asset_id", self.asset_id)
        _audit(self.reason_code, self.order_ref)


@dataclass(frozen=True, slots=True, kw_only=True)
class UnfreezeArgs(_Audited, Args):
    KIND: ClassVar[Kind] = Kind.UNFREEZE
    account: bytes
    asset_id: str | None
    reason_code: str
    order_ref: str

    def __post_init__(self) -> None:
        _key("account", self.account)
        if self.asset_id is not None:
            _asset_id("asset_id", self.asset_id)
        _audit(self.reason_code, self.order_ref)


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateAssetArgs(Args):
    KIND: ClassVar[Kind] = Kind.CREATE_ASSET
    asset_id: str
    name: str
    decimals: int
    cap: int
    document_hash: bytes | None = None

    def __post_init__(self) -> None:
        _asset_id("asset_id", self.asset_id)
        _text("name", self.name, ASSET_NAME_CHARS_MAX)
        if self.name.strip() != self.name:
            raise ArgsError("name", "leading or trailing whitespace")
        _int("decimals", self.decimals, 0, DECIMALS_MAX)
        _amount("cap", self.cap)
        if self.document_hash is not None:
            _hash("document_hash", self.document_hash)


@dataclass(frozen=True, slots=True, kw_only=True)
class MintArgs(Args):
    KIND: ClassVar[Kind] = Kind.MINT
    asset_id: str
    to_account: bytes
    amount: int

    def __post_init__(self) -> None:
        _asset_id("asset_id", self.asset_id)
        _key("to_account", self.to_account)
        _amount("amount", self.amount)


@dataclass(frozen=True, slots=True, kw_only=True)
class BurnArgs(Args):
    KIND: ClassVar[Kind] = Kind.BURN
    asset_id: str
    amount: int

    def __post_init__(self) -> None:
        _asset_id("asset_id", self.asset_id)
        _amount("amount", self.amount)


@dataclass(frozen=True, slots=True, kw_only=True)
class PauseArgs(Args):
    KIND: ClassVar[Kind] = Kind.PAUSE
    asset_id: str

    def __post_init__(self) -> None:
        _asset_id("asset_id", self.asset_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class UnpauseArgs(Args):
    KIND: ClassVar[Kind] = Kind.UNPAUSE
    asset_id: str

    def __post_init__(self) -> None:
        _asset_id("asset_id", self.asset_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferArgs(Args):
    """The holder's transfer. Its memo is the transaction's memo."""

    KIND: ClassVar[Kind] = Kind.TRANSFER
    asset_id: str
    to_account: bytes
    amount: int

    def __post_init__(self) -> None:
        _asset_id("asset_id", self.asset_id)
        _key("to_account", self.to_account)
        _amount("amount", self.amount)


# ------------------------------------------------------------------ governance (issue 7)


# The genesis rules for a validator (config.genesis.ValidatorSpec): name and address.
def _validator_name(field: str, value: Any) -> None:
    if type(value) is not str or NAME_PATTERN.fullmatch(value) is None:
        raise ArgsError(field, "expected a validator name matching [a-z0-9-]{1,32}")


def _address(field: str, value: Any) -> None:
    try:
        check_address(field, value)
    except ConfigError as exc:
        raise ArgsError(field, exc.reason) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class AddValidatorArgs(Args):
    KIND: ClassVar[Kind] = Kind.ADD_VALIDATOR
    name: str
    public_key: bytes
    address: str  # host:port of its peer listener

    def __post_init__(self) -> None:
        _validator_name("name", self.name)
        _key("public_key", self.public_key)
        _address("address", self.address)


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveValidatorArgs(Args):
    KIND: ClassVar[Kind] = Kind.REMOVE_VALIDATOR
    name: str
    allow_below_minimum: bool = False  # documented override: the set may shrink below 4

    def __post_init__(self) -> None:
        _validator_name("name", self.name)
        if type(self.allow_below_minimum) is not bool:
            raise ArgsError("allow_below_minimum", "expected a boolean")


@dataclass(frozen=True, slots=True, kw_only=True)
class RotateValidatorKeyArgs(Args):
    KIND: ClassVar[Kind] = Kind.ROTATE_VALIDATOR_KEY
    name: str
    public_key: bytes  # the NEW key

    def __post_init__(self) -> None:
        _validator_name("name", self.name)
        _key("public_key", self.public_key)


@dataclass(frozen=True, slots=True, kw_only=True)
class SetRegulatorKeysArgs(Args):
    KIND: ClassVar[Kind] = Kind.SET_REGULATOR_KEYS
    public_keys: tuple[bytes, ...]  # 1..REGULATOR_KEYS_MAX distinct keys (a list on the wire)
    threshold: int  # 1..len(public_keys)

    def __post_init__(self) -> None:
        keys = self.public_keys
        if type(keys) not in (list, tuple) or not 1 <= len(keys) <= REGULATOR_KEYS_MAX:
            raise ArgsError("public_keys", f"expected a list of 1..{REGULATOR_KEYS_MAX} keys")
        for index, key in enumerate(keys):
            _key(f"public_keys[{index}]", key)
        if len(set(keys)) != len(keys):
            raise ArgsError("public_keys", "keys must be distinct")
        if type(keys) is list:  # from the wire: keep the value immutable (and hashable)
            object.__setattr__(self, "public_keys", tuple(keys))
        _int("threshold", self.threshold, 1, len(keys))


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportEquivocationArgs(Args):
    """Two conflicting signed consensus messages from one validator of `epoch`
    (consensus.messages.encode_message output; the ledger checks them)."""

    KIND: ClassVar[Kind] = Kind.REPORT_EQUIVOCATION
    epoch: int
    first: bytes
    second: bytes

    def __post_init__(self) -> None:
        _int("epoch", self.epoch, 0, EPOCH_MAX)
        for field, value in (("first", self.first), ("second", self.second)):
            if type(value) is not bytes or not 1 <= len(value) <= EVIDENCE_MESSAGE_BYTES_MAX:
                raise ArgsError(
                    field,
                    f"expected 1..{EVIDENCE_MESSAGE_BYTES_MAX} bytes (an encoded consensus"
                    " message; strip a pre-prepare's payload)",
                )
        if self.first == self.second:
            raise ArgsError("second", "the two messages are identical")


ARGS_BY_KIND: dict[Kind, type[Args]] = {
    cls.KIND: cls
    for cls in (
        RegisterAccountArgs,
        RevokeAccountArgs,
        GrantRoleArgs,
        RevokeRoleArgs,
        SetSupplyCapArgs,
        ForceTransferArgs,
        RecoverAccountArgs,
        FreezeArgs,
        UnfreezeArgs,
        CreateAssetArgs,
        MintArgs,
        BurnArgs,
        PauseArgs,
        UnpauseArgs,
        TransferArgs,
        AddValidatorArgs,
        RemoveValidatorArgs,
        RotateValidatorKeyArgs,
        SetRegulatorKeysArgs,
        ReportEquivocationArgs,
    )
}
assert set(ARGS_BY_KIND) == set(Kind), "every kind needs an args class"

_FIELD_NAMES: dict[type[Args], tuple[str, ...]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls)) for cls in ARGS_BY_KIND.values()
}
# The slot descriptors' setters: writing a frozen dataclass's slot directly, once per field.
_FIELD_SETTERS: dict[type[Args], tuple[Any, ...]] = {
    cls: tuple(getattr(cls, name).__set__ for name in names) for cls, names in _FIELD_NAMES.items()
}
assert all(hasattr(cls, "__post_init__") for cls in ARGS_BY_KIND.values())

# Kinds only the regulator (with its M-of-N threshold) may submit.
REGULATOR_ONLY = frozenset(
    {
        Kind.GRANT_ROLE,
        Kind.REVOKE_ROLE,
        Kind.SET_SUPPLY_CAP,
        Kind.FORCE_TRANSFER,
        Kind.RECOVER_ACCOUNT,
        Kind.ADD_VALIDATOR,
        Kind.REMOVE_VALIDATOR,
        Kind.ROTATE_VALIDATOR_KEY,
        Kind.SET_REGULATOR_KEYS,
    }
)
# Changes to the validator set (they schedule the end of the current epoch).
VALIDATOR_SET_KINDS = frozenset(
    {Kind.ADD_VALIDATOR, Kind.REMOVE_VALIDATOR, Kind.ROTATE_VALIDATOR_KEY}
)
# Audited in the governance history.
GOVERNANCE_KINDS = VALIDATOR_SET_KINDS | {Kind.SET_REGULATOR_KEYS}
# Kinds whose ledger rules live in node/ledger/governance.py.
GOVERNANCE_RULE_KINDS = GOVERNANCE_KINDS | {Kind.REPORT_EQUIVOCATION}
