"""Stored records: msgpack's direct encoding of our flat records is the canonical one."""

from __future__ import annotations

import msgpack

from consensus.encoding import pack, unpack
from node.ledger import ReasonCode
from node.ledger.digest import tx_root, write_set_hash
from node.ledger.records import (
    AccountRecord,
    AssetRecord,
    BlockRecord,
    Freeze,
    Receipt,
    ReceiptStatus,
    encode_int,
)

K = b"\x01" * 32
FREEZE = Freeze(asset_id="B", reason_code="r", order_ref="o", by="issuer", tx_id=K, height=3)


def _canonical(data: bytes) -> None:
    assert pack(unpack(data)) == data


def test_records_round_trip_canonically() -> None:
    acc = AccountRecord(
        category="individual",
        kyc_hash=K,
        expires_at_ms=None,
        status="registered",
        recovered_to=None,
        account_freeze=FREEZE,
        asset_freezes=(FREEZE,),
        assets=("A", "B"),
        registered_height=1,
    )
    asset = AssetRecord(
        asset_id="B",
        name="Bond",
        decimals=2,
        cap=2**63 - 1,
        issuer=K,
        document_hash=None,
        supply=5,
        paused=True,
        created_height=0,
    )
    receipt = Receipt(
        tx_id=K,
        height=2**40,
        index=7,
        status=ReceiptStatus.REJECTED,
        reason=ReasonCode.ACCOUNT_FROZEN,
        kind="transfer",
        signer=K,
        reason_code="x",
        order_ref="y",
        detail="not stored",
    )
    block = BlockRecord(
        height=1,
        timestamp_ms=5,
        prev_block_hash=K,
        tx_root=K,
        block_hash=K,
        state_digest=K,
        txs=(b"a", b"b"),
        outcomes=("applied", "bad_nonce"),
    )
    for record in (acc, asset, receipt, block):
        data = record.encode()
        _canonical(data)
        assert type(record).decode(data) == (
            record._replace(detail="") if isinstance(record, Receipt) else record
        )
    for value in (0, 1, 127, 128, 2**32, 2**63 - 1):
        assert encode_int(value) == pack(value)


def test_accounts_decoded_for_the_state_cache_share_their_common_values() -> None:
    plain = AccountRecord("individual", K, None, "registered", None, None, (), ("A",), 1)
    frozen = plain._replace(kyc_hash=b"\x02" * 32, account_freeze=FREEZE, asset_freezes=(FREEZE,))
    seen: dict[object, object] = {}
    first, second, third = (
        AccountRecord.decode_shared(r.encode(), seen) for r in (plain, frozen, plain)
    )
    assert (first, second, third) == (plain, frozen, plain)
    assert type(first) is AccountRecord and type(second.account_freeze) is Freeze
    assert first.category is second.category is third.category  # one object, not three
    assert first.status is third.status and first.assets is third.assets


def test_write_set_hash_is_the_hash_of_the_canonical_encoding() -> None:
    import hashlib

    ws = {
        "nonces": [(b"k1", b"\x01")],
        "balances": [(b"a\x00" + K, b"\x05"), (b"b\x00" + K, None)],
    }
    expected = hashlib.sha256(
        pack(
            [
                ["balances", [[b"a\x00" + K, b"\x05"], [b"b\x00" + K, None]]],
                ["nonces", [[b"k1", b"\x01"]]],
            ]
        )
    ).digest()
    assert write_set_hash(ws) == expected  # type: ignore[arg-type]
    assert msgpack.packb(("x", [b"y"]), use_bin_type=True) == pack(["x", [b"y"]])
    assert tx_root([b"a"]) != tx_root([b"b"]) != tx_root([])
