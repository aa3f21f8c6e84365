"""docs/protocol.md says what the code does: generated section current, vectors re-derived."""

from __future__ import annotations

import hashlib
import struct

import nacl.signing
import pytest

from consensus.encoding import pack, unpack
from node.api.framing import FrameDecoder, decode_body, decode_limits_for
from node.tx import decode_signed_transaction, verify_transaction
from tests.node.api import protocol_vectors as pv


def test_generated_section_is_current() -> None:
    text = pv.DOC.read_text()
    assert pv.replace_section(text, pv.render()) == text, (
        "docs/protocol.md is stale: run python -m tests.node.api.protocol_vectors --write"
    )


def test_vectors_follow_the_documented_rules_independently() -> None:
    v = pv.vectors()
    body = bytes.fromhex(v["body = pack([chain_id, signer, nonce, kind, args, memo])"])
    signed = bytes.fromhex(v["signed transaction = pack([body, [[public_key, signature]]])"])
    signer = bytes.fromhex(v["signer public key"])
    signature = bytes.fromhex(v["signature"])
    # Body layout, from the document's words rather than our builder.
    assert unpack(body) == [
        pv.CHAIN_ID,
        signer,
        0,
        "transfer",
        ["BOND-2035", bytes.fromhex(v["recipient public key"]), 1250],
        "invoice 42",
    ]
    signing = pack(["assetledger/tx/v1", pv.CHAIN_ID, body])
    assert signing.hex() == v["signed bytes = pack([purpose, chain_id, body])"]
    nacl.signing.VerifyKey(signer).verify(signing, signature)
    assert unpack(signed) == [unpack(body), [[signer, signature]]]
    assert hashlib.sha256(body).hexdigest() == v["tx_id = sha256(body)"]
    assert nacl.signing.SigningKey(bytes.fromhex(v["signer seed"])).verify_key.encode() == signer
    # And our own decoder agrees.
    stx = decode_signed_transaction(signed)
    assert verify_transaction(stx) and stx.tx_id.hex() == v["tx_id = sha256(body)"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ('request frame [1, "submit", {"tx": <signed transaction>}]', "submit"),
        ('response frame [1, "ok", {"tx_id": <tx_id>}]', "ok"),
        ("error frame (rejected at admission)", "error"),
        ('request frame [3, "status", {}]', "status"),
    ],
)
def test_frame_vectors_are_length_prefixed_canonical_bodies(name: str, expected: str) -> None:
    frame = bytes.fromhex(pv.vectors()[name])
    (length,) = struct.unpack(">I", frame[:4])
    assert length == len(frame) - 4
    (body,) = FrameDecoder().feed(frame)
    obj = decode_body(body, decode_limits_for(1 << 20))
    assert obj[1] == expected
    if name.startswith("error"):
        assert obj[2] == {
            "code": "rejected",
            "message": "transaction rejected: nonce_used",
            "reason": "nonce_used",
        }


def test_every_error_code_is_documented_and_no_other() -> None:
    import re

    from node.api.errors import ErrorCode

    text = pv.DOC.read_text()
    section = text[text.index("## 6. Error codes") : text.index("## 7.")]
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE))
    assert documented == {code.value for code in ErrorCode}


def test_every_op_is_documented() -> None:
    import re

    from node.api.requests import Op

    text = pv.DOC.read_text()
    section = text[text.index("## 4. Operations") : text.index("## 5.")]
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE))
    assert documented == {op.value for op in Op}
