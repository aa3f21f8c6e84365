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


def _ok_result(name: str, request_id: int) -> object:
    (body,) = FrameDecoder().feed(bytes.fromhex(pv.governance_vectors()[name]))
    obj = decode_body(body, decode_limits_for(1 << 20))
    assert obj[:2] == [request_id, "ok"]
    return obj[2]


def test_governance_request_vectors_are_valid_requests() -> None:
    from node.api.requests import (
        EvidenceArgs,
        GovernanceArgs,
        Op,
        ValidatorsArgs,
        parse_args,
        parse_envelope,
    )

    expected = {
        'request frame [4, "validators", {"height": 41}]': ValidatorsArgs(height=41),
        'request frame [5, "governance", {"limit": 10}]': GovernanceArgs(
            limit=10, before_height=None
        ),
        'request frame [6, "evidence", {"limit": 10}]': EvidenceArgs(limit=10, before_height=None),
    }
    for name, args in expected.items():
        (body,) = FrameDecoder().feed(bytes.fromhex(pv.governance_vectors()[name]))
        envelope = parse_envelope(decode_body(body, decode_limits_for(1 << 20)))
        parsed = parse_args(Op(envelope.op), envelope.args, tx_bytes_max=4096, wait_ms_max=1)
        assert parsed == args


def test_governance_response_vectors_check_out_independently() -> None:
    from consensus.encoding import DecodeLimits
    from consensus.epochs import epoch_last_seq
    from consensus.messages import Prepare, decode_message
    from consensus.signing import Purpose, verify
    from node.api.governance_results import EvidenceList, GovernancePage, ValidatorSetInfo

    info = ValidatorSetInfo.from_wire(_ok_result('response frame [4, "ok", <Validators>]', 4))
    assert [v.name for v in info.validators] == ["v0", "v1", "v2", "v3"]
    assert info.pending_validators is not None and info.pending_validators[-1].name == "v4"
    # The documented epoch rule: a change in block 40 ends epoch 0 at 80 (K = 16, W = 32).
    assert info.pending_last_seq == info.last_seq == 80
    assert epoch_last_seq(40, checkpoint_interval_seqs=16, log_window_seqs=32) == 80

    page = GovernancePage.from_wire(_ok_result('response frame [5, "ok", <GovernancePage>]', 5))
    (record,) = page.records
    assert record.effective_from_seq == 81 and page.next_before_height is None
    # The approving signature is the regulator's over the documented transaction body.
    body = pack(
        [
            pv.CHAIN_ID,
            info.regulator_keys[0],
            3,
            "add_validator",
            [record.args["name"], record.args["public_key"], record.args["address"]],
            None,
        ]
    )
    assert hashlib.sha256(body).digest() == record.tx_id
    ((key, signature),) = record.signatures
    assert key == info.regulator_keys[0]
    nacl.signing.VerifyKey(key).verify(pack(["assetledger/tx/v1", pv.CHAIN_ID, body]), signature)

    found = EvidenceList.from_wire(_ok_result('response frame [6, "ok", <EvidenceList>]', 6))
    (evidence,) = found.records
    decoded = [
        decode_message(m, limits=DecodeLimits(), n=4, window=32)
        for m in (evidence.first, evidence.second)
    ]
    messages = [m for m in decoded if isinstance(m, Prepare)]
    assert messages == decoded  # the documented evidence is two PREPAREs
    assert {(m.view, m.seq, m.replica) for m in messages} == {(2, 12, "v1")}
    assert messages[0].digest != messages[1].digest
    for m in messages:
        assert verify(
            evidence.public_key,
            m.signature,
            Purpose.PREPARE,
            pv.CHAIN_ID,  # epoch 0 signs under the bare chain id
            pack([m.view, m.seq, m.digest]),
        )
