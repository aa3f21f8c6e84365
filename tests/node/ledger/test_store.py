"""The LMDB store: atomic blocks, reopening, genesis binding, block records, queries, digest."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from config.genesis import AccountSpec
from node.ledger import (
    Block,
    BlockError,
    GenesisMismatchError,
    Ledger,
    LedgerError,
    LedgerFullError,
    LedgerLimits,
    LedgerSchemaError,
    ReasonCode,
)
from node.ledger import keys as kl
from node.ledger import store as store_module
from node.ledger.digest import block_hash, tx_root
from node.ledger.records import decode_int, encode_int
from node.tx import Kind, build_transfer
from tests.node.ledger.conftest import ALICE, BOB, BOND, CAROL, ISSUER, pk, standard_genesis
from tests.node.ledger.world import SMALL_MAP_BYTES, World


def _snapshot(led: Ledger) -> dict[str, list[tuple[bytes, bytes]]]:
    """Every key/value of every database: the ground truth for "nothing changed"."""
    out = {}
    with led._env.begin() as txn:
        for name, db in led._dbs.items():
            out[name] = list(txn.cursor(db=db))
    return out


def test_genesis_is_height_zero(tmp_path: Path) -> None:
    g = standard_genesis()
    with Ledger.open(tmp_path / "l", g, limits=LedgerLimits(map_size_bytes=SMALL_MAP_BYTES)) as led:
        assert led.height == 0
        b0 = led.block(0)
        assert b0 is not None and b0.prev_block_hash == g.digest() and b0.txs == ()
        assert b0.state_digest == led.state_digest
        assert led.account(pk(ISSUER)).roles == frozenset({"issuer"})  # type: ignore[union-attr]
        assert led.asset(BOND).supply == 0  # type: ignore[union-attr]


def test_crash_mid_block_leaves_the_store_exactly_as_before(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    led = world.ledger
    before = _snapshot(led)
    txs = [
        world.tx(ALICE, Kind.TRANSFER, {"asset_id": BOND, "to_account": pk(BOB), "amount": 5}),
        world.tx(ISSUER, Kind.MINT, {"asset_id": BOND, "to_account": pk(CAROL), "amount": 5}),
    ]

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated crash after the state was flushed")

    # Fails after state, receipts and indices were written inside the txn.
    monkeypatch.setattr(store_module, "block_hash", boom)
    with pytest.raises(RuntimeError, match="simulated crash"):
        world.apply(*txs)
    assert _snapshot(led) == before
    monkeypatch.undo()
    world.time_ms -= 1000
    receipts = world.apply(*txs)
    assert all(r.applied for r in receipts)


def test_reopen_keeps_everything(tmp_path: Path) -> None:
    g = standard_genesis()
    w = World(tmp_path / "l", g, sync=True)
    w.one(ISSUER, Kind.MINT, asset_id=BOND, to_account=pk(ALICE), amount=10)
    r = w.one(ALICE, Kind.TRANSFER, asset_id=BOND, to_account=pk(BOB), amount=4)
    height, digest = w.ledger.height, w.ledger.state_digest
    w.close()
    with Ledger.open(tmp_path / "l", g, limits=LedgerLimits(map_size_bytes=SMALL_MAP_BYTES)) as led:
        assert (led.height, led.state_digest) == (height, digest)
        assert led.balance(BOND, pk(BOB)) == 4
        assert led.receipt(r.tx_id).applied  # type: ignore[union-attr]
        assert led.nonce(pk(ALICE)) == 1


def test_refuses_a_data_dir_of_another_chain_or_genesis(tmp_path: Path) -> None:
    limits = LedgerLimits(map_size_bytes=SMALL_MAP_BYTES)
    Ledger.open(tmp_path / "l", standard_genesis(), limits=limits).close()
    with pytest.raises(GenesisMismatchError, match="chain 'test-chain'"):
        Ledger.open(tmp_path / "l", standard_genesis(chain_id="other-chain"), limits=limits)
    with pytest.raises(GenesisMismatchError, match="another genesis"):
        Ledger.open(tmp_path / "l", standard_genesis(regulators=2), limits=limits)


def _set_schema(path: Path, version: int) -> None:
    limits = LedgerLimits(map_size_bytes=SMALL_MAP_BYTES)
    with (
        Ledger.open(path, standard_genesis(), limits=limits) as led,
        led._env.begin(write=True) as txn,
    ):
        txn.put(kl.META_SCHEMA, encode_int(version), db=led._dbs[kl.META])


def _schema(path: Path) -> int:
    limits = LedgerLimits(map_size_bytes=SMALL_MAP_BYTES)
    with Ledger.open(path, standard_genesis(), limits=limits) as led, led._env.begin() as txn:
        raw = txn.get(kl.META_SCHEMA, db=led._dbs[kl.META])
    assert raw is not None
    return decode_int(raw)


def test_an_older_store_is_upgraded_and_a_newer_one_refused(tmp_path: Path) -> None:
    """Schema 2 may keep balances in a journal, schema 3 the history in chains, schema 4 heads
    in a journal, schema 5 both in bucketed logs, which an earlier build would not read: a
    build must refuse a store written by a later one rather than read stale balances or
    heads. (The history's conversion: test_history.py; the journals': test_bucket_log.py.)"""
    path = tmp_path / "l"
    for older in (1, 3, 4):  # before the balance journal; the heads' journal; the logs
        _set_schema(path, older)
        assert _schema(path) == kl.SCHEMA_VERSION == 5  # reopened: upgraded in place
    _set_schema(path, kl.SCHEMA_VERSION + 1)
    limits = LedgerLimits(map_size_bytes=SMALL_MAP_BYTES)
    with pytest.raises(LedgerSchemaError, match="store schema 6, this build reads up to 5"):
        Ledger.open(path, standard_genesis(), limits=limits)


def test_a_genesis_larger_than_the_map_is_a_clear_error(tmp_path: Path) -> None:
    g = standard_genesis()
    many = tuple(
        AccountSpec(public_key=n.to_bytes(32, "big"), category="individual", kyc_hash=bytes(32))
        for n in range(1, 20_001)
    )
    big = dataclasses.replace(g, accounts=g.accounts + many)
    with pytest.raises(
        LedgerFullError, match=r"genesis \(20005 accounts\).*map_size_bytes=1048576"
    ):
        Ledger.open(tmp_path / "l", big, limits=LedgerLimits(map_size_bytes=1 << 20), sync=False)
    # Nothing was written: the same directory takes the genesis once the map is larger.
    with Ledger.open(tmp_path / "l", big, limits=LedgerLimits(map_size_bytes=64 << 20)) as led:
        assert led.height == 0 and led.account(many[-1].public_key) is not None


def test_block_must_follow_the_tip(world: World) -> None:
    led = world.ledger
    h = led.height
    with pytest.raises(BlockError, match="does not follow"):
        led.apply_block(Block(height=h + 2, timestamp_ms=world.time_ms + 1, txs=()))
    with pytest.raises(BlockError, match="does not follow"):
        led.apply_block(Block(height=h, timestamp_ms=world.time_ms + 1, txs=()))
    with pytest.raises(BlockError, match="before the previous"):
        led.apply_block(Block(height=h + 1, timestamp_ms=world.time_ms - 1, txs=()))
    with pytest.raises(BlockError, match="signatures_ok"):
        led.apply_block(
            Block(height=h + 1, timestamp_ms=world.time_ms, txs=(b"x",)), signatures_ok=[]
        )
    with pytest.raises(BlockError, match="height"):
        Block(height=0, timestamp_ms=1, txs=())
    with pytest.raises(BlockError, match="tuple of bytes"):
        Block(height=1, timestamp_ms=1, txs=["x"])  # type: ignore[arg-type]
    assert led.height == h


def test_block_limits(tmp_path: Path) -> None:
    limits = LedgerLimits(map_size_bytes=SMALL_MAP_BYTES, block_txs_max=2, certificate_bytes_max=10)
    with Ledger.open(tmp_path / "l", standard_genesis(), limits=limits, sync=False) as led:
        with pytest.raises(BlockError, match="block_txs_max"):
            led.apply_block(Block(height=1, timestamp_ms=2**41, txs=(b"a", b"b", b"c")))
        with pytest.raises(BlockError, match="certificate_bytes_max"):
            led.apply_block(Block(height=1, timestamp_ms=2**41, txs=()), certificate=b"x" * 11)
    with pytest.raises(ValueError, match="block_txs_max"):
        LedgerLimits(block_txs_max=0)


def test_block_record_and_certificate(world: World) -> None:
    led = world.ledger
    stx = world.tx(ALICE, Kind.TRANSFER, {"asset_id": BOND, "to_account": pk(BOB), "amount": 1})
    prev = led.last_block_hash
    world.time_ms += 1
    h = led.height + 1
    block = Block(height=h, timestamp_ms=world.time_ms, txs=(stx.encode(),))
    led.apply_block(block, certificate=b"commit-certificate")
    rec = led.block(h)
    assert rec is not None
    assert rec.certificate == b"commit-certificate"
    assert rec.txs == (stx.encode(),) and rec.outcomes == ("applied",)
    assert rec.prev_block_hash == prev
    assert rec.tx_root == tx_root(block.txs)
    assert rec.block_hash == block_hash(
        chain_id="test-chain",
        height=h,
        timestamp_ms=world.time_ms,
        prev_block_hash=prev,
        root=rec.tx_root,
    )
    assert rec.block_hash == led.last_block_hash
    assert rec.state_digest == led.state_digest
    assert led.block(h + 1) is None and led.block(-1) is None
    assert led.block(h - 1).certificate is None  # type: ignore[union-attr]


def test_history_pages_newest_first(world: World) -> None:
    ids = [
        world.one(ALICE, Kind.TRANSFER, asset_id=BOND, to_account=pk(BOB), amount=1).tx_id
        for _ in range(5)
    ]
    led = world.ledger
    page1 = led.history(pk(BOB), limit=2)
    assert [e.tx_id for e in page1] == ids[::-1][:2]
    last = page1[-1]
    page2 = led.history(pk(BOB), limit=10, before=(last.height, last.index))
    assert [e.tx_id for e in page2] == ids[::-1][2:]
    assert led.history(pk(CAROL)) == []
    with pytest.raises(LedgerError, match="limit"):
        led.history(pk(BOB), limit=0)


def test_check_evaluates_without_writing(world: World) -> None:
    led = world.ledger
    before = _snapshot(led)
    good = build_transfer(ALICE, "test-chain", 0, BOND, pk(BOB), 10)
    too_much = build_transfer(ALICE, "test-chain", 0, BOND, pk(BOB), 10**5)
    assert led.check(good).applied
    assert led.check(good.encode()).applied
    assert led.check(too_much).reason is ReasonCode.INSUFFICIENT_BALANCE
    assert led.check(b"junk").reason is ReasonCode.MALFORMED
    assert led.check(build_transfer(ALICE, "test-chain", 5, BOND, pk(BOB), 1)).reason is (
        ReasonCode.BAD_NONCE
    )
    assert led.check(good, signature_ok=False).reason is ReasonCode.BAD_SIGNATURE
    assert _snapshot(led) == before


def test_holders_lists_one_asset(world: World) -> None:
    world.one(ALICE, Kind.TRANSFER, asset_id=BOND, to_account=pk(BOB), amount=1)
    assert sorted(world.ledger.holders(BOND)) == sorted([(pk(ALICE), 999), (pk(BOB), 1)])


def _script(w: World, amounts: list[int]) -> None:
    for amount in amounts:
        w.one(ALICE, Kind.TRANSFER, asset_id=BOND, to_account=pk(BOB), amount=amount)


def test_state_digest_is_deterministic(tmp_path: Path) -> None:
    g = standard_genesis()
    a, b, c = (World(tmp_path / n, g) for n in "abc")
    for w in (a, b, c):
        w.one(ISSUER, Kind.MINT, asset_id=BOND, to_account=pk(ALICE), amount=100)
    _script(a, [1, 2, 3])
    _script(b, [1, 2, 3])
    _script(c, [1, 2, 4])
    assert a.ledger.state_digest == b.ledger.state_digest
    assert a.ledger.last_block_hash == b.ledger.last_block_hash
    assert a.ledger.state_digest != c.ledger.state_digest
    for w in (a, b, c):
        w.close()


def test_block_txs_must_be_the_decoded_ones(world: World) -> None:
    led = world.ledger
    with pytest.raises(BlockError, match="decoded"):
        led.apply_block(
            Block(height=led.height + 1, timestamp_ms=world.time_ms, txs=(b"x",)), decoded=[]
        )


def test_map_full_is_an_error_not_corruption(tmp_path: Path) -> None:
    with Ledger.open(
        tmp_path / "l", standard_genesis(), limits=LedgerLimits(map_size_bytes=1 << 20), sync=False
    ) as led:
        with pytest.raises(LedgerFullError, match="map_size_bytes"):
            led.apply_block(Block(height=1, timestamp_ms=2**41, txs=(b"\x00" * 4000,) * 400))
        assert led.height == 0


def test_consensus_state_larger_than_the_map_is_ledger_full_and_keeps_the_last(
    tmp_path: Path,
) -> None:
    # The replica persists its state in its own write transaction: a full store there must
    # be the LedgerFullError the node reports in one line, not a raw MDB_MAP_FULL.
    limits = LedgerLimits(map_size_bytes=1 << 20, consensus_state_bytes_max=4 << 20)
    with Ledger.open(tmp_path / "l", standard_genesis(), limits=limits) as led:
        led.save_consensus_state(b"view=3")
        with pytest.raises(
            LedgerFullError,
            match=r"map_size_bytes=1048576; the consensus state was not saved\. Restart with",
        ):
            led.save_consensus_state(b"x" * (2 << 20))
        assert led.load_consensus_state() == b"view=3"
        led.save_consensus_state(b"view=4")  # still writable
        assert led.load_consensus_state() == b"view=4"


def test_consensus_state_round_trips_and_survives_reopen(tmp_path: Path) -> None:
    g = standard_genesis()
    limits = LedgerLimits(map_size_bytes=SMALL_MAP_BYTES, consensus_state_bytes_max=100)
    with Ledger.open(tmp_path / "l", g, limits=limits) as led:
        assert led.load_consensus_state() is None
        assert led.last_timestamp_ms == g.genesis_time_ms
        led.save_consensus_state(b"view=3")
        led.save_consensus_state(b"view=4")
        with pytest.raises(LedgerError, match="consensus_state_bytes_max"):
            led.save_consensus_state(b"x" * 101)
        digest = led.state_digest
    with Ledger.open(tmp_path / "l", g, limits=limits) as led:
        assert led.load_consensus_state() == b"view=4"
        assert led.state_digest == digest  # protocol state is not ledger state
