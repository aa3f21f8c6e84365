"""Transaction encoding: round trips, ids, and refusal of every kind of bad input."""

from __future__ import annotations

import contextlib
import hashlib

import msgpack
import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.encoding import pack
from node.tx import (
    DecodeReason,
    Kind,
    SignedTransaction,
    TxBuildError,
    TxDecodeError,
    TxLimits,
    add_signatures,
    build_transfer,
    decode_signed_transaction,
    make_tx,
    public_key,
)
from node.tx.errors import ArgsError
from node.tx.kinds import TransferArgs
from tests.node.tx.samples import SAMPLE_ARGS

KEY = nacl.signing.SigningKey(hashlib.sha256(b"codec-signer").digest())
CO = nacl.signing.SigningKey(hashlib.sha256(b"codec-cosigner").digest())
CHAIN = "test-chain"


def _transfer(**overrides: object) -> SignedTransaction:
    return build_transfer(KEY, CHAIN, 3, "BOND-2036", b"\x02" * 32, 10, memo="invoice 7")


def _wire(stx: SignedTransaction) -> list:
    return msgpack.unpackb(stx.encode(), raw=False)


def _decode_reason(data: bytes, **kw: object) -> DecodeReason:
    with pytest.raises(TxDecodeError) as info:
        decode_signed_transaction(data, **kw)  # type: ignore[arg-type]
    return info.value.reason


@pytest.mark.parametrize("kind", list(Kind))
def test_every_kind_builds_and_round_trips(kind: Kind) -> None:
    stx = make_tx(kind, SAMPLE_ARGS[kind], signer_key=KEY, nonce=0, chain_id=CHAIN, cosigners=[CO])
    data = stx.encode()
    assert data == pack(stx.wire())  # the spliced encoding is the canonical one
    back = decode_signed_transaction(data)
    assert back == stx
    assert back.tx_id == stx.tx_id == hashlib.sha256(pack(stx.body.wire())).digest()
    assert back.body.args == SAMPLE_ARGS[kind]


def test_args_may_be_given_as_a_mapping() -> None:
    stx = make_tx(
        "transfer",
        {"asset_id": "BOND-2036", "to_account": b"\x02" * 32, "amount": 10},
        signer_key=KEY,
        nonce=0,
        chain_id=CHAIN,
    )
    assert stx.body.args == TransferArgs(asset_id="BOND-2036", to_account=b"\x02" * 32, amount=10)


def test_tx_id_ignores_signatures_but_not_the_body() -> None:
    stx = _transfer()
    cosigned = add_signatures(stx, [CO])
    reordered = SignedTransaction(body=stx.body, signatures=tuple(reversed(cosigned.signatures)))
    assert stx.tx_id == cosigned.tx_id == reordered.tx_id
    assert stx.encode() != cosigned.encode()
    other = build_transfer(KEY, CHAIN, 4, "BOND-2036", b"\x02" * 32, 10, memo="invoice 7")
    assert other.tx_id != stx.tx_id


def test_oversize_is_refused_before_decoding() -> None:
    data = _transfer().encode()
    assert _decode_reason(data, tx_bytes_max=len(data) - 1) is DecodeReason.OVERSIZE
    assert _decode_reason(b"\x00" * 5000) is DecodeReason.OVERSIZE


@pytest.mark.parametrize(
    "data",
    [b"", b"\xc1", b"\x92", b"\xff" * 10, b"\x92\x96"],
    ids=["empty", "reserved-byte", "truncated", "garbage", "truncated-body"],
)
def test_garbage_is_malformed(data: bytes) -> None:
    assert _decode_reason(data) is DecodeReason.MALFORMED


def test_non_canonical_encoding_is_refused() -> None:
    wire = _wire(_transfer())
    # The nonce 3 written as a uint32 instead of a fixint: same value, different bytes.
    body = msgpack.packb(wire[0], use_bin_type=True)
    canonical_nonce = b"\x03"
    assert canonical_nonce in body
    idx = body.index(b"\xc4\x20") + 34  # after the signer (bin8 of 32 bytes)
    assert body[idx : idx + 1] == canonical_nonce
    stretched = body[:idx] + b"\xce\x00\x00\x00\x03" + body[idx + 1 :]
    data = b"\x92" + stretched + msgpack.packb(wire[1], use_bin_type=True)
    assert _decode_reason(data) is DecodeReason.MALFORMED
    # Trailing bytes after a valid transaction.
    assert _decode_reason(_transfer().encode() + b"\x00") is DecodeReason.MALFORMED


