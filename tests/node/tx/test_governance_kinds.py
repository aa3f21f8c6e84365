"""The five governance kinds: argument validation and the wire form."""

from __future__ import annotations

import hashlib
from typing import Any

import nacl.signing
import pytest

from config.genesis import REGULATOR_KEYS_MAX
from node.tx import (
    DecodeReason,
    Kind,
    TxDecodeError,
    decode_signed_transaction,
    make_tx,
    public_key,
)
from node.tx.errors import ArgsError
from node.tx.kinds import (
    EVIDENCE_MESSAGE_BYTES_MAX,
    GOVERNANCE_KINDS,
    REGULATOR_ONLY,
    VALIDATOR_SET_KINDS,
    AddValidatorArgs,
    RemoveValidatorArgs,
    ReportEquivocationArgs,
    RotateValidatorKeyArgs,
    SetRegulatorKeysArgs,
)

KEY = nacl.signing.SigningKey(hashlib.sha256(b"gov-signer").digest())
CHAIN = "test-chain"
PK = b"\x01" * 32


def keys(n: int) -> list[bytes]:
    return [hashlib.sha256(i.to_bytes(2, "big")).digest() for i in range(n)]


@pytest.mark.parametrize(
    ("cls", "args", "field"),
    [
        (AddValidatorArgs, {"name": "V1", "public_key": PK, "address": "h:1"}, "name"),
        (AddValidatorArgs, {"name": "a" * 33, "public_key": PK, "address": "h:1"}, "name"),
        (AddValidatorArgs, {"name": "", "public_key": PK, "address": "h:1"}, "name"),
        (AddValidatorArgs, {"name": 7, "public_key": PK, "address": "h:1"}, "name"),
        (AddValidatorArgs, {"name": "v1", "public_key": PK[:31], "address": "h:1"}, "public_key"),
        (AddValidatorArgs, {"name": "v1", "public_key": "ab", "address": "h:1"}, "public_key"),
        (AddValidatorArgs, {"name": "v1", "public_key": PK, "address": "h"}, "address"),
        (AddValidatorArgs, {"name": "v1", "public_key": PK, "address": "h:0"}, "address"),
        (AddValidatorArgs, {"name": "v1", "public_key": PK, "address": "h:70000"}, "address"),
        (AddValidatorArgs, {"name": "v1", "public_key": PK, "address": "a b:1"}, "address"),
        (AddValidatorArgs, {"name": "v1", "public_key": PK, "address": b"h:1"}, "address"),
        (RemoveValidatorArgs, {"name": "v1/"}, "name"),
        (RemoveValidatorArgs, {"name": "v1", "allow_below_minimum": 1}, "allow_below_minimum"),
        (RotateValidatorKeyArgs, {"name": "v1", "public_key": None}, "public_key"),
        (RotateValidatorKeyArgs, {"name": "-" * 40, "public_key": PK}, "name"),
        (SetRegulatorKeysArgs, {"public_keys": [], "threshold": 1}, "public_keys"),
        (SetRegulatorKeysArgs, {"public_keys": PK, "threshold": 1}, "public_keys"),
        (
            SetRegulatorKeysArgs,
            {"public_keys": keys(REGULATOR_KEYS_MAX + 1), "threshold": 1},
            "public_keys",
        ),
        (SetRegulatorKeysArgs, {"public_keys": [PK, PK], "threshold": 1}, "public_keys"),
        (SetRegulatorKeysArgs, {"public_keys": [PK, b"x"], "threshold": 1}, "public_keys[1]"),
        (SetRegulatorKeysArgs, {"public_keys": keys(2), "threshold": 3}, "threshold"),
        (SetRegulatorKeysArgs, {"public_keys": keys(2), "threshold": 0}, "threshold"),
        (SetRegulatorKeysArgs, {"public_keys": keys(2), "threshold": True}, "threshold"),
        (ReportEquivocationArgs, {"epoch": -1, "first": b"a", "second": b"b"}, "epoch"),
        (ReportEquivocationArgs, {"epoch": 2**32, "first": b"a", "second": b"b"}, "epoch"),
        (ReportEquivocationArgs, {"epoch": 0, "first": b"", "second": b"b"}, "first"),
        (ReportEquivocationArgs, {"epoch": 0, "first": "a", "second": b"b"}, "first"),
        (
            ReportEquivocationArgs,
            {"epoch": 0, "first": b"a", "second": b"b" * (EVIDENCE_MESSAGE_BYTES_MAX + 1)},
            "second",
        ),
        (ReportEquivocationArgs, {"epoch": 0, "first": b"a", "second": b"a"}, "second"),
    ],
)
def test_bad_args_are_refused_naming_the_field(cls: type, args: dict[str, Any], field: str) -> None:
    with pytest.raises(ArgsError) as info:
        cls(**args)
    assert info.value.field == field


