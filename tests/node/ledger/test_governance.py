"""Validator-set governance on the ledger: rules, reason codes, epochs, queries, digests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.epochs import Epoch, epoch_last_seq
from consensus.evidence import EvidenceError, check_equivocation
from consensus.messages import ViewChange, encode_message, make_view_change
from node.ledger import Block, Ledger, LedgerError, LedgerLimits, ReasonCode
from node.ledger import governance as governance_rules
from node.ledger import keys as kl
from node.ledger import store as store_module
from node.ledger.governance_records import ValidatorInfo
from node.tx import ArgsError, Kind, public_key
from node.tx.kinds import ReportEquivocationArgs
from tests.node.ledger.gov_world import (
    ALICE,
    GovWorld,
    address,
    conflicting_votes,
    governance_genesis,
    vkey,
    vpub,
)
from tests.node.ledger.world import CHAIN_ID, SMALL_MAP_BYTES, key

K, W = 16, 32  # LedgerLimits defaults


def names(validators: tuple[ValidatorInfo, ...] | None) -> list[str]:
    assert validators is not None
    return [v.name for v in validators]


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[GovWorld]:
    """Four genesis validators v0..v3, a 1-of-1 regulator, alice registered."""
    w = GovWorld(tmp_path / "ledger", governance_genesis(4))
    yield w
    w.close()


@pytest.fixture
def gw3(tmp_path: Path) -> Iterator[GovWorld]:
    """Same, with a 2-of-3 regulator."""
    w = GovWorld(tmp_path / "ledger", governance_genesis(4, regulators=3, threshold=2))
    yield w
    w.close()


# ------------------------------------------------------------------ genesis state


def test_genesis_is_epoch_zero(gw: GovWorld) -> None:
    led = gw.ledger
    epoch = led.current_epoch()
    assert (epoch.number, epoch.first_seq, epoch.last_seq) == (0, 1, None)
    assert names(epoch.validators) == ["v0", "v1", "v2", "v3"]
    assert epoch.validators[2] == ValidatorInfo(
        name="v2", public_key=vpub("v2"), address=address("v2")
    )
    assert led.epochs() == [epoch]
    assert led.epoch_for(1) == epoch and led.epoch_for(10**9) == epoch
    assert led.pending_epoch_last_seq() is None
    assert led.pending_validators() is None
    assert led.ledger_validators() == epoch.validators
    assert led.regulator_keys() == (gw.genesis.regulator_keys, 1)
    assert led.governance_history() == [] and led.evidence() == []
    assert led.consensus_epoch(1) == Epoch(
        number=0, first_seq=1, validators=tuple((f"v{i}", vpub(f"v{i}")) for i in range(4))
    )


def test_governance_view_reads_one_height(gw: GovWorld) -> None:
    led = gw.ledger
    gw.empty_blocks_until(6)
    assert gw.add("v4").applied
    view = led.governance_view()
    assert view.tip == 7 and view.epoch == led.current_epoch()
    assert names(view.pending_validators) == ["v0", "v1", "v2", "v3", "v4"]
    assert view.pending_last_seq == led.pending_epoch_last_seq() == 48
    assert (view.regulator_keys, view.regulator_threshold) == led.regulator_keys()
    assert led.governance_view(3).epoch == led.epoch_for(3)
    assert led.governance_view(8).epoch is not None  # the next block's epoch is known
    assert led.governance_view(9).epoch is None  # beyond tip + 1: not known yet
    with pytest.raises(LedgerError, match="height"):
        led.governance_view(0)


def test_epoch_for_refuses_seq_zero(gw: GovWorld) -> None:
    with pytest.raises(LedgerError, match="seq"):
        gw.ledger.epoch_for(0)


# ------------------------------------------------------------------ the epoch schedule


def test_a_change_schedules_the_epoch_end_and_the_new_epoch_starts_after_it(gw: GovWorld) -> None:
    led = gw.ledger
    gw.empty_blocks_until(6)
    r = gw.add("v4")
    assert r.applied, r
    s = r.height
    assert s == 7
    b = epoch_last_seq(s, checkpoint_interval_seqs=K, log_window_seqs=W)
    assert b == 48  # the first multiple of 16 at or after 7 + 32
    # The ledger set changed at once; consensus keeps epoch 0 until b.
    assert names(led.ledger_validators()) == ["v0", "v1", "v2", "v3", "v4"]
    assert names(led.pending_validators()) == ["v0", "v1", "v2", "v3", "v4"]
    assert led.pending_epoch_last_seq() == b
    current = led.current_epoch()
    assert (current.number, current.last_seq) == (0, b)
    assert names(current.validators) == ["v0", "v1", "v2", "v3"]
    [record] = led.governance_history()
    assert record.kind == "add_validator" and record.height == s
    assert record.effective_from_seq == b + 1
    assert record.args == {"name": "v4", "public_key": vpub("v4"), "address": address("v4")}
    assert record.signatures == _signatures(gw, s)

    gw.empty_blocks_until(b - 1)
    assert led.current_epoch().number == 0
    gw.apply()  # block b: the last of epoch 0
    assert led.height == b
    epochs = led.epochs()
    assert [(e.number, e.first_seq, e.last_seq) for e in epochs] == [(0, 1, b), (1, b + 1, None)]
    assert names(epochs[1].validators) == ["v0", "v1", "v2", "v3", "v4"]
    assert led.current_epoch() == epochs[1]
    assert led.pending_epoch_last_seq() is None
    assert led.pending_validators() is None
    for seq in range(1, b + 5):
        assert led.epoch_for(seq).number == (0 if seq <= b else 1), seq
        assert led.consensus_epoch(seq).number == led.epoch_for(seq).number


def _signatures(gw: GovWorld, height: int) -> tuple[tuple[bytes, bytes], ...]:
    from node.tx import decode_signed_transaction

    block = gw.ledger.block(height)
    assert block is not None
    stx = decode_signed_transaction(block.txs[0])
    return stx.signatures


def test_history_keeps_the_regulator_signatures(gw3: GovWorld) -> None:
    r = gw3.add("v4")
    assert r.applied, r
    [record] = gw3.ledger.governance_history()
    sigs = _signatures(gw3, r.height)
    assert len(sigs) == 2 and record.signatures == sigs
    assert {k for k, _ in record.signatures} <= set(gw3.genesis.regulator_keys)


def test_later_changes_fold_into_the_same_next_epoch(tmp_path: Path) -> None:
    gw = GovWorld(tmp_path / "l", governance_genesis(7))
    led = gw.ledger
    first = gw.add("v7")
    b = led.pending_epoch_last_seq()
    assert b == epoch_last_seq(first.height, checkpoint_interval_seqs=K, log_window_seqs=W)
    gw.empty_blocks_until(20)
    second = gw.rotate("v1", "v1-new")
    assert second.applied, second
    assert led.pending_epoch_last_seq() == b  # not moved by the second change
    assert [r.effective_from_seq for r in led.governance_history()] == [b + 1, b + 1]
    gw.empty_blocks_until(b - 1)
    third = gw.remove("v2")  # in block b itself: still part of the next set
    assert third.applied and third.height == b, third
    new = led.current_epoch()
    assert (new.number, new.first_seq) == (1, b + 1)
    assert names(new.validators) == ["v0", "v1", "v3", "v4", "v5", "v6", "v7"]
    assert new.validators[1].public_key == vpub("v1-new")  # rotation keeps the position
    gw.close()


def test_a_change_after_the_boundary_schedules_the_next_epoch(gw: GovWorld) -> None:
    led = gw.ledger
    gw.add("v4")
    b1 = led.pending_epoch_last_seq()
    assert b1 is not None
    gw.empty_blocks_until(b1 + 2)
    r = gw.add("v5")
    assert r.applied, r
    b2 = epoch_last_seq(r.height, checkpoint_interval_seqs=K, log_window_seqs=W)
    assert led.pending_epoch_last_seq() == b2
    gw.empty_blocks_until(b2)
    assert [(e.number, e.first_seq, e.last_seq) for e in led.epochs()] == [
        (0, 1, b1),
        (1, b1 + 1, b2),
        (2, b2 + 1, None),
    ]
    assert len(led.current_epoch().validators) == 6
    for seq in (1, b1, b1 + 1, b2, b2 + 1, b2 + 100):
        expected = 0 if seq <= b1 else 1 if seq <= b2 else 2
        assert led.epoch_for(seq).number == expected


def test_a_new_epoch_starts_even_if_the_set_came_back_to_the_same(gw: GovWorld) -> None:
    gw.add("v4")
    gw.remove("v4")
    assert gw.ledger.pending_validators() is None  # the ledger set equals epoch 0's again
    b = gw.ledger.pending_epoch_last_seq()
    assert b is not None
    gw.empty_blocks_until(b)
    e1 = gw.ledger.current_epoch()
    assert e1.number == 1 and e1.validators == gw.ledger.epochs()[0].validators


def test_other_limits_give_other_boundaries(tmp_path: Path) -> None:
    limits = LedgerLimits(
        map_size_bytes=SMALL_MAP_BYTES, checkpoint_interval_seqs=4, log_window_seqs=8
    )
    w = GovWorld(tmp_path / "l", governance_genesis(4), limits)
    try:
        assert w.add("v4").height == 1
        assert w.ledger.pending_epoch_last_seq() == 12  # 1 + 8 = 9 -> next multiple of 4
        assert w.ledger.governance_history()[0].effective_from_seq == 13
        w.empty_blocks_until(12)
        assert w.ledger.current_epoch().first_seq == 13
    finally:
        w.close()


def test_epochs_survive_a_restart(tmp_path: Path) -> None:
    g = governance_genesis(4)
    w = GovWorld(tmp_path / "l", g)
    w.add("v4")
    b = w.ledger.pending_epoch_last_seq()
    assert b is not None
    w.empty_blocks_until(b + 3)
    w.rotate("v0", "v0-new")
    w.gov(Kind.SET_REGULATOR_KEYS, public_keys=[public_key(key("new-reg"))], threshold=1)
    before = (
        w.ledger.epochs(),
        w.ledger.pending_epoch_last_seq(),
        w.ledger.pending_validators(),
        w.ledger.regulator_keys(),
        w.ledger.governance_history(),
        [w.ledger.epoch_for(s) for s in range(1, w.ledger.height + 2)],
        w.ledger.state_digest,
    )
    w.close()
    with Ledger.open(tmp_path / "l", g, limits=LedgerLimits(map_size_bytes=SMALL_MAP_BYTES)) as led:
        after = (
            led.epochs(),
            led.pending_epoch_last_seq(),
            led.pending_validators(),
            led.regulator_keys(),
            led.governance_history(),
            [led.epoch_for(s) for s in range(1, led.height + 2)],
            led.state_digest,
        )
    assert after == before
    assert before[3] == ((public_key(key("new-reg")),), 1)


def test_a_ledger_from_before_governance_is_initialised_from_genesis(tmp_path: Path) -> None:
    g = governance_genesis(4)
    limits = LedgerLimits(map_size_bytes=SMALL_MAP_BYTES)
    with Ledger.open(tmp_path / "l", g, limits=limits) as led:
        digest = led.state_digest
        fresh = (led.epochs(), led.regulator_keys(), led.ledger_validators())
        # What an older version left behind: no governance records at all.
        with led._env.begin(write=True) as txn:
            for name in kl.GOVERNANCE_DBS:
                txn.drop(led._dbs[name], delete=False)
    with Ledger.open(tmp_path / "l", g, limits=limits) as led:
        assert (led.epochs(), led.regulator_keys(), led.ledger_validators()) == fresh
        assert led.state_digest == digest


# ------------------------------------------------------------------ quorum safety


def test_four_to_five_then_five_to_seven_across_epochs(gw: GovWorld) -> None:
    assert gw.add("v4").applied
    gw.empty_blocks_until(gw.ledger.pending_epoch_last_seq())  # type: ignore[arg-type]
    assert len(gw.ledger.current_epoch().validators) == 5
    assert gw.add("v5").applied
    assert gw.add("v6").applied  # 7 validators, quorum 5: all five running ones continue
    gw.empty_blocks_until(gw.ledger.pending_epoch_last_seq())  # type: ignore[arg-type]
    assert len(gw.ledger.current_epoch().validators) == 7


def test_four_to_seven_in_one_epoch_is_rejected(gw: GovWorld) -> None:
    assert gw.add("v4").applied  # 5: quorum 4, 4 continuing
    assert gw.add("v5").applied  # 6: quorum 5? no: n=6 -> f=1 -> quorum 4
    r = gw.add("v6")  # 7: quorum 5, only 4 continuing
    assert r.reason is ReasonCode.QUORUM_AT_RISK, r
    assert names(gw.ledger.ledger_validators()) == ["v0", "v1", "v2", "v3", "v4", "v5"]
    assert len(gw.ledger.governance_history()) == 2


def test_removing_one_of_five_is_fine(gw: GovWorld) -> None:
    gw.add("v4")
    gw.empty_blocks_until(gw.ledger.pending_epoch_last_seq())  # type: ignore[arg-type]
    assert gw.remove("v2").applied
    assert names(gw.ledger.pending_validators()) == ["v0", "v1", "v3", "v4"]


def test_removing_below_four_needs_the_override(gw: GovWorld) -> None:
    r = gw.remove("v3")
    assert r.reason is ReasonCode.VALIDATOR_SET_TOO_SMALL, r
    assert "allow_below_minimum" in r.detail
    assert len(gw.ledger.ledger_validators()) == 4
    r = gw.remove("v3", allow_below_minimum=True)
    assert r.applied, r
    [record] = gw.ledger.governance_history()
    assert record.args == {
        "name": "v3",
        "allow_below_minimum": True,
        "public_key": vpub("v3"),
        "address": address("v3"),
    }
    # Even with the override, not below one validator (and quorum still applies).
    assert gw.remove("v2", allow_below_minimum=True).applied  # 2 left: quorum 2, both continue
    assert gw.remove("v1", allow_below_minimum=True).applied  # 1 left: quorum 1
    r = gw.remove("v0", allow_below_minimum=True)
    assert r.reason is ReasonCode.VALIDATOR_SET_TOO_SMALL, r


def test_rotating_one_of_four_is_fine_but_not_two_in_one_epoch(gw: GovWorld) -> None:
    assert gw.rotate("v1", "v1-new").applied  # 3 of 4 continue: quorum 3
    r = gw.rotate("v2", "v2-new")
    assert r.reason is ReasonCode.QUORUM_AT_RISK, r
    [record] = gw.ledger.governance_history()
    assert record.args == {
        "name": "v1",
        "public_key": vpub("v1-new"),
        "old_public_key": vpub("v1"),
    }
    gw.empty_blocks_until(gw.ledger.pending_epoch_last_seq())  # type: ignore[arg-type]
    assert gw.rotate("v2", "v2-new").applied  # the next epoch: v1's new key is running


def test_safety_rule_directly() -> None:
    def vs(*pairs: str) -> tuple[ValidatorInfo, ...]:
        return tuple(
            ValidatorInfo(name=p.split(":")[0], public_key=vpub(p), address=address("v0"))
            for p in pairs
        )

    four = vs("v0", "v1", "v2", "v3")
    check = governance_rules.check_safety
    check(four, (*four, *vs("v4")), shrinks=False, allow_below_minimum=False)
    with pytest.raises(governance_rules.TxRejectedError) as exc:
        check(four, (*four, *vs("v4", "v5", "v6")), shrinks=False, allow_below_minimum=False)
    assert exc.value.code is ReasonCode.QUORUM_AT_RISK
    with pytest.raises(governance_rules.TxRejectedError) as exc:
        check(four, four[:3], shrinks=True, allow_below_minimum=False)
    assert exc.value.code is ReasonCode.VALIDATOR_SET_TOO_SMALL
    check(four, four[:3], shrinks=True, allow_below_minimum=True)
    # Same name, another key: not continuing.
    with pytest.raises(governance_rules.TxRejectedError) as exc:
        check(four, (*four[:2], *vs("v2:x", "v3:x")), shrinks=False, allow_below_minimum=False)
    assert exc.value.code is ReasonCode.QUORUM_AT_RISK


# ------------------------------------------------------------------ other rules and codes


def test_only_the_regulator_may_change_the_set(gw: GovWorld) -> None:
    for kind, args in (
        (Kind.ADD_VALIDATOR, {"name": "v4", "public_key": vpub("v4"), "address": address("v4")}),
        (Kind.REMOVE_VALIDATOR, {"name": "v0"}),
        (Kind.ROTATE_VALIDATOR_KEY, {"name": "v0", "public_key": vpub("z")}),
        (Kind.SET_REGULATOR_KEYS, {"public_keys": [public_key(ALICE)], "threshold": 1}),
    ):
        r = gw.one(ALICE, kind, **args)
        assert r.reason is ReasonCode.NOT_AUTHORIZED, (kind, r)
        # A validator's key is no regulator either.
        r = gw.one(vkey("v0"), kind, **args)
        assert r.reason is ReasonCode.NOT_AUTHORIZED, (kind, r)
    assert gw.ledger.governance_history() == []
    assert gw.ledger.pending_epoch_last_seq() is None
    assert gw.ledger.regulator_keys() == (gw.genesis.regulator_keys, 1)


def test_under_signed_governance_is_unauthentic(gw3: GovWorld) -> None:
    regs = gw3.regulators
    stx = gw3.tx(
        regs[0],
        Kind.ADD_VALIDATOR,
        {"name": "v4", "public_key": vpub("v4"), "address": address("v4")},
    )
    [r] = gw3.apply(stx)
    assert r.reason is ReasonCode.REGULATOR_THRESHOLD_NOT_MET
    assert gw3.ledger.nonce(public_key(regs[0])) == 0  # nothing consumed
    assert gw3.ledger.pending_epoch_last_seq() is None


@pytest.mark.parametrize(
    "change",
    [
        {"name": "v1"},
        {"public_key": vpub("v1")},
        {"address": address("v1")},
    ],
)
def test_add_refuses_an_existing_name_key_or_address(gw: GovWorld, change: dict) -> None:
    args = {"name": "v4", "public_key": vpub("v4"), "address": address("v4")} | change
    r = gw.gov(Kind.ADD_VALIDATOR, **args)
    assert r.reason is ReasonCode.VALIDATOR_EXISTS, r


def test_add_accepts_a_regulator_or_account_key(gw: GovWorld) -> None:
    assert gw.add("v4", public_key=gw.genesis.regulator_keys[0]).applied


def test_unknown_validator(gw: GovWorld) -> None:
    assert gw.remove("nobody").reason is ReasonCode.UNKNOWN_VALIDATOR
    assert gw.rotate("nobody", "x").reason is ReasonCode.UNKNOWN_VALIDATOR


def test_rotate_to_a_key_in_use_is_refused(gw: GovWorld) -> None:
    r = gw.gov(Kind.ROTATE_VALIDATOR_KEY, name="v1", public_key=vpub("v2"))
    assert r.reason is ReasonCode.VALIDATOR_EXISTS, r
    r = gw.gov(Kind.ROTATE_VALIDATOR_KEY, name="v1", public_key=vpub("v1"))
    assert r.reason is ReasonCode.VALIDATOR_EXISTS, r


def test_the_set_size_is_bounded(gw: GovWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(governance_rules, "VALIDATORS_MAX", 5)
    assert gw.add("v4").applied
    assert gw.add("v5").reason is ReasonCode.LIMIT_EXCEEDED


def test_check_runs_the_governance_rules_and_writes_nothing(gw: GovWorld) -> None:
    digest = gw.ledger.state_digest
    ok = gw.gov_tx(Kind.ADD_VALIDATOR, name="v4", public_key=vpub("v4"), address=address("v4"))
    assert gw.ledger.check(ok).applied
    bad = gw.tx(ALICE, Kind.REMOVE_VALIDATOR, {"name": "v0", "allow_below_minimum": False})
    assert gw.ledger.check(bad).reason is ReasonCode.NOT_AUTHORIZED
    assert gw.ledger.state_digest == digest
    assert gw.ledger.pending_epoch_last_seq() is None
    assert gw.ledger.governance_history() == []


def test_a_crash_in_a_governance_block_changes_nothing(
    gw: GovWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    new_reg = public_key(key("new-reg"))
    add = gw.gov_tx(Kind.ADD_VALIDATOR, name="v4", public_key=vpub("v4"), address=address("v4"))
    stx = gw.gov_tx(Kind.SET_REGULATOR_KEYS, public_keys=[new_reg], threshold=1)

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(store_module, "block_hash", boom)
    block = Block(height=1, timestamp_ms=gw.time_ms + 1, txs=(add.encode(), stx.encode()))
    with pytest.raises(RuntimeError):
        gw.ledger.apply_block(block)
    assert gw.ledger.regulator_keys() == (gw.genesis.regulator_keys, 1)
    assert gw.ledger.pending_epoch_last_seq() is None
    assert len(gw.ledger.ledger_validators()) == 4
    assert gw.ledger.governance_history() == []
    monkeypatch.undo()
    receipts = gw.ledger.apply_block(block)
    assert all(r.applied for r in receipts), receipts
    assert gw.ledger.regulator_keys() == ((new_reg,), 1)


# ------------------------------------------------------------------ regulator keys


def test_set_regulator_keys_needs_the_current_threshold_and_changes_who_acts(
    gw3: GovWorld,
) -> None:
    led = gw3.ledger
    old = gw3.regulators
    new = [key("new-reg-0"), key("new-reg-1")]
    new_pubs = [public_key(k) for k in new]
    # One of the current 2-of-3 is not enough (unauthentic: the nonce stays).
    [r] = gw3.apply(
        gw3.tx(old[0], Kind.SET_REGULATOR_KEYS, {"public_keys": new_pubs, "threshold": 1})
    )
    assert r.reason is ReasonCode.REGULATOR_THRESHOLD_NOT_MET
    # The new keys cannot appoint themselves.
    r = gw3.one(new[0], Kind.SET_REGULATOR_KEYS, public_keys=new_pubs, threshold=1)
    assert r.reason is ReasonCode.NOT_AUTHORIZED
    r = gw3.gov(Kind.SET_REGULATOR_KEYS, public_keys=new_pubs, threshold=1)
    assert r.applied, r
    assert led.regulator_keys() == (tuple(new_pubs), 1)
    [record] = led.governance_history()
    assert record.kind == "set_regulator_keys" and record.effective_from_seq is None
    assert record.args == {
        "public_keys": new_pubs,
        "threshold": 1,
        "old_public_keys": list(gw3.genesis.regulator_keys),
        "old_threshold": 2,
    }
    assert len(record.signatures) == 2
    assert led.pending_epoch_last_seq() is None  # consensus is not affected
    # The old regulators no longer act as the regulator; the new one does, alone.
    r = gw3.one(old[0], Kind.ADD_VALIDATOR, name="v4", public_key=vpub("v4"), address=address("v4"))
    assert r.reason is ReasonCode.NOT_AUTHORIZED
    gw3.regulator_keys, gw3.threshold = new, 1
    assert gw3.add("v4").applied


def test_new_regulator_keys_apply_from_the_next_transaction_of_the_same_block(
    gw: GovWorld,
) -> None:
    old = gw.regulators[0]
    new = key("new-reg")
    change = gw.tx(old, Kind.SET_REGULATOR_KEYS, {"public_keys": [public_key(new)], "threshold": 1})
    by_old = gw.tx(
        old,
        Kind.ADD_VALIDATOR,
        {"name": "v4", "public_key": vpub("v4"), "address": address("v4")},
    )
    by_new = gw.tx(
        new,
        Kind.ADD_VALIDATOR,
        {"name": "v5", "public_key": vpub("v5"), "address": address("v5")},
    )
    r_change, r_old, r_new = gw.apply(change, by_old, by_new)
    assert r_change.applied
    assert r_old.reason is ReasonCode.NOT_AUTHORIZED
    assert r_new.applied, r_new


def test_regulator_threshold_of_the_new_set_applies(gw: GovWorld) -> None:
    new = [key(f"nr-{i}") for i in range(3)]
    r = gw.gov(Kind.SET_REGULATOR_KEYS, public_keys=[public_key(k) for k in new], threshold=2)
    assert r.applied
    stx = gw.tx(
        new[0],
        Kind.ADD_VALIDATOR,
        {"name": "v4", "public_key": vpub("v4"), "address": address("v4")},
    )
    [r] = gw.apply(stx)
    assert r.reason is ReasonCode.REGULATOR_THRESHOLD_NOT_MET
    gw.regulator_keys, gw.threshold = new, 2
    assert gw.add("v4").applied


# ------------------------------------------------------------------ evidence


@pytest.mark.parametrize("kind", ["pre_prepare", "prepare", "commit", "checkpoint"])
def test_equivocation_is_recorded_once(gw: GovWorld, kind: str) -> None:
    first, second = conflicting_votes(kind, vkey("v2"), "v2", epoch=0, view=3, seq=9)
    r = gw.report(vkey("v0"), 0, first, second)
    assert r.applied, r
    [e] = gw.ledger.evidence()
    assert (e.validator, e.public_key, e.epoch, e.message_kind, e.seq) == (
        "v2",
        vpub("v2"),
        0,
        kind,
        9,
    )
    assert e.view == (0 if kind == "checkpoint" else 3)
    assert (e.first, e.second, e.reporter, e.height) == (first, second, vpub("v0"), r.height)
    # Reported again (by anyone, in either order): duplicate.
    r = gw.report(vkey("v1"), 0, second, first)
    assert r.reason is ReasonCode.DUPLICATE_EVIDENCE, r
    assert len(gw.ledger.evidence()) == 1
    # Another seq is another equivocation.
    a, b = conflicting_votes(kind, vkey("v2"), "v2", epoch=0, view=3, seq=10)
    assert gw.report(vkey("v0"), 0, a, b).applied
    assert [e.seq for e in gw.ledger.evidence()] == [10, 9]
    assert gw.ledger.evidence(limit=1)[0].seq == 10
    # Paged by height, newest first: below the newest record's height is the older one.
    newest_height = gw.ledger.evidence(limit=1)[0].height
    assert [e.seq for e in gw.ledger.evidence(before_height=newest_height)] == [9]
    assert gw.ledger.evidence(before_height=1) == []


def test_evidence_from_a_non_validator_is_not_authorized(gw: GovWorld) -> None:
    first, second = conflicting_votes("prepare", vkey("v2"), "v2", epoch=0)
    assert gw.report(ALICE, 0, first, second).reason is ReasonCode.NOT_AUTHORIZED
    regulator = gw.regulators[0]
    assert gw.report(regulator, 0, first, second).reason is ReasonCode.NOT_AUTHORIZED
    assert gw.ledger.evidence() == []


def _view_change(signer_name: str) -> bytes:
    vc = make_view_change(
        vkey(signer_name),
        CHAIN_ID,
        signer_name,
        new_view=1,
        checkpoint_seq=0,
        checkpoint_digest=bytes(32),
        checkpoint_proof=(),
        prepared=(),
        payloads=(),
    )
    assert isinstance(vc, ViewChange)
    return encode_message(vc)


def test_bad_evidence(gw: GovWorld) -> None:
    v2 = vkey("v2")
    first, _ = conflicting_votes("prepare", v2, "v2", epoch=0, view=1, seq=5)
    _, other_seq = conflicting_votes("prepare", v2, "v2", epoch=0, view=1, seq=6)
    _, other_view = conflicting_votes("prepare", v2, "v2", epoch=0, view=2, seq=5)
    _, commit = conflicting_votes("commit", v2, "v2", epoch=0, view=1, seq=5)
    _, by_v3 = conflicting_votes("prepare", vkey("v3"), "v3", epoch=0, view=1, seq=5)
    _, wrong_domain = conflicting_votes("prepare", v2, "v2", epoch=1, view=1, seq=5)
    _, wrong_key = conflicting_votes("prepare", vkey("v3"), "v2", epoch=0, view=1, seq=5)
    _, outsider = conflicting_votes("prepare", vkey("x9"), "x9", epoch=0, view=1, seq=5)
    same_digest = conflicting_votes("prepare", v2, "v2", epoch=0, view=1, seq=5)[0]
    cases = {
        "garbage": (first, b"\x01\x02"),
        "not an array": (first, b"\xc4\x01a"),
        "view change": (first, _view_change("v2")),
        "other seq": (first, other_seq),
        "other view": (first, other_view),
        "other kind": (first, commit),
        "other validator": (first, by_v3),
        "wrong epoch domain": (first, wrong_domain),
        "wrong key": (first, wrong_key),
        "not a validator": conflicting_votes("prepare", vkey("x9"), "x9", epoch=0),
        "outsider second": (first, outsider),
    }
    for label, (a, b) in cases.items():
        r = gw.report(vkey("v0"), 0, a, b)
        assert r.reason is ReasonCode.BAD_EVIDENCE, (label, r)
    # Identical messages are refused when the args are built (nothing to prove).
    with pytest.raises(ArgsError, match="identical"):
        ReportEquivocationArgs(epoch=0, first=first, second=same_digest)
    # An epoch that does not exist yet.
    a, b = conflicting_votes("prepare", v2, "v2", epoch=1)
    assert gw.report(vkey("v0"), 1, a, b).reason is ReasonCode.BAD_EVIDENCE
    assert gw.ledger.evidence() == []


def test_evidence_of_an_earlier_epoch_by_a_removed_validator(gw: GovWorld) -> None:
    gw.add("v4")
    gw.empty_blocks_until(gw.ledger.pending_epoch_last_seq())  # type: ignore[arg-type]
    assert gw.remove("v3").applied  # v3 is out of the ledger set, still in epoch 1's set
    # v3 reports v1's equivocation of epoch 0: a validator of the epoch named may report.
    a, b = conflicting_votes("commit", vkey("v1"), "v1", epoch=0)
    assert gw.report(vkey("v3"), 0, a, b).applied
    # v4 (not in epoch 0) reports v2's epoch-1 equivocation: signed with epoch 1's domain.
    a, b = conflicting_votes("commit", vkey("v2"), "v2", epoch=1)
    assert gw.report(vkey("v4"), 1, a, b).applied
    # v4 never was in epoch 0, but is in the ledger set: may report an epoch-0 equivocation.
    a, b = conflicting_votes("prepare", vkey("v2"), "v2", epoch=0)
    assert gw.report(vkey("v4"), 0, a, b).applied
    # The epoch-0 signature does not prove anything in epoch 1.
    a, b = conflicting_votes("prepare", vkey("v1"), "v1", epoch=0)
    assert gw.report(vkey("v4"), 1, a, b).reason is ReasonCode.BAD_EVIDENCE
    assert [e.epoch for e in gw.ledger.evidence()] == [0, 1, 0]


def test_a_validator_reports_with_its_own_nonces(gw: GovWorld) -> None:
    for seq in range(3):
        a, b = conflicting_votes("prepare", vkey("v2"), "v2", epoch=0, seq=seq + 1)
        assert gw.report(vkey("v0"), 0, a, b).applied
    assert gw.ledger.nonce(vpub("v0")) == 3


# ------------------------------------------------------------------ queries


def test_governance_history_pages_newest_first(gw: GovWorld) -> None:
    heights = []
    for name in ("v4", "v5"):
        heights.append(gw.add(name).height)
    gw.empty_blocks_until(gw.ledger.pending_epoch_last_seq())  # type: ignore[arg-type]
    heights.append(gw.remove("v0").height)
    # Two governance txs in one block: ordered by index.
    both = gw.apply(
        gw.gov_tx(Kind.ROTATE_VALIDATOR_KEY, name="v1", public_key=vpub("v1-new")),
        gw.gov_tx(
            Kind.SET_REGULATOR_KEYS, public_keys=list(gw.genesis.regulator_keys), threshold=1
        ),
    )
    assert all(r.applied for r in both), both
    led = gw.ledger
    records = led.governance_history()
    assert [r.kind for r in records] == [
        "set_regulator_keys",
        "rotate_validator_key",
        "remove_validator",
        "add_validator",
        "add_validator",
    ]
    assert [r.height for r in records[2:]] == heights[::-1]
    assert [r.kind for r in led.governance_history(limit=2)] == [
        "set_regulator_keys",
        "rotate_validator_key",
    ]
    older = led.governance_history(before_height=records[1].height)
    assert older == records[2:]
    assert led.governance_history(before_height=heights[1]) == records[4:]
    assert led.governance_history(before_height=0) == []
    assert led.governance_history(before_height=10**12) == records
    for bad in (0, led.limits.history_page_max + 1):
        with pytest.raises(LedgerError, match="limit"):
            led.governance_history(limit=bad)
        with pytest.raises(LedgerError, match="limit"):
            led.evidence(limit=bad)
    with pytest.raises(LedgerError, match="before_height"):
        led.governance_history(before_height=-1)
    with pytest.raises(LedgerError, match="before_height"):
        led.evidence(before_height="7")  # type: ignore[arg-type]


def test_is_validator_key(gw: GovWorld) -> None:
    led = gw.ledger
    assert led.is_validator_key(vpub("v0"))
    assert not led.is_validator_key(public_key(ALICE))
    gw.add("v4")
    assert led.is_validator_key(vpub("v4"))  # in the ledger set already
    gw.remove("v4")
    gw.rotate("v0", "v0-new")
    assert led.is_validator_key(vpub("v0"))  # still in the current epoch
    assert led.is_validator_key(vpub("v0-new"))


# ------------------------------------------------------------------ determinism


def _script(w: GovWorld) -> None:
    """The same governance story, block by block."""
    w.add("v4")
    w.rotate("v1", "v1-new")
    a, b = conflicting_votes("prepare", vkey("v2"), "v2", epoch=0)
    w.report(vkey("v0"), 0, a, b)
    w.empty_blocks_until(w.ledger.pending_epoch_last_seq())  # type: ignore[arg-type]
    w.gov(Kind.SET_REGULATOR_KEYS, public_keys=list(w.genesis.regulator_keys), threshold=1)
    w.remove("v3")
    w.apply()


def test_state_digest_is_deterministic_and_covers_governance(tmp_path: Path) -> None:
    g = governance_genesis(4)
    one = GovWorld(tmp_path / "a", g)
    two = GovWorld(tmp_path / "b", g)
    try:
        _script(one)
        _script(two)
        assert one.ledger.height == two.ledger.height
        for h in range(one.ledger.height + 1):
            assert one.ledger.block(h).state_digest == two.ledger.block(h).state_digest, h  # type: ignore[union-attr]
        assert one.ledger.epochs() == two.ledger.epochs()
    finally:
        one.close()
        two.close()
    # The same txs but another validator address: another digest from that block on.
    three = GovWorld(tmp_path / "c", g)
    four = GovWorld(tmp_path / "d", g)
    try:
        assert three.add("v4").applied
        assert four.add("v4", address="127.0.0.1:9999").applied
        assert three.ledger.state_digest != four.ledger.state_digest
        # An epoch boundary is a state change too: same history, one block apart.
        three.empty_blocks_until(three.ledger.pending_epoch_last_seq() - 1)  # type: ignore[operator]
        digest_before = three.ledger.state_digest
        three.apply()
        block = three.ledger.block(three.ledger.height)
        assert block is not None and block.state_digest != digest_before
    finally:
        three.close()
        four.close()


def test_ledger_limits_validate_the_epoch_parameters() -> None:
    for k, w in ((0, 32), (16, 24), (16, 40), (16, 16), (True, 32)):
        with pytest.raises(ValueError, match=r"checkpoint_interval_seqs|log_window_seqs"):
            LedgerLimits(checkpoint_interval_seqs=k, log_window_seqs=w)
    LedgerLimits(checkpoint_interval_seqs=10, log_window_seqs=30)


def test_the_same_evidence_twice_in_one_block(gw: GovWorld) -> None:
    a, b = conflicting_votes("commit", vkey("v3"), "v3", epoch=0)
    first = gw.tx(vkey("v0"), Kind.REPORT_EQUIVOCATION, {"epoch": 0, "first": a, "second": b})
    again = gw.tx(vkey("v1"), Kind.REPORT_EQUIVOCATION, {"epoch": 0, "first": b, "second": a})
    r1, r2 = gw.apply(first, again)
    assert r1.applied and r2.reason is ReasonCode.DUPLICATE_EVIDENCE
    assert len(gw.ledger.evidence()) == 1


def _governance_dump(led: Ledger) -> dict[str, list[tuple[bytes, bytes]]]:
    with led._env.begin() as txn:
        return {name: list(txn.cursor(db=led._dbs[name])) for name in kl.GOVERNANCE_DBS}


def test_rejected_governance_writes_no_governance_record(gw: GovWorld) -> None:
    before = _governance_dump(gw.ledger)
    rejected = [
        gw.remove("v0"),  # too small
        gw.rotate("nobody", "x"),
        gw.add("v1"),  # exists
        gw.one(ALICE, Kind.SET_REGULATOR_KEYS, public_keys=[public_key(ALICE)], threshold=1),
        gw.report(vkey("v0"), 0, b"\x01", b"\x02"),
    ]
    assert all(not r.applied for r in rejected), rejected
    assert _governance_dump(gw.ledger) == before


_GOOD = conflicting_votes("commit", vkey("v1"), "v1", epoch=0)


@settings(max_examples=300, deadline=None)
@given(
    which=st.integers(0, 1),
    pos=st.integers(0, 10_000),
    byte=st.integers(0, 255),
    junk=st.binary(min_size=1, max_size=300),
)
def test_corrupted_or_random_evidence_is_refused_never_crashes(
    which: int, pos: int, byte: int, junk: bytes
) -> None:
    keys = {"v1": vpub("v1")}
    for first, second in (
        (_GOOD[0], junk),
        (junk, _GOOD[1]),
        _corrupt(_GOOD, which, pos, byte),
    ):
        try:
            proof = check_equivocation(first, second, chain_id=CHAIN_ID, epoch=0, key_of=keys.get)
        except EvidenceError:
            continue
        # Only an unchanged pair (a corruption that re-encodes to the same bytes) proves it.
        assert (first, second) == _GOOD and proof.validator == "v1"


def _corrupt(pair: tuple[bytes, bytes], which: int, pos: int, byte: int) -> tuple[bytes, bytes]:
    target = bytearray(pair[which])
    target[pos % len(target)] = byte
    out = list(pair)
    out[which] = bytes(target)
    return out[0], out[1]
