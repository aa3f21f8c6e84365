"""The governance queries over a real LMDB Ledger, through the real server and client:
validator-set changes, epochs, the audited history and evidence as the ledger records them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.genesis import ValidatorSpec
from consensus.encoding import digest
from consensus.epochs import epoch_last_seq, signing_domain
from consensus.messages import encode_message, make_prepare
from node.client import ApiError
from node.tx import Kind, public_key
from tests.node.api.test_ledger_queries import client_for
from tests.node.ledger.world import World, key, make_genesis

VALIDATOR_KEYS = [key(f"validator-{i}") for i in range(6)]


def _spec(i: int) -> ValidatorSpec:
    return ValidatorSpec(
        name=f"v{i}", public_key=public_key(VALIDATOR_KEYS[i]), address=f"127.0.0.1:{7000 + i}"
    )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    genesis = dataclasses.replace(
        make_genesis(regulators=2, threshold=2), validators=tuple(_spec(i) for i in range(4))
    )
    w = World(tmp_path / "ledger", genesis)
    yield w
    w.close()


def _names(validators: tuple[object, ...] | None) -> list[str]:
    assert validators is not None
    return [v.name for v in validators]  # type: ignore[attr-defined]


async def test_epochs_history_and_evidence_from_a_real_ledger(world: World) -> None:
    regulators = world.regulators
    add = _spec(4)
    assert world.reg(
        Kind.ADD_VALIDATOR, name=add.name, public_key=add.public_key, address=add.address
    ).applied  # block 1
    boundary = epoch_last_seq(1, checkpoint_interval_seqs=16, log_window_seqs=32)
    async with client_for(world) as client:
        info = await client.validators()
        assert (info.height, info.epoch, info.first_seq, info.last_seq) == (1, 0, 1, boundary)
        assert _names(info.validators) == ["v0", "v1", "v2", "v3"]
        assert _names(info.pending_validators) == ["v0", "v1", "v2", "v3", "v4"]
        assert info.pending_validators is not None
        assert info.pending_validators[-1].address == add.address
        assert info.pending_last_seq == boundary
        assert info.regulator_keys == tuple(public_key(r) for r in regulators)
        assert info.regulator_threshold == 2

    # Block 2: two governance transactions in one block, then v1 equivocates in epoch 0.
    remove = world.tx(
        regulators[0], Kind.REMOVE_VALIDATOR, {"name": "v3"}, cosigners=[regulators[1]]
    )
    new_regulators = {"public_keys": [public_key(r) for r in regulators], "threshold": 1}
    rekey = world.tx(
        regulators[0], Kind.SET_REGULATOR_KEYS, new_regulators, cosigners=[regulators[1]]
    )
    assert all(r.applied for r in world.apply(remove, rekey))
    first, second = (
        encode_message(
            make_prepare(
                VALIDATOR_KEYS[1],
                signing_domain(world.genesis.chain_id, 0),
                "v1",
                view=0,
                seq=1,
                d=digest(payload),
            )
        )
        for payload in (b"one block", b"another block")
    )
    report = world.one(
        VALIDATOR_KEYS[2], Kind.REPORT_EQUIVOCATION, epoch=0, first=first, second=second
    )
    assert report.applied, report  # block 3
    while world.ledger.height < boundary:
        world.apply()

    async with client_for(world) as client:
        info = await client.validators()
        assert (info.epoch, info.first_seq, info.last_seq) == (1, boundary + 1, None)
        assert _names(info.validators) == ["v0", "v1", "v2", "v4"]
        assert info.pending_validators is None and info.pending_last_seq is None
        assert info.regulator_threshold == 1
        old = await client.validators(height=boundary)
        assert (old.epoch, old.last_seq) == (0, boundary)
        assert _names(old.validators) == ["v0", "v1", "v2", "v3"]
        assert (await client.validators(height=boundary + 1)).epoch == 1  # the next block
        with pytest.raises(ApiError, match="not_found"):
            await client.validators(height=boundary + 2)

        # limit 1 does not split block 2: both of its records, then block 1's.
        page = await client.governance(limit=1)
        assert [(r.height, r.kind) for r in page.records] == [
            (2, "set_regulator_keys"),
            (2, "remove_validator"),
        ]
        assert page.next_before_height == 2
        assert page.records[0].effective_from_seq is None
        assert page.records[1].effective_from_seq == boundary + 1
        older = await client.governance(limit=1, before_height=page.next_before_height)
        (added,) = older.records
        assert older.next_before_height is None
        assert (added.kind, added.height, added.effective_from_seq) == (
            "add_validator",
            1,
            boundary + 1,
        )
        assert added.args == {"name": "v4", "public_key": add.public_key, "address": add.address}
        assert [k for k, _ in added.signatures] == [public_key(r) for r in regulators]
        everything = await client.governance()
        assert len(everything.records) == 3 and everything.next_before_height is None

        listed = await client.evidence()
        (evidence,) = listed.records
        assert listed.next_before_height is None
        assert (await client.evidence(before_height=evidence.height)).records == ()
        assert (evidence.validator, evidence.public_key) == ("v1", public_key(VALIDATOR_KEYS[1]))
        assert (evidence.epoch, evidence.message_kind, evidence.view, evidence.seq) == (
            0,
            "prepare",
            0,
            1,
        )
        assert (evidence.first, evidence.second, evidence.height) == (first, second, 3)
        assert evidence.reporter == public_key(VALIDATOR_KEYS[2])

    # A rotation in epoch 1 names the replaced key in its history record.
    rotated = public_key(VALIDATOR_KEYS[5])
    assert world.reg(Kind.ROTATE_VALIDATOR_KEY, name="v1", public_key=rotated).applied
    async with client_for(world) as client:
        (rotation,) = (await client.governance(limit=1)).records
        assert rotation.args["public_key"] == rotated
        assert public_key(VALIDATOR_KEYS[1]) in rotation.args.values()
        info = await client.validators()
        assert info.pending_last_seq == epoch_last_seq(
            world.ledger.height, checkpoint_interval_seqs=16, log_window_seqs=32
        )
        assert info.pending_validators is not None
        assert info.pending_validators[1].public_key == rotated