def test_valid_args() -> None:
    AddValidatorArgs(name="v-10", public_key=PK, address="[::1]:7001")
    AddValidatorArgs(name="node-a", public_key=PK, address="validator.example.org:443")
    assert RemoveValidatorArgs(name="v1").allow_below_minimum is False
    s = SetRegulatorKeysArgs(
        public_keys=keys(REGULATOR_KEYS_MAX),  # type: ignore[arg-type]  # a list, as decoded from the wire: accepted, made a tuple
        threshold=REGULATOR_KEYS_MAX,
    )
    assert len(s.public_keys) == REGULATOR_KEYS_MAX
    from_list = SetRegulatorKeysArgs(public_keys=[PK], threshold=1)  # type: ignore[arg-type]  # a list, as decoded from the wire: accepted, made a tuple
    assert type(from_list.public_keys) is tuple
    ReportEquivocationArgs(epoch=2**32 - 1, first=b"a", second=b"b")


def test_kind_sets() -> None:
    assert VALIDATOR_SET_KINDS < GOVERNANCE_KINDS <= REGULATOR_ONLY
    assert Kind.REPORT_EQUIVOCATION not in REGULATOR_ONLY
    assert Kind.SET_REGULATOR_KEYS in GOVERNANCE_KINDS - VALIDATOR_SET_KINDS


def test_sixty_four_regulator_keys_fit_a_default_transaction() -> None:
    # The decoder's array limit must admit a full key list (not call it malformed).
    cosigners = [nacl.signing.SigningKey(hashlib.sha256(bytes([i])).digest()) for i in range(15)]
    stx = make_tx(
        Kind.SET_REGULATOR_KEYS,
        {"public_keys": keys(REGULATOR_KEYS_MAX), "threshold": 33},
        signer_key=KEY,
        nonce=0,
        chain_id=CHAIN,
        cosigners=cosigners,
    )
    back = decode_signed_transaction(stx.encode())
    assert back.body.args == stx.body.args
    assert isinstance(back.body.args, SetRegulatorKeysArgs)
    assert back.body.args.public_keys == tuple(keys(REGULATOR_KEYS_MAX))


def test_sixty_five_keys_on_the_wire_are_bad_args_not_malformed() -> None:
    stx = make_tx(
        Kind.SET_REGULATOR_KEYS,
        {"public_keys": keys(2), "threshold": 1},
        signer_key=KEY,
        nonce=0,
        chain_id=CHAIN,
    )
    wire = stx.wire()
    wire[0][4][0] = keys(REGULATOR_KEYS_MAX + 1)
    from consensus.encoding import pack

    with pytest.raises(TxDecodeError) as info:
        decode_signed_transaction(pack(wire))
    assert info.value.reason is DecodeReason.BAD_ARGS


def test_wire_order_is_field_order() -> None:
    args = AddValidatorArgs(name="v4", public_key=PK, address="h:1")
    assert args.to_wire() == ["v4", PK, "h:1"]
    assert RemoveValidatorArgs(name="v4").to_wire() == ["v4", False]
    from_list = SetRegulatorKeysArgs(public_keys=[PK], threshold=1)  # type: ignore[arg-type]  # a list, as decoded from the wire: accepted, made a tuple
    assert from_list.to_wire() == [(PK,), 1]
    assert ReportEquivocationArgs(epoch=1, first=b"a", second=b"b").to_wire() == [1, b"a", b"b"]
    assert public_key(KEY)  # the signer used above is a real key