def test_maps_and_floats_are_refused() -> None:
    wire = _wire(_transfer())
    wire[0][4][2] = 10.0
    assert _decode_reason(msgpack.packb(wire, use_bin_type=True)) is DecodeReason.MALFORMED
    wire = _wire(_transfer())
    wire[0][4] = {"asset_id": "BOND-2036"}
    assert _decode_reason(msgpack.packb(wire, use_bin_type=True)) is DecodeReason.MALFORMED


def _mutated(path: tuple[int, ...], value: object) -> bytes:
    wire = _wire(_transfer())
    target = wire
    for i in path[:-1]:
        target = target[i]
    target[path[-1]] = value
    return pack(wire)


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        ((0, 0), "", DecodeReason.BAD_SHAPE),  # empty chain id
        ((0, 0), b"test-chain", DecodeReason.BAD_SHAPE),  # chain id as bytes
        ((0, 1), b"\x01" * 31, DecodeReason.BAD_SHAPE),  # short signer
        ((0, 2), -1, DecodeReason.BAD_SHAPE),  # negative nonce
        ((0, 2), True, DecodeReason.BAD_SHAPE),  # bool nonce
        ((0, 2), 2**64 - 1, DecodeReason.BAD_SHAPE),  # nonce beyond int64
        ((0, 3), "steal", DecodeReason.UNKNOWN_KIND),
        ((0, 3), 7, DecodeReason.BAD_SHAPE),
        ((0, 4, 2), 0, DecodeReason.BAD_ARGS),  # amount 0
        ((0, 4, 2), 2**63, DecodeReason.BAD_ARGS),  # amount beyond the bound
        ((0, 4, 2), False, DecodeReason.BAD_ARGS),  # bool amount
        ((0, 4, 2), "10", DecodeReason.BAD_ARGS),
        ((0, 4, 0), "bond 2036", DecodeReason.BAD_ARGS),  # bad asset id
        ((0, 4, 1), b"\x02" * 33, DecodeReason.BAD_ARGS),
        ((0, 4), ["BOND-2036", b"\x02" * 32], DecodeReason.BAD_ARGS),  # missing field
        ((0, 5), 12, DecodeReason.BAD_SHAPE),  # memo as int
        ((0, 5), "x" * 257, DecodeReason.MEMO_TOO_LONG),
        ((1,), [], DecodeReason.BAD_SHAPE),  # no signatures
        ((1, 0, 1), b"\x00" * 63, DecodeReason.BAD_SHAPE),
        ((1, 0), [b"\x01" * 32], DecodeReason.BAD_SHAPE),
        ((1,), [[b"\x01" * 32, b"\x00" * 64]] * 17, DecodeReason.TOO_MANY_SIGNATURES),
    ],
)
def test_wrong_types_and_ranges(path: tuple[int, ...], value: object, reason: DecodeReason) -> None:
    assert _decode_reason(_mutated(path, value)) is reason


def test_wrong_envelope_shapes() -> None:
    assert _decode_reason(pack([1, 2, 3])) is DecodeReason.BAD_SHAPE
    assert _decode_reason(pack("tx")) is DecodeReason.BAD_SHAPE
    assert _decode_reason(pack([[1, 2], []])) is DecodeReason.BAD_SHAPE


def test_unicode_memo_is_bounded_in_bytes() -> None:
    limits = TxLimits(memo_bytes_max=6)
    ok = make_tx(
        Kind.TRANSFER,
        {"asset_id": "B", "to_account": b"\x02" * 32, "amount": 1},
        signer_key=KEY,
        nonce=0,
        chain_id=CHAIN,
        memo="ééé",  # 6 bytes
        limits=limits,
    )
    assert decode_signed_transaction(ok.encode(), limits=limits).body.memo == "ééé"
    with pytest.raises(TxBuildError):
        make_tx(
            Kind.TRANSFER,
            {"asset_id": "B", "to_account": b"\x02" * 32, "amount": 1},
            signer_key=KEY,
            nonce=0,
            chain_id=CHAIN,
            memo="éééé",
            limits=limits,
        )


