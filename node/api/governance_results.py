"""Typed results of the governance queries (`validators`, `governance`, `evidence`).

Like node/api/results.py: the API's own records, independent of the ledger's
(node/ledger/governance_records.py), each with `to_wire()` and a validating `from_wire()`
that clients use on what a node sends. Field types are listed in docs/protocol.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from node.api.results import HASH_BYTES, KEY_BYTES, NAME_BYTES_MAX
from node.api.schema import Fields, SchemaError, bytes_list

SIGNATURE_BYTES = 64
ADDRESS_BYTES_MAX = 300  # host:port, host up to 253 characters
VALIDATORS_MAX = 1_000
REGULATOR_KEYS_MAX = 64
SIGNATURES_MAX = 64
GOVERNANCE_KINDS = (
    "add_validator",
    "remove_validator",
    "rotate_validator_key",
    "set_regulator_keys",
)
MESSAGE_KINDS = ("pre_prepare", "prepare", "commit", "checkpoint")
# Governance arguments are a flat map of plain values (keys, names, addresses, flags, key
# lists); these bound what a client accepts from a node.
ARGS_FIELDS_MAX = 16
ARG_NAME_BYTES_MAX = 64
ARG_TEXT_BYTES_MAX = 512
ARG_BYTES_MAX = 1024
ARG_ITEMS_MAX = 64
# An evidence message is an encoded consensus message carried inside one transaction.
EVIDENCE_MESSAGE_BYTES_MAX = 1 << 20
RECORDS_MAX = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidatorEntry:
    """One validator: its name, Ed25519 public key and peer address (host:port)."""

    name: str
    public_key: bytes
    address: str

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, "public_key": self.public_key, "address": self.address}

    @classmethod
    def from_wire(cls, obj: Any, where: str) -> ValidatorEntry:
        f = Fields(obj, where)
        out = cls(
            name=f.text("name", size_max=NAME_BYTES_MAX),
            public_key=f.binary("public_key", KEY_BYTES),
            address=f.text("address", size_max=ADDRESS_BYTES_MAX),
        )
        f.done()
        return out


def _validator_list(items: list[Any], where: str) -> tuple[ValidatorEntry, ...]:
    return tuple(ValidatorEntry.from_wire(item, f"{where}[{i}]") for i, item in enumerate(items))


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidatorSetInfo:
    """Result of `validators`: the epoch governing a block, and the current governance state.

    `height` is the chain height when the node answered. `epoch`, `first_seq`, `last_seq`
    (nil while the epoch is open) and `validators` describe the epoch asked for (the one
    governing the next block when no height was given). `pending_validators` is the ledger's
    validator set when it differs from the current epoch's (the next epoch's set unless more
    changes come), `pending_last_seq` the last block of the current epoch once a change is
    pending; both nil otherwise. Regulator keys and threshold are the current ones.
    """

    height: int
    epoch: int
    first_seq: int
    last_seq: int | None
    validators: tuple[ValidatorEntry, ...]
    pending_validators: tuple[ValidatorEntry, ...] | None
    pending_last_seq: int | None
    regulator_keys: tuple[bytes, ...]
    regulator_threshold: int

    def __post_init__(self) -> None:
        if self.last_seq is not None and self.last_seq < self.first_seq - 1:
            raise SchemaError(f"validators.last_seq {self.last_seq} is before first_seq")
        if not 1 <= self.regulator_threshold <= max(1, len(self.regulator_keys)):
            raise SchemaError(
                f"validators.regulator_threshold {self.regulator_threshold} is outside"
                f" 1..{len(self.regulator_keys)} regulator keys"
            )

    def to_wire(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "epoch": self.epoch,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "validators": [v.to_wire() for v in self.validators],
            "pending_validators": None
            if self.pending_validators is None
            else [v.to_wire() for v in self.pending_validators],
            "pending_last_seq": self.pending_last_seq,
            "regulator_keys": list(self.regulator_keys),
            "regulator_threshold": self.regulator_threshold,
        }

    @classmethod
    def from_wire(cls, obj: Any) -> ValidatorSetInfo:
        f = Fields(obj, "validators")
        validators = _validator_list(
            f.array("validators", items_max=VALIDATORS_MAX), f.sub("validators")
        )
        if not validators:
            raise SchemaError("validators.validators: an epoch has at least one validator")
        pending_obj = f.raw("pending_validators", optional=True)
        pending = None
        if pending_obj is not None:
            if not isinstance(pending_obj, list) or len(pending_obj) > VALIDATORS_MAX:
                raise SchemaError(
                    f"validators.pending_validators: expected an array of at most {VALIDATORS_MAX}"
                )
            pending = _validator_list(pending_obj, f.sub("pending_validators"))
        out = cls(
            height=f.integer("height"),
            epoch=f.integer("epoch"),
            first_seq=f.integer("first_seq", 1),
            last_seq=f.opt_integer("last_seq"),
            validators=validators,
            pending_validators=pending,
            pending_last_seq=f.opt_integer("pending_last_seq", 1),
            regulator_keys=tuple(
                bytes_list(
                    f.array("regulator_keys", items_max=REGULATOR_KEYS_MAX),
                    f.sub("regulator_keys"),
                    size=KEY_BYTES,
                )
            ),
            regulator_threshold=f.integer("regulator_threshold", 1, REGULATOR_KEYS_MAX),
        )
        f.done()
        return out


ArgValue = None | bool | int | str | bytes | list[Any]


def _arg_value(value: Any, where: str, *, nested: bool = False) -> ArgValue:
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, str):
        if len(value.encode()) > ARG_TEXT_BYTES_MAX:
            raise SchemaError(f"{where}: longer than {ARG_TEXT_BYTES_MAX} bytes")
        return value
    if isinstance(value, bytes):
        if len(value) > ARG_BYTES_MAX:
            raise SchemaError(f"{where}: more than {ARG_BYTES_MAX} bytes")
        return value
    if isinstance(value, list) and not nested:
        if len(value) > ARG_ITEMS_MAX:
            raise SchemaError(f"{where}: more than {ARG_ITEMS_MAX} items")
        return [_arg_value(item, f"{where}[{i}]", nested=True) for i, item in enumerate(value)]
    raise SchemaError(f"{where}: unexpected {type(value).__name__}")


def _args(obj: Any, where: str) -> dict[str, ArgValue]:
    if not isinstance(obj, dict):
        raise SchemaError(f"{where}: expected a map, got {type(obj).__name__}")
    if len(obj) > ARGS_FIELDS_MAX:
        raise SchemaError(f"{where}: more than {ARGS_FIELDS_MAX} fields")
    out: dict[str, ArgValue] = {}
    for name, value in obj.items():
        if not isinstance(name, str) or len(name.encode()) > ARG_NAME_BYTES_MAX:
            raise SchemaError(f"{where}: field names are strings of at most {ARG_NAME_BYTES_MAX}")
        out[name] = _arg_value(value, f"{where}.{name}")
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class GovernanceEntry:
    """One applied governance transaction and the regulator signatures that approved it.

    `args` are the transaction's arguments by name (bytes stay bytes); a key rotation also
    names the replaced key. `effective_from_seq` is the first block governed by the changed
    validator set (nil for set_regulator_keys, which applies from the next transaction)."""

    height: int
    tx_id: bytes
    kind: str
    args: dict[str, ArgValue]
    signatures: tuple[tuple[bytes, bytes], ...]  # (regulator public key, signature)
    effective_from_seq: int | None

    def to_wire(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "tx_id": self.tx_id,
            "kind": self.kind,
            "args": dict(self.args),
            "signatures": [
                {"public_key": key, "signature": signature} for key, signature in self.signatures
            ],
            "effective_from_seq": self.effective_from_seq,
        }

    @classmethod
    def from_wire(cls, obj: Any, where: str = "governance_record") -> GovernanceEntry:
        f = Fields(obj, where)
        signatures = []
        for i, item in enumerate(f.array("signatures", items_max=SIGNATURES_MAX)):
            s = Fields(item, f"{f.sub('signatures')}[{i}]")
            signatures.append(
                (s.binary("public_key", KEY_BYTES), s.binary("signature", SIGNATURE_BYTES))
            )
            s.done()
        out = cls(
            height=f.integer("height", 1),
            tx_id=f.binary("tx_id", HASH_BYTES),
            kind=f.text("kind", choices=GOVERNANCE_KINDS),
            args=_args(f.raw("args"), f.sub("args")),
            signatures=tuple(signatures),
            effective_from_seq=f.opt_integer("effective_from_seq", 1),
        )
        f.done()
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class GovernancePage:
    """Result of `governance`: records newest first. Pass `next_before_height` back as
    `before_height` for older records; nil means there are none. A page never splits a block."""

    records: tuple[GovernanceEntry, ...]
    next_before_height: int | None

    def to_wire(self) -> dict[str, Any]:
        return {
            "records": [r.to_wire() for r in self.records],
            "next_before_height": self.next_before_height,
        }

    @classmethod
    def from_wire(cls, obj: Any) -> GovernancePage:
        f = Fields(obj, "governance")
        items = f.array("records", items_max=RECORDS_MAX)
        out = cls(
            records=tuple(
                GovernanceEntry.from_wire(item, f"{f.sub('records')}[{i}]")
                for i, item in enumerate(items)
            ),
            next_before_height=f.opt_integer("next_before_height", 1),
        )
        f.done()
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class EvidenceEntry:
    """Two conflicting signed consensus messages of one validator, recorded on the ledger.

    `first` and `second` are the encoded messages as reported (anyone can re-verify them
    against the validator's key in `epoch`); `view` is 0 for checkpoints."""

    height: int
    tx_id: bytes
    validator: str
    public_key: bytes
    epoch: int
    message_kind: str
    view: int
    seq: int
    first: bytes
    second: bytes
    reporter: bytes

    def to_wire(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "tx_id": self.tx_id,
            "validator": self.validator,
            "public_key": self.public_key,
            "epoch": self.epoch,
            "message_kind": self.message_kind,
            "view": self.view,
            "seq": self.seq,
            "first": self.first,
            "second": self.second,
            "reporter": self.reporter,
        }

    @classmethod
    def from_wire(cls, obj: Any, where: str = "evidence_record") -> EvidenceEntry:
        f = Fields(obj, where)
        out = cls(
            height=f.integer("height", 1),
            tx_id=f.binary("tx_id", HASH_BYTES),
            validator=f.text("validator", size_max=NAME_BYTES_MAX),
            public_key=f.binary("public_key", KEY_BYTES),
            epoch=f.integer("epoch"),
            message_kind=f.text("message_kind", choices=MESSAGE_KINDS),
            view=f.integer("view"),
            seq=f.integer("seq"),
            first=f.binary("first", size_max=EVIDENCE_MESSAGE_BYTES_MAX),
            second=f.binary("second", size_max=EVIDENCE_MESSAGE_BYTES_MAX),
            reporter=f.binary("reporter", KEY_BYTES),
        )
        f.done()
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class EvidenceList:
    """Result of `evidence`: records newest first, paged like GovernancePage (pass
    `next_before_height` back as `before_height`; nil: no more). Never splits a block."""

    records: tuple[EvidenceEntry, ...]
    next_before_height: int | None

    def to_wire(self) -> dict[str, Any]:
        return {
            "records": [r.to_wire() for r in self.records],
            "next_before_height": self.next_before_height,
        }

    @classmethod
    def from_wire(cls, obj: Any) -> EvidenceList:
        f = Fields(obj, "evidence")
        items = f.array("records", items_max=RECORDS_MAX)
        out = cls(
            records=tuple(
                EvidenceEntry.from_wire(item, f"{f.sub('records')}[{i}]")
                for i, item in enumerate(items)
            ),
            next_before_height=f.opt_integer("next_before_height", 1),
        )
        f.done()
        return out
