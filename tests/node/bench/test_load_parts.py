import msgpack
import pytest

from node.api.results import BlockInfo
from node.bench.load import LoadError, block_outcomes, route_by_signer
from node.bench.presign import PreSigned, holder_keys, presign_transfers
from node.ledger.records import BlockRecord


def _block(txs, outcomes, *, tx_ids=None, record=None):
    if record is None:
        record = BlockRecord(
            height=3,
            timestamp_ms=1,
            prev_block_hash=b"\x00" * 32,
            tx_root=b"\x01" * 32,
            block_hash=b"\x02" * 32,
            state_digest=b"\x03" * 32,
            txs=tuple(t.raw for t in txs),
            outcomes=tuple(outcomes),
        ).encode()
    return BlockInfo(
        height=3,
        block_hash=b"\x02" * 32,
        tx_ids=tuple(t.tx_id for t in txs) if tx_ids is None else tx_ids,
        block=record,
        certificate=b"",
    )


def _txs(n):
    return presign_transfers(holder_keys(2, b"b"), chain_id="assetledger-t", asset_id="A", count=n)


def test_block_outcomes_pair_ids_with_the_record_outcomes():
    txs = _txs(3)
    block = _block(txs, ["applied", "insufficient_balance", "applied"])
    assert block_outcomes(block) == [
        (txs[0].tx_id, "applied"),
        (txs[1].tx_id, "insufficient_balance"),
        (txs[2].tx_id, "applied"),
    ]


def test_block_outcomes_recompute_ids_when_the_node_left_some_out():
    txs = _txs(2)
    junk = PreSigned(tx_id=b"", raw=b"\xc1not a tx", signer=-1, nonce=0)
    block = _block([txs[0], junk, txs[1]], ["applied", "undecodable", "applied"])
    block = _block(
        [txs[0], junk, txs[1]],
        ["applied", "undecodable", "applied"],
        tx_ids=(txs[0].tx_id, txs[1].tx_id),
        record=block.block,
    )
    assert block_outcomes(block) == [(txs[0].tx_id, "applied"), (txs[1].tx_id, "applied")]


@pytest.mark.parametrize(
    "record",
    [
        b"\xc1",  # never valid msgpack
        msgpack.packb([1, 2, 3]),
        msgpack.packb([1, 1, b"", b"", b"", b"", [b"tx"], []]),  # outcomes missing
        msgpack.packb([1, 1, b"", b"", b"", b"", [b"tx"], [7]]),  # outcome not a string
    ],
)
def test_block_outcomes_refuse_malformed_records(record):
    with pytest.raises(LoadError, match="block 3"):
        block_outcomes(_block([], [], tx_ids=(), record=record))


def test_routing_pins_a_holder_to_one_connection_and_spreads_role_keys():
    txs = _txs(8)
    assert [route_by_signer(t, i, 3) for i, t in enumerate(txs)] == [t.signer % 3 for t in txs]
    role = PreSigned(tx_id=b"x", raw=b"", signer=-1, nonce=0)
    assert [route_by_signer(role, i, 3) for i in range(5)] == [0, 1, 2, 0, 1]