def test_builder_refuses_what_could_never_be_valid() -> None:
    with pytest.raises(ArgsError, match="amount"):
        build_transfer(KEY, CHAIN, 0, "BOND-2036", b"\x02" * 32, 0)
    with pytest.raises(TxBuildError, match="kind"):
        make_tx("mint_forever", {}, signer_key=KEY, nonce=0, chain_id=CHAIN)
    with pytest.raises(TxBuildError, match="chain_id"):
        build_transfer(KEY, "Bad Chain", 0, "BOND-2036", b"\x02" * 32, 1)
    with pytest.raises(ArgsError):
        make_tx(Kind.BURN, {"asset": "X", "amount": 1}, signer_key=KEY, nonce=0, chain_id=CHAIN)
    with pytest.raises(TxBuildError, match="nonce"):
        build_transfer(KEY, CHAIN, -1, "BOND-2036", b"\x02" * 32, 1)


def test_tx_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="tx_bytes_max"):
        TxLimits(tx_bytes_max=10)
    with pytest.raises(ValueError, match="signatures_max"):
        TxLimits(signatures_max=0)
    with pytest.raises(ValueError, match="memo_bytes_max"):
        TxLimits(memo_bytes_max=-1)


def test_signer_is_the_builders_key() -> None:
    assert _transfer().body.signer == public_key(KEY)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_never_crash(data: bytes) -> None:
    with contextlib.suppress(TxDecodeError):
        decode_signed_transaction(data)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 400), st.integers(0, 255))
def test_single_byte_corruption_is_refused_or_changes_nothing_silently(pos: int, byte: int) -> None:
    data = bytearray(_transfer().encode())
    pos %= len(data)
    data[pos] = byte
    try:
        stx = decode_signed_transaction(bytes(data))
    except TxDecodeError:
        return
    # Whatever still decodes re-encodes to exactly the bytes received (canonical).
    assert stx.encode() == bytes(data)


@pytest.mark.parametrize("cosigners", [0, 14, 15, 16, 19])
def test_body_bytes_are_the_canonical_body_for_any_signature_count(cosigners: int) -> None:
    # The codec slices the body out of the envelope using the signatures' encoded length,
    # whose array header grows from 1 to 3 bytes past 15 signatures.
    keys = [nacl.signing.SigningKey(bytes([i + 1]) * 32) for i in range(cosigners)]
    stx = make_tx("mint", SAMPLE_ARGS[Kind.MINT], signer_key=KEY, nonce=1, chain_id=CHAIN)
    stx = add_signatures(stx, keys)
    back = decode_signed_transaction(stx.encode(), limits=TxLimits(signatures_max=20))
    assert len(back.signatures) == cosigners + 1
    assert back.body.body_bytes == pack(stx.body.wire())
    assert back.tx_id == hashlib.sha256(pack(stx.body.wire())).digest()
    assert back == stx


def test_decoded_args_are_validated_like_constructed_ones() -> None:
    # from_wire bypasses keyword plumbing but must still run the same validation.
    with pytest.raises(ArgsError, match="asset_id"):
        TransferArgs.from_wire(["bond", b"\x02" * 32, 1])
    with pytest.raises(ArgsError, match="amount"):
        TransferArgs.from_wire(["BOND", b"\x02" * 32, 0])
    with pytest.raises(ArgsError, match="expected an array"):
        TransferArgs.from_wire(["BOND", b"\x02" * 32])
    assert TransferArgs.from_wire(["BOND", b"\x02" * 32, 1]) == TransferArgs(
        asset_id="BOND", to_account=b"\x02" * 32, amount=1
    )


def test_text_validity_does_not_depend_on_the_unicode_version() -> None:
    """U+31350 was unassigned in Python 3.11's Unicode data and assigned later; text rules
    must give the same verdict on every interpreter a validator may run."""
    from node.tx.errors import ArgsError
    from node.tx.kinds import FreezeArgs

    account = bytes(32)
    FreezeArgs(account=account, asset_id=None, reason_code="court", order_ref="ref-\U00031350")
    for bad in ("ref\n", "ref\x85", "\u202eref"):
        with pytest.raises(ArgsError):
            FreezeArgs(account=account, asset_id=None, reason_code="court", order_ref=bad)
